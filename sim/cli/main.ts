/**
 * The `blocksim` command line. Exit codes: 0 every expectation held, 1 an
 * expectation failed (or a replay departed), 2 bad input (a malformed
 * scenario or replay file, an unknown option). Bad input never prints a
 * stack trace. Wall-clock time is read only for the progress line, which
 * appears only on a terminal and never with --json.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { parseArgs, type ParseArgsConfig } from "node:util";
import { COMMANDS } from "../qmp/qemu.js";
import { ALL_PROFILES as PROFILES } from "../mgmt/profiles.js";
import { didYouMean, formatProblems, InputError } from "../scenario/errors.js";
import { listInvariants } from "../check/index.js";
import { QUERY_WAIT_RULE } from "../mgmt/invariants.js";
import { loadScenarioFile, type LoadedScenario } from "../scenario/loader.js";
import { eventLines, firstDifference, loadReplayFile, makeReplay } from "../scenario/replay.js";
import { describeOutcome, runScenario, type RunOptions, type RunReport, type StrategyName } from "../scenario/runner.js";
import { formatDuration } from "../scenario/units.js";
import { Scenario } from "../scenario/schema.js";
import { z } from "zod";
import { header, logLine, qmpJsonLines, traceLine, verdict } from "../report/text.js";

/** Where output goes (tests pass their own). */
export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress lines). */
  tty: boolean;
}

const EXIT_OK = 0, EXIT_FAIL = 1, EXIT_INPUT = 2;

class UsageError extends Error {}

const HELP: Record<string, string> = {
  main: `blocksim — a deterministic simulator of QEMU-style block jobs

Usage: blocksim <command> [options]

Commands:
  run FILE…                 run scenario files and check their expectations
  replay REPLAY.json        repeat a recorded run exactly and verify its trace hash
  check-determinism FILE    run a scenario several times and compare trace hashes
  timeline FILE|REPLAY      draw a run as a self-contained HTML page (SVG timeline)
  fuzz [FILE]               property-based fuzzing of generated scenarios or of one scenario's schedules
  explore TARGET            random, PCT or bounded exhaustive exploration of one race's schedules
  races                     the race catalog: found under the buggy profile, clean under the fixed one
  record SPEC…              record conformance goldens from a real QEMU 7.2 (needs qemu-system-x86_64)
  conform FILE|DIR…         compare goldens or ../shared/conformance recordings with the simulator
  profiles                  list the profiles (historical behaviours)
  invariants                list the invariants a scenario can check
  commands                  list the QMP commands the simulator implements
  schema                    print the scenario file's JSON Schema (for editors)
  help [COMMAND]            show help for a command

Exit codes: 0 expectations held, 1 an expectation failed, 2 bad input.

Examples:
  blocksim run scenarios/transaction-of-backups.yaml
  blocksim run scenarios/*.yaml --strategy random --seed 7
  blocksim replay scenarios/races/txn-start-in-commit.txn-start-on-create.replay.json
  blocksim help run`,
  run: `Usage: blocksim run FILE… [options]

Runs each scenario file (YAML or JSON) and prints its event log (virtual
time, source, what happened), then PASS or FAIL with a diff of expected
versus observed for every failed expectation.

Options:
  --seed N             override the scenario's seed
  --profile P          override the scenario's profile (see: blocksim profiles)
  --strategy S         fifo (default), random or pct
  --trace              print the kernel trace (every record) instead of the event log
  --json               print QMP JSON lines (commands, replies, events), then one
                       {"blocksim": …} result line per scenario
  --quiet              print only the verdicts
  --save-replay PATH   write a replay file of the run (one FILE only)

Exit codes: 0 all expectations held, 1 one failed, 2 bad input.

Examples:
  blocksim run scenarios/backup.yaml
  blocksim run scenarios/mirror.yaml --json
  blocksim run scenarios/txn-start-in-commit.yaml --profile txn-start-on-create --strategy random --seed 3
  blocksim run scenarios/backup.yaml --save-replay /tmp/backup.replay.json`,
  replay: `Usage: blocksim replay REPLAY.json [--json] [--trace] [--quiet]

Repeats a recorded run: same scenario, profile, seed and choice log. Checks
that the scenario file is unchanged (sha256), that the run takes the same
choices and ends with the same trace hash, and says exactly where it departs
if not. Exit 0 when reproduced and the expectations hold, 1 otherwise
(a reproduced race exits 1 every time, with the same failure).

Examples:
  blocksim replay scenarios/races/start-shim.no-start-shim.replay.json
  blocksim run scenarios/backup.yaml --save-replay r.json && blocksim replay r.json`,
  "check-determinism": `Usage: blocksim check-determinism FILE [--runs N] [--seed N] [--profile P] [--strategy S]

Runs the scenario N times (default 3) with the same parameters and compares
trace hashes; on a difference, prints the first event where two runs differ.
Exit 0 when every run is identical, 1 otherwise.

Examples:
  blocksim check-determinism scenarios/transaction-of-backups.yaml --runs 5
  blocksim check-determinism scenarios/mirror.yaml --strategy random --seed 11`,
  timeline: `Usage: blocksim timeline FILE|REPLAY.json -o OUT.html [--seed N] [--profile P] [--strategy S]

Runs a scenario (or repeats a replay) and writes a self-contained HTML page
with an SVG timeline: a lane per QMP client, job, drained node and device;
job states as coloured spans; commands and events as markers with tooltips;
the first violation or failure highlighted.

Examples:
  blocksim timeline scenarios/transaction-of-backups.yaml -o txn.html
  blocksim timeline scenarios/races/txn-start-in-commit.txn-start-on-create.replay.json -o race.html`,
  profiles: `Usage: blocksim profiles

Lists the profiles: named sets of behaviour switches that restore a
historical version of the job machinery, with the change each undoes.`,
  invariants: `Usage: blocksim invariants

Lists the invariants a scenario's expect.invariants can name (default: all).`,
  commands: `Usage: blocksim commands

Lists the QMP commands the simulator implements.`,
  schema: `Usage: blocksim schema

Prints the JSON Schema of scenario files (draft 2020-12, the form a person
writes: sizes, durations and rates may be strings with units). Editors that
read JSON Schema validate and complete scenario files with it, e.g. with the
YAML language server:

  npx blocksim schema > blocksim.schema.json
  # first line of a scenario:  # yaml-language-server: $schema=../blocksim.schema.json`,
};

const RUN_OPTIONS = {
  seed: { type: "string" },
  profile: { type: "string" },
  strategy: { type: "string" },
  trace: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  "save-replay": { type: "string" },
  runs: { type: "string" },
  output: { type: "string", short: "o" },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

type Values = { [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K]["type"] extends "boolean" ? boolean : string };

function parse(args: string[], allowed: (keyof typeof RUN_OPTIONS)[], command: string): { values: Values; files: string[] } {
  const options = Object.fromEntries(allowed.map((k) => [k, RUN_OPTIONS[k]]));
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Values, files: r.positionals };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /Unknown option '(-{1,2}[^']+)'/.exec(msg);
    if (m) {
      const names = allowed.map((k) => `--${k}`);
      throw new UsageError(`unknown option ${m[1]} for '${command}'${didYouMean(m[1], names)}; see: blocksim help ${command}`);
    }
    throw new UsageError(`${msg.replace(/\. To specify a positional argument.*$/, "")}; see: blocksim help ${command}`);
  }
}

function runOptions(v: Values): RunOptions {
  const o: RunOptions = {};
  if (v.seed !== undefined) {
    if (!/^-?\d+$/.test(v.seed)) throw new UsageError(`--seed expects a whole number, got ${JSON.stringify(v.seed)}`);
    o.seed = Number(v.seed);
  }
  if (v.profile !== undefined) {
    if (!PROFILES.some((p) => p.name === v.profile)) {
      throw new UsageError(`unknown profile "${v.profile}"${didYouMean(v.profile, PROFILES.map((p) => p.name))}; known profiles: ${PROFILES.map((p) => p.name).join(", ")}`);
    }
    o.profile = v.profile;
  }
  if (v.strategy !== undefined) {
    const names = ["fifo", "random", "pct"];
    if (!names.includes(v.strategy)) throw new UsageError(`unknown strategy "${v.strategy}"${didYouMean(v.strategy, names)}; expected fifo, random or pct`);
    o.strategy = v.strategy as StrategyName;
  }
  return o;
}

class Progress {
  private shown = false;
  private readonly started = Date.now();
  constructor(private readonly io: Io, private readonly enabled: boolean) {}
  private lastMs = 0;
  /** A throttled show for calls from inside a run (at most every 200 ms of wall time). */
  tick(text: () => string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastMs < 200) return;
    this.lastMs = now;
    this.show(text());
  }
  show(text: string): void {
    if (!this.enabled) return;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    this.io.err(`\r\x1b[2K${text} (${secs}s)`);
    this.shown = true;
  }
  clear(): void {
    if (this.shown) this.io.err("\r\x1b[2K");
    this.shown = false;
  }
}

function printRun(io: Io, r: RunReport, v: Values): void {
  const lines: string[] = [];
  if (v.json) {
    lines.push(...qmpJsonLines(r));
    lines.push(JSON.stringify({ blocksim: { scenario: r.name, file: r.file, ok: r.ok, profile: r.profile, seed: r.seed, strategy: r.strategy, hash: r.hash, endTimeNs: r.endTimeNs, outcome: r.outcome.kind, failures: r.failures.map((f) => f.message) } }));
  } else {
    if (!v.quiet) {
      lines.push(header(r));
      if (v.trace) for (const t of r.trace ?? []) lines.push(traceLine(t));
      else for (const e of r.log) lines.push(logLine(e));
    }
    lines.push(verdict(r));
  }
  // One write per chunk of lines, not one per line: a long trace prints fast.
  for (let i = 0; i < lines.length; i += 2000) io.out(lines.slice(i, i + 2000).join("\n") + "\n");
}

function cmdRun(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["seed", "profile", "strategy", "trace", "json", "quiet", "save-replay", "help"], "run");
  if (v.help) return help("run", io);
  if (files.length === 0) throw new UsageError("run needs at least one scenario file; see: blocksim help run");
  if (v["save-replay"] !== undefined && files.length !== 1) throw new UsageError("--save-replay takes one scenario file");
  const opts = { ...runOptions(v), keepTrace: !!v.trace };
  const progress = new Progress(io, io.tty && !v.json);
  let code = EXIT_OK;
  for (const [i, file] of files.entries()) {
    progress.show(`running ${file} (${i + 1}/${files.length})`);
    let loaded: LoadedScenario;
    try {
      loaded = loadScenarioFile(file);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      progress.clear();
      io.err(`blocksim: ${file} is not a valid scenario — ${formatProblems(e.problems)}\n`);
      code = EXIT_INPUT;
      continue;
    }
    const r = runScenario(loaded, { ...opts, onProgress: (ns, n) => progress.tick(() => `running ${file} (${i + 1}/${files.length}): ${formatDuration(ns)} virtual, ${n} events`) });
    progress.clear();
    if (r.failures.some((f) => f.kind === "setup")) {
      io.err(`blocksim: ${file}: the scenario's world could not be built:\n${r.failures.map((f) => `  ${f.message}`).join("\n")}\n`);
      code = EXIT_INPUT;
      continue;
    }
    printRun(io, r, v);
    if (!r.ok && code === EXIT_OK) code = EXIT_FAIL;
    if (v["save-replay"] !== undefined) {
      writeFileSync(v["save-replay"], JSON.stringify(makeReplay(r, loaded, v["save-replay"], file), null, 1) + "\n");
      if (!v.json) io.out(`replay written to ${v["save-replay"]}: blocksim replay ${v["save-replay"]}\n`);
    }
  }
  return code;
}

function cmdReplay(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["json", "trace", "quiet", "help"], "replay");
  if (v.help) return help("replay", io);
  if (files.length !== 1) throw new UsageError("replay takes exactly one replay file; see: blocksim help replay");
  const rp = loadReplayFile(files[0]);
  if (rp.staleScenario) {
    io.err(`blocksim: ${rp.file}: ${rp.staleScenario}; the recorded choices may no longer apply — replaying anyway\n`);
  }
  const r = runScenario(rp.loaded, { seed: rp.replay.seed, profile: rp.replay.profile, replay: rp.choices, keepTrace: !!v.trace });
  printRun(io, r, v);
  const problems: string[] = [];
  if (r.outcome.kind === "divergence") {
    problems.push(`the run departs from the recorded choice log at choice #${r.outcome.index} (virtual time ${r.outcome.timeNs} ns): ${r.outcome.error}`);
  }
  if (r.hash !== rp.replay.hash) {
    problems.push(`trace hash ${r.hash} differs from the recorded ${rp.replay.hash}`);
    const d = rp.replay.events ? firstDifference(rp.replay.events, eventLines(r)) : undefined;
    if (d) problems.push(`first differing event, #${d.index}:\n      recorded: ${d.recorded ?? "(no more events)"}\n      now:      ${d.now ?? "(no more events)"}`);
    else if (rp.replay.events) problems.push("the events are the same; the difference is in the kernel trace (I/O or scheduling), run with --trace to compare");
  }
  if (problems.length > 0) {
    if (!v.json) io.out(`REPLAY DEPARTS from ${rp.file}:\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
    else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: false, problems } }) + "\n");
    return EXIT_FAIL;
  }
  if (!v.json) io.out(`REPLAY REPRODUCED ${rp.file}: same choices, trace hash ${r.hash}${r.ok ? "" : ", and the same failure"}\n`);
  else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: true, hash: r.hash } }) + "\n");
  return r.ok ? EXIT_OK : EXIT_FAIL;
}

function cmdCheckDeterminism(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["runs", "seed", "profile", "strategy", "help"], "check-determinism");
  if (v.help) return help("check-determinism", io);
  if (files.length !== 1) throw new UsageError("check-determinism takes exactly one scenario file; see: blocksim help check-determinism");
  const runs = v.runs === undefined ? 3 : Number(v.runs);
  if (!Number.isSafeInteger(runs) || runs < 2) throw new UsageError(`--runs expects a whole number >= 2, got ${JSON.stringify(v.runs)}`);
  const loaded = loadScenarioFile(files[0]);
  const opts = runOptions(v);
  const progress = new Progress(io, io.tty);
  const first = runScenario(loaded, opts);
  const firstEvents = eventLines(first);
  for (let i = 2; i <= runs; i++) {
    progress.show(`run ${i}/${runs} of ${files[0]}`);
    const r = runScenario(loaded, opts);
    if (r.hash !== first.hash) {
      progress.clear();
      const d = firstDifference(firstEvents, eventLines(r));
      io.out(`NOT DETERMINISTIC: run ${i} of ${files[0]} has trace hash ${r.hash}, run 1 had ${first.hash}\n`);
      if (d) io.out(`  first differing event, #${d.index}:\n    run 1: ${d.recorded ?? "(no more events)"}\n    run ${i}: ${d.now ?? "(no more events)"}\n`);
      return EXIT_FAIL;
    }
  }
  progress.clear();
  io.out(`DETERMINISTIC: ${runs} runs of ${files[0]} (profile ${first.profile}, seed ${first.seed}, strategy ${first.strategy}) all have trace hash ${first.hash}, ${describeOutcome(first.outcome)}\n`);
  return EXIT_OK;
}

async function cmdTimeline(args: string[], io: Io): Promise<number> {
  const { values: v, files } = parse(args, ["output", "seed", "profile", "strategy", "help"], "timeline");
  if (v.help) return help("timeline", io);
  if (files.length !== 1) throw new UsageError("timeline takes exactly one scenario or replay file; see: blocksim help timeline");
  if (v.output === undefined) throw new UsageError("timeline needs -o OUT.html");
  const { renderTimeline } = await import("../report/timeline.js");
  const file = files[0];
  let r: RunReport;
  if (/\.replay\.json$/.test(file) || looksLikeReplay(file)) {
    const rp = loadReplayFile(file);
    r = runScenario(rp.loaded, { seed: rp.replay.seed, profile: rp.replay.profile, replay: rp.choices, keepTrace: true });
  } else {
    r = runScenario(loadScenarioFile(file), { ...runOptions(v), keepTrace: true });
  }
  writeFileSync(v.output, renderTimeline(r));
  io.out(`${r.ok ? "PASS" : "FAIL"} ${r.name}: timeline written to ${v.output}\n`);
  return EXIT_OK;
}

function looksLikeReplay(file: string): boolean {
  try {
    return readFileSync(file, "utf8").includes('"blocksim-replay"');
  } catch {
    return false;
  }
}

function help(topic: string, io: Io): number {
  io.out(HELP[topic] + "\n");
  return EXIT_OK;
}

function listProfiles(io: Io): number {
  for (const p of PROFILES) io.out(`${p.name}\n  ${p.description}\n  change: ${p.change}\n`);
  return EXIT_OK;
}

function printInvariants(io: Io): number {
  const mgmt = { name: QUERY_WAIT_RULE, when: "step" as const, description: `management layer (scenarios with a domain): no status query (virDomainGetBlockJobInfo) waits longer than domain.query-wait-bound (default 100ms) for its job (seed 004)`, source: "libvirt cefe0ba3d" };
  for (const i of [...listInvariants(), mgmt]) io.out(`${i.name} (${i.when === "step" ? "checked at every step" : "checked at the end of the run"})\n  ${i.description}${i.source ? `\n  source: ${i.source}` : ""}\n`);
  return EXIT_OK;
}

function printSchema(io: Io): number {
  const schema = z.toJSONSchema(Scenario, { io: "input", unrepresentable: "any" });
  io.out(JSON.stringify({ ...schema, title: "blocksim scenario file" }, null, 1) + "\n");
  return EXIT_OK;
}

function listCommands(io: Io): number {
  io.out(Object.keys(COMMANDS).sort().join("\n") + "\n");
  return EXIT_OK;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case "--help":
      case "-h":
        return help("main", io);
      case "help": {
        const topic = rest[0] ?? "main";
        if (topic === "fuzz" || topic === "explore" || topic === "races") return await main([topic, "--help"], io);
        if (!Object.hasOwn(HELP, topic)) throw new UsageError(`no help for "${topic}"${didYouMean(topic, Object.keys(HELP))}; commands: ${Object.keys(HELP).filter((k) => k !== "main").join(", ")}`);
        return help(topic, io);
      }
      case "run": return cmdRun(rest, io);
      case "replay": return cmdReplay(rest, io);
      case "check-determinism": return cmdCheckDeterminism(rest, io);
      case "timeline": return await cmdTimeline(rest, io);
      // Issue 8's subcommands live in their own files, loaded only when asked for.
      case "fuzz": return await (await import("./fuzz.js")).fuzzCommand(rest, io);
      case "explore": return (await import("./explore.js")).exploreCommand(rest, io);
      case "races": return (await import("./races.js")).racesCommand(rest, io);
      case "record": return await (await import("../../live/record.js")).recordCommand(rest, io);
      case "conform": return (await import("../../live/conform.js")).conformCommand(rest, io);
      case "profiles": return rest.includes("--help") || rest.includes("-h") ? help("profiles", io) : listProfiles(io);
      case "invariants": return rest.includes("--help") || rest.includes("-h") ? help("invariants", io) : printInvariants(io);
      case "commands": return rest.includes("--help") || rest.includes("-h") ? help("commands", io) : listCommands(io);
      case "schema": return rest.includes("--help") || rest.includes("-h") ? help("schema", io) : printSchema(io);
      default:
        throw new UsageError(`unknown command "${cmd}"${didYouMean(cmd, [...Object.keys(HELP).filter((k) => k !== "main"), "fuzz", "explore", "races"])}; see: blocksim --help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`blocksim: ${e.message}\n`);
      return EXIT_INPUT;
    }
    if (e instanceof InputError) {
      io.err(`blocksim: bad input — ${formatProblems(e.problems)}\n`);
      return EXIT_INPUT;
    }
    throw e;
  }
}

const isEntry = process.argv[1] !== undefined && /(?:bin\/blocksim(?:\.js)?|sim\/cli\/main\.ts)$/.test(process.argv[1].replace(/\\/g, "/"));
if (isEntry) {
  // `blocksim run … | head`: a closed pipe ends the output quietly, as other tools do.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), tty: !!process.stderr.isTTY };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`blocksim: internal error (a bug in blocksim, please report it with the command you ran):\n${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exitCode = 3;
    },
  );
}
