/**
 * fast-check arbitraries for blocksim: schedules (pick lists), device fault
 * injections, command timings, and whole fuzz scenarios built from the QMP
 * vocabulary on random topologies.
 *
 * Everything shrinks towards the simple case: fewer and earlier commands,
 * fewer faults, and schedules towards FIFO (shorter lists, zero picks).
 * Faults are only of kinds the system can recover from (an I/O error a job
 * reports, then the world heals for the liveness phase), so a failure means
 * a bug, never an impossible environment.
 *
 * A campaign draws scenario() and schedule() through CaseDrawer (draw.ts),
 * which makes the same draws without these arbitraries: a change here is a
 * change there too (test/fuzz/draw.test.ts fails until both agree).
 */
import fc from "fast-check";
import type { FaultRule } from "../disk/index.js";
import type { FuzzAction, FuzzDevice, FuzzScenario } from "./model.js";

export const MiB = 1 << 20;

/** A schedule: entry i answers choice point i (`% n`); past the end, FIFO. */
export function schedule(opts: { maxLength?: number; maxPick?: number } = {}): fc.Arbitrary<number[]> {
  return fc.array(fc.nat({ max: opts.maxPick ?? 7 }), { maxLength: opts.maxLength ?? 300 });
}

/** A virtual time in [0, maxNs], on a 100 µs grid (so shrunk timings read well). */
export function timing(maxNs = 200_000_000): fc.Arbitrary<number> {
  return fc.nat({ max: Math.floor(maxNs / 100_000) }).map((t) => t * 100_000);
}

/** A device fault rule: an EIO or ENOSPC on reads or writes, once or after some requests. */
export function fault(): fc.Arbitrary<FaultRule> {
  return fc.record({
    op: fc.constantFrom("read" as const, "write" as const),
    errno: fc.constantFrom("EIO" as const, "ENOSPC" as const),
    once: fc.boolean(),
    afterRequests: fc.nat({ max: 40 }),
  });
}

export interface TopologyOptions {
  /** Source disks s0.. (guest-visible) and target disks t0.. (only jobs write them): 1..3 each by default. */
  maxSources?: number;
  maxTargets?: number;
  /** Whether a qcow2 chain base <- mid <- top may be added (default true), for stream and commit. */
  chains?: boolean;
  /** Whether some devices get a variable latency (default true). */
  variableLatency?: boolean;
  /** Whether device faults are drawn (default true). */
  faults?: boolean;
  /**
   * Whether transactions may use completion-mode grouped (default true).
   * A grouped transaction whose later action fails to prepare (a reused job
   * id, a busy target) currently ends in a use-after-free in sim/qmp (found
   * by this fuzzer); set false to fuzz past it until that is fixed.
   */
  groupedTransactions?: boolean;
  /** Whether dirty bitmaps and incremental backups are drawn (default true). */
  bitmaps?: boolean;
  /**
   * Whether mirrors may also use copy-mode write-blocking (default false, so
   * the generated runs of a seed stay what they were before it was modelled).
   */
  activeMirror?: boolean;
}

export interface Topology {
  devices: FuzzDevice[];
  nodes: Record<string, unknown>[];
  /** Guest-visible raw nodes: job sources and guest bursts. */
  sources: string[];
  /** Raw nodes only jobs write (QEMU's permissions keep a guest off a job's target). */
  targets: string[];
  chain: boolean;
}

/** A topology: devices and blockdev-add arguments. Raw nodes s0.. on ds0.., t0.. on dt0.., and maybe a chain base <- mid <- top. */
export function topology(opts: TopologyOptions = {}): fc.Arbitrary<Topology> {
  return fc
    .record({
      sources: fc.integer({ min: 1, max: opts.maxSources ?? 3 }),
      targets: fc.integer({ min: 1, max: opts.maxTargets ?? 3 }),
      chain: opts.chains === false ? fc.constant(false) : fc.boolean(),
      latencyUs: fc.array(fc.constantFrom(100, 500, 1000, 2000), { minLength: 9, maxLength: 9 }),
      // a device with variable latency completes requests out of order (copies of one chunk can overtake each other)
      spreadUs: opts.variableLatency === false ? fc.constant([]) : fc.array(fc.constantFrom(0, 0, 3000, 10_000), { minLength: 9, maxLength: 9 }),
      faults: opts.faults === false ? fc.constant([]) : fc.array(fc.tuple(fc.nat({ max: 8 }), fault()), { maxLength: 2 }),
    })
    .map(buildTopology);
}

/** The draws of a topology made into one (the map of topology(); CaseDrawer, draw.ts, calls it too). */
export function buildTopology({ sources, targets, chain, latencyUs, spreadUs, faults }: { sources: number; targets: number; chain: boolean; latencyUs: readonly number[]; spreadUs: readonly number[]; faults: readonly (readonly [number, FaultRule])[] }): Topology {
  const devices: FuzzDevice[] = [];
  const nodes: Record<string, unknown>[] = [];
  const t: Topology = { devices, nodes, sources: [], targets: [], chain };
  const device = (name: string): FuzzDevice => {
    const i = devices.length, spread = spreadUs[i] ?? 0;
    return { name, sizeBytes: 4 * MiB, latencyNs: latencyUs[i] * 1000, ...(spread > 0 ? { latencyMaxNs: (latencyUs[i] + spread) * 1000 } : {}) };
  };
  const add = (kind: "s" | "t", i: number) => {
    devices.push(device(`d${kind}${i}`));
    nodes.push({ driver: "raw", "node-name": `${kind}${i}`, file: `d${kind}${i}` });
    (kind === "s" ? t.sources : t.targets).push(`${kind}${i}`);
  };
  for (let i = 0; i < sources; i++) add("s", i);
  for (let i = 0; i < targets; i++) add("t", i);
  if (chain) {
    for (const name of ["base", "mid", "top"]) devices.push(device(`${name}.qcow2`));
    nodes.push({ driver: "raw", "node-name": "base", file: "base.qcow2" });
    nodes.push({ driver: "qcow2", "node-name": "mid", file: "mid.qcow2", backing: "base" });
    nodes.push({ driver: "qcow2", "node-name": "top", file: "top.qcow2", backing: "mid" });
  }
  for (const [dev, rule] of faults) {
    const d = devices[dev % devices.length];
    d.faults = [...(d.faults ?? []), rule];
  }
  return t;
}

export const JOB_IDS = ["j0", "j1", "j2"];

/** `o` without its undefined members (a command's optional arguments left out). */
export function clean(o: Record<string, unknown>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const k in o) if (o[k] !== undefined) out[k] = o[k];
  return out;
}

/** One timed action from the QMP vocabulary over a topology. */
export function action(topo: Topology, maxTimeNs = 200_000_000, opts: { groupedTransactions?: boolean; bitmaps?: boolean; activeMirror?: boolean } = {}): fc.Arbitrary<FuzzAction> {
  const { chain } = topo;
  const at = timing(maxTimeNs);
  const id = fc.constantFrom(...JOB_IDS);
  const source = fc.constantFrom(...topo.sources, ...(chain ? ["top"] : []));
  const target = fc.constantFrom(...topo.targets);
  const speed = fc.option(fc.constantFrom(1 * MiB, 4 * MiB, 16 * MiB), { nil: undefined });
  const common = fc.record({ "auto-finalize": fc.option(fc.boolean(), { nil: undefined }), "auto-dismiss": fc.option(fc.boolean(), { nil: undefined }) });
  const backupData = fc.record({ id, device: source, target, sync: fc.constantFrom("full", "top", "none"), speed, c: common })
    .map((b) => clean({ "job-id": b.id, device: b.device, target: b.target, sync: b.sync, speed: b.speed, ...b.c }));
  const cmd = (execute: string, args: fc.Arbitrary<Record<string, unknown>>) => fc.record({ atNs: at, execute: fc.constant(execute), arguments: args });
  const verbs = fc.oneof(
    cmd("job-pause", fc.record({ id })),
    cmd("job-resume", fc.record({ id })),
    cmd("job-cancel", fc.record({ id })),
    // a soft cancel: completes a READY mirror or active commit without a pivot, cancels a job not yet ready
    cmd("block-job-cancel", fc.record({ device: id, force: fc.constant(false) })),
    cmd("job-complete", fc.record({ id })),
    cmd("job-finalize", fc.record({ id })),
    cmd("job-dismiss", fc.record({ id })),
    cmd("block-job-set-speed", fc.record({ device: id, speed: fc.constantFrom(0, 1 * MiB, 64 * MiB) })),
  );
  const starts: fc.Arbitrary<FuzzAction>[] = [
    cmd("blockdev-backup", backupData),
    cmd("blockdev-mirror", fc.record({ id, device: source, target, speed, c: common }).map((m) => clean({ "job-id": m.id, device: m.device, target: m.target, sync: "full", speed: m.speed, ...m.c }))),
    cmd("transaction", fc.record({
      actions: fc.array(backupData.map((data) => ({ type: "blockdev-backup", data })), { minLength: 1, maxLength: 3 }),
      grouped: opts.groupedTransactions === false ? fc.constant(false) : fc.boolean(),
    }).map((t) => (t.grouped ? { actions: t.actions, properties: { "completion-mode": "grouped" } } : { actions: t.actions }))),
  ];
  if (opts.activeMirror) {
    starts.push(cmd("blockdev-mirror", fc.record({ id, device: source, target, speed, c: common })
      .map((m) => clean({ "job-id": m.id, device: m.device, target: m.target, sync: "full", speed: m.speed, "copy-mode": "write-blocking", ...m.c }))));
  }
  const bitmapCmds: fc.Arbitrary<FuzzAction>[] = [];
  if (opts.bitmaps !== false) {
    // incremental backups of one bitmap name per source; a missing or busy bitmap is just a refused command
    starts.push(cmd("blockdev-backup", fc.record({ id, device: source, target, mode: fc.constantFrom(undefined, "on-success", "never", "always"), speed, c: common })
      .map((b) => clean({ "job-id": b.id, device: b.device, target: b.target, sync: b.mode ? "bitmap" : "incremental", bitmap: "b0", "bitmap-mode": b.mode, speed: b.speed, ...b.c }))));
    const bitmap = fc.record({ node: source, name: fc.constant("b0") });
    bitmapCmds.push(cmd("block-dirty-bitmap-add", bitmap), cmd("block-dirty-bitmap-clear", bitmap), cmd("block-dirty-bitmap-remove", bitmap));
  }
  if (chain) {
    starts.push(cmd("block-stream", fc.record({ id, base: fc.constantFrom(undefined, "base") }).map((s) => clean({ "job-id": s.id, device: "top", "base-node": s.base }))));
    starts.push(cmd("block-commit", fc.record({ id, top: fc.constantFrom(undefined, "mid") }).map((c) => clean({ "job-id": c.id, device: "top", "top-node": c.top, "base-node": "base" }))));
  }
  const nodeAny = fc.constantFrom(...topo.sources, ...topo.targets, ...(chain ? ["top", "mid", "base"] : []));
  return fc.oneof(
    { weight: 3, arbitrary: fc.oneof(...starts) },
    { weight: 4, arbitrary: verbs },
    { weight: 1, arbitrary: fc.record({ atNs: at, drain: nodeAny, forNs: timing(20_000_000) }) },
    { weight: 1, arbitrary: fc.record({ atNs: at, guest: source, requests: fc.integer({ min: 1, max: 40 }), intervalNs: fc.constantFrom(0, 100_000, 1_000_000) }) },
    ...(bitmapCmds.length > 0 ? [{ weight: 1, arbitrary: fc.oneof(...bitmapCmds) }] : []),
    // a guest that keeps writing while a copy job runs (mirror and commit sources: what re-dirties chunks in flight)
    { weight: 1, arbitrary: fc.record({ atNs: at, guest: source, requests: fc.integer({ min: 100, max: 400 }), intervalNs: fc.constantFrom(100_000, 500_000) }) },
  );
}

export interface ScenarioOptions extends TopologyOptions {
  /** Most actions (default 8). */
  maxActions?: number;
  /** Latest action time, ns (default 200 ms). */
  maxTimeNs?: number;
}

/** A whole fuzz scenario: a random topology and a list of timed actions over it. */
export function scenario(opts: ScenarioOptions = {}): fc.Arbitrary<FuzzScenario> {
  // The action arbitrary depends only on the topology's shape (node names), of which there are a few:
  // built once per shape, not once per drawn scenario (arbitraries are immutable, so the draws are the same).
  const actionLists = new Map<string, fc.Arbitrary<FuzzAction[]>>();
  return topology(opts).chain((t) => {
    const shape = `${t.sources.length}/${t.targets.length}/${t.chain}`;
    let actions = actionLists.get(shape);
    if (!actions) actionLists.set(shape, actions = fc.array(action(t, opts.maxTimeNs, opts), { minLength: 1, maxLength: opts.maxActions ?? 8 }));
    return actions.map((list): FuzzScenario => ({ devices: t.devices, nodes: t.nodes, actions: list, maxTimeNs: 30e9 }));
  });
}
