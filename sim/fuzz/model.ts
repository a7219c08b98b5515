/**
 * A fuzz scenario: plain JSON data in the QMP vocabulary (devices, nodes,
 * guest workloads, device faults, and timed commands), run through the
 * harness's one run loop: the commands at their times with the faults in
 * force (safety phase), then heal and the liveness phase, in which every job
 * must conclude. Invariants from sim/check are checked throughout.
 */
import { guestDevicePerms, startGuest, type BlockBackend, type BlockNode } from "../block/index.js";
import type { FaultRule } from "../disk/index.js";
import { INVARIANTS, type CheckViolation, type InvariantSelection } from "../check/index.js";
import { runWorld, type Driver, type RunOutcome } from "../harness/run.js";
import { createWorld, type World } from "../harness/world.js";
import type { Qemu } from "../qmp/qemu.js";
import type { QmpResponse } from "../qmp/types.js";
import { sleep, spawn, type ChoiceLog, type Process, type Strategy, type TraceRecord } from "../scheduler/index.js";

/** A simulated disk. */
export interface FuzzDevice {
  name: string;
  sizeBytes: number;
  /** Read and write latency, ns (the least, when latencyMaxNs is set). */
  latencyNs: number;
  /** Set: each request's latency is drawn from [latencyNs, latencyMaxNs], so requests can complete out of order. */
  latencyMaxNs?: number;
  /** Faults in force during the safety phase. */
  faults?: FaultRule[];
}

/** What happens at `atNs` (virtual time from the start of the run). */
export type FuzzAction =
  | { atNs: number; execute: string; arguments?: Record<string, unknown> }
  /** A drained section on a node, held for `forNs` from the main loop as QEMU's internal callers hold one: begun, a nested poll of `forNs`, ended (no QMP command is dispatched in between). */
  | { atNs: number; drain: string; forNs: number }
  /** A burst of guest writes through a backend on `node`. */
  | { atNs: number; guest: string; requests: number; intervalNs: number };

export interface FuzzScenario {
  name?: string;
  devices: FuzzDevice[];
  /** blockdev-add arguments, in order. */
  nodes: Record<string, unknown>[];
  actions: FuzzAction[];
  /** Virtual-time budget of the whole run, ns (default 60 s). */
  maxTimeNs?: number;
}

export interface ModelRunOptions {
  profile?: string;
  seed?: number;
  strategy?: Strategy;
  /** Which invariants to check (default: all). */
  invariants?: InvariantSelection;
  /** Skip the liveness phase (no healing; jobs-conclude is then not meaningful). */
  noHeal?: boolean;
  trace?: boolean;
  /** Compute the trace hash (default true); false where nobody reads it, and the result's hash is then undefined. */
  hash?: boolean;
  /** Watches the world before it runs (a replay's timeline records its events); must not change it. */
  observe?: (world: World) => void;
  /** Told of every command of the safety phase with the virtual times it was sent and answered. */
  onCommand?: (c: { execute: string; arguments?: Record<string, unknown>; response: QmpResponse; startNs: number; endNs: number }) => void;
}

export interface ModelRun {
  violations: CheckViolation[];
  /** The harness's outcome: qemu-crash when the simulated QEMU died on a command real QEMU 7.2 dies on. */
  outcome: RunOutcome;
  hash: string;
  choices: ChoiceLog;
  endTimeNs: number;
  steps: number;
  /** Every QMP command's response, in order. */
  responses: { execute: string; response: QmpResponse }[];
  /** Job events, `<event> <id>` or `<id>:<status>`, in order. */
  events: string[];
  /** The kernel trace, when asked for. */
  trace?: TraceRecord[];
}

/** A run made with `hash: false` (a campaign's runs: a failing case is run again, hashed, for its replay file). */
export type UnhashedModelRun = Omit<ModelRun, "hash"> & {
  /** Not computed. */
  hash: undefined;
};

/**
 * Runs one fuzz scenario once; never throws for a broken invariant (the
 * result lists it). With `hash: false` the trace hash is not computed.
 */
export function runModel(model: FuzzScenario, opts: ModelRunOptions & { hash: false }): UnhashedModelRun;
export function runModel(model: FuzzScenario, opts?: ModelRunOptions & { hash?: true }): ModelRun;
export function runModel(model: FuzzScenario, opts: ModelRunOptions = {}): ModelRun | UnhashedModelRun {
  const world = createWorld({
    profile: opts.profile ?? "current", seed: opts.seed ?? 0, ...(opts.strategy ? { strategy: opts.strategy } : {}),
    limits: { timeNs: model.maxTimeNs ?? 60e9, steps: 5_000_000 }, trace: opts.trace ?? false,
    devices: model.devices.map((d) => ({ name: d.name, sizeBytes: d.sizeBytes, latencyNs: d.latencyMaxNs === undefined ? d.latencyNs : { minNs: d.latencyNs, maxNs: d.latencyMaxNs }, queueDepth: 8, ...(d.faults ? { faults: d.faults } : {}) })),
    nodes: model.nodes,
    invariants: opts.invariants ?? INVARIANTS,
  });
  const q = world.qemu;
  opts.observe?.(world);
  const responses: ModelRun["responses"] = [];
  const events: string[] = [];
  q.jm.onEvent((e) => events.push(e.event === "JOB_STATUS_CHANGE" ? `${String(e.data.id)}:${String(e.data.status)}` : `${e.event} ${String(e.data.device ?? e.data.id)}`));
  const backends = new Map<string, BlockBackend>();
  const backendFor = (node: string): BlockBackend | undefined => {
    let b = backends.get(node);
    if (!b) {
      const root = q.graph.findNode(node);
      if (!root) return undefined;
      b = q.graph.createBackend({ name: `guest-${node}`, issuer: "guest", root, queueWhenDrained: true, perms: guestDevicePerms() });
      backends.set(node, b);
    }
    return b;
  };
  const driver: Driver = {
    name: "client",
    heal: !opts.noHeal,
    onHealCommand: (execute, _args, response) => responses.push({ execute, response }),
    safety: () => safety(world, model, opts, responses, backendFor),
  };
  const r = opts.hash === false ? runWorld(world, driver, { hash: false }) : runWorld(world, driver);
  return { violations: r.violations, outcome: r.outcome, hash: r.hash, choices: r.choices, endTimeNs: r.endTimeNs, steps: r.kernelSteps, responses, events, ...(r.trace ? { trace: r.trace } : {}) };
}

/** The safety phase of a fuzz run: the actions at their times. */
function* safety(world: World, model: FuzzScenario, opts: ModelRunOptions, responses: ModelRun["responses"], backendFor: (node: string) => BlockBackend | undefined): Process<void> {
  const q = world.qemu, sim = world.sim;
  model.nodes.forEach((_n, i) => responses.push({ execute: "blockdev-add", response: world.nodeReplies[i] }));
  // the guest's disks are attached at boot, before any job inserts a filter above them
  for (const a of model.actions) if ("guest" in a) backendFor(a.guest);
  const t0 = sim.now;
  const actions = [...model.actions].sort((a, b) => a.atNs - b.atNs); // stable: equal times keep list order
  for (const a of actions) {
    const wait = t0 + a.atNs - sim.now;
    if (wait > 0) yield sleep(wait);
    if ("execute" in a) {
      const startNs = sim.now;
      const response = yield* q.monitor.execute(a.arguments ? { execute: a.execute, arguments: a.arguments } : { execute: a.execute });
      responses.push({ execute: a.execute, response });
      opts.onCommand?.({ execute: a.execute, ...(a.arguments ? { arguments: a.arguments } : {}), response, startNs, endNs: sim.now });
    } else if ("drain" in a) {
      const node = q.graph.findNode(a.drain);
      if (node) yield spawn(`drain ${a.drain}`, drain(q, node, a.forNs));
    } else {
      const backend = backendFor(a.guest);
      if (backend) startGuest(sim, { name: `burst-${a.guest}-${a.atNs}`, backend, pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 2, intervalNs: a.intervalNs, maxRequests: a.requests });
    }
  }
}

/**
 * A drained section held for `forNs`, the way QEMU's internal callers hold
 * one: a single piece of main-loop work (a bottom half, a timer, a job's
 * exit) that begins the section, waits in a nested poll — as a flush,
 * truncate or reopen inside a section does — and ends it, with no return to
 * the main loop's top level in between. The nested poll runs what QEMU 7.2's
 * aio_poll of the main context runs (bottom halves, timers, coroutines, the
 * IOThreads), but not QMP's dispatcher, which waits in the iohandler context,
 * nor the monitor's socket: a command sent meanwhile is dispatched after the
 * section ends. A command the monitor is serving when the section is due is
 * answered before it begins (blocksim runs a handler as soon as the monitor
 * takes the command, so none is ever taken but not yet run).
 */
function* drain(q: Qemu, node: BlockNode, forNs: number): Process {
  const sim = q.sim;
  yield* q.monitor.mainLoop(() => {
    q.graph.drainedBeginPoll(node);
    let held = true;
    sim.after(forNs, `drained section of '${node.name}' held`, () => { held = false; });
    sim.pollWhile(`drained section of '${node.name}' held`, () => held);
    q.graph.drainedEnd(node);
  });
}
