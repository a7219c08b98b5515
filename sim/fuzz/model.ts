/**
 * A fuzz scenario: plain JSON data in the QMP vocabulary (devices, nodes,
 * guest workloads, device faults, and timed commands), and the one run loop
 * every fuzz, exploration and replay goes through.
 *
 * The run has a safety phase and a liveness phase (TigerBeetle's VOPR
 * habit): the commands run at their times with the faults in force; then the
 * world heals — faults are lifted, user-paused jobs resumed, ready jobs
 * completed, jobs waiting for a manual finalize finalized — and every job
 * must conclude within the time budget. Invariants from sim/check are
 * checked throughout.
 */
import { startGuest } from "../block/index.js";
import type { FaultRule } from "../disk/index.js";
import { waitsForUser } from "../check/invariants.js";
import { checkRun, INVARIANTS, type CheckViolation, type InvariantSelection } from "../check/index.js";
import { profileBehaviour } from "../qmp/profiles.js";
import { createQemu, type Qemu } from "../qmp/qemu.js";
import type { QmpResponse } from "../qmp/types.js";
import { Scheduler, sleep, spawn, type ChoiceLog, type Outcome, type Process, type Strategy } from "../scheduler/index.js";

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
  /** A drained section on a node, held for `forNs` (as QEMU's internal callers hold them). */
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
}

export interface ModelRun {
  violations: CheckViolation[];
  outcome: Outcome;
  hash: string;
  choices: ChoiceLog;
  endTimeNs: number;
  steps: number;
  /** Every QMP command's response, in order. */
  responses: { execute: string; response: QmpResponse }[];
  /** Job events, `<event> <id>` or `<id>:<status>`, in order. */
  events: string[];
}

const GUEST_BACKENDS = new WeakMap<Qemu, Map<string, ReturnType<Qemu["graph"]["createBackend"]>>>();

function backendFor(q: Qemu, node: string) {
  let m = GUEST_BACKENDS.get(q);
  if (!m) GUEST_BACKENDS.set(q, (m = new Map()));
  let b = m.get(node);
  if (!b) {
    const root = q.graph.findNode(node);
    if (!root) return undefined;
    b = q.graph.createBackend({ name: `guest-${node}`, issuer: "guest", root, queueWhenDrained: true });
    m.set(node, b);
  }
  return b;
}

function latencyOf(d: FuzzDevice): number | { minNs: number; maxNs: number } {
  return d.latencyMaxNs === undefined ? d.latencyNs : { minNs: d.latencyNs, maxNs: d.latencyMaxNs };
}

/** Runs one fuzz scenario once; never throws for a broken invariant (the result lists it). */
export function runModel(model: FuzzScenario, opts: ModelRunOptions = {}): ModelRun {
  const sim = new Scheduler({ seed: opts.seed ?? 0, ...(opts.strategy ? { strategy: opts.strategy } : {}), maxTimeNs: model.maxTimeNs ?? 60e9, maxSteps: 5_000_000, trace: opts.trace ?? false });
  const q = createQemu(sim, profileBehaviour(opts.profile ?? "current"));
  const devices = model.devices.map((d) =>
    q.addDevice({ name: d.name, sizeBytes: d.sizeBytes, clusterSizeBytes: 65536, readLatencyNs: latencyOf(d), writeLatencyNs: latencyOf(d), bandwidthBytesPerSec: 0, queueDepth: 8 }),
  );
  model.devices.forEach((d, i) => { for (const f of d.faults ?? []) devices[i].faults.add(f); });
  const check = checkRun(q, opts.invariants ?? INVARIANTS);
  const responses: ModelRun["responses"] = [];
  const events: string[] = [];
  q.jm.onEvent((e) => events.push(e.event === "JOB_STATUS_CHANGE" ? `${String(e.data.id)}:${String(e.data.status)}` : `${e.event} ${String(e.data.device ?? e.data.id)}`));
  const qmp = function* (execute: string, args?: Record<string, unknown>): Process<QmpResponse> {
    const response = yield* q.monitor.execute(args ? { execute, arguments: args } : { execute });
    responses.push({ execute, response });
    return response;
  };
  sim.spawn("client", (function* (): Process {
    for (const n of model.nodes) yield* qmp("blockdev-add", n);
    // the guest's disks are attached at boot, before any job inserts a filter above them
    for (const a of model.actions) if ("guest" in a) backendFor(q, a.guest);
    const t0 = sim.now;
    const actions = [...model.actions].sort((a, b) => a.atNs - b.atNs); // stable: equal times keep list order
    for (const a of actions) {
      const wait = t0 + a.atNs - sim.now;
      if (wait > 0) yield sleep(wait);
      if ("execute" in a) yield* qmp(a.execute, a.arguments);
      else if ("drain" in a) {
        const node = q.graph.findNode(a.drain);
        if (node) {
          yield spawn(`drain ${a.drain}`, (function* (): Process {
            // From the main loop, as QEMU's internal callers drain: a nested poll; the jobs it pauses or resumes run at once.
            yield* q.monitor.mainLoop(() => q.graph.drainedBeginPoll(node));
            yield sleep(a.forNs);
            yield* q.monitor.mainLoop(() => q.graph.drainedEnd(node));
          })());
        }
      } else {
        const backend = backendFor(q, a.guest);
        if (backend) startGuest(sim, { name: `burst-${a.guest}-${a.atNs}`, backend, pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 2, intervalNs: a.intervalNs, maxRequests: a.requests });
      }
    }
    if (opts.noHeal) return;
    // liveness phase: heal, then every job must conclude
    for (const d of devices) d.faults.clear();
    while (q.jm.jobs.length > 0) { // the run's time budget bounds this
      for (const j of [...q.jm.jobs]) {
        if (j.freed || j.id === null) continue;
        if (j.userPaused && (j.status === "paused" || j.status === "standby" || j.status === "running" || j.status === "ready")) yield* qmp("job-resume", { id: j.id });
        else if (j.status === "ready") yield* qmp("job-complete", { id: j.id });
        else if (j.status === "running" && waitsForUser(j, j.status)) yield* qmp("job-cancel", { id: j.id });
        else if (j.status === "pending" && !j.autoFinalize) yield* qmp("job-finalize", { id: j.id });
        else if (j.status === "concluded") yield* qmp("job-dismiss", { id: j.id });
      }
      yield sleep(5_000_000);
    }
  })());
  const result = sim.run();
  const violations = check.finish(result);
  return { violations, outcome: result.outcome, hash: result.hash, choices: result.choices, endTimeNs: result.endTimeNs, steps: result.steps, responses, events };
}
