/**
 * Runs a scenario: builds a simulated QEMU (sim/qmp createQemu) under the
 * scenario's profile, declares its devices, adds its nodes with
 * blockdev-add, starts its guests, runs each step as a QMP client process
 * that waits for its trigger, then checks the expectations.
 *
 * A run ends when every step has run (or can no longer be triggered: no
 * step waits on time and no job is active) and no job is active any more;
 * then the guests stop and the kernel finishes what is in flight. Same
 * scenario, seed, profile and strategy ⇒ the same report and trace hash.
 */
import { BackupDriver } from "../jobs/drivers/backup.js";
import { MirrorDriver } from "../jobs/drivers/mirror.js";
import type { Job } from "../jobs/job.js";
import { createQemu, type Qemu } from "../qmp/qemu.js";
import { blockCommit, blockCopy, blockJobAbort, blockJobSetSpeed, blockPull, Domain, getBlockJobInfo, mgmtBehaviour, poller, qemuBehaviour, QUERY_WAIT_RULE, VirError, watchQueryWait } from "../mgmt/index.js";
import type { QmpResponse } from "../qmp/types.js";
import { attachDevice, changeAioContext, startGuest, type BlockNode, type GuestWorkload } from "../block/index.js";
import { versionAt, type ActiveFault, type ClusterVersion, type Content, type FaultRule as DiskFaultRule, type LatencyNs } from "../disk/index.js";
import {
  AioContexts,
  FifoStrategy, join, PctStrategy, RandomStrategy, ReplayStrategy, Scheduler, Signal, settle, sleep, wait,
  type ChoiceLog, type Outcome, type Process, type ProcHandle, type Strategy, type TraceRecord,
} from "../scheduler/index.js";
import { checkRun, INVARIANTS, type CheckViolation } from "../check/index.js";
import type { LoadedScenario } from "./loader.js";
import { describeExpect, replyMatches } from "./reply-expect.js";
import type { ExpectedEvent, FaultRule, LibvirtCall, Scenario, Step } from "./schema.js";
import { formatDuration } from "./units.js";

export type StrategyName = "fifo" | "random" | "pct";

export interface RunOptions {
  /** Overrides the scenario's seed / profile / strategy. */
  seed?: number | string;
  profile?: string;
  strategy?: StrategyName;
  /** Replays this choice log instead of asking a strategy. */
  replay?: ChoiceLog;
  /** Keep the kernel trace in the report (the trace hash is the same either way). */
  keepTrace?: boolean;
  /**
   * Called on every QMP event and step end with the virtual time and the
   * number of events so far. It observes only (the CLI's progress line); it
   * must not touch the simulation.
   */
  onProgress?: (virtualNs: number, events: number) => void;
}

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
  /** What it was waiting for when the run ended (if it never ran). */
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
  strategy: StrategyName | "replay";
  /** Whether every expectation held. */
  ok: boolean;
  failures: Failure[];
  outcome: Outcome;
  endTimeNs: number;
  kernelSteps: number;
  hash: string;
  choices: ChoiceLog;
  log: LogEntry[];
  steps: StepReport[];
  jobs: JobSpan[];
  /** Every job with an id as the run ended: what a budget end's summary shows. */
  jobsAtEnd: { id: string; type: string; status: string; offset: number; len: number }[];
  violations: CheckViolation[];
  /** Drained sections begun by steps or by QEMU: [node, beginNs, endNs | undefined]. */
  drains: { node: string; beginNs: number; endNs?: number }[];
  devices: { name: string; submitted: number; completed: number; faulted: number }[];
  trace?: TraceRecord[];
}

/** Picks the strategy object for a run. */
export function makeStrategy(name: StrategyName, seed: number | string): Strategy {
  if (name === "random") return new RandomStrategy(seed);
  if (name === "pct") return new PctStrategy(seed);
  return new FifoStrategy();
}

/** Runs a loaded scenario once. Never throws for a failing expectation; the report says what failed. */
export function runScenario(loaded: LoadedScenario, opts: RunOptions = {}): RunReport {
  const sc = loaded.scenario;
  const seed = opts.seed ?? sc.seed;
  const profile = opts.profile ?? sc.profile;
  const strategyName = opts.strategy ?? sc.strategy;
  const strategy = opts.replay ? new ReplayStrategy(opts.replay) : makeStrategy(strategyName, seed);
  const behaviour = qemuBehaviour(profile);
  const sim = new Scheduler({ seed, strategy, trace: !!opts.keepTrace, maxSteps: sc.limits.steps, maxTimeNs: sc.limits.time, maxInstantSteps: sc.limits["instant-steps"] });
  const qemu = createQemu(sim, behaviour);
  const names = invariantNames(sc);
  const dom = sc.domain ? new Domain(qemu, { behaviour: mgmtBehaviour(profile), disks: sc.domain.disks, qmpRoundTripNs: sc.domain["qmp-round-trip"] }) : undefined;
  const mgmtViolations = dom && (sc.expect.invariants === "all" || names.includes(QUERY_WAIT_RULE) || sc.expect.violations.includes(QUERY_WAIT_RULE))
    ? watchQueryWait(dom, sc.domain!["query-wait-bound"]) : [];
  const w = new World(sim, qemu, sc, opts.onProgress, dom);
  const check = checkRun(qemu, names.filter((n) => n !== QUERY_WAIT_RULE));
  sim.spawn("scenario", w.main());
  const result = sim.run();
  const failures: Failure[] = [...w.setupFailures];
  const violations: CheckViolation[] = [
    ...check.finish(result),
    ...mgmtViolations.map((v) => ({ invariant: v.rule, timeNs: v.timeNs, detail: v.detail })),
  ];
  if (w.setupFailures.length === 0) {
    failures.push(...checkOutcome(sc, result.outcome));
    failures.push(...checkSteps(sc, w));
    failures.push(...checkEvents(sc, w.log));
    failures.push(...checkJobs(sc, w));
    failures.push(...checkData(sc, w, qemu));
    failures.push(...checkViolations(sc, violations));
  }
  return {
    name: sc.name,
    file: loaded.file,
    profile,
    seed,
    strategy: opts.replay ? "replay" : strategyName,
    ok: failures.length === 0,
    failures,
    outcome: result.outcome,
    endTimeNs: result.endTimeNs,
    kernelSteps: result.steps,
    hash: result.hash,
    choices: result.choices,
    log: w.log,
    steps: w.steps,
    jobs: w.jobSpans(),
    jobsAtEnd: w.allJobs.filter((j) => j.id !== null).map((j) => ({ id: String(j.id), type: j.type, status: j.status, offset: j.progressCurrent, len: j.progressTotal })),
    violations,
    drains: w.drains,
    devices: [...qemu.devices.values()].map((d) => ({ name: d.name, submitted: d.stats.submitted, completed: d.stats.completed, faulted: d.stats.faulted })),
    ...(result.trace ? { trace: result.trace } : {}),
  };
}

const ACTIVE = new Set(["running", "waiting", "aborting"]);

/** The simulated world of one run and the processes that drive it. */
class World {
  readonly log: LogEntry[] = [];
  readonly steps: StepReport[];
  readonly setupFailures: Failure[] = [];
  readonly allJobs: Job[] = [];
  readonly drains: { node: string; beginNs: number; endNs?: number }[] = [];
  /** Mirror jobs' target content at the pivot. */
  readonly targetAtPivot = new Map<Job, Content>();
  private readonly progress = new Signal<void>("scenario progress");
  private readonly seenStatuses = new Map<string, Set<string>>();
  private readonly seenJobs = new Set<Job>();
  private readonly guests: GuestWorkload[] = [];
  private readonly faults = new Map<string, ActiveFault[]>();
  private readonly stepDrains = new Map<string, { node: BlockNode; begun: boolean }[]>();
  private readonly sleeping = new Set<number>();
  /** Steps whose process has reached its trigger wait (before that, nobody knows what it waits for). */
  private readonly armed = new Set<number>();
  private t0 = 0;

  private events = 0;

  constructor(
    readonly sim: Scheduler, readonly qemu: Qemu, readonly sc: Scenario,
    private readonly onProgress?: (virtualNs: number, events: number) => void,
    private readonly dom?: Domain,
  ) {
    this.steps = sc.steps.map((st, i) => ({ index: i, label: stepLabel(st), client: st.client ?? "client", state: "waiting" }));
    qemu.monitor.onEvent((e) => {
      this.log.push({ t: sim.now, kind: "event", event: e.event, data: e.data });
      this.onProgress?.(sim.now, ++this.events);
      this.observeJobs();
      if (e.event === "JOB_STATUS_CHANGE") {
        const id = String(e.data.id);
        let s = this.seenStatuses.get(id);
        if (!s) this.seenStatuses.set(id, (s = new Set()));
        s.add(String(e.data.status));
      }
      sim.notify(this.progress);
    });
    qemu.graph.observe((ev) => {
      if (ev.type === "drained-begin") this.drains.push({ node: ev.node.name, beginNs: ev.timeNs });
      else if (ev.type === "drained-end") {
        const open = [...this.drains].reverse().find((d) => d.node === ev.node.name && d.endNs === undefined);
        if (open) open.endNs = ev.timeNs;
      }
    });
  }

  /** Records jobs as they appear, their status changes, and mirror targets at the pivot. */
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
    for (const e of this.log) {
      if (e.kind !== "event" || e.event !== "JOB_STATUS_CHANGE") continue;
      const id = String(e.data.id), status = String(e.data.status);
      let span = open.get(id);
      if (!span || status === "created") {
        const k = spans.filter((s) => s.job === id).length;
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

  *main(): Process<void> {
    const sim = this.sim, sc = this.sc, qemu = this.qemu;
    // Devices.
    for (const d of sc.devices) {
      try {
        qemu.addDevice({
          name: d.name, sizeBytes: d.size, clusterSizeBytes: d["cluster-size"],
          readLatencyNs: latency(d["read-latency"] ?? d.latency), writeLatencyNs: latency(d["write-latency"] ?? d.latency),
          bandwidthBytesPerSec: d.bandwidth, queueDepth: d["queue-depth"], faults: d.faults.map(diskFault),
        });
      } catch (e) {
        this.setupFailures.push({ kind: "setup", message: `device "${d.name}": ${(e as Error).message}` });
        return;
      }
    }
    // Data already on the devices (written before the run, faults not applied).
    // Every device is filled at once (each by its own process), so setup lasts as long as the slowest device.
    const fills: ProcHandle[] = [];
    for (const d of sc.devices) {
      if (d.data.length === 0) continue;
      const dev = qemu.devices.get(d.name)!;
      fills.push(sim.spawn(`fill ${d.name}`, (function* (): Process<void> {
        const rules = dev.faults.list().map((f) => f.rule);
        dev.faults.clear();
        for (const r of d.data) yield dev.io({ op: "write", offset: r.offset, bytes: r.length, issuer: "qemu-img" });
        for (const r of rules) dev.faults.add(r);
      })()));
    }
    for (const f of fills) yield join(f);
    // IOThreads, then nodes, through the monitor as a management layer would.
    for (const id of sc.iothreads) {
      const r = yield* qemu.monitor.execute({ execute: "object-add", arguments: { "qom-type": "iothread", id } });
      if ("error" in r) {
        this.setupFailures.push({ kind: "setup", message: `iothread "${id}": object-add failed: ${r.error.class}: ${r.error.desc}` });
        return;
      }
    }
    for (const n of sc.nodes) {
      const r = yield* qemu.monitor.execute({ execute: "blockdev-add", arguments: n as unknown as Record<string, unknown> });
      if ("error" in r) {
        this.setupFailures.push({ kind: "setup", message: `node "${n["node-name"]}": blockdev-add failed: ${r.error.class}: ${r.error.desc}` });
        return;
      }
    }
    this.t0 = sim.now;
    // Guests.
    for (const g of sc.guests) {
      const node = qemu.graph.findNode(g.node)!;
      let backend;
      try {
        backend = qemu.graph.createBackend({ name: g.drive ?? g.name, issuer: g.name, root: node, queueWhenDrained: true });
        // The guest's device: realized in its IOThread (-device …,iothread=), the disk's graph moves there.
        const iothread = g.iothread === undefined ? undefined : AioContexts.of(sim).get(g.iothread)!;
        if (iothread) yield* changeAioContext(qemu.graph, node, iothread, backend);
        attachDevice(backend);
        const pattern = typeof g.pattern === "string" ? g.pattern : { kind: "hot" as const, offsetBytes: g.pattern.hot.offset, bytes: g.pattern.hot.length, hotFraction: g.pattern.hot.fraction };
        const cfg = {
          name: g.name, backend, pattern, readFraction: g["read-fraction"],
          requestBytes: typeof g["request-size"] === "number" ? g["request-size"] : { minBytes: g["request-size"].min, maxBytes: g["request-size"].max },
          alignBytes: g.align, iodepth: g.iodepth,
          intervalNs: typeof g.interval === "number" ? g.interval : { minNs: g.interval.min, maxNs: g.interval.max },
          regionOffsetBytes: g.region?.offset, regionBytes: g.region?.length,
          maxRequests: g["max-requests"], stopAtNs: g.stop === undefined ? undefined : this.t0 + g.stop,
          context: iothread?.id,
        };
        if (g.start === 0) this.guests.push(startGuest(sim, cfg));
        else {
          const guests = this.guests;
          sim.spawn(`${g.name} start`, (function* (): Process<void> {
            yield sleep(g.start);
            guests.push(startGuest(sim, cfg));
          })(), { daemon: true });
        }
      } catch (e) {
        const msg = (e as Error).message;
        this.setupFailures.push({ kind: "setup", message: msg.startsWith(`guest "${g.name}"`) ? msg : `guest "${g.name}": ${msg}` });
        return;
      }
    }
    // Steps, each its own client process.
    sc.steps.forEach((st, i) => sim.spawn(`step ${i} ${this.steps[i].label}`, this.step(st, i), { daemon: true }));
    // Wait for the steps to run (or to be stuck), then for the jobs to settle.
    // settle(): let every process woken at this instant reach its next wait before judging (a step may be about to sleep).
    while (!this.allStepsSettled() || this.jobsActive()) {
      yield wait(this.progress);
      yield settle();
    }
    for (const g of this.guests) g.stop();
  }

  private allStepsSettled(): boolean {
    if (this.steps.every((s) => s.state === "done")) return true;
    if (this.steps.some((s) => s.state === "running") || this.sleeping.size > 0 || this.armed.size < this.steps.length) return false;
    return !this.jobsActive(); // every remaining step waits for something only a job could bring
  }

  private jobsActive(): boolean {
    this.observeJobs();
    return this.qemu.jm.jobs.some((j) => j.id !== null && !j.freed && (
      ACTIVE.has(j.status) || (j.status === "paused" && !j.userPaused) || (j.status === "pending" && j.autoFinalize) || (j.status === "created" && j.started)
    ));
  }

  private *sleepFor(i: number, ns: number): Process<void> {
    if (ns <= 0) return;
    this.sleeping.add(i);
    yield sleep(ns);
    this.sleeping.delete(i);
  }

  private *until(cond: () => boolean, what: string, rep: StepReport): Process<void> {
    rep.waitingFor = what;
    while (!cond()) yield wait(this.progress);
    rep.waitingFor = undefined;
  }

  private *step(st: Step, i: number): Process<void> {
    const sim = this.sim, rep = this.steps[i], qemu = this.qemu;
    this.armed.add(i);
    // The trigger.
    if (st.at !== undefined) yield* this.sleepFor(i, this.t0 + st.at - sim.now);
    else if (st.after !== undefined) {
      const j = this.sc.steps.findIndex((s) => s.id === st.after);
      yield* this.until(() => this.steps[j].state === "done", `the reply to step "${st.after}"`, rep);
    } else if (st["on-event"] !== undefined) {
      const m = st["on-event"];
      const want = m.count;
      yield* this.until(() => this.log.filter((e) => e.kind === "event" && e.event === m.event && subset(m.data, e.data)).length >= want,
        `event ${m.event}${m.data ? ` ${JSON.stringify(m.data)}` : ""}${want > 1 ? ` (${want} times)` : ""}`, rep);
    } else if (st["on-job"] !== undefined) {
      const { id, status } = st["on-job"];
      yield* this.until(() => this.seenStatuses.get(id)?.has(status) ?? false, `job '${id}' to reach status ${status}`, rep);
    } else if (i > 0) {
      yield* this.until(() => this.steps[i - 1].state === "done", `the previous step (steps[${i - 1}] ${this.steps[i - 1].label})`, rep);
    }
    yield* this.sleepFor(i, st.delay);
    rep.state = "running";
    rep.startNs = sim.now;
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
        const d = { node, begun: false };
        list.push(d);
        // From the main loop, as QEMU's own callers drain: a nested poll, and the jobs it pauses are entered at once.
        yield* qemu.monitor.mainLoop(() => qemu.graph.drainedBeginPoll(node));
        d.begun = true;
      } else rep.response = { error: { class: "GenericError", desc: `no node named '${st.drain.node}' at this point` } };
    } else if ("undrain" in st) {
      const d = this.stepDrains.get(st.undrain.node)?.pop();
      if (d && !d.begun) yield* this.until(() => d.begun, `the drained section on ${st.undrain.node} to begin`, rep);
      this.log.push({ t: sim.now, kind: "undrain", client, step: i, node: st.undrain.node });
      if (d) yield* qemu.monitor.mainLoop(() => qemu.graph.drainedEnd(d.node)); // the jobs it resumes run at once, up to their next yield
      else rep.response = { error: { class: "GenericError", desc: `undrain of '${st.undrain.node}' without a drain step before it` } };
    } else if ("fault" in st) {
      const { device, ...rule } = st.fault;
      this.log.push({ t: sim.now, kind: "fault", client, step: i, device });
      const f = qemu.devices.get(device)!.faults.add(diskFault(rule));
      let list = this.faults.get(device);
      if (!list) this.faults.set(device, (list = []));
      list.push(f);
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
        ...(p.until !== undefined ? { untilNs: this.t0 + p.until } : {}), ...(p["stop-when-gone"] ? { stopWhenGone: true } : {}),
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
    this.observeJobs();
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
    case "virDomainBlockCommit": return blockCommit(dom, client, c.disk, {
      ...(c.top !== undefined ? { top: c.top } : {}), ...(c.base !== undefined ? { base: c.base } : {}), ...(c["bandwidth-mib"] !== undefined ? { bandwidthMiB: c["bandwidth-mib"] } : {}),
      ...(c.active !== undefined ? { active: c.active } : {}), ...(c["active-node"] !== undefined ? { activeNode: c["active-node"] } : {}),
    });
  }
}

function latency(l: number | { min: number; max: number } | undefined): LatencyNs {
  if (l === undefined) return 0;
  return typeof l === "number" ? l : { minNs: l.min, maxNs: l.max };
}

function diskFault(f: FaultRule): DiskFaultRule {
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

function checkOutcome(sc: Scenario, outcome: Outcome): Failure[] {
  if (outcome.kind === sc.expect.outcome) return [];
  return [{ kind: "outcome", message: `the run ended with ${describeOutcome(outcome)}; expected ${sc.expect.outcome}` }];
}

/** One line for a kernel outcome. */
export function describeOutcome(o: Outcome): string {
  switch (o.kind) {
    case "ok": return "ok";
    case "failure": return `a failure at ${formatDuration(o.timeNs)} in ${o.process}: ${o.error}`;
    case "deadlock": return `a deadlock at ${formatDuration(o.timeNs)}: ${o.waiting.map((w) => `${w.process} waits for ${w.on}`).join("; ") || "nothing runnable"}`;
    case "step-budget": return `the step limit (${o.maxSteps} kernel steps) at ${formatDuration(o.timeNs)}`;
    case "time-budget": return `the time limit (${formatDuration(o.maxTimeNs)}) with work still due at ${formatDuration(o.nextEventNs)}`;
    case "zeno": return `a Zeno run: virtual time stood still at ${formatDuration(o.timeNs)} for ${o.steps} kernel steps; spinning: ${o.spinning.join(", ")}`;
    case "divergence": return `a divergence from the replayed choice log at choice #${o.index}: ${o.error}`;
  }
}

function checkSteps(sc: Scenario, w: World): Failure[] {
  const out: Failure[] = [];
  sc.steps.forEach((st, i) => {
    const rep = w.steps[i];
    const name = `steps[${i}] ${rep.label}`;
    if (rep.state !== "done") {
      out.push({ kind: "trigger", message: rep.state === "running" ? `${name} had not finished when the run ended` : `${name} never ran: it was waiting for ${rep.waitingFor ?? "its time"}` });
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

function checkEvents(sc: Scenario, log: LogEntry[]): Failure[] {
  const out: Failure[] = [];
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
          observed: events.slice(from, at + 3).map((e, k) => `${from + k === at ? "=>" : "  "} #${from + k} ${formatDuration(e.t)} ${eventLine(e)}`).concat(events[at] === undefined ? [`=> #${at} (no more events)`] : []),
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
          message: `expected event #${j} of the sequence (${wantLine(sequence[j])}) ${j === 0 ? "never came" : `never came after event #${j - 1} (${wantLine(sequence[j - 1])}, seen at ${formatDuration(events[lastMatch].t)})`}`,
          expected: sequence.map((w, k) => `${k < j ? "ok" : k === j ? "=>" : "  "} ${wantLine(w)}`),
          observed: events.slice(lastMatch + 1, lastMatch + 13).map((e) => `   ${formatDuration(e.t)} ${eventLine(e)}`).concat(events.length > lastMatch + 13 ? [`   … ${events.length - lastMatch - 13} more`] : []),
        });
      }
    }
  }
  for (const w of sc.expect.never ?? []) {
    const hit = events.find((e) => eventMatches(w, e));
    if (hit) out.push({ kind: "never", message: `an event that must not happen did, at ${formatDuration(hit.t)}: ${eventLine(hit)}`, expected: [`never ${wantLine(w)}`], observed: [eventLine(hit)], timeNs: hit.t });
  }
  return out;
}

function checkJobs(sc: Scenario, w: World): Failure[] {
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
    if (got !== status) out.push({ kind: "job", message: `job '${id}' ended ${got}, expected ${status}`, expected: [`${id}: ${status}`], observed: [`${id}: ${got} (${last.statuses.map(([t, s]) => `${s}@${formatDuration(t)}`).join(" -> ")})`] });
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
    if (versionAt(got, off).writeId !== want[i].writeId) {
      differ++;
      if (first.length < 5) first.push(off);
    }
  }
  return { differ, first };
}

function checkData(sc: Scenario, w: World, qemu: Qemu): Failure[] {
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

/** The invariants a scenario asks for, plus those it expects to see violated. */
function invariantNames(sc: Scenario): string[] {
  const inv = sc.expect.invariants;
  const all = [...INVARIANTS.map((i) => i.name), QUERY_WAIT_RULE];
  const names = new Set([...(inv === "all" ? all : inv === "none" ? [] : inv), ...sc.expect.violations]);
  return all.filter((n) => names.has(n));
}

function checkViolations(sc: Scenario, violations: CheckViolation[]): Failure[] {
  const out: Failure[] = [];
  const expected = new Set(sc.expect.violations);
  const byName = new Map<string, CheckViolation[]>();
  for (const v of violations) {
    if (expected.has(v.invariant)) continue;
    let list = byName.get(v.invariant);
    if (!list) byName.set(v.invariant, (list = []));
    list.push(v);
  }
  for (const [name, list] of byName) {
    const v = list[0];
    const more = list.length > 1 ? ` (and ${list.length - 1} more time${list.length === 2 ? "" : "s"})` : "";
    out.push({ kind: "invariant", message: `invariant ${name} violated at ${formatDuration(v.timeNs)}${v.job ? ` by job '${v.job}'` : ""}: ${v.detail}${more}`, timeNs: v.timeNs });
  }
  for (const name of expected) {
    if (!violations.some((v) => v.invariant === name)) out.push({ kind: "invariant", message: `expected invariant ${name} to be violated (the race reproduced), but it held` });
  }
  return out;
}
