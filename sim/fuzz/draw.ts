/**
 * A campaign's cases drawn straight from fast-check's random stream: the
 * value `fc.property(scenario(opts), schedule(), …)` generates for a run,
 * made by the same draws in the same order, without going through
 * fast-check's arbitraries. Those build each case from hundreds of small
 * objects (a Value per draw, tuples, maps, chains, shrink contexts) through
 * calls too varied for V8 to optimize early, ~0.15 CPU-s of a cold
 * 2,000-run campaign; here a case costs its draws and its own objects.
 *
 * This file follows fast-check 4.10.2's `generate` of each arbitrary that
 * arbitraries.ts uses, with the default size ("small": an array draws at
 * most 2 × minLength + 10 items):
 * - integer/nat: with a bias factor b, one draw in [1, b]; 1 means a biased
 *   draw (one of the two ranges close to min or max, chosen in [-2, 0]);
 * - array: its length, from up to two bias draws, then its items, which get
 *   the bias factor only in some of those branches;
 * - oneof/option: one draw over the summed weights (option: nil weighs 1,
 *   the value 5), then the chosen one;
 * - constantFrom: one draw unless it has a single value; boolean: one draw,
 *   never biased; constant: none;
 * - record: its fields in order, then a boolean: true gives the object a
 *   null prototype (fast-check's records are sometimes prototype-less).
 * test/fuzz/draw.test.ts holds it to fast-check's own draws (values, key
 * order, prototypes and the random state after each case) over thousands of
 * runs and every ScenarioOptions knob; FuzzCampaign uses it only when no
 * global fast-check configuration (fc.configureGlobal) could change a size.
 */
import fc from "fast-check";
import type { FaultRule } from "../disk/index.js";
import { buildTopology, clean, JOB_IDS, MiB, type ScenarioOptions, type Topology } from "./arbitraries.js";
import type { FuzzAction, FuzzScenario } from "./model.js";

/** What a draw needs of fast-check's Random. */
interface Rng {
  nextInt(min: number, max: number): number;
}

/** fast-check's bias factor for run `k` (its runIdToFrequency). */
export function biasForRun(k: number): number {
  return 2 + ~~(Math.log(k + 1) * 0.4342944819032518);
}

/** fc.integer({ min, max }) (min ≥ 0), drawn with bias factor `bias`. */
function int(r: Rng, min: number, max: number, bias: number | undefined): number {
  if (bias === undefined || r.nextInt(1, bias) !== 1) return r.nextInt(min, max);
  if (min === max) return r.nextInt(min, max);
  const logGap = Math.floor(Math.log(max - min) / Math.log(2));
  return r.nextInt(-2, 0) < 0 ? r.nextInt(min, min + logGap) : r.nextInt(max - logGap, max);
}

/** fc.constantFrom(...values). */
function pick<T>(r: Rng, values: readonly T[]): T {
  return values.length === 1 ? values[0] : values[r.nextInt(0, values.length - 1)];
}

/** fc.boolean(). */
const bool = (r: Rng): boolean => r.nextInt(0, 1) === 1;

/** The object of an fc.record: its last draw says whether it has a null prototype. */
const recordObject = (r: Rng): Record<string, unknown> => (r.nextInt(0, 1) === 1 ? Object.create(null) : {});

/** fc.option(arb, { nil: undefined }): nil weighs 1, a value 5. */
const some = (r: Rng): boolean => r.nextInt(0, 5) >= 1;

/** An fc.array's length limits (min, the most it generates, its biased most). */
interface Lengths {
  readonly min: number;
  readonly max: number;
  readonly biasedMax: number;
}

function lengths(minLength: number, maxLength: number): Lengths {
  const max = Math.min(2 * minLength + 10, maxLength);
  return { min: minLength, max, biasedMax: minLength === max ? minLength : minLength + Math.floor(Math.log(max - minLength) / Math.log(2)) };
}

const SPEEDS = [1 * MiB, 4 * MiB, 16 * MiB], SET_SPEEDS = [0, 1 * MiB, 64 * MiB];
const SYNCS = ["full", "top", "none"], BITMAP_MODES = [undefined, "on-success", "never", "always"];
const LATENCIES_US = [100, 500, 1000, 2000], SPREADS_US = [0, 0, 3000, 10_000];
const FAULT_OPS = ["read", "write"] as const, FAULT_ERRNOS = ["EIO", "ENOSPC"] as const;
const GUEST_INTERVALS = [0, 100_000, 1_000_000], BUSY_GUEST_INTERVALS = [100_000, 500_000];
const VERBS = ["job-pause", "job-resume", "job-cancel", "block-job-cancel", "job-complete", "job-finalize", "job-dismiss", "block-job-set-speed"];
const BITMAP_VERBS = ["block-dirty-bitmap-add", "block-dirty-bitmap-clear", "block-dirty-bitmap-remove"];
const STREAM_BASES = [undefined, "base"], COMMIT_TOPS = [undefined, "mid"];
const LATENCY_LENGTHS = lengths(9, 9), FAULT_LENGTHS = lengths(0, 2), TXN_LENGTHS = lengths(1, 3), SCHEDULE_LENGTHS = lengths(0, 300);

/** The topology's names that an action draws from. */
interface Names {
  readonly topo: Topology;
  readonly sources: readonly string[];
  readonly nodes: readonly string[];
}

/** Draws the cases of `fc.tuple(scenario(opts), schedule())`, as fast-check's generate makes them. */
export class CaseDrawer {
  private readonly actionLengths: Lengths;
  private readonly maxTimeSteps: number;
  /** The bias factor an array hands its items (set by `arrayLength`). */
  private itemBias: number | undefined;

  constructor(private readonly opts: ScenarioOptions = {}) {
    this.actionLengths = lengths(1, opts.maxActions ?? 8);
    this.maxTimeSteps = Math.floor((opts.maxTimeNs ?? 200_000_000) / 100_000);
  }

  /** The case of a run drawn with bias factor `bias` (biasForRun of its index) from `r`. */
  draw(r: Rng, bias: number | undefined): [FuzzScenario, number[]] {
    const topo = this.topology(r, bias);
    const names: Names = {
      topo,
      sources: topo.chain ? [...topo.sources, "top"] : topo.sources,
      nodes: [...topo.sources, ...topo.targets, ...(topo.chain ? ["top", "mid", "base"] : [])],
    };
    const n = this.arrayLength(r, this.actionLengths, bias), itemBias = this.itemBias;
    const actions: FuzzAction[] = [];
    for (let i = 0; i < n; i++) actions.push(this.action(r, names, itemBias));
    const sc: FuzzScenario = { devices: topo.devices, nodes: topo.nodes, actions, maxTimeNs: 30e9 };
    const m = this.arrayLength(r, SCHEDULE_LENGTHS, bias), pickBias = this.itemBias;
    const picks: number[] = [];
    for (let i = 0; i < m; i++) picks.push(int(r, 0, 7, pickBias));
    return [sc, picks];
  }

  /** An fc.array's length; sets `itemBias` for its items. */
  private arrayLength(r: Rng, l: Lengths, bias: number | undefined): number {
    this.itemBias = bias;
    if (bias === undefined || l.min === l.max) return r.nextInt(l.min, l.max);
    if (r.nextInt(1, bias) !== 1) {
      this.itemBias = undefined;
      return r.nextInt(l.min, l.max);
    }
    if (r.nextInt(1, bias) !== 1) return r.nextInt(l.min, l.max);
    return r.nextInt(l.min, l.biasedMax);
  }

  private topology(r: Rng, bias: number | undefined): Topology {
    const o = this.opts;
    const sources = int(r, 1, o.maxSources ?? 3, bias), targets = int(r, 1, o.maxTargets ?? 3, bias);
    const chain = o.chains === false ? false : bool(r);
    const latencyUs = this.constants(r, LATENCIES_US, bias);
    const spreadUs = o.variableLatency === false ? [] : this.constants(r, SPREADS_US, bias);
    const faults: [number, FaultRule][] = [];
    if (o.faults !== false) {
      const n = this.arrayLength(r, FAULT_LENGTHS, bias), itemBias = this.itemBias;
      for (let i = 0; i < n; i++) {
        const dev = int(r, 0, 8, itemBias);
        const op = pick(r, FAULT_OPS), errno = pick(r, FAULT_ERRNOS), once = bool(r), afterRequests = int(r, 0, 40, itemBias);
        const rule = recordObject(r) as unknown as FaultRule;
        rule.op = op;
        rule.errno = errno;
        rule.once = once;
        rule.afterRequests = afterRequests;
        faults.push([dev, rule]);
      }
    }
    recordObject(r);
    return buildTopology({ sources, targets, chain, latencyUs, spreadUs, faults });
  }

  /** fc.array(fc.constantFrom(...values), { minLength: 9, maxLength: 9 }). */
  private constants(r: Rng, values: readonly number[], bias: number | undefined): number[] {
    const n = this.arrayLength(r, LATENCY_LENGTHS, bias), out: number[] = [];
    for (let i = 0; i < n; i++) out.push(pick(r, values));
    return out;
  }

  /** arbitraries.ts action(): its oneof of starts (3), verbs (4), drain (1), guest burst (1), bitmap commands (1), busy guest (1). */
  private action(r: Rng, names: Names, bias: number | undefined): FuzzAction {
    const bitmaps = this.opts.bitmaps !== false;
    const chosen = r.nextInt(0, bitmaps ? 10 : 9);
    if (chosen < 3) return this.start(r, names, bias);
    if (chosen < 7) {
      const verb = r.nextInt(0, 7);
      return this.command(r, VERBS[verb], bias, () => {
        const id = pick(r, JOB_IDS);
        if (verb === 3) { // block-job-cancel
          const args = recordObject(r);
          args.device = id;
          args.force = false;
          return args;
        }
        if (verb === 7) { // block-job-set-speed
          const speed = pick(r, SET_SPEEDS), args = recordObject(r);
          args.device = id;
          args.speed = speed;
          return args;
        }
        const args = recordObject(r);
        args.id = id;
        return args;
      });
    }
    if (chosen === 7) {
      const atNs = this.at(r, bias), drain = pick(r, names.nodes), forNs = int(r, 0, 200, bias) * 100_000;
      const a = recordObject(r);
      a.atNs = atNs;
      a.drain = drain;
      a.forNs = forNs;
      return a as FuzzAction;
    }
    if (chosen === 8) return this.guest(r, names, bias, 1, 40, GUEST_INTERVALS);
    if (bitmaps && chosen === 9) {
      const verb = BITMAP_VERBS[r.nextInt(0, 2)];
      return this.command(r, verb, bias, () => {
        const node = pick(r, names.sources), args = recordObject(r);
        args.node = node;
        args.name = "b0";
        return args;
      });
    }
    return this.guest(r, names, bias, 100, 400, BUSY_GUEST_INTERVALS);
  }

  /** timing(maxTimeNs). */
  private at(r: Rng, bias: number | undefined): number {
    return int(r, 0, this.maxTimeSteps, bias) * 100_000;
  }

  /** cmd(execute, args): a record of atNs, execute, arguments. */
  private command(r: Rng, execute: string, bias: number | undefined, args: () => Record<string, unknown>): FuzzAction {
    const atNs = this.at(r, bias), a = args(), c = recordObject(r);
    c.atNs = atNs;
    c.execute = execute;
    c.arguments = a;
    return c as FuzzAction;
  }

  private guest(r: Rng, names: Names, bias: number | undefined, min: number, max: number, intervals: readonly number[]): FuzzAction {
    const atNs = this.at(r, bias), guest = pick(r, names.sources), requests = int(r, min, max, bias), intervalNs = pick(r, intervals);
    const a = recordObject(r);
    a.atNs = atNs;
    a.guest = guest;
    a.requests = requests;
    a.intervalNs = intervalNs;
    return a as FuzzAction;
  }

  /** The oneof of job starts: backup, mirror, transaction, [write-blocking mirror], [incremental backup], [stream, commit]. */
  private start(r: Rng, names: Names, bias: number | undefined): FuzzAction {
    const o = this.opts, chain = names.topo.chain;
    const kinds = ["backup", "mirror", "transaction"];
    if (o.activeMirror) kinds.push("active-mirror");
    if (o.bitmaps !== false) kinds.push("incremental");
    if (chain) kinds.push("stream", "commit");
    const kind = kinds[r.nextInt(0, kinds.length - 1)];
    switch (kind) {
      case "backup": return this.command(r, "blockdev-backup", bias, () => this.backup(r, names));
      case "mirror":
      case "active-mirror":
        return this.command(r, "blockdev-mirror", bias, () => {
          const id = pick(r, JOB_IDS), device = pick(r, names.sources), target = pick(r, names.topo.targets), speed = this.speed(r), c = this.common(r);
          recordObject(r);
          return clean({ "job-id": id, device, target, sync: "full", speed, ...(kind === "active-mirror" ? { "copy-mode": "write-blocking" } : {}), ...c });
        });
      case "transaction":
        return this.command(r, "transaction", bias, () => {
          const n = this.arrayLength(r, TXN_LENGTHS, bias); // its items draw nothing a bias changes
          const actions: { type: string; data: Record<string, unknown> }[] = [];
          for (let i = 0; i < n; i++) actions.push({ type: "blockdev-backup", data: this.backup(r, names) });
          const grouped = o.groupedTransactions === false ? false : bool(r);
          recordObject(r);
          return grouped ? { actions, properties: { "completion-mode": "grouped" } } : { actions };
        });
      case "incremental":
        return this.command(r, "blockdev-backup", bias, () => {
          const id = pick(r, JOB_IDS), device = pick(r, names.sources), target = pick(r, names.topo.targets), mode = pick(r, BITMAP_MODES), speed = this.speed(r), c = this.common(r);
          recordObject(r);
          return clean({ "job-id": id, device, target, sync: mode ? "bitmap" : "incremental", bitmap: "b0", "bitmap-mode": mode, speed, ...c });
        });
      case "stream":
        return this.command(r, "block-stream", bias, () => {
          const id = pick(r, JOB_IDS), base = pick(r, STREAM_BASES);
          recordObject(r);
          return clean({ "job-id": id, device: "top", "base-node": base });
        });
      default: // commit
        return this.command(r, "block-commit", bias, () => {
          const id = pick(r, JOB_IDS), top = pick(r, COMMIT_TOPS);
          recordObject(r);
          return clean({ "job-id": id, device: "top", "top-node": top, "base-node": "base" });
        });
    }
  }

  /** backupData: a full, top or none backup's arguments. */
  private backup(r: Rng, names: Names): Record<string, unknown> {
    const id = pick(r, JOB_IDS), device = pick(r, names.sources), target = pick(r, names.topo.targets), sync = pick(r, SYNCS), speed = this.speed(r), c = this.common(r);
    recordObject(r);
    return clean({ "job-id": id, device, target, sync, speed, ...c });
  }

  /** fc.option(fc.constantFrom(1, 4, 16 MiB), { nil: undefined }). */
  private speed(r: Rng): number | undefined {
    return some(r) ? pick(r, SPEEDS) : undefined;
  }

  /** The record of auto-finalize and auto-dismiss, each an optional boolean. */
  private common(r: Rng): { "auto-finalize": boolean | undefined; "auto-dismiss": boolean | undefined } {
    const finalize = some(r) ? bool(r) : undefined, dismiss = some(r) ? bool(r) : undefined;
    recordObject(r);
    return { "auto-finalize": finalize, "auto-dismiss": dismiss };
  }
}

/** Whether fast-check runs with its default sizes (no fc.configureGlobal that sets one), which CaseDrawer assumes. */
export function defaultSizes(): boolean {
  const g = fc.readConfigureGlobal() as { baseSize?: unknown; defaultSizeToMaxWhenMaxSpecified?: unknown } | undefined;
  return g === undefined || (g.baseSize === undefined && g.defaultSizeToMaxWhenMaxSpecified === undefined);
}
