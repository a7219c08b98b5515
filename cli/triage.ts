/**
 * `blocksim triage DIR|FILE…`: merges the replay files a campaign's shards
 * wrote (on one machine or many), groups the failures by signature — the
 * invariants broken, the profile, and the shape of the shrunk scenario (its
 * commands in order) — and prints one line per distinct bug with the
 * smallest replay file of the group as its representative.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
import { formatProblem, InputError } from "../sim/scenario/errors.js";
import { OldReplayFormatError, readReplayFile, type ReplayFile } from "../sim/scenario/replay.js";
import { EXIT_FAIL, EXIT_OK, UsageError, type Io } from "./args.js";

export const TRIAGE_HELP = `blocksim triage DIR|FILE… — one line per distinct failure found by a campaign

Reads every *.replay.json under the folders given (and the files given),
keeps those that record a violation, groups them by signature — the
invariants broken, the profile, and the shrunk scenario's commands in order —
and prints each group: how many files, the signature, and the smallest file
of the group (fewest commands, then fewest choices) to replay.

Exit codes: 0 no failure in any file, 1 at least one failure, 2 bad input.

Example (two shards, then their merge):
  mkdir -p out; blocksim fuzz --shard 1/2 --out out/1.replay.json & blocksim fuzz --shard 2/2 --out out/2.replay.json; wait
  blocksim triage out
`;

/** Files read at most (a campaign's folders may hold many; each is small). */
const MAX_FILES = 100_000;
const MAX_FILE_BYTES = 64 * 1024 * 1024;

export interface Failure {
  file: string;
  profile: string;
  invariants: string[];
  /** The scenario's commands in order (`transaction(a,b)` for a transaction), or the scenario's name. */
  shape: string[];
  /** Size measures for choosing the representative. */
  commands: number;
  choices: number;
}

function actionShape(a: Record<string, unknown>): string {
  if (typeof a.execute === "string") {
    if (a.execute === "transaction") {
      const actions = ((a.arguments as { actions?: { type?: string }[] } | undefined)?.actions ?? []).map((x) => String(x.type));
      return `transaction(${actions.join(",")})`;
    }
    return a.execute;
  }
  if ("drain" in a) return "drain";
  if ("guest" in a) return "guest-burst";
  return "?";
}

/** The failure a replay file records, or undefined for a clean run or a file of another kind. */
export function failureOf(file: string, replay: ReplayFile): Failure | undefined {
  if (replay.ok && replay.violations.length === 0) return undefined;
  const s = replay.subject;
  // A fuzz case holds its commands; a race or scenario is named.
  const actions = "fuzz" in s && Array.isArray(s.fuzz.actions) ? (s.fuzz.actions as Record<string, unknown>[]) : undefined;
  const shape = actions ? actions.map(actionShape) : ["race" in s ? `race ${s.race}` : "scenario" in s ? `scenario ${s.scenario}` : "inline" in s ? `scenario ${String(s.inline.name ?? "(inline)")}` : "fuzz case"];
  const named = replay.violations.map((v) => v.invariant);
  return {
    file,
    profile: replay.profile,
    invariants: [...new Set(named.length > 0 ? named : ["expectation"])].sort(),
    shape,
    commands: actions ? actions.length : 0,
    choices: typeof replay.choices === "string" ? replay.choices.length : replay.choices.length,
  };
}

function collect(paths: string[], into: string[]): void {
  for (const p of paths) {
    let st;
    try {
      st = statSync(p);
    } catch {
      throw new UsageError(`triage: ${p}: no such file or folder`);
    }
    if (st.isDirectory()) {
      const entries = readdirSync(p, { recursive: true, withFileTypes: true });
      for (const e of entries) if (e.isFile() && e.name.endsWith(".replay.json")) into.push(join(e.parentPath, e.name));
    } else if (st.isFile()) into.push(p);
    else throw new UsageError(`triage: ${p}: not a regular file or a folder`);
    if (into.length > MAX_FILES) throw new UsageError(`triage: more than ${MAX_FILES} replay files; triage fewer folders at a time`);
  }
}

export interface Group {
  signature: string;
  failures: Failure[];
  representative: Failure;
}

/** Groups failures by signature; groups by size (largest first), then signature. */
export function triage(failures: Failure[]): Group[] {
  const groups = new Map<string, Failure[]>();
  for (const f of failures) {
    const signature = `${f.invariants.join(",")} under ${f.profile}: ${f.shape.join(" → ")}`;
    const g = groups.get(signature);
    if (g) g.push(f);
    else groups.set(signature, [f]);
  }
  const smaller = (a: Failure, b: Failure) => a.commands - b.commands || a.choices - b.choices || (a.file < b.file ? -1 : a.file > b.file ? 1 : 0);
  return [...groups]
    .map(([signature, fs]) => ({ signature, failures: fs, representative: [...fs].sort(smaller)[0] }))
    .sort((a, b) => b.failures.length - a.failures.length || (a.signature < b.signature ? -1 : 1));
}

export function triageCommand(argv: string[], io: Io): number {
  const { values, positionals } = parseArgs({ args: argv, options: { help: { type: "boolean", short: "h" } }, allowPositionals: true, strict: true });
  if (values.help) {
    io.out(TRIAGE_HELP);
    return EXIT_OK;
  }
  if (positionals.length === 0) throw new UsageError("triage needs at least one folder or replay file; see: blocksim triage --help");
  const files: string[] = [];
  collect(positionals, files);
  files.sort();
  const failures: Failure[] = [];
  let unreadable = 0;
  for (const file of files) {
    if (statSync(file).size > MAX_FILE_BYTES) {
      io.err(`blocksim triage: ${file}: larger than ${MAX_FILE_BYTES / 1024 / 1024} MiB, skipped\n`);
      unreadable++;
      continue;
    }
    let replay: ReplayFile;
    try {
      replay = readReplayFile(file).replay;
    } catch (e) {
      // Not a replay file this blocksim reads: named with why (an old format names its converting command), and skipped.
      const why = e instanceof OldReplayFormatError ? e.message : e instanceof InputError ? formatProblem(e.problems[0]) : undefined;
      if (why === undefined) throw e;
      io.err(`blocksim triage: skipped ${why}\n`);
      unreadable++;
      continue;
    }
    const f = failureOf(file, replay);
    if (f) failures.push(f);
  }
  const groups = triage(failures);
  io.out(`${files.length} replay file(s), ${failures.length} with a failure, ${groups.length} distinct${unreadable ? `, ${unreadable} skipped` : ""}\n`);
  for (const g of groups) {
    io.out(`${String(g.failures.length).padStart(4)}× ${g.signature}\n       e.g. ${g.representative.file}\n`);
  }
  return failures.length > 0 ? EXIT_FAIL : EXIT_OK;
}
