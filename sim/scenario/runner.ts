/**
 * Runs a scenario: turns it into the harness's WorldSpec (devices, nodes,
 * guests, domain, invariants, profile, seed, strategy), runs each step as a
 * QMP client process that waits for its trigger as the safety phase of the
 * harness's run loop, then checks the expectations.
 *
 * A run ends when every step has run (or can no longer be triggered: no
 * step waits on time and no job is active) and no job is active any more;
 * then the guests stop and the kernel finishes what is in flight. Same
 * scenario, seed, profile and strategy ⇒ the same report and trace hash.
 *
 * Steps cost linear time in their number: a timed step's process is spawned
 * only at its time (one clock process holds the rest), a step that follows
 * another is spawned when that one ends, and a step waiting for an event or
 * a job status is woken only when its own condition comes true.
 */
import { BackupDriver } from "../jobs/drivers/backup.js";
import { MirrorDriver } from "../jobs/drivers/mirror.js";
import type { Job } from "../jobs/job.js";
import type { Qemu } from "../qmp/qemu.js";
import { blockCommit, blockCopy, blockJobAbort, blockJobSetSpeed, blockPull, Domain, getBlockJobInfo, migrateWithStorage, poller, VirError } from "../mgmt/index.js";
import type { QmpResponse } from "../qmp/types.js";
import { UNSPECIFIED_VERSION, type BlockNode, type DrainedSpan } from "../block/index.js";
import { versionAt, type ClusterVersion, type Content, type FaultRule as DiskFaultRule, type LatencyNs } from "../disk/index.js";
import { choose, formatTime, Signal, settle, sleep, wait, type ChoiceLog, type Process, type ProcHandle, type Strategy, type TraceRecord } from "../scheduler/index.js";
import { describeOutcome, runWorld, type RunOutcome, type Violation } from "../harness/run.js";
export type { RunOutcome } from "../harness/run.js";
import { strategyByName, type StrategyName } from "../harness/strategy.js";
import { createWorld, invariantNames as allInvariantNames, type GuestSpec, type World as HarnessWorld, type WorldSpec } from "../harness/world.js";
import type { LoadedScenario } from "./loader.js";
import { describeExpect, replyMatches } from "./reply-expect.js";
import type { ChosenMoment, ExpectedEvent, FaultRule, LibvirtCall, Scenario, Step } from "./schema.js";
import { formatDuration } from "./units.js";

export type { StrategyName } from "../harness/strategy.js";

export interface RunOptions {
  /** Overrides the scenario's seed / profile. */
  seed?: number | string;
  profile?: string;
  /** Who answers the choice points (a ReplayStrategy to replay a log); default: the scenario's strategy, seeded with the seed. */
  strategy?: Strategy;
  /** Keep the kernel trace in the report (the trace hash is the same either way). */
  keepTrace?: boolean;
  /**
   * Called every PROGRESS_EVERY_STEPS kernel steps with where the run
   * stands. It observes only (the CLI's progress line); it must not touch
   * the simulation, and a run is the same with it or without it.
   */
  onProgress?: (p: RunProgress) => void;
  /** Called once after the run with its world: a library user's look at the QEMU, devices and management layer as they ended. */
  inspect?: (world: HarnessWorld) => void;
}

/** Where a run stands, for a progress line. */
export interface RunProgress {
  /** Virtual time since setup ended (negative: setup still runs). */
  sinceSetupNs: number;
  setupDone: boolean;
  kernelSteps: number;
  events: number;
  /** Every job with an id, as now. */
  jobs: { id: string; type: string; status: string; offset: number; len: number }[];
}

/** How often (in kernel steps) onProgress is called: often enough for a line updated a few times a second. */
export const PROGRESS_EVERY_STEPS = 5000;

/** One line of the event log. */
export type LogEntry =
  | { t: number; kind: "cmd"; client: string; step: number; execute: string; arguments?: Record<string, unknown>; /** A management-layer call, not QMP. */ mgmt?: true }
  | { t: number; kind: "reply"; client: string; step: number; response: QmpResponse; mgmt?: true }
  | { t: number; kind: "event"; event: string; data: Record<string, unknown> }
  | { t: number; kind: "drain" | "undrain"; client: string; step: number; node: string }
  | { t: number; kind: "fault" | "heal"; client: string; step: number; device: string };

/** A failed expectation. */
export interface Failure {
  kind: "step" | "trigger" | "events" | "never" | "job" | "data" | "invariant" | "outcome" | "setup";
  message: string;
  /** For diffs: the expected and the observed lines. */
  expected?: string[];
  observed?: string[];
  /** When it showed, if it has a moment (a reply, an event, a violation): the timeline marks it. */
  timeNs?: number;
}

export interface StepReport {
  index: number;
  label: string;
  client: string;
  state: "done" | "waiting" | "running";
  /** What it was waiting for when the run ended: its trigger if it never ran, what its command waits on if it had not finished. */
  waitingFor?: string;
  startNs?: number;
  endNs?: number;
  response?: QmpResponse;
}

export interface JobSpan {
  job: string;
  type: string;
  /** Status changes in order: [timeNs, status]. */
  statuses: [number, string][];
}

export interface RunReport {
  name: string;
  file: string;
  profile: string;
  seed: number | string;
  /** The name of the strategy object that ran (fifo, random, pct, replay, picks…). */
  strategy: string;
  /** Whether every expectation held. */
  ok: boolean;
  failures: Failure[];
  outcome: RunOutcome;
  endTimeNs: number;
  /** When setup ended (devices filled, nodes added): reports count time from here, so a step `at: 5ms` shows at 5 ms. */
  setupEndNs: number;
  /** How many log entries (events during setup) and kernel trace entries (records and choices) came before the end of setup. */
  setupLogIndex: number;
  setupTraceIndex?: number;
  kernelSteps: number;
  hash: string;
  choices: ChoiceLog;
  log: LogEntry[];
  steps: StepReport[];
  jobs: JobSpan[];
  /** Every job with an id as the run ended: what a budget end's summary shows. */
  jobsAtEnd: { id: string; type: string; status: string; offset: number; len: number }[];
  violations: Violation[];
  /** Drained sections begun by steps or by QEMU: [node, beginNs, endNs | undefined]. */
  drains: DrainedSpan[];
  devices: { name: string; submitted: number; completed: number; faulted: number }[];
  trace?: TraceRecord[];
  /**
   * A command line that makes this run again, for the verdict's rerun line:
   * set only by a caller that knows one that works (`blocksim run`); absent
   * for a fuzz case, a replay, a race hunt or a serve session, whose way
   * back is their replay file.
   */
  rerun?: string;
}

/** Each device's request counts, as a report shows them (run, a fuzz case, a serve session). */
export function deviceCounts(qemu: Pick<Qemu, "devices">): RunReport["devices"] {
  return [...qemu.devices.values()].map((d) => ({ name: d.name, submitted: d.stats.submitted, completed: d.stats.completed, faulted: d.stats.faulted }));
}

/** Jobs with an id as a report and the progress line show them (a fuzz case's and a serve session's report too). */
export function jobLines(jobs: readonly Job[]): RunReport["jobsAtEnd"] {
  return jobs.filter((j) => j.id !== null).map((j) => ({ id: String(j.id), type: j.type, status: j.status, offset: j.progressCurrent, len: j.progressTotal }));
}

/** The strategy a scenario's own `strategy:` names, seeded. */
export function scenarioStrategy(sc: Scenario, seed: number | string, name: StrategyName = sc.strategy): Strategy {
  return strategyByName(name, seed);
}

/**
 * A step's `at` or `delay`: a fixed duration, or the strategy's pick among
 * from, from+step, …, to — a choice point logged under `label`, so
 * exploration tries it, shrinking moves it towards `from` (pick 0, FIFO's
 * answer) and a replay takes the same one.
 */
export function* moment(m: number | ChosenMoment, label: string): Process<number> {
  if (typeof m === "number") return m;
  const { from, to, step } = m.choose;
  const pick = (yield choose(label, (to - from) / step + 1)) as number;
  return from + pick * step;
}

/** The harness's WorldSpec for a scenario. */
export function worldSpec(sc: Scenario, o: { seed: number | string; profile: string; strategy: Strategy; trace: boolean }): WorldSpec {
  return {
    profile: o.profile, seed: o.seed, strategy: o.strategy, trace: o.trace,
    limits: { steps: sc.limits.steps, timeNs: sc.limits.time, instantSteps: sc.limits["instant-steps"] },
    devices: sc.devices.map((d) => ({
      name: d.name, sizeBytes: d.size, clusterSizeBytes: d["cluster-size"],
      readLatencyNs: latency(d["read-latency"] ?? d.latency), writeLatencyNs: latency(d["write-latency"] ?? d.latency),
      bandwidthBytesPerSec: d.bandwidth, queueDepth: d["queue-depth"], faults: d.faults.map(diskFault), data: d.data,
      ...(d.transfer === "per-request" ? { transferPerRequest: true } : {}), ...(d["flush-bandwidth"] > 0 ? { flushBytesPerSec: d["flush-bandwidth"] } : {}), ...(d["cold-metadata-caches"] ? { coldMetadataCaches: true } : {}),
      ...(d.sparse ? { sparse: true } : {}),
    })),
    iothreads: sc.iothreads,
    nodes: sc.nodes as unknown as Record<string, unknown>[],
    guests: sc.guests.map((g): GuestSpec => ({
      name: g.name, node: g.node, ...(g.drive !== undefined ? { drive: g.drive } : {}),
      pattern: typeof g.pattern === "string" ? g.pattern : { kind: "hot" as const, offsetBytes: g.pattern.hot.offset, bytes: g.pattern.hot.length, hotFraction: g.pattern.hot.fraction },
      readFraction: g["read-fraction"],
      requestBytes: typeof g["request-size"] === "number" ? g["request-size"] : { minBytes: g["request-size"].min, maxBytes: g["request-size"].max },
      alignBytes: g.align, iodepth: g.iodepth,
      intervalNs: typeof g.interval === "number" ? g.interval : { minNs: g.interval.min, maxNs: g.interval.max },
      regionOffsetBytes: g.region?.offset, regionBytes: g.region?.length,
      maxRequests: g["max-requests"], startNs: g.start, ...(g.stop !== undefined ? { stopNs: g.stop } : {}),
      ...(g.iothread !== undefined ? { iothread: g.iothread } : {}),
    })),
    ...(sc.domain ? { domain: { disks: sc.domain.disks, qmpRoundTripNs: sc.domain["qmp-round-trip"], queryWaitBoundNs: sc.domain["query-wait-bound"] } } : {}),
    invariants: invariantNames(sc),
  };
}

/** Runs a loaded scenario once. Never throws for a failing expectation; the report says what failed. */
export function runScenario(loaded: LoadedScenario, opts: RunOptions = {}): RunReport {
  const sc = loaded.scenario;
  const seed = opts.seed ?? sc.seed;
  const profile = opts.profile ?? sc.profile;
  const strategy = opts.strategy ?? scenarioStrategy(sc, seed);
  let w: ScenarioSteps | undefined;
  const onProgress = opts.onProgress;
  const observer = onProgress && {
    everySteps: PROGRESS_EVERY_STEPS,
    observe: (nowNs: number, kernelSteps: number) => {
      const setupDone = w!.setupDone();
      onProgress({
        sinceSetupNs: nowNs - world.t0, setupDone, kernelSteps, events: w!.eventCount,
        jobs: jobLines(world.qemu.jm.jobs.filter((j) => !j.freed)),
      });
    },
  };
  const world = createWorld({ ...worldSpec(sc, { seed, profile, strategy, trace: !!opts.keepTrace }), ...(observer ? { observer } : {}) });
  w = new ScenarioSteps(world, sc);
  const result = runWorld(world, { name: "scenario", safety: () => w.main() });
  opts.inspect?.(world);
  // A step that never ran says what it was waiting for (reports and summaries read it).
  w.steps.forEach((s, i) => { if (s.state === "waiting" && s.waitingFor === undefined) { const what = w.waitingFor(i); if (what !== undefined) s.waitingFor = what; } });
  // One that had not finished says what its command waits on (a qemu-io request queued for good: QEMU hangs there).
  w.steps.forEach((s, i) => { if (s.state === "running") { const what = w.blockedOn(i); if (what !== undefined) s.waitingFor = what; } });
  const failures: Failure[] = result.setupFailures.map((message) => ({ kind: "setup" as const, message }));
  const { outcome, violations } = result;
  if (failures.length === 0) {
    const add = (fs: Failure[]) => { for (const f of fs) failures.push(f); };
    add(checkOutcome(sc, outcome, world.t0));
    add(checkSteps(sc, w, outcome));
    add(checkEvents(sc, w.log, world.t0));
    add(checkJobs(sc, w));
    add(checkData(sc, w, world.qemu));
    add(checkViolations(sc, violations, world.t0));
  }
  return {
    name: sc.name,
    file: loaded.file,
    profile,
    seed,
    strategy: strategy.name,
    ok: failures.length === 0,
    failures,
    outcome,
    endTimeNs: result.endTimeNs,
    setupEndNs: world.t0,
    setupLogIndex: w.setupLogIndex,
    ...(w.setupTraceIndex !== undefined ? { setupTraceIndex: w.setupTraceIndex } : {}),
    kernelSteps: result.kernelSteps,
    hash: result.hash,
    choices: result.choices,
    log: w.log,
    steps: w.steps,
    jobs: w.jobSpans(),
    jobsAtEnd: jobLines(w.allJobs),
    violations,
    drains: w.drains,
    devices: deviceCounts(world.qemu),
    ...(result.trace ? { trace: result.trace } : {}),
  };
}

const ACTIVE = new Set(["running", "waiting", "aborting"]);

/** A drained section a drain step began, for the undrain step that ends it. */
interface StepDrain { node: BlockNode; begun: boolean; readonly begin: Signal<void> }

/**
 * A scenario's steps in a world: each a QMP (or libvirt) client process that
 * waits for its trigger (time, a chosen moment, the step before, an event, a
 * job status), then acts — a command, a drained section begun or ended from
 * the main loop, a fault added or lifted — and what they observed. The one
 * step runner: `blocksim run` runs it as the safety phase, `blocksim serve`
 * spawns it beside its socket clients.
 */
export class ScenarioSteps {
  readonly log: LogEntry[] = [];
  readonly steps: StepReport[];
  readonly allJobs: Job[] = [];
  readonly drains: DrainedSpan[] = [];
  /** Mirror jobs' target content at the pivot. */
  readonly targetAtPivot = new Map<Job, Content>();
  private readonly sim;
  private readonly qemu: Qemu;
  private readonly dom?: Domain;
  /** Notified on every event and step end: the main process re-judges whether the run is over. */
  private readonly progress = new Signal<void>("scenario progress");
  /** Each step's process once it runs (what it is blocked on, if it never finishes). */
  private readonly stepProcs: (ProcHandle | undefined)[] = [];
  private readonly seenJobs = new Set<Job>();
  private readonly stepDrains = new Map<string, StepDrain[]>();
  /** Per step: its trigger fired, and the signal its process waits on until then (event and job triggers). */
  private readonly fired: boolean[];
  private readonly wake: (Signal<void> | undefined)[];
  /** Steps each step's end triggers (the next step without a trigger, `after:` steps). */
  private readonly followers: number[][];
  /** Event-triggered steps by event name, with how many matching events each has seen. */
  private readonly onEvent = new Map<string, Set<number>>();
  private readonly eventCounts: number[];
  /** Job-status-triggered steps by "id status". */
  private readonly onJob = new Map<string, Set<number>>();
  /** Steps triggered and not done (running, or sleeping out their delay). */
  private active = 0;
  private done = 0;
  /** Timed steps whose time has not come. */
  private pendingTimed = 0;
  /** QMP events so far. */
  eventCount = 0;
  /** The safety phase began: setup is over. */
  private started = false;
  /** Log entries and kernel trace entries (records and choices) made during setup. */
  setupLogIndex = 0;
  setupTraceIndex: number | undefined;

  constructor(readonly world: HarnessWorld, readonly sc: Scenario) {
    this.sim = world.sim;
    this.qemu = world.qemu;
    this.dom = world.dom;
    const n = sc.steps.length;
    this.steps = sc.steps.map((st, i) => ({ index: i, label: stepLabel(st), client: st.client ?? "client", state: "waiting" }));
    this.fired = new Array<boolean>(n).fill(false);
    this.wake = new Array<Signal<void> | undefined>(n).fill(undefined);
    this.eventCounts = new Array<number>(n).fill(0);
    this.followers = sc.steps.map(() => []);
    const ids = new Map<string, number>();
    sc.steps.forEach((st, i) => { if (st.id !== undefined) ids.set(st.id, i); });
    sc.steps.forEach((st, i) => {
      if (st.at !== undefined) this.pendingTimed++;
      else if (st.after !== undefined) this.followers[ids.get(st.after)!].push(i);
      else if (st["on-event"] !== undefined) {
        const name = st["on-event"].event;
        let set = this.onEvent.get(name);
        if (!set) this.onEvent.set(name, (set = new Set()));
        set.add(i);
      } else if (st["on-job"] !== undefined) {
        const key = `${st["on-job"].id} ${st["on-job"].status}`;
        let set = this.onJob.get(key);
        if (!set) this.onJob.set(key, (set = new Set()));
        set.add(i);
      } else if (i > 0) this.followers[i - 1].push(i);
    });
    this.qemu.monitor.onEvent((e) => {
      this.log.push({ t: this.sim.now, kind: "event", event: e.event, data: e.data });
      this.eventCount++;
      this.observeJobs();
      const waiting = this.onEvent.get(e.event);
      if (waiting) {
        for (const i of [...waiting]) {
          const m = sc.steps[i]["on-event"]!;
          if (!subset(m.data, e.data) || ++this.eventCounts[i] < m.count) continue;
          waiting.delete(i);
          this.fire(i);
        }
      }
      if (e.event === "JOB_STATUS_CHANGE") {
        const key = `${String(e.data.id)} ${String(e.data.status)}`;
        const waitingJob = this.onJob.get(key);
        if (waitingJob) {
          this.onJob.delete(key);
          for (const i of waitingJob) this.fire(i);
        }
      }
      this.sim.notify(this.progress);
    });
    this.qemu.graph.recordDrainedSections(this.drains);
  }

  /** An event or job trigger came true: the step's waiting process goes on. */
  private fire(i: number): void {
    this.fired[i] = true;
    this.active++;
    const sig = this.wake[i];
    if (sig) this.sim.notify(sig);
  }

  /** Records jobs as they appear, and mirror targets at the pivot. */
  private observeJobs(): void {
    for (const j of this.qemu.jm.jobs) {
      if (!this.seenJobs.has(j)) {
        this.seenJobs.add(j);
        this.allJobs.push(j);
      }
    }
    for (const j of this.allJobs) {
      if (j.driver instanceof MirrorDriver && j.driver.pivoted && !this.targetAtPivot.has(j)) {
        const t = j.driver.opts.target;
        this.targetAtPivot.set(j, t.content(0, t.sizeBytes));
      }
    }
  }

  /** Each job's status changes, from its JOB_STATUS_CHANGE events (a reused id starts a new span). */
  jobSpans(): JobSpan[] {
    const spans: JobSpan[] = [];
    const open = new Map<string, JobSpan>();
    const seen = new Map<string, number>();
    for (const e of this.log) {
      if (e.kind !== "event" || e.event !== "JOB_STATUS_CHANGE") continue;
      const id = String(e.data.id), status = String(e.data.status);
      let span = open.get(id);
      if (!span || status === "created") {
        const k = seen.get(id) ?? 0;
        seen.set(id, k + 1);
        const type = this.allJobs.filter((j) => j.id === id)[k]?.type ?? "job";
        span = { job: id, type, statuses: [] };
        spans.push(span);
        open.set(id, span);
      }
      span.statuses.push([e.t, status]);
      if (status === "null") open.delete(id);
    }
    return spans;
  }

  /** The safety phase: arm the steps, then wait until they have all run (or cannot) and no job is active. */
  *main(): Process<void> {
    const sim = this.sim, sc = this.sc, t0 = this.world.t0;
    this.started = true;
    this.setupLogIndex = this.log.length;
    if (sim.tracing) this.setupTraceIndex = sim.traceLength;
    // Event- and job-triggered steps wait from the start; the first step without a trigger starts now.
    sc.steps.forEach((st, i) => {
      if (st.at === undefined && st.after === undefined && (st["on-event"] !== undefined || st["on-job"] !== undefined)) {
        this.wake[i] = new Signal<void>(`step ${i} trigger`);
        sim.spawn(`step ${i} ${this.steps[i].label}`, this.step(st, i), { daemon: true });
      }
    });
    if (sc.steps.length > 0 && sc.steps[0].at === undefined && sc.steps[0].after === undefined && sc.steps[0]["on-event"] === undefined && sc.steps[0]["on-job"] === undefined) this.start(0);
    // Chosen moments are picked first, in file order: the first choice points of the run.
    const timed: [number, number][] = [];
    for (const [i, st] of sc.steps.entries()) if (st.at !== undefined) timed.push([yield* moment(st.at, `steps[${i}].at`), i]);
    // One clock process spawns each timed step at its time (equal times keep file order).
    timed.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
    if (timed.length > 0) {
      const self = this;
      sim.spawn("step clock", (function* (): Process<void> {
        for (const [at, i] of timed) {
          if (t0 + at > sim.now) yield sleep(t0 + at - sim.now);
          self.pendingTimed--;
          self.start(i);
        }
      })(), { daemon: true });
    }
    // settle(): let every process woken at this instant reach its next wait before judging (a step may be about to sleep).
    yield settle();
    while (!this.allStepsSettled() || this.jobsActive()) {
      yield wait(this.progress);
      yield settle();
    }
  }

  setupDone(): boolean {
    return this.started;
  }

  /** Spawns a step whose trigger came (time, or the step it follows ended). */
  private start(i: number): void {
    this.fired[i] = true;
    this.active++;
    this.sim.spawn(`step ${i} ${this.steps[i].label}`, this.step(this.sc.steps[i], i), { daemon: true });
  }

  private allStepsSettled(): boolean {
    if (this.done === this.steps.length) return true;
    if (this.active > 0 || this.pendingTimed > 0) return false;
    return !this.jobsActive(); // every remaining step waits for something only a job could bring
  }

  private jobsActive(): boolean {
    this.observeJobs();
    return this.qemu.jm.jobs.some((j) => j.id !== null && !j.freed && (
      ACTIVE.has(j.status) || (j.status === "paused" && !j.userPaused) || (j.status === "pending" && j.autoFinalize) || (j.status === "created" && j.started)
    ));
  }

  /** What the process of a step that is running is blocked on, if it is. */
  blockedOn(i: number): string | undefined {
    const proc = this.stepProcs[i];
    return proc === undefined ? undefined : this.sim.waitingOn(proc);
  }

  /** What a step that never ran was waiting for. */
  waitingFor(i: number): string | undefined {
    const st = this.sc.steps[i];
    if (this.fired[i] || st.at !== undefined) return undefined;
    if (st.after !== undefined) return `the reply to step "${st.after}"`;
    if (st["on-event"] !== undefined) {
      const m = st["on-event"];
      return `event ${m.event}${m.data ? ` ${JSON.stringify(m.data)}` : ""}${m.count > 1 ? ` (${m.count} times)` : ""}`;
    }
    if (st["on-job"] !== undefined) return `job '${st["on-job"].id}' to reach status ${st["on-job"].status}`;
    return i > 0 ? `the previous step (steps[${i - 1}] ${this.steps[i - 1].label})` : undefined;
  }

  private *step(st: Step, i: number): Process<void> {
    const sim = this.sim, rep = this.steps[i], qemu = this.qemu;
    // An event or job trigger: wait for it (a timed or following step is spawned only once its trigger came).
    const sig = this.wake[i];
    if (sig) while (!this.fired[i]) yield wait(sig);
    const delay = yield* moment(st.delay, `steps[${i}].delay`);
    if (delay > 0) yield sleep(delay);
    rep.state = "running";
    rep.startNs = sim.now;
    this.stepProcs[i] = sim.running;
    const client = rep.client;
    if ("execute" in st) {
      this.log.push({ t: sim.now, kind: "cmd", client, step: i, execute: st.execute, ...(st.arguments ? { arguments: st.arguments } : {}) });
      const r = yield* qemu.monitor.execute(st.arguments === undefined ? { execute: st.execute } : { execute: st.execute, arguments: st.arguments });
      this.log.push({ t: sim.now, kind: "reply", client, step: i, response: r });
      rep.response = r;
    } else if ("drain" in st) {
      const node = qemu.graph.findNode(st.drain.node);
      this.log.push({ t: sim.now, kind: "drain", client, step: i, node: st.drain.node });
      if (node) {
        let list = this.stepDrains.get(node.name);
        if (!list) this.stepDrains.set(node.name, (list = []));
        const d: StepDrain = { node, begun: false, begin: new Signal<void>(`drain of ${node.name} begun`) };
        list.push(d);
        // From the main loop, as QEMU's own callers drain: a nested poll, and the jobs it pauses are entered at once.
        yield* qemu.monitor.mainLoop(() => qemu.graph.drainedBeginPoll(node));
        d.begun = true;
        sim.notify(d.begin);
      } else rep.response = { error: { class: "GenericError", desc: `no node named '${st.drain.node}' at this point` } };
    } else if ("undrain" in st) {
      const d = this.stepDrains.get(st.undrain.node)?.pop();
      if (d && !d.begun) {
        rep.waitingFor = `the drained section on ${st.undrain.node} to begin`;
        while (!d.begun) yield wait(d.begin);
        rep.waitingFor = undefined;
      }
      this.log.push({ t: sim.now, kind: "undrain", client, step: i, node: st.undrain.node });
      if (d) yield* qemu.monitor.mainLoop(() => qemu.graph.drainedEnd(d.node)); // the jobs it resumes run at once, up to their next yield
      else rep.response = { error: { class: "GenericError", desc: `undrain of '${st.undrain.node}' without a drain step before it` } };
    } else if ("fault" in st) {
      const { device, ...rule } = st.fault;
      this.log.push({ t: sim.now, kind: "fault", client, step: i, device });
      qemu.devices.get(device)!.faults.add(diskFault(rule));
    } else if ("libvirt" in st) {
      const { api, ...args } = st.libvirt;
      this.log.push({ t: sim.now, kind: "cmd", client, step: i, execute: api, arguments: args, mgmt: true });
      try {
        const ret = yield* libvirtCall(this.dom!, client, st.libvirt);
        rep.response = { return: ret ?? {} };
      } catch (e) {
        if (!(e instanceof VirError)) throw e;
        rep.response = { error: { class: e.code as never, desc: e.message } };
      }
      this.log.push({ t: sim.now, kind: "reply", client, step: i, response: rep.response, mgmt: true });
    } else if ("poll" in st) {
      const p = st.poll;
      this.log.push({ t: sim.now, kind: "cmd", client, step: i, execute: "poll virDomainGetBlockJobInfo", arguments: { disk: p.disk, every: formatDuration(p.interval) }, mgmt: true });
      const samples = yield* poller(this.dom!, client, {
        disk: p.disk, intervalNs: p.interval, ...(p.count !== undefined ? { count: p.count } : {}),
        ...(p.until !== undefined ? { untilNs: this.world.t0 + p.until } : {}), ...(p["stop-when-gone"] ? { stopWhenGone: true } : {}),
      });
      const worst = samples.reduce((m, x) => Math.max(m, x.returnNs - x.callNs), 0);
      rep.response = { return: { calls: samples.length, errors: samples.filter((x) => x.error).length, "worst-latency-ns": worst } };
      this.log.push({ t: sim.now, kind: "reply", client, step: i, response: rep.response, mgmt: true });
    } else if ("heal" in st) {
      this.log.push({ t: sim.now, kind: "heal", client, step: i, device: st.heal.device });
      qemu.devices.get(st.heal.device)!.faults.clear();
    }
    rep.endNs = sim.now;
    rep.state = "done";
    this.active--;
    this.done++;
    this.observeJobs();
    for (const f of this.followers[i]) this.start(f);
    sim.notify(this.progress);
  }
}

/** Calls a libvirt-style API of sim/mgmt for a libvirt step. */
function libvirtCall(dom: Domain, client: string, c: LibvirtCall): Process<unknown> {
  switch (c.api) {
    case "virDomainGetBlockJobInfo": return getBlockJobInfo(dom, client, c.disk);
    case "virDomainBlockJobAbort": return blockJobAbort(dom, client, c.disk, { ...(c.async !== undefined ? { async: c.async } : {}), ...(c.pivot !== undefined ? { pivot: c.pivot } : {}) });
    case "virDomainBlockJobSetSpeed": return blockJobSetSpeed(dom, client, c.disk, c["bandwidth-mib"]);
    case "virDomainBlockPull": return blockPull(dom, client, c.disk, { ...(c["bandwidth-mib"] !== undefined ? { bandwidthMiB: c["bandwidth-mib"] } : {}), ...(c.base !== undefined ? { base: c.base } : {}) });
    case "virDomainBlockCopy": return blockCopy(dom, client, c.disk, { dest: c.dest, ...(c["bandwidth-mib"] !== undefined ? { bandwidthMiB: c["bandwidth-mib"] } : {}), ...(c.shallow !== undefined ? { shallow: c.shallow } : {}), ...(c["reuse-ext"] !== undefined ? { reuseExt: c["reuse-ext"] } : {}) });
    case "virDomainMigrate": return migrateWithStorage(dom, client, { dests: { [c.disk]: c.dest }, memoryPhaseNs: c["memory-phase"], ...(c["bandwidth-mib"] !== undefined ? { bandwidthMiB: c["bandwidth-mib"] } : {}) });
    case "virDomainBlockCommit": return blockCommit(dom, client, c.disk, {
      ...(c.top !== undefined ? { top: c.top } : {}), ...(c.base !== undefined ? { base: c.base } : {}), ...(c["bandwidth-mib"] !== undefined ? { bandwidthMiB: c["bandwidth-mib"] } : {}),
      ...(c.active !== undefined ? { active: c.active } : {}), ...(c["active-node"] !== undefined ? { activeNode: c["active-node"] } : {}),
    });
  }
}

/** A scenario device's latency as the disk model takes it (also for blocksim serve). */
export function latency(l: number | { min: number; max: number } | undefined): LatencyNs {
  if (l === undefined) return 0;
  return typeof l === "number" ? l : { minNs: l.min, maxNs: l.max };
}

/** A scenario fault rule as the disk model takes it (also for blocksim serve). */
export function diskFault(f: FaultRule): DiskFaultRule {
  return {
    ...(f.op !== undefined ? { op: f.op } : {}),
    errno: f.errno as DiskFaultRule["errno"],
    ...(f.range ? { startBytes: f.range.offset, endBytes: f.range.offset + f.range.length } : {}),
    ...(f.issuer !== undefined ? { issuer: f.issuer } : {}),
    ...(f.once !== undefined ? { once: f.once } : {}),
    ...(f["after-requests"] !== undefined ? { afterRequests: f["after-requests"] } : {}),
    ...(f.choose !== undefined ? { choose: f.choose } : {}),
  };
}

/** A short label for a step: its command, or what it does. */
export function stepLabel(st: Step): string {
  if ("execute" in st) return st.id ? `${st.id} (${st.execute})` : st.execute;
  const what = "drain" in st ? `drain ${st.drain.node}` : "undrain" in st ? `undrain ${st.undrain.node}` : "fault" in st ? `fault on ${st.fault.device}`
    : "heal" in st ? `heal ${st.heal.device}` : "libvirt" in st ? `${st.libvirt.api} ${st.libvirt.disk}` : `poll ${st.poll.disk}`;
  return st.id ? `${st.id} (${what})` : what;
}

/** Whether `got` has every field of `want` with an equal value (recursively for objects). */
export function subset(want: unknown, got: unknown): boolean {
  if (want === undefined) return true;
  if (want !== null && typeof want === "object" && !Array.isArray(want)) {
    if (got === null || typeof got !== "object" || Array.isArray(got)) return false;
    return Object.entries(want as Record<string, unknown>).every(([k, v]) => subset(v, (got as Record<string, unknown>)[k]));
  }
  if (Array.isArray(want)) return Array.isArray(got) && got.length === want.length && want.every((w, i) => subset(w, got[i]));
  return Object.is(want, got) || want === got;
}

// ---- expectations ----

/** Whether the scenario's `outcome` (one kind, or a list of kinds any of which will do) allows `kind`. */
function expectsOutcome(sc: Scenario, kind: string): boolean {
  return ([] as string[]).concat(sc.expect.outcome).includes(kind);
}

function checkOutcome(sc: Scenario, outcome: RunOutcome, t0: number): Failure[] {
  const want = sc.expect.outcome;
  if (expectsOutcome(sc, outcome.kind)) return [];
  return [{ kind: "outcome", message: `the run ended with ${describeOutcome(outcome, t0)}; expected ${Array.isArray(want) ? `one of ${want.join(", ")}` : want}` }];
}

function checkSteps(sc: Scenario, w: ScenarioSteps, outcome: RunOutcome): Failure[] {
  const out: Failure[] = [];
  sc.steps.forEach((st, i) => {
    const rep = w.steps[i];
    const name = `steps[${i}] ${rep.label}`;
    if (rep.state === "running" && outcome.kind === "qemu-crash") return; // the command QEMU died on: no reply is its answer
    // The command QEMU hangs on, in a scenario that expects the hang (a deadlock): no reply is its answer too.
    if (rep.state === "running" && outcome.kind === "deadlock" && expectsOutcome(sc, "deadlock")) return;
    if (rep.state !== "done") {
      out.push({ kind: "trigger", message: rep.state === "running" ? `${name} had not finished when the run ended${rep.waitingFor ? `: it waits for ${rep.waitingFor}` : ""}` : `${name} never ran: it was waiting for ${rep.waitingFor ?? w.waitingFor(i) ?? "its time"}` });
      return;
    }
    const r = rep.response;
    if (!("execute" in st) && !("libvirt" in st)) {
      if (r && "error" in r) out.push({ kind: "step", message: `${name}: ${r.error.desc}` });
      return;
    }
    const e = st.expect;
    const got = r === undefined ? "no reply" : "error" in r ? `error ${r.error.class}: ${r.error.desc}` : `return ${JSON.stringify(r.return)}`;
    const isErr = r !== undefined && "error" in r;
    if (!replyMatches(e, r, subset)) {
      const message = e === "ok" ? `${name} failed: ${got}` : e === "error" && !isErr ? `${name} succeeded but an error was expected` : `${name}: the reply differs`;
      out.push({ kind: "step", message, expected: [describeExpect(e)], observed: [got], timeNs: rep.endNs });
    }
  });
  return out;
}

function eventMatches(want: ExpectedEvent, e: { event: string; data: Record<string, unknown> }): boolean {
  if (typeof want === "string") return e.event === want;
  return e.event === want.event && subset(want.data, e.data);
}

/** One line for an event. */
export function eventLine(e: { event: string; data: Record<string, unknown> }): string {
  return `${e.event} ${JSON.stringify(e.data)}`;
}

function wantLine(w: ExpectedEvent): string {
  return typeof w === "string" ? w : `${w.event}${w.data ? ` ${JSON.stringify(w.data)}` : ""}`;
}

function checkEvents(sc: Scenario, log: LogEntry[], t0: number): Failure[] {
  const out: Failure[] = [];
  const moment = (ns: number) => formatTime(ns - t0);
  const events = log.filter((e): e is Extract<LogEntry, { kind: "event" }> => e.kind === "event");
  const spec = sc.expect.events;
  if (spec !== undefined) {
    const { order, sequence } = Array.isArray(spec) ? { order: "subsequence" as const, sequence: spec } : spec;
    if (order === "exact") {
      const n = Math.max(sequence.length, events.length);
      const at = [...Array(n).keys()].find((i) => sequence[i] === undefined || events[i] === undefined || !eventMatches(sequence[i], events[i]));
      if (at !== undefined) {
        const from = Math.max(0, at - 2);
        out.push({
          kind: "events",
          message: `the events differ from the expected exact sequence at event #${at}`,
          ...(events[at] ? { timeNs: events[at].t } : {}),
          expected: sequence.slice(from, at + 3).map((w, k) => `${from + k === at ? "=>" : "  "} #${from + k} ${wantLine(w)}`).concat(sequence[at] === undefined ? [`=> #${at} (no more events expected)`] : []),
          observed: events.slice(from, at + 3).map((e, k) => `${from + k === at ? "=>" : "  "} #${from + k} ${moment(e.t)} ${eventLine(e)}`).concat(events[at] === undefined ? [`=> #${at} (no more events)`] : []),
        });
      }
    } else {
      let j = 0, lastMatch = -1;
      for (let i = 0; i < events.length && j < sequence.length; i++) {
        if (eventMatches(sequence[j], events[i])) {
          j++;
          lastMatch = i;
        }
      }
      if (j < sequence.length) {
        out.push({
          kind: "events",
          message: `expected event #${j} of the sequence (${wantLine(sequence[j])}) ${j === 0 ? "never came" : `never came after event #${j - 1} (${wantLine(sequence[j - 1])}, seen at ${moment(events[lastMatch].t)})`}`,
          expected: sequence.map((w, k) => `${k < j ? "ok" : k === j ? "=>" : "  "} ${wantLine(w)}`),
          observed: events.slice(lastMatch + 1, lastMatch + 13).map((e) => `   ${moment(e.t)} ${eventLine(e)}`).concat(events.length > lastMatch + 13 ? [`   … ${events.length - lastMatch - 13} more`] : []),
        });
      }
    }
  }
  for (const w of sc.expect.never ?? []) {
    const hit = events.find((e) => eventMatches(w, e));
    if (hit) out.push({ kind: "never", message: `an event that must not happen did, at ${moment(hit.t)}: ${eventLine(hit)}`, expected: [`never ${wantLine(w)}`], observed: [eventLine(hit)], timeNs: hit.t });
  }
  return out;
}

function checkJobs(sc: Scenario, w: ScenarioSteps): Failure[] {
  const out: Failure[] = [];
  const spans = w.jobSpans();
  for (const [id, want] of Object.entries(sc.expect.jobs ?? {})) {
    const { status, error } = typeof want === "string" ? { status: want, error: undefined } : want;
    const mine = spans.filter((s) => s.job === id);
    const last = mine[mine.length - 1];
    if (!last) {
      out.push({ kind: "job", message: `job '${id}' never existed`, expected: [`${id}: ${status}`], observed: spans.length ? spans.map((s) => `${s.job}: ${s.statuses[s.statuses.length - 1][1]}`) : ["no jobs"] });
      continue;
    }
    const got = last.statuses[last.statuses.length - 1][1];
    if (got !== status) out.push({ kind: "job", message: `job '${id}' ended ${got}, expected ${status}`, expected: [`${id}: ${status}`], observed: [`${id}: ${got} (${last.statuses.map(([t, s]) => `${s} at ${formatTime(t - w.world.t0)}`).join(" -> ")})`] });
    if (error !== undefined) {
      const ev = [...w.log].reverse().find((e) => e.kind === "event" && (e.event === "BLOCK_JOB_COMPLETED" || e.event === "BLOCK_JOB_CANCELLED") && e.data.device === id) as { data: Record<string, unknown> } | undefined;
      const gotErr = ev?.data.error;
      if (gotErr !== error) out.push({ kind: "job", message: `job '${id}' ended with error ${JSON.stringify(gotErr ?? null)}, expected ${JSON.stringify(error)}` });
    }
  }
  return out;
}

function compareContent(want: readonly ClusterVersion[], wantCluster: number, got: Content): { differ: number; first: number[] } {
  const first: number[] = [];
  let differ = 0;
  for (let i = 0; i < want.length; i++) {
    const off = i * wantCluster;
    if (off >= got.offset + got.versions.length * got.clusterSizeBytes) break;
    // unspecified data (null-co without read-zeroes) may read as anything: a mirror discards it
    if (want[i].writeId !== UNSPECIFIED_VERSION.writeId && versionAt(got, off).writeId !== want[i].writeId) {
      differ++;
      if (first.length < 5) first.push(off);
    }
  }
  return { differ, first };
}

function checkData(sc: Scenario, w: ScenarioSteps, qemu: Qemu): Failure[] {
  const out: Failure[] = [];
  const byId = (id: string) => [...w.allJobs].reverse().find((j) => j.id === id);
  for (const d of sc.expect.data ?? []) {
    if ("backup" in d) {
      const j = byId(d.backup);
      if (!j || !(j.driver instanceof BackupDriver)) { out.push({ kind: "data", message: `data check: no backup job '${d.backup}' ran` }); continue; }
      if (j.ret !== 0 || j.cancelled) { out.push({ kind: "data", message: `data check: backup '${d.backup}' did not complete (ret ${j.ret}${j.cancelled ? ", cancelled" : ""}), so its target holds no full copy` }); continue; }
      const { source, target } = j.driver.opts;
      const r = compareContent(j.driver.pointInTime, source.clusterSizeBytes, target.content(0, target.sizeBytes));
      if (r.differ > 0) out.push({ kind: "data", message: `data check: backup '${d.backup}': the target differs from the source at job start in ${r.differ} cluster(s), first at offsets ${r.first.join(", ")}` });
    } else if ("mirror" in d) {
      const j = byId(d.mirror);
      if (!j || !(j.driver instanceof MirrorDriver)) { out.push({ kind: "data", message: `data check: no mirror (or active commit) job '${d.mirror}' ran` }); continue; }
      const at = w.targetAtPivot.get(j);
      if (!j.driver.pivoted || !j.driver.contentAtPivot || !at) { out.push({ kind: "data", message: `data check: mirror '${d.mirror}' never pivoted (complete it with job-complete once READY)` }); continue; }
      const r = compareContent(j.driver.contentAtPivot, j.driver.opts.source.clusterSizeBytes, at);
      if (r.differ > 0) out.push({ kind: "data", message: `data check: mirror '${d.mirror}': at the pivot the target differs from the source in ${r.differ} cluster(s), first at offsets ${r.first.join(", ")}` });
    } else {
      const [a, b] = d.same.map((n) => qemu.graph.findNode(n));
      if (!a || !b) { out.push({ kind: "data", message: `data check: node ${!a ? d.same[0] : d.same[1]} no longer exists at the end of the run` }); continue; }
      const ca = a.content(0, a.sizeBytes);
      const r = compareContent(ca.versions, ca.clusterSizeBytes, b.content(0, b.sizeBytes));
      if (a.sizeBytes !== b.sizeBytes) out.push({ kind: "data", message: `data check: ${d.same[0]} (${a.sizeBytes} bytes) and ${d.same[1]} (${b.sizeBytes} bytes) differ in size` });
      else if (r.differ > 0) out.push({ kind: "data", message: `data check: ${d.same[0]} and ${d.same[1]} differ in ${r.differ} cluster(s) at the end, first at offsets ${r.first.join(", ")}` });
    }
  }
  return out;
}

/** The invariants a scenario asks for, plus those it expects to see violated and those its race breaks. */
function invariantNames(sc: Scenario): string[] {
  const inv = sc.expect.invariants;
  const all = allInvariantNames();
  const names = new Set([...(inv === "all" ? all : inv === "none" ? [] : inv), ...sc.expect.violations, ...(sc.race?.breaks ?? [])]);
  return all.filter((n) => names.has(n));
}

function checkViolations(sc: Scenario, violations: Violation[], t0: number): Failure[] {
  const out: Failure[] = [];
  const expected = new Set(sc.expect.violations);
  const byName = new Map<string, Violation[]>();
  for (const v of violations) {
    if (expected.has(v.invariant)) continue;
    let list = byName.get(v.invariant);
    if (!list) byName.set(v.invariant, (list = []));
    list.push(v);
  }
  for (const [name, list] of byName) {
    const v = list[0];
    const more = list.length > 1 ? ` (and ${list.length - 1} more time${list.length === 2 ? "" : "s"})` : "";
    out.push({ kind: "invariant", message: `invariant ${name} violated at ${formatTime(v.timeNs - t0)}${v.job ? ` by job '${v.job}'` : ""}: ${v.detail}${more}`, timeNs: v.timeNs });
  }
  for (const name of expected) {
    if (!violations.some((v) => v.invariant === name)) out.push({ kind: "invariant", message: `expected invariant ${name} to be violated (the race reproduced), but it held` });
  }
  return out;
}
