/**
 * The simulated QEMU that `blocksim serve` puts behind its socket: the
 * harness's world (createWorld) built from a scenario file as `blocksim run`
 * builds it — scheduler (seed, strategy), a QEMU under the scenario's
 * profile, its devices with their data and faults, its IOThreads, its nodes
 * (added through the monitor, as a management layer would), its guests —
 * and the scenario's QMP steps as a second client inside the simulation.
 * Three things of the scenario a live session leaves out: the management
 * layer (the client on the socket is the management layer), the invariants
 * and the virtual-time budget (a session has no end to check them at; the
 * step budget stays, against a spinning world).
 */
import type { GuestWorkload } from "../sim/block/index.js";
import type { Qemu } from "../sim/qmp/qemu.js";
import type { QmpResponse } from "../sim/qmp/types.js";
import { join, ReplayStrategy, Signal, sleep, wait, type ChoiceLog, type Process, type ProcHandle, type Scheduler } from "../sim/scheduler/index.js";
import type { LoadedScenario } from "../sim/scenario/loader.js";
import { describeOutcome, diskFault, moment, subset, worldSpec } from "../sim/scenario/runner.js";
import { strategyByName } from "../sim/harness/strategy.js";
import { createWorld, type World as HarnessWorld, type WorldSpec } from "../sim/harness/world.js";
import type { Scenario, Step } from "../sim/scenario/schema.js";

export interface WorldOptions {
  /** Runs first in the setup process (the stand-in declares its -blockdev devices and nodes here). */
  setup?: (world: HarnessWorld) => Process<void>;
  /** Replays this choice log instead of the scenario's strategy. */
  choices?: ChoiceLog;
  trace?: boolean;
}

/** One line the scenario's step client saw (its commands and replies). */
export interface StepLine {
  t: number;
  step: number;
  execute: string;
  response?: QmpResponse;
}

export interface World {
  /** The harness's world the session runs. */
  harness: HarnessWorld;
  sim: Scheduler;
  qemu: Qemu;
  profile: string;
  seed: number | string;
  strategy: string;
  /** The setup process (devices, data, nodes, guests); the world is ready when it is done. */
  setup: ProcHandle;
  /** Why setup failed, if it did. */
  setupError(): string | undefined;
  /** The scenario's step client's commands and replies. */
  steps: StepLine[];
  guests: GuestWorkload[];
}

/** Steps `serve` cannot run: they need the management layer or a run's end. */
export function unsupportedStep(st: Step): string | undefined {
  if ("libvirt" in st || "poll" in st) return "libvirt and poll steps need the simulated management layer; blocksim serve runs QMP, drain, undrain, fault and heal steps";
  return undefined;
}

export function buildWorld(loaded: LoadedScenario | undefined, opts: WorldOptions = {}): World {
  const sc: Scenario | undefined = loaded?.scenario;
  const profile = sc?.profile ?? "current";
  const seed = sc?.seed ?? 0;
  const strategyName = sc?.strategy ?? "fifo";
  const strategy = opts.choices ? new ReplayStrategy(opts.choices) : strategyByName(strategyName, seed);
  const trace = !!opts.trace;
  let spec: WorldSpec = { profile, seed, strategy, trace, invariants: [] };
  if (sc) {
    const { domain: _noManagementLayer, limits: _limits, ...scenarioWorld } = worldSpec(sc, { seed, profile, strategy, trace });
    spec = { ...scenarioWorld, limits: { steps: sc.limits.steps }, invariants: [] };
  }
  const world = createWorld(spec);
  const { sim, qemu } = world;
  let error: string | undefined;
  const steps: StepLine[] = [];
  const setup = sim.spawn("setup", (function* (): Process<void> {
    if (opts.setup) {
      try {
        yield* opts.setup(world);
      } catch (e) {
        error = (e as Error).message;
        return;
      }
    }
    yield* world.setup();
    if (world.setupFailures.length > 0) {
      error = world.setupFailures.join("; ");
      return;
    }
    if (sc && sc.steps.length > 0) sim.spawn("scenario steps", stepClient(sim, qemu, sc, world.t0, steps), { daemon: true });
  })());
  return { harness: world, sim, qemu, profile, seed, strategy: opts.choices ? "replay" : strategyName, setup, setupError: () => error, steps, guests: world.guests };
}

/** The scenario's steps as one more QMP client: each waits for its trigger, then acts. */
function* stepClient(sim: Scheduler, qemu: Qemu, sc: Scenario, t0: number, lines: StepLine[]): Process<void> {
  const progress = new Signal<void>("scenario step progress");
  const events: { event: string; data: Record<string, unknown> }[] = [];
  const statuses = new Map<string, Set<string>>();
  const done = new Set<number>();
  qemu.monitor.onEvent((e) => {
    events.push(e);
    if (e.event === "JOB_STATUS_CHANGE") {
      const id = String(e.data.id);
      if (!statuses.has(id)) statuses.set(id, new Set());
      statuses.get(id)!.add(String(e.data.status));
    }
    sim.notify(progress);
  });
  const drains = new Map<string, import("../sim/block/index.js").BlockNode[]>();
  const procs = sc.steps.map((st, i) => sim.spawn(`step ${i}`, (function* (): Process<void> {
    const until = function* (cond: () => boolean): Process<void> {
      while (!cond()) yield wait(progress);
    };
    if (st.at !== undefined) {
      const at = yield* moment(st.at, `steps[${i}].at`);
      if (t0 + at > sim.now) yield sleep(t0 + at - sim.now);
    } else if (st.after !== undefined) {
      const j = sc.steps.findIndex((s) => s.id === st.after);
      yield* until(() => done.has(j));
    } else if (st["on-event"] !== undefined) {
      const m = st["on-event"];
      yield* until(() => events.filter((e) => e.event === m.event && subset(m.data, e.data)).length >= m.count);
    } else if (st["on-job"] !== undefined) {
      const { id, status } = st["on-job"];
      yield* until(() => statuses.get(id)?.has(status) ?? false);
    } else if (i > 0) {
      yield* until(() => done.has(i - 1));
    }
    const delay = yield* moment(st.delay, `steps[${i}].delay`);
    if (delay > 0) yield sleep(delay);
    if ("execute" in st) {
      lines.push({ t: sim.now, step: i, execute: st.execute });
      const r = yield* qemu.monitor.execute(st.arguments === undefined ? { execute: st.execute } : { execute: st.execute, arguments: st.arguments });
      lines.push({ t: sim.now, step: i, execute: st.execute, response: r });
    } else if ("drain" in st) {
      const node = qemu.graph.findNode(st.drain.node);
      if (node) {
        yield* qemu.graph.drainedBegin(node);
        if (!drains.has(node.name)) drains.set(node.name, []);
        drains.get(node.name)!.push(node);
      }
    } else if ("undrain" in st) {
      const node = drains.get(st.undrain.node)?.pop();
      if (node) qemu.graph.drainedEnd(node);
    } else if ("fault" in st) {
      const { device, ...rule } = st.fault;
      qemu.devices.get(device)?.faults.add(diskFault(rule));
    } else if ("heal" in st) {
      qemu.devices.get(st.heal.device)?.faults.clear();
    }
    done.add(i);
    sim.notify(progress);
  })(), { daemon: true }));
  for (const p of procs) yield join(p);
}

/** Runs the setup process to its end on virtual time (nothing else is driving the world yet); throws what went wrong. */
export function runSetup(world: World): void {
  const { sim, setup } = world;
  while (setup.state !== "done" && setup.state !== "failed" && setup.state !== "interrupted") {
    const next = sim.nextEventNs();
    if (next === undefined) break;
    const o = sim.advanceTo(next);
    if (o) throw new Error(`the scenario's setup stopped the simulation: ${describeOutcome(o, 0)}`);
  }
  const err = world.setupError();
  if (err) throw new Error(`the scenario's setup failed: ${err}`);
  if (setup.state !== "done") throw new Error(`the scenario's setup did not finish (state ${setup.state})`);
}
