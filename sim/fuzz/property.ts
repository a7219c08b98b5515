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
import fc from "fast-check";
import { formatViolation, type InvariantSelection } from "../check/index.js";
import { makeReplayOf, writeReplayFile, type ReplayFile } from "../scenario/replay.js";
import { formatDuration, formatTime } from "../scheduler/index.js";
import { scenario as scenarioArb, schedule as scheduleArb, type ScenarioOptions } from "./arbitraries.js";
import { describeOutcome } from "../harness/run.js";
import { PickListStrategy } from "../harness/strategy.js";
import { runModel, type FuzzScenario, type UnhashedModelRun } from "./model.js";
import { fuzzReport } from "./report.js";

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
  property?: (run: UnhashedModelRun, scenario: FuzzScenario) => boolean | void;
  /** Where a failure's replay file goes (default: `blocksim-fuzz-<seed>.replay.json` in the working directory). */
  replayFile?: string;
  /** Called after every run (progress). */
  onRun?: (run: UnhashedModelRun) => void;
  /**
   * Stop after this much wall time (fast-check's interruptAfterTimeLimit).
   * Only the CLI's --time uses it: how far a run gets then depends on the
   * machine, so a test should give numRuns instead.
   */
  interruptAfterMs?: number;
}

export interface FuzzFailure {
  /** The replay file written (subject: the shrunk fuzz case). */
  replay: ReplayFile;
  /** The shrunk case. */
  scenario: FuzzScenario;
  replayFile: string;
  command: string;
  message: string;
}

/** Runs the property; returns undefined when it holds, else the failure (with its replay file written). */
export function fuzzCheck(opts: FuzzOptions = {}): FuzzFailure | undefined {
  const seed = opts.seed ?? 42, profile = opts.profile ?? "current";
  const arb = opts.scenarios ?? scenarioArb(opts.scenarioOptions);
  const run = (sc: FuzzScenario, picks: number[]) => runModel(sc, { profile, strategy: new PickListStrategy(picks), invariants: opts.invariants, hash: false });
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
  // The shrunk case once more, watched, for the replay file (its events) — the same run: same case, same picks.
  const r = fuzzReport(sc, { profile, seed: 0, strategy: new PickListStrategy(picks), ...(opts.invariants ? { invariants: opts.invariants } : {}) });
  const names = opts.invariants?.map((i) => (typeof i === "string" ? i : i.name));
  const replay = makeReplayOf({ fuzz: sc as unknown as Record<string, unknown>, ...(names ? { invariants: names } : {}) }, r,
    `blocksim fuzz: fast-check seed ${seed}, path ${out.counterexamplePath ?? "-"}, after ${out.numRuns} runs`);
  const replayFile = opts.replayFile ?? `blocksim-fuzz-${seed}.replay.json`;
  writeReplayFile(replayFile, replay);
  const command = `npx blocksim replay ${replayFile}`;
  const lines = [...(r.outcome.kind === "qemu-crash" ? [describeOutcome(r.outcome)] : []), ...r.violations.map(formatViolation)];
  const why = lines.length > 0 ? [...lines.slice(0, 5), ...(lines.length > 5 ? [`(and ${lines.length - 5} more)`] : [])].join("\n  ") : out.errorInstance ? String(out.errorInstance) : "the property returned false";
  const message = [
    `blocksim fuzz: property failed after ${out.numRuns} runs (fast-check seed ${seed}, path ${out.counterexamplePath ?? "-"}, ${out.numShrinks} shrinks)`,
    `  ${why}`,
    `shrunk scenario: ${sc.actions.length} actions, schedule of ${picks.length} picks (${picks.filter((p) => p !== 0).length} non-FIFO)`,
    ...sc.actions.map((a) => `  ${describeAction(a)}`),
    `replay file: ${replayFile}`,
    `replay: ${command}`,
    `timeline: npx blocksim timeline ${replayFile} -o ${replayFile.replace(/(\.replay)?\.json$/, "")}.html`,
  ].join("\n");
  return { replay, scenario: sc, replayFile, command, message };
}

/** Like fuzzCheck, but throws the failure message: the form for a vitest `it`. */
export function fuzz(opts: FuzzOptions = {}): void {
  const f = fuzzCheck(opts);
  if (f) throw new Error(f.message);
}

/** One line per action, QMP-shaped: its moment as reports print one, its durations as scenario files write them. */
export function describeAction(a: FuzzScenario["actions"][number]): string {
  const t = formatTime(a.atNs);
  if ("execute" in a) return `${t} ${JSON.stringify({ execute: a.execute, arguments: a.arguments })}`;
  if ("drain" in a) return `${t} drain ${a.drain} for ${formatDuration(a.forNs)}`;
  return `${t} guest burst on ${a.guest}: ${a.requests} writes every ${formatDuration(a.intervalNs)}`;
}
