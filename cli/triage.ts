/**
 * `blocksim triage DIR|FILE…`: merges the replay files a campaign's shards
 * wrote (on one machine or many), groups the failures by signature — the
 * invariants broken, the profile, and the shape of the shrunk scenario (its
 * commands in order) — and prints one line per distinct bug with the
 * smallest replay file of the group as its representative.
 */
import { readdirSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { parseArgs } from "node:util";
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

/** The invariant a violation line names: "[t ms] name (…): …" (fuzz) or "name: …" (race replays). */
function invariantOf(line: unknown): string {
  const m = /^\s*(?:\[[^\]]*\]\s*)?([a-z0-9-]+)/.exec(String(line));
  return m ? m[1] : String(line);
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
export function failureOf(file: string, json: unknown): Failure | undefined {
  if (typeof json !== "object" || json === null) return undefined;
  const f = json as Record<string, unknown>;
  const violations = Array.isArray(f.violations) ? f.violations : [];
  if (violations.length === 0) return undefined;
  // A fuzz replay holds its scenario inline; a race replay names its race.
  const actions = (f.scenario as { actions?: unknown } | undefined)?.actions;
  const shape = Array.isArray(actions) ? (actions as Record<string, unknown>[]).map(actionShape) : [String(f.race ?? "?")];
  const choices = typeof f.choices === "string" ? f.choices.length : Array.isArray(f.choices) ? f.choices.length : 0;
  return {
    file,
    profile: String(f.profile ?? "current"),
    invariants: [...new Set(violations.map(invariantOf))].sort(),
    shape,
    commands: Array.isArray(actions) ? actions.length : 0,
    choices,
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
    let json: unknown;
    try {
      json = JSON.parse(readFileSync(file, "utf8"));
    } catch {
      io.err(`blocksim triage: ${file}: not JSON, skipped\n`);
      unreadable++;
      continue;
    }
    const f = failureOf(file, json);
    if (f) failures.push(f);
  }
  const groups = triage(failures);
  io.out(`${files.length} replay file(s), ${failures.length} with a failure, ${groups.length} distinct${unreadable ? `, ${unreadable} skipped` : ""}\n`);
  for (const g of groups) {
    io.out(`${String(g.failures.length).padStart(4)}× ${g.signature}\n       e.g. ${g.representative.file}\n`);
  }
  return failures.length > 0 ? EXIT_FAIL : EXIT_OK;
}
