/**
 * The fuzzing API: a property over (scenario, schedule) pairs that fast-check
 * generates and, on failure, shrinks — the command list and the schedule
 * both — then a replay file and the one-line command that replays it.
 *
 *   import { fuzz } from "blocksim/sim/fuzz";
 *   it("no invariant breaks", () => { fuzz({ seed: 42, numRuns: 100 }); });
 *
 * `fuzz` throws (so vitest fails) with the seed, the shrunk counterexample,
 * the violations, the replay file and the command.
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../scenario/output-file.js";
import fc from "fast-check";
import { formatViolation, type CheckViolation, type InvariantSelection } from "../check/index.js";
import { formatChoiceLog, parseChoiceLog, ReplayStrategy } from "../scheduler/index.js";
import { scenario as scenarioArb, schedule as scheduleArb, type ScenarioOptions } from "./arbitraries.js";
import { describeRunOutcome } from "../harness/run.js";
import { PickListStrategy } from "../harness/strategy.js";
import { runModel, type FuzzScenario, type ModelRun } from "./model.js";

export const FUZZ_REPLAY_VERSION = 1;

/** A fuzz replay file: the scenario inline, the profile, the run seed, the exact choice log and the trace hash it gave. */
export interface FuzzReplay {
  "blocksim-fuzz-replay": typeof FUZZ_REPLAY_VERSION;
  profile: string;
  seed: number;
  scenario: FuzzScenario;
  choices: string;
  hash: string;
  violations: string[];
  /** How it was found: the fast-check seed and path. */
  found?: { fcSeed: number; path?: string; runs: number };
}

export interface FuzzOptions {
  /** fast-check seed: fixed, so the run is the same each time (default 42). */
  seed?: number;
  numRuns?: number;
  profile?: string;
  invariants?: InvariantSelection;
  /** The scenarios to draw (default: `scenario(scenarioOptions)`). */
  scenarios?: fc.Arbitrary<FuzzScenario>;
  scenarioOptions?: ScenarioOptions;
  /** Extra property over each run; return false or throw to fail it. */
  property?: (run: ModelRun, scenario: FuzzScenario) => boolean | void;
  /** Where a failure's replay file goes (default: `blocksim-fuzz-<seed>.replay.json` in the working directory). */
  replayFile?: string;
  /** Called after every run (progress). */
  onRun?: (run: ModelRun) => void;
  /**
   * Stop after this much wall time (fast-check's interruptAfterTimeLimit).
   * Only the CLI's --time uses it: how far a run gets then depends on the
   * machine, so a test should give numRuns instead.
   */
  interruptAfterMs?: number;
}

export interface FuzzFailure {
  replay: FuzzReplay;
  replayFile: string;
  command: string;
  message: string;
}

/** Runs the property; returns undefined when it holds, else the failure (with its replay file written). */
export function fuzzCheck(opts: FuzzOptions = {}): FuzzFailure | undefined {
  const seed = opts.seed ?? 42, profile = opts.profile ?? "current";
  const arb = opts.scenarios ?? scenarioArb(opts.scenarioOptions);
  const run = (sc: FuzzScenario, picks: number[]) => runModel(sc, { profile, strategy: new PickListStrategy(picks), invariants: opts.invariants });
  const prop = fc.property(arb, scheduleArb(), (sc, picks) => {
    const r = run(sc, picks);
    opts.onRun?.(r);
    // A crash is reported like a broken invariant: a command sequence real QEMU 7.2 dies on.
    if (r.violations.length > 0 || r.outcome.kind === "qemu-crash") return false;
    return opts.property?.(r, sc) !== false;
  });
  const out = fc.check(prop, { seed, numRuns: opts.numRuns ?? 100, ...(opts.interruptAfterMs !== undefined ? { interruptAfterTimeLimit: opts.interruptAfterMs, markInterruptAsFailure: false } : {}) });
  if (!out.failed || !out.counterexample) return undefined;
  const [sc, picks] = out.counterexample;
  const r = run(sc, picks);
  const replay: FuzzReplay = {
    "blocksim-fuzz-replay": FUZZ_REPLAY_VERSION,
    profile, seed: 0, scenario: sc,
    choices: formatChoiceLog(r.choices), hash: r.hash,
    violations: [...(r.outcome.kind === "qemu-crash" ? [describeRunOutcome(r.outcome)] : []), ...r.violations.map(formatViolation)],
    found: { fcSeed: seed, ...(out.counterexamplePath ? { path: out.counterexamplePath } : {}), runs: out.numRuns },
  };
  const replayFile = opts.replayFile ?? `blocksim-fuzz-${seed}.replay.json`;
  writeFileAtomic(replayFile, JSON.stringify(replay, null, 2) + "\n", "the replay file");
  const command = `npx blocksim fuzz --replay ${replayFile}`;
  const lines = [...(r.outcome.kind === "qemu-crash" ? [describeRunOutcome(r.outcome)] : []), ...r.violations.map(formatViolation)];
  const why = lines.length > 0 ? [...lines.slice(0, 5), ...(lines.length > 5 ? [`(and ${lines.length - 5} more)`] : [])].join("\n  ") : out.errorInstance ? String(out.errorInstance) : "the property returned false";
  const message = [
    `blocksim fuzz: property failed after ${out.numRuns} runs (fast-check seed ${seed}, path ${out.counterexamplePath ?? "-"}, ${out.numShrinks} shrinks)`,
    `  ${why}`,
    `shrunk scenario: ${sc.actions.length} actions, schedule of ${picks.length} picks (${picks.filter((p) => p !== 0).length} non-FIFO)`,
    ...sc.actions.map((a) => `  ${describeAction(a)}`),
    `replay file: ${replayFile}`,
    `replay: ${command}`,
  ].join("\n");
  return { replay, replayFile, command, message };
}

/** Like fuzzCheck, but throws the failure message: the form for a vitest `it`. */
export function fuzz(opts: FuzzOptions = {}): void {
  const f = fuzzCheck(opts);
  if (f) throw new Error(f.message);
}

/** One line per action, QMP-shaped. */
export function describeAction(a: FuzzScenario["actions"][number]): string {
  const t = `${(a.atNs / 1e6).toFixed(1)}ms`;
  if ("execute" in a) return `${t} ${JSON.stringify({ execute: a.execute, arguments: a.arguments })}`;
  if ("drain" in a) return `${t} drain ${a.drain} for ${(a.forNs / 1e6).toFixed(1)}ms`;
  return `${t} guest burst on ${a.guest}: ${a.requests} writes every ${(a.intervalNs / 1e6).toFixed(1)}ms`;
}

/** Reads a fuzz replay file, with a clear error for anything else. */
export function readFuzzReplay(path: string): FuzzReplay {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new Error(`${path}: not a readable JSON file (${(e as Error).message})`);
  }
  const f = data as Partial<FuzzReplay>;
  if (typeof f !== "object" || f === null || f["blocksim-fuzz-replay"] !== FUZZ_REPLAY_VERSION) {
    throw new Error(`${path}: expected "blocksim-fuzz-replay": ${FUZZ_REPLAY_VERSION} (a replay file written by blocksim fuzz)`);
  }
  if (typeof f.choices !== "string" || typeof f.hash !== "string" || typeof f.profile !== "string" || typeof f.scenario !== "object") {
    throw new Error(`${path}: a fuzz replay needs profile, scenario, choices and hash`);
  }
  return f as FuzzReplay;
}

/** Re-runs a replay exactly; `sameHash` says whether it gave the recorded trace hash. */
export function replayFuzz(replay: FuzzReplay): { run: ModelRun; sameHash: boolean; violations: CheckViolation[] } {
  const run = runModel(replay.scenario, { profile: replay.profile, seed: replay.seed, strategy: new ReplayStrategy(parseChoiceLog(replay.choices)) });
  return { run, sameHash: run.hash === replay.hash, violations: run.violations };
}
