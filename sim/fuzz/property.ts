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
import { xorshift128plus } from "pure-rand/generator/xorshift128plus";
import { formatViolation, type InvariantSelection } from "../check/index.js";
import { makeReplayOf, writeReplayFile, type ReplayFile } from "../scenario/replay.js";
import { formatDuration, formatTime } from "../scheduler/index.js";
import { scenario as scenarioArb, schedule as scheduleArb, type ScenarioOptions } from "./arbitraries.js";
import { describeOutcome } from "../harness/run.js";
import { PickListStrategy } from "../harness/strategy.js";
import { biasForRun, CaseDrawer, defaultSizes } from "./draw.js";
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
  /** Extra property over each run; return false or throw to fail it (fc.pre cannot skip a case). */
  property?: (run: UnhashedModelRun, scenario: FuzzScenario) => boolean | void;
  /** Where a failure's replay file goes (default: `blocksim-fuzz-<seed>.replay.json` in the working directory). */
  replayFile?: string;
  /** Called after every run (progress). */
  onRun?: (run: UnhashedModelRun) => void;
  /**
   * Asked before every run: true ends the campaign there, as passed (a wall
   * time limit, read by the caller: nothing under sim/ reads the clock).
   * How far a campaign gets then depends on the machine, so a test should
   * give numRuns instead.
   */
  stop?: () => boolean;
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

/**
 * A campaign: the runs fc.check would make of the fuzz property at one seed,
 * numbered as fast-check numbers them (run k is its run index k), which can
 * be run in ranges, in any thread: run k's case depends only on the seed and
 * k. A failing run is shrunk by fc.check itself, replaying that run by its
 * path, so the report is the one fc.check gives for the whole campaign.
 */
export class FuzzCampaign {
  readonly seed: number;
  private readonly profile: string;
  private readonly property: fc.IPropertyWithHooks<[FuzzScenario, number[]]>;
  private readonly cases: CampaignCases;
  /** Set while fc.check replays a run already counted: its first run is not reported again. */
  private replaying = false;

  constructor(private readonly opts: FuzzOptions = {}) {
    this.seed = opts.seed ?? 42;
    this.profile = opts.profile ?? "current";
    this.property = fc.property(opts.scenarios ?? scenarioArb(opts.scenarioOptions), scheduleArb(), (sc, picks) => this.holds(sc, picks));
    // The cases straight from fast-check's random stream (draw.ts) when they are the library's scenarios.
    const drawer = opts.scenarios === undefined && defaultSizes() ? new CaseDrawer(opts.scenarioOptions) : undefined;
    this.cases = new CampaignCases(this.property, this.seed, drawer);
  }

  private holds(sc: FuzzScenario, picks: number[]): boolean {
    const counted = this.replaying;
    this.replaying = false;
    const r = runModel(sc, { profile: this.profile, strategy: new PickListStrategy(picks), invariants: this.opts.invariants, hash: false });
    if (!counted) this.opts.onRun?.(r);
    // A crash is reported like a broken invariant: a command sequence real QEMU 7.2 dies on.
    if (r.violations.length > 0 || r.outcome.kind === "qemu-crash") return false;
    return this.opts.property?.(r, sc) !== false;
  }

  /**
   * Runs runs `from` … `to`-1 in order; returns the index of the first that
   * fails, or undefined. `stop(k)`, asked before run k, ends the range early
   * (undefined): the CLI's --time, or a failure another thread found at an
   * earlier run. Runs must be asked for in increasing order.
   */
  run(from: number, to: number, stop?: (k: number) => boolean): number | undefined {
    for (let k = from; k < to; k++) {
      if (stop?.(k)) return undefined;
      const [sc, picks] = this.cases.at(k);
      let ok: boolean;
      try {
        ok = this.holds(sc, picks);
      } catch (e) {
        if (fc.PreconditionFailure.isFailure(e)) throw new Error("blocksim fuzz: a fuzz property cannot skip a case (fc.pre): the campaign runs every case it draws");
        ok = false; // fast-check reports a throwing property as a failure, with the error
      }
      if (!ok) return k;
    }
    return undefined;
  }

  /**
   * Run `k` (which failed) shrunk by fc.check, its replay file written;
   * `timeLimitMs` bounds the shrinking (fast-check's interruptAfterTimeLimit).
   */
  failure(k: number, timeLimitMs?: number): FuzzFailure {
    const { seed, profile, opts } = this;
    const replayRun = (more: fc.Parameters<[FuzzScenario, number[]]>) => {
      this.replaying = true;
      return fc.check(this.property, { seed, path: String(k), ...more });
    };
    let out = replayRun(timeLimitMs !== undefined ? { interruptAfterTimeLimit: Math.max(1, timeLimitMs), markInterruptAsFailure: false } : {});
    // Out of time before the replay of run k ran: report it unshrunk rather than not at all.
    if (!out.failed || !out.counterexample) out = replayRun({ endOnFailure: true });
    if (!out.failed || !out.counterexample) throw new Error(`blocksim fuzz: run ${k} of fast-check seed ${seed} failed, but not when fast-check replayed it (a nondeterministic run)`);
    // fc.check counts the runs of a whole campaign to its failure; the replay started at run k.
    const numRuns = k + 1;
    const [sc, picks] = out.counterexample;
    // The shrunk case once more, watched, for the replay file (its events) — the same run: same case, same picks.
    const r = fuzzReport(sc, { profile, seed: 0, strategy: new PickListStrategy(picks), ...(opts.invariants ? { invariants: opts.invariants } : {}) });
    const names = opts.invariants?.map((i) => (typeof i === "string" ? i : i.name));
    const replay = makeReplayOf({ fuzz: sc as unknown as Record<string, unknown>, ...(names ? { invariants: names } : {}) }, r,
      `blocksim fuzz: fast-check seed ${seed}, path ${out.counterexamplePath ?? "-"}, after ${numRuns} runs`);
    const replayFile = opts.replayFile ?? `blocksim-fuzz-${seed}.replay.json`;
    writeReplayFile(replayFile, replay);
    const command = `npx blocksim replay ${replayFile}`;
    const lines = [...(r.outcome.kind === "qemu-crash" ? [describeOutcome(r.outcome)] : []), ...r.violations.map(formatViolation)];
    const why = lines.length > 0 ? [...lines.slice(0, 5), ...(lines.length > 5 ? [`(and ${lines.length - 5} more)`] : [])].join("\n  ") : out.errorInstance ? String(out.errorInstance) : "the property returned false";
    const message = [
      `blocksim fuzz: property failed after ${numRuns} runs (fast-check seed ${seed}, path ${out.counterexamplePath ?? "-"}, ${out.numShrinks} shrinks)`,
      `  ${why}`,
      `shrunk scenario: ${sc.actions.length} actions, schedule of ${picks.length} picks (${picks.filter((p) => p !== 0).length} non-FIFO)`,
      ...sc.actions.map((a) => `  ${describeAction(a)}`),
      `replay file: ${replayFile}`,
      `replay: ${command}`,
      `timeline: npx blocksim timeline ${replayFile} -o ${replayFile.replace(/(\.replay)?\.json$/, "")}.html`,
    ].join("\n");
    return { replay, scenario: sc, replayFile, command, message };
  }
}

/**
 * The cases fc.check draws for a property at a seed, by run index, without
 * fc.check's runner (which a campaign split across threads cannot start
 * at run k): as fast-check's tosser does, one xorshift128+ generator from
 * the seed jumps once per run, and run k draws from a copy of it, with the
 * bias of run index k. With a CaseDrawer for the property's scenario
 * options, the case is drawn by it (the same draws, without fast-check's
 * arbitraries). test/fuzz/campaign-cases.test.ts holds this to fc.check's
 * own draws.
 */
export class CampaignCases {
  private readonly rng: ReturnType<typeof xorshift128plus>;
  private next = 0;

  /** `drawer` must draw what `property` generates: the scenario options it was made with, and schedule(). */
  constructor(private readonly property: fc.IRawProperty<[FuzzScenario, number[]]>, seed: number, private readonly drawer?: CaseDrawer) {
    this.rng = xorshift128plus(fastCheckSeed(seed));
  }

  /** Run k's case; k never decreases from one call to the next. */
  at(k: number): [FuzzScenario, number[]] {
    if (k < this.next) throw new Error(`CampaignCases: run ${k} asked for after run ${this.next - 1}`);
    for (; this.next <= k; this.next++) this.rng.jump();
    const mrng = new fc.Random(this.rng);
    return this.drawer ? this.drawer.draw(mrng, biasForRun(k)) : this.property.generate(mrng, k).value_;
  }
}

/** The 32-bit seed fast-check makes of a number (its readSeed). */
function fastCheckSeed(seed: number): number {
  const seed32 = seed | 0;
  return seed === seed32 ? seed32 : seed32 ^ ((seed - seed32) * 0x1_0000_0000);
}

/** Runs the property; returns undefined when it holds, else the failure (with its replay file written). */
export function fuzzCheck(opts: FuzzOptions = {}): FuzzFailure | undefined {
  const campaign = new FuzzCampaign(opts);
  const k = campaign.run(0, opts.numRuns ?? 100, opts.stop);
  return k === undefined ? undefined : campaign.failure(k);
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
