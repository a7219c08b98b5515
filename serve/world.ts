/**
 * The simulated QEMU that `blocksim serve` puts behind its socket: the
 * harness's world (createWorld) built from a scenario file as `blocksim run`
 * builds it — scheduler (seed, strategy), a QEMU under the scenario's
 * profile, its devices with their data and faults, its IOThreads, its nodes
 * (added through the monitor, as a management layer would), its guests —
 * and the scenario's steps as a second client inside the simulation, run by
 * the runner's own step runner (ScenarioSteps: the same triggers, chosen
 * moments, drained sections and faults as `blocksim run`).
 * Three things of the scenario a live session leaves out: the management
 * layer (the client on the socket is the management layer), the invariants
 * and the virtual-time budget (a session has no end to check them at; the
 * step budget stays, against a spinning world).
 */
import type { GuestWorkload } from "../sim/block/index.js";
import type { Qemu } from "../sim/qmp/qemu.js";
import { ReplayStrategy, type ChoiceLog, type Process, type ProcHandle, type Scheduler } from "../sim/scheduler/index.js";
import type { LoadedScenario } from "../sim/scenario/loader.js";
import { describeOutcome } from "../sim/harness/run.js";
import { ScenarioSteps, worldSpec, type LogEntry } from "../sim/scenario/runner.js";
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
  /** What the scenario's steps did (commands, replies, drains, faults) and the events, as a run's event log. */
  stepLog: LogEntry[];
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
  // Made before setup, as the runner makes it: it watches events from the start.
  const steps = sc && sc.steps.length > 0 ? new ScenarioSteps(world, sc) : undefined;
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
    if (steps) sim.spawn("scenario steps", steps.main(), { daemon: true });
  })());
  return { harness: world, sim, qemu, profile, seed, strategy: opts.choices ? "replay" : strategyName, setup, setupError: () => error, stepLog: steps?.log ?? [], guests: world.guests };
}

/** Runs the setup process to its end on virtual time (nothing else is driving the world yet); throws what went wrong. */
export function runSetup(world: World): void {
  const { sim, setup } = world;
  while (setup.state !== "done" && setup.state !== "failed" && setup.state !== "interrupted") {
    const next = sim.nextEventNs();
    if (next === undefined) break;
    const o = sim.advanceTo(next);
    if (o) throw new Error(`the scenario's setup stopped the simulation: ${describeOutcome(o)}`);
  }
  const err = world.setupError();
  if (err) throw new Error(`the scenario's setup failed: ${err}`);
  if (setup.state !== "done") throw new Error(`the scenario's setup did not finish (state ${setup.state})`);
}
