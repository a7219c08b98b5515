/**
 * The one run loop (TigerBeetle's VOPR habit): setup, then the safety phase
 * (the subject's driver: steps, commands, faults, with every invariant
 * watching), then — when asked — heal (faults lifted, user-paused jobs
 * resumed, ready jobs completed, manual finalizes done, concluded jobs
 * dismissed) and the liveness phase, in which every job must conclude within
 * the time budget. Guests stop at the end. Same spec and driver ⇒ same trace
 * hash.
 */
import { waitsForUser } from "../check/invariants.js";
import type { CheckViolation } from "../check/index.js";
import type { QemuExit } from "../qmp/process.js";
import type { QmpResponse } from "../qmp/types.js";
import { formatDuration, formatTime, wait, type ChoiceLog, type Outcome, type Process, type TraceRecord } from "../scheduler/index.js";
import { createWorld, type World, type WorldSpec } from "./world.js";

/** A broken invariant: the one shape every layer above sim/check reports. */
export type Violation = CheckViolation;

/**
 * How a run ended: the kernel's outcome, or the simulated QEMU's crash (a
 * command real QEMU 7.2 dies on, such as blockdev-reopen of an empty list:
 * no reply, nothing more runs that matters). A run whose QEMU quit ends `ok`
 * though clients still wait for replies.
 */
export type RunOutcome = Outcome | { kind: "qemu-crash"; timeNs: number; signal: string; reason: string };

/** The run's outcome from the kernel's and the QEMU process's. */
export function runOutcome(o: Outcome, exit: QemuExit | undefined, endedAtNs: number): RunOutcome {
  if (exit?.kind === "crash") return { kind: "qemu-crash", timeNs: endedAtNs, signal: exit.signal, reason: exit.reason };
  if (exit?.kind === "quit" && o.kind === "deadlock") return { kind: "ok" };
  return o;
}

/**
 * One line for how a run ended, the one outcome text of every report (run,
 * fuzz, serve, the conformance replay). Its moments count from `t0` — the
 * end of setup, as the event log counts (0: from the start of the run). The
 * time limit is a duration counted from the start of the run, as the
 * scenario's `limits.time` is.
 */
export function describeOutcome(o: RunOutcome, t0 = 0): string {
  const at = (ns: number) => formatTime(ns - t0);
  switch (o.kind) {
    case "qemu-crash": return `QEMU crashed at ${at(o.timeNs)} (${o.signal}): ${o.reason}`;
    case "ok": return "ok";
    case "failure": return `a failure at ${at(o.timeNs)} in ${o.process}: ${o.error}`;
    case "deadlock": return `a deadlock at ${at(o.timeNs)}: ${o.waiting.map((w) => `${w.process} waits for ${w.on}`).join("; ") || "nothing runnable"}`;
    case "step-budget": return `the step limit (${o.maxSteps} kernel steps) at ${at(o.timeNs)}`;
    case "time-budget": return `the time limit (${formatDuration(o.maxTimeNs)} from the start of setup) with work still due at ${at(o.nextEventNs)}`;
    case "zeno": return `a Zeno run: virtual time stood still at ${at(o.timeNs)} for ${o.steps} kernel steps; spinning: ${o.spinning.join(", ")}`;
    case "divergence": return `a divergence from the replayed choice log at choice #${o.index}: ${o.error}`;
  }
}

/** What drives a world: its safety phase, and whether to heal and require liveness afterwards. */
export interface Driver {
  /** The name of the process that runs setup and the phases (it is part of the trace; default "harness"). */
  name?: string;
  /** The safety phase, run after setup. */
  safety(world: World): Process<void>;
  /** Heal the world after the safety phase and let every job conclude (default false). */
  heal?: boolean;
  /** Called with every QMP command the heal phase sends and its reply (to log them). */
  onHealCommand?(execute: string, args: Record<string, unknown>, response: QmpResponse): void;
}

export interface HarnessRun {
  world: World;
  /** The kernel's outcome, or qemu-crash when the simulated QEMU died (see RunOutcome). */
  outcome: RunOutcome;
  endTimeNs: number;
  kernelSteps: number;
  hash: string;
  choices: ChoiceLog;
  /** Every broken invariant, step ones first, then end-of-run ones (after a crash, not jobs-conclude: liveness is not asked of a dead QEMU). */
  violations: Violation[];
  /** The world could not be built (a device, node or guest refused); nothing else ran. */
  setupFailures: string[];
  trace?: TraceRecord[];
}

/** A run made with `hash: false`: its trace hash was not computed. */
export type UnhashedHarnessRun = Omit<HarnessRun, "hash"> & {
  /** Not computed (the run was made with `hash: false`). */
  hash: undefined;
};

/** Builds the world from `spec` and runs it through `driver`. */
export function run(spec: WorldSpec, driver: Driver): HarnessRun {
  return runWorld(createWorld(spec), driver);
}

/**
 * Runs an already built world (whose scheduler has not run) through `driver`.
 * With `hash: false` the trace hash is not computed (Scheduler.runUnhashed),
 * for runs whose hash nobody reads.
 */
export function runWorld(world: World, driver: Driver): HarnessRun;
export function runWorld(world: World, driver: Driver, opts: { hash: false }): UnhashedHarnessRun;
export function runWorld(world: World, driver: Driver, opts?: { hash: false }): HarnessRun | UnhashedHarnessRun {
  const { sim } = world;
  sim.spawn(driver.name ?? "harness", drive(world, driver));
  const result = opts?.hash === false ? sim.runUnhashed() : sim.run();
  const proc = world.qemu.process;
  const outcome = runOutcome(result.outcome, proc.exit, proc.endedAtNs ?? result.endTimeNs);
  const all = world.check.finish(result);
  // A crashed QEMU concludes no job: liveness is not asked of it (safety rules still hold up to the crash).
  const violations = outcome.kind === "qemu-crash" ? all.filter((v) => v.invariant !== "jobs-conclude") : all;
  return {
    world, outcome, endTimeNs: result.endTimeNs, kernelSteps: result.steps, hash: result.hash, choices: result.choices,
    violations, setupFailures: world.setupFailures, ...(result.trace ? { trace: result.trace } : {}),
  };
}

/** The harness's process: setup, the safety phase, heal and liveness when asked; guests stop at the end. */
function* drive(world: World, driver: Driver): Process<void> {
  yield* world.setup();
  if (world.setupFailures.length > 0) return;
  yield* driver.safety(world);
  if (driver.heal && world.qemu.process.alive) yield* heal(world, driver);
  for (const g of world.guests) g.stop();
}

/**
 * Heal, then the liveness phase: drive every job to its end as a patient
 * administrator would, acting on each job status change as a management
 * layer acts on JOB_STATUS_CHANGE (no polling: between changes nothing runs
 * here, so the phase costs steps only when a job moves).
 */
function* heal(world: World, driver: Driver): Process<void> {
  const q = world.qemu, jm = q.jm;
  for (const d of q.devices.values()) d.faults.clear();
  const qmp = (execute: string, args: Record<string, unknown>) => healCommand(world, driver, execute, args);
  while (jm.jobs.length > 0) { // the run's time budget bounds this
    const seen = jm.changes;
    for (const j of [...jm.jobs]) {
      if (j.freed || j.id === null) continue;
      if (j.userPaused && (j.status === "paused" || j.status === "standby" || j.status === "running" || j.status === "ready")) yield* qmp("job-resume", { id: j.id });
      else if (j.status === "ready") yield* qmp("job-complete", { id: j.id });
      else if (j.status === "running" && waitsForUser(j, j.status)) yield* qmp("job-cancel", { id: j.id });
      else if (j.status === "pending" && !j.autoFinalize) yield* qmp("job-finalize", { id: j.id });
      else if (j.status === "concluded") yield* qmp("job-dismiss", { id: j.id });
    }
    // A change during the pass (the commands' own, or a job's meanwhile) is looked at again at once.
    if (jm.changes === seen && jm.jobs.length > 0) yield wait(jm.statusChanged);
  }
}

function* healCommand(world: World, driver: Driver, execute: string, args: Record<string, unknown>): Process<void> {
  const r = yield* world.qemu.monitor.execute({ execute, arguments: args });
  driver.onHealCommand?.(execute, args, r);
}
