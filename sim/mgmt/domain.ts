/**
 * A libvirt domain object with the QEMU driver's per-domain job rules of
 * libvirt v1.2.7–v1.2.9 (the era of seed 004), on the simulated QEMU.
 *
 * Rules modelled, from src/qemu/qemu_domain.[ch] at cefe0ba3d^ and cefe0ba3d
 * (../shared/research/libvirt-jobs.md has the reading notes):
 *
 * - One normal job slot (`job.active`, kinds QUERY, DESTROY, SUSPEND,
 *   MODIFY, ABORT, MIGRATION_OP, ASYNC_NESTED) and one async job slot
 *   (`job.asyncJob`: MIGRATION_OUT, MIGRATION_IN, SAVE, DUMP, SNAPSHOT)
 *   with an allowed-job mask.
 * - qemuDomainObjBeginJobInternal: the deadline is now + QEMU_JOB_WAIT_TIME
 *   (30 s), fixed once per call; (1) unless nested, wait on `asyncCond`
 *   while an async job is active and the kind is not in the mask; (2) wait
 *   on `job.cond` while ANY normal job is active — normal jobs exclude each
 *   other whatever their kind, QUERY included; (3) recheck (1) and retry
 *   from the max_queued check if an async job started meanwhile. On
 *   timeout: VIR_ERR_OPERATION_TIMEOUT "cannot acquire state change lock".
 *   With max_queued set and exceeded: VIR_ERR_OPERATION_FAILED.
 * - An async job start (BeginAsyncJob) also waits for the normal slot to be
 *   free, then takes only the async slot; its mask resets to
 *   DEFAULT_JOB_MASK = QUERY | DESTROY | ABORT; SetAsyncJobMask always adds
 *   DESTROY. Nested jobs (ASYNC_NESTED) skip the mask check: the async
 *   job's thread takes one around each monitor call
 *   (qemuDomainObjEnterMonitorAsync … ExitMonitor).
 * - EndJob signals ONE waiter of `job.cond` (virCondSignal); EndAsyncJob
 *   broadcasts `asyncCond`. Waiters are woken in FIFO order (pthreads
 *   promises no order; FIFO keeps runs deterministic). A woken waiter
 *   re-checks, so a caller arriving at the same instant may take the slot
 *   first (barging); the woken one then waits again, at the back.
 * - The domain mutex (vm lock) is not a separate object here: code between
 *   two yields runs atomically, which is what holding the vm lock gives.
 *   Every yield is a point where libvirt drops it: a condition wait, a
 *   monitor round trip (qemuDomainObjEnterMonitor unlocks the vm), a sleep.
 *   The job slot is NOT dropped at any of those.
 * - QEMU events (BLOCK_JOB_READY/COMPLETED/CANCELLED) are handled at once
 *   with no job, as qemuProcessHandleBlockJob did on the monitor's event
 *   thread in v1.2.9 (the worker thread with a MODIFY job came with
 *   1a92c7191, v1.2.14); the handler broadcasts the domain condition
 *   (vm->cond), which the event-waiting abort of `libvirt-1.2.17` uses.
 *
 * The counterfactual switch `queryBesideModify` (profile
 * `query-beside-modify`) lets a QUERY job in beside a held QUERY or MODIFY
 * job; no libvirt release did that. With it EndJob broadcasts.
 *
 * Every call, job request and release is a trace record (src
 * `mgmt:<client>`) and a `JobWait`/`CallRecord` that invariants and
 * histograms read.
 */
import type { Qemu } from "../qmp/qemu.js";
import type { QmpEvent, QmpResponse } from "../qmp/types.js";
import { Signal, sleep, wait, type Process, type Scheduler, type Timer } from "../scheduler/index.js";
import { domainNotRunning, maxQueuedExceeded, stateChangeLockTimeout, VirError } from "./errors.js";
import { DEFAULT_MGMT_BEHAVIOUR, type MgmtBehaviour } from "./profiles.js";

/** Normal job kinds (qemuDomainJob), in libvirt's enum order. */
export const JOB_KINDS = ["query", "destroy", "suspend", "modify", "abort", "migration-op", "async-nested"] as const;
export type JobKind = (typeof JOB_KINDS)[number];

/** Async job kinds (qemuDomainAsyncJob). */
export const ASYNC_JOB_KINDS = ["migration-out", "migration-in", "save", "dump", "snapshot"] as const;
export type AsyncJobKind = (typeof ASYNC_JOB_KINDS)[number];

/** DEFAULT_JOB_MASK (qemu_domain.h): what may run beside an async job unless it says otherwise. */
export const DEFAULT_JOB_MASK: readonly JobKind[] = ["query", "destroy", "abort"];

/**
 * The mask each async job sets in v1.2.9: migration out (qemuMigrationJobStart)
 * default | SUSPEND | MIGRATION_OP; migration in: none (only DESTROY); save
 * and dump keep the default; snapshot default | SUSPEND (its first phase).
 */
export const ASYNC_JOB_MASK: Readonly<Record<AsyncJobKind, readonly JobKind[]>> = {
  "migration-out": [...DEFAULT_JOB_MASK, "suspend", "migration-op"],
  "migration-in": [],
  save: DEFAULT_JOB_MASK,
  dump: DEFAULT_JOB_MASK,
  snapshot: [...DEFAULT_JOB_MASK, "suspend"],
};

/** QEMU_JOB_WAIT_TIME: 30 s. */
export const JOB_WAIT_TIME_NS = 30_000_000_000;

/** One API call by one client (a libvirt API invocation on its own thread). */
export interface Call {
  readonly id: number;
  readonly client: string;
  readonly api: string;
  readonly startNs: number;
}

/** A finished API call, for histograms. */
export interface CallRecord {
  call: Call;
  endNs: number;
  latencyNs: number;
  ok: boolean;
  error?: string;
  /** Total time this call spent waiting to acquire jobs. */
  jobWaitNs: number;
}

/** A job held from `fromNs` to `toNs` (filled in at EndJob). */
export interface JobHold {
  call: Call;
  kind: JobKind | `async:${AsyncJobKind}`;
  fromNs: number;
  toNs: number;
}

/** One BeginJob (or BeginAsyncJob) request and how it ended. */
export interface JobWait {
  call: Call;
  /** The kind asked for, or "async:<kind>". */
  kind: JobKind | `async:${AsyncJobKind}`;
  requestNs: number;
  /** When it got the slot, or failed. */
  endNs: number;
  waitedNs: number;
  ok: boolean;
  error?: string;
  /** Who held the domain when the request had to wait (api@client), empty if it did not wait. */
  blockedBy: string[];
}

interface Holder {
  kind: JobKind;
  call: Call;
  sinceNs: number;
}

interface AsyncHolder {
  kind: AsyncJobKind;
  call: Call;
  sinceNs: number;
  mask: Set<JobKind>;
  /** virDomainAbortJob asked for the async job to stop (job.asyncAbort). */
  abortRequested: boolean;
}

/** A disk of the domain and libvirt's view of its block job (virDomainDiskDef mirror fields). */
export interface Disk {
  /** The guest-visible name ("vda"), what the API's `path`/`disk` argument names. */
  readonly target: string;
  /** The QMP device name, also used as the block job id (libvirt's drive alias). */
  readonly device: string;
  /** What libvirt started on this disk, if anything it knows of. */
  jobType: BlockJobType | null;
  /** The copy destination of a copy job (or the base of an active commit). */
  mirror: string | null;
  /** virDomainDiskMirrorState. */
  mirrorState: "none" | "abort" | "pivot" | "ready";
  /** libvirt thinks a block job runs on this disk (diskPriv->blockjob in later versions). */
  blockJobActive: boolean;
}

export type BlockJobType = "pull" | "copy" | "commit" | "active-commit";

/** A libvirt domain event (VIR_DOMAIN_EVENT_ID_BLOCK_JOB_2) as the handler would queue it. */
export interface DomainEvent {
  timeNs: number;
  disk: string;
  type: BlockJobType | "unknown";
  status: "completed" | "failed" | "cancelled" | "ready";
}

export interface DiskConfig {
  target: string;
  device: string;
}

export interface DomainOptions {
  name?: string;
  behaviour?: Partial<MgmtBehaviour>;
  disks: DiskConfig[];
  /** One monitor round trip, split half before and half after the command (default 1 ms). */
  qmpRoundTripNs?: number;
  /** BeginJob's timeout (default QEMU_JOB_WAIT_TIME, 30 s). */
  jobWaitTimeNs?: number;
  /** qemu.conf max_queued (default 0: unlimited). */
  maxQueuedJobs?: number;
}

/** A condition variable with timed waits on the virtual clock. */
class Cond {
  private readonly waiters: { sig: Signal<"signal" | "timeout">; who: string }[] = [];
  constructor(private readonly sim: Scheduler, readonly name: string) {}

  /** virCondWaitUntil: true when signalled, false once `deadlineNs` has passed. */
  *waitUntil(who: string, deadlineNs: number): Process<boolean> {
    if (this.sim.now >= deadlineNs) return false;
    const w = { sig: new Signal<"signal" | "timeout">(`${this.name} (${who})`), who };
    this.waiters.push(w);
    const timer: Timer = this.sim.at(deadlineNs, `${this.name} timeout (${who})`, () => {
      this.remove(w);
      this.sim.notify(w.sig, "timeout");
    });
    const r = (yield wait(w.sig)) as "signal" | "timeout";
    this.sim.cancel(timer);
    return r === "signal";
  }

  /** virCondWait: no deadline. */
  *wait(who: string): Process<void> {
    const w = { sig: new Signal<"signal" | "timeout">(`${this.name} (${who})`), who };
    this.waiters.push(w);
    yield wait(w.sig);
  }

  /** virCondSignal: wakes the longest waiter. */
  signal(): void {
    const w = this.waiters.shift();
    if (w) this.sim.notify(w.sig, "signal");
  }

  /** virCondBroadcast. */
  broadcast(): void {
    for (const w of this.waiters.splice(0)) this.sim.notify(w.sig, "signal");
  }

  get waiting(): number {
    return this.waiters.length;
  }

  private remove(w: { sig: Signal<"signal" | "timeout"> }): void {
    const i = this.waiters.indexOf(w as (typeof this.waiters)[number]);
    if (i >= 0) this.waiters.splice(i, 1);
  }
}

const holderName = (c: Call) => `${c.api}@${c.client}`;

export class Domain {
  readonly name: string;
  readonly sim: Scheduler;
  readonly behaviour: MgmtBehaviour;
  readonly qmpRoundTripNs: number;
  readonly jobWaitTimeNs: number;
  readonly maxQueuedJobs: number;
  /** virDomainObjIsActive. */
  active = true;
  /** The normal job slot; more than one holder only under the counterfactual queryBesideModify. */
  readonly holders: Holder[] = [];
  asyncJob: AsyncHolder | null = null;
  /** priv->jobs_queued: callers waiting for or holding a job. */
  jobsQueued = 0;
  readonly disks: Disk[];
  readonly calls: CallRecord[] = [];
  readonly jobWaits: JobWait[] = [];
  /** Every job held and released so far, in release order. */
  readonly holds: JobHold[] = [];
  readonly events: DomainEvent[] = [];
  /** Model errors (a monitor call without a job, …): bugs in the model or its callers, never expected. */
  readonly modelErrors: string[] = [];
  private readonly jobCond: Cond;
  private readonly asyncCond: Cond;
  /** vm->cond (virDomainObjWait / virDomainObjSignal), signalled by the block job event handler. */
  private readonly vmCond: Cond;
  private nextCallId = 1;
  private readonly waitListeners: ((w: JobWait) => void)[] = [];
  private readonly callListeners: ((c: CallRecord) => void)[] = [];
  private readonly eventListeners: ((e: DomainEvent) => void)[] = [];
  private readonly openCalls = new Map<number, { jobWaitNs: number }>();

  constructor(readonly qemu: Qemu, opts: DomainOptions) {
    this.sim = qemu.sim;
    this.name = opts.name ?? "dom";
    this.behaviour = { ...DEFAULT_MGMT_BEHAVIOUR, ...opts.behaviour };
    this.qmpRoundTripNs = opts.qmpRoundTripNs ?? 1_000_000;
    this.jobWaitTimeNs = opts.jobWaitTimeNs ?? JOB_WAIT_TIME_NS;
    this.maxQueuedJobs = opts.maxQueuedJobs ?? 0;
    this.disks = opts.disks.map((d) => ({ ...d, jobType: null, mirror: null, mirrorState: "none", blockJobActive: false }));
    this.jobCond = new Cond(this.sim, `${this.name} job.cond`);
    this.asyncCond = new Cond(this.sim, `${this.name} job.asyncCond`);
    this.vmCond = new Cond(this.sim, `${this.name} vm->cond`);
    qemu.monitor.onEvent((e) => this.handleQemuEvent(e));
  }

  // ---- calls ----

  /** Starts an API call's bookkeeping; pair with endCall. */
  startCall(client: string, api: string): Call {
    const call: Call = { id: this.nextCallId++, client, api, startNs: this.sim.now };
    this.openCalls.set(call.id, { jobWaitNs: 0 });
    this.sim.record(`mgmt:${client}`, "call", { api, call: call.id });
    return call;
  }

  endCall(call: Call, error?: unknown): void {
    const open = this.openCalls.get(call.id);
    this.openCalls.delete(call.id);
    const rec: CallRecord = {
      call, endNs: this.sim.now, latencyNs: this.sim.now - call.startNs, ok: error === undefined,
      jobWaitNs: open?.jobWaitNs ?? 0,
      ...(error === undefined ? {} : { error: error instanceof Error ? error.message : String(error) }),
    };
    this.calls.push(rec);
    this.sim.record(`mgmt:${call.client}`, "return", { api: call.api, call: call.id, latencyNs: rec.latencyNs, ...(rec.error ? { error: rec.error } : {}) });
    for (const fn of this.callListeners) fn(rec);
  }

  /**
   * Runs `body` as API call `api` of `client`: records it, and rethrows a
   * VirError (the call returns -1); anything else is a simulator bug and
   * fails the run.
   */
  *api<T>(client: string, api: string, body: (call: Call) => Process<T>): Process<T> {
    const call = this.startCall(client, api);
    try {
      const r = yield* body(call);
      this.endCall(call);
      return r;
    } catch (e) {
      if (e instanceof VirError) this.endCall(call, e);
      throw e;
    }
  }

  onJobWait(fn: (w: JobWait) => void): void {
    this.waitListeners.push(fn);
  }

  onCall(fn: (c: CallRecord) => void): void {
    this.callListeners.push(fn);
  }

  onEvent(fn: (e: DomainEvent) => void): void {
    this.eventListeners.push(fn);
  }

  // ---- the job rules ----

  /** qemuDomainNestedJobAllowed: no async job, or the kind is in its mask. */
  nestedJobAllowed(kind: JobKind): boolean {
    return this.asyncJob === null || this.asyncJob.mask.has(kind);
  }

  /** Whether the normal slot admits `kind` now (libvirt: it is free). */
  slotAdmits(kind: JobKind): boolean {
    if (this.holders.length === 0) return true;
    return this.behaviour.queryBesideModify && kind === "query" && this.holders.every((h) => h.kind === "query" || h.kind === "modify");
  }

  /** The kinds of normal jobs held now (one in libvirt). */
  get activeJobs(): JobKind[] {
    return this.holders.map((h) => h.kind);
  }

  /** qemuDomainObjBeginJob (and BeginNestedJob for "async-nested"). Throws VirError on timeout or max_queued. */
  *beginJob(call: Call, kind: JobKind): Process<void> {
    if (kind === "async-nested") {
      if (!this.asyncJob) throw new VirError("VIR_ERR_INTERNAL_ERROR", "unexpected async job 0");
      if (this.asyncJob.call.id !== call.id) this.modelErrors.push(`${holderName(call)} took a nested job of an async job it does not own`);
    }
    yield* this.acquire(call, kind, kind === "async-nested");
  }

  /** qemuDomainObjBeginAsyncJob: waits like any job for the normal slot, then holds the async slot. */
  *beginAsyncJob(call: Call, kind: AsyncJobKind): Process<void> {
    yield* this.acquire(call, `async:${kind}`, false);
  }

  private *acquire(call: Call, kind: JobWait["kind"], nested: boolean): Process<void> {
    const sim = this.sim;
    const requestNs = sim.now;
    const deadline = requestNs + this.jobWaitTimeNs;
    const asNormal: JobKind = kind.startsWith("async:") ? "modify" : (kind as JobKind);
    const isAsyncStart = kind.startsWith("async:");
    const who = `${holderName(call)} ${kind}`;
    const blockedBy = new Set<string>();
    const noteBlockers = () => {
      for (const h of this.holders) blockedBy.add(holderName(h.call));
      if (this.asyncJob && !nested && !isAsyncStart) blockedBy.add(holderName(this.asyncJob.call));
    };
    this.jobsQueued++;
    sim.record(`mgmt:${call.client}`, "job-begin", { api: call.api, job: kind });
    const fail = (err: VirError): VirError => {
      this.jobsQueued--;
      this.finishWait(call, kind, requestNs, false, [...blockedBy], err.message);
      return err;
    };
    for (;;) {
      if (this.maxQueuedJobs > 0 && this.jobsQueued > this.maxQueuedJobs) throw fail(maxQueuedExceeded());
      // An async start is checked like a normal job against the mask (QEMU_JOB_ASYNC is never in a mask, so it waits for the async slot).
      while (!nested && !(isAsyncStart ? this.asyncJob === null : this.nestedJobAllowed(asNormal))) {
        noteBlockers();
        if (!(yield* this.asyncCond.waitUntil(who, deadline))) throw fail(stateChangeLockTimeout());
      }
      while (!(isAsyncStart ? this.holders.length === 0 : this.slotAdmits(asNormal))) {
        noteBlockers();
        if (!(yield* this.jobCond.waitUntil(who, deadline))) throw fail(stateChangeLockTimeout());
      }
      // An async job may have started while we waited: check the mask again.
      if (!nested && !(isAsyncStart ? this.asyncJob === null : this.nestedJobAllowed(asNormal))) continue;
      break;
    }
    if (isAsyncStart) {
      const ak = kind.slice("async:".length) as AsyncJobKind;
      this.asyncJob = { kind: ak, call, sinceNs: sim.now, mask: new Set(DEFAULT_JOB_MASK), abortRequested: false };
    } else {
      this.holders.push({ kind: asNormal, call, sinceNs: sim.now });
    }
    this.finishWait(call, kind, requestNs, true, [...blockedBy]);
  }

  private finishWait(call: Call, kind: JobWait["kind"], requestNs: number, ok: boolean, blockedBy: string[], error?: string): void {
    const w: JobWait = { call, kind, requestNs, endNs: this.sim.now, waitedNs: this.sim.now - requestNs, ok, blockedBy, ...(error ? { error } : {}) };
    this.jobWaits.push(w);
    const open = this.openCalls.get(call.id);
    if (open) open.jobWaitNs += w.waitedNs;
    this.sim.record(`mgmt:${call.client}`, ok ? "job-acquired" : "job-failed", {
      api: call.api, job: kind, waitedNs: w.waitedNs, ...(blockedBy.length ? { blockedBy } : {}), ...(error ? { error } : {}),
    });
    for (const fn of this.waitListeners) fn(w);
  }

  /** qemuDomainObjEndJob: frees the slot and signals one waiter (all, under the counterfactual). */
  endJob(call: Call): void {
    const i = this.holders.findIndex((h) => h.call.id === call.id);
    if (i < 0) {
      this.modelErrors.push(`${holderName(call)} ended a job it does not hold`);
      return;
    }
    const [h] = this.holders.splice(i, 1);
    this.jobsQueued--;
    this.holds.push({ call, kind: h!.kind, fromNs: h!.sinceNs, toNs: this.sim.now });
    this.sim.record(`mgmt:${call.client}`, "job-end", { api: call.api, job: h!.kind, heldNs: this.sim.now - h!.sinceNs });
    if (this.behaviour.queryBesideModify) this.jobCond.broadcast();
    else this.jobCond.signal();
  }

  /** qemuDomainObjEndAsyncJob: frees the async slot and broadcasts asyncCond. */
  endAsyncJob(call: Call): void {
    if (!this.asyncJob || this.asyncJob.call.id !== call.id) {
      this.modelErrors.push(`${holderName(call)} ended an async job it does not hold`);
      return;
    }
    this.holds.push({ call, kind: `async:${this.asyncJob.kind}`, fromNs: this.asyncJob.sinceNs, toNs: this.sim.now });
    this.sim.record(`mgmt:${call.client}`, "job-end", { api: call.api, job: `async:${this.asyncJob.kind}`, heldNs: this.sim.now - this.asyncJob.sinceNs });
    this.asyncJob = null;
    this.jobsQueued--;
    this.asyncCond.broadcast();
  }

  /** qemuDomainObjSetAsyncJobMask: DESTROY is always allowed. */
  setAsyncJobMask(kinds: readonly JobKind[]): void {
    if (!this.asyncJob) return;
    this.asyncJob.mask = new Set([...kinds, "destroy"]);
  }

  /** Whether `call` holds a normal job (or is the async owner inside a nested job). */
  isHolding(call: Call): boolean {
    return this.holders.some((h) => h.call.id === call.id);
  }

  // ---- the monitor ----

  /**
   * One QMP command under the caller's job: qemuDomainObjEnterMonitor (the
   * vm lock is dropped), the round trip, ExitMonitor. With `nested`, the
   * call is the async job's owner and takes an ASYNC_NESTED job around it
   * (qemuDomainObjEnterMonitorAsync).
   */
  *qmp(call: Call, execute: string, args?: Record<string, unknown>, nested = false): Process<QmpResponse> {
    if (nested) yield* this.beginJob(call, "async-nested"); // a failure here leaves nothing to end
    try {
      if (!this.isHolding(call)) this.modelErrors.push(`${holderName(call)} used the monitor without a job (${execute})`);
      if (!this.active) throw new VirError("VIR_ERR_OPERATION_FAILED", "monitor connection closed (domain is not running)");
      const half = Math.floor(this.qmpRoundTripNs / 2);
      if (half > 0) yield sleep(half);
      const r = yield* this.qemu.monitor.execute(args === undefined ? { execute } : { execute, arguments: args });
      if (this.qmpRoundTripNs - half > 0) yield sleep(this.qmpRoundTripNs - half);
      return r;
    } finally {
      if (nested) this.endJob(call);
    }
  }

  /**
   * A monitor round trip for a command the QMP layer does not simulate
   * (query-migrate, stop, migrate_cancel…): the same job and lock rules, the
   * round-trip time, no effect on QEMU.
   */
  *monitorRoundTrip(call: Call, what: string, nested = false): Process<void> {
    if (nested) yield* this.beginJob(call, "async-nested");
    try {
      if (!this.isHolding(call)) this.modelErrors.push(`${holderName(call)} used the monitor without a job (${what})`);
      if (!this.active) throw new VirError("VIR_ERR_OPERATION_FAILED", "monitor connection closed (domain is not running)");
      this.sim.record(`mgmt:${call.client}`, "monitor", { what });
      if (this.qmpRoundTripNs > 0) yield sleep(this.qmpRoundTripNs);
    } finally {
      if (nested) this.endJob(call);
    }
  }

  // ---- disks and events ----

  /** qemuDiskPathToAlias: the disk named by target or device, or OPERATION_INVALID... as libvirt words it. */
  disk(name: string): Disk {
    const d = this.disks.find((x) => x.target === name || x.device === name);
    if (!d) throw new VirError("VIR_ERR_INVALID_ARG", `No device found for specified path`);
    return d;
  }

  /** Throws "domain is not running" unless active (checked right after BeginJob). */
  checkActive(): void {
    if (!this.active) throw domainNotRunning();
  }

  /** virDomainObjWait: until the domain condition is signalled (no timeout). */
  *waitDomainCond(call: Call): Process<void> {
    yield* this.vmCond.wait(holderName(call));
    if (!this.active) throw domainNotRunning();
  }

  /** qemuProcessHandleBlockJob (v1.2.9): no job, only the vm lock; updates the disk and queues the event. */
  private handleQemuEvent(e: QmpEvent): void {
    const kind = e.event;
    if (kind !== "BLOCK_JOB_READY" && kind !== "BLOCK_JOB_COMPLETED" && kind !== "BLOCK_JOB_CANCELLED") return;
    const d = this.disks.find((x) => x.device === e.data.device);
    if (!d) return;
    // The type comes from QEMU's event (stream → pull, mirror → copy, commit → commit), as in v1.2.9.
    const qt = e.data.type;
    let type: DomainEvent["type"] = qt === "stream" ? "pull" : qt === "mirror" ? "copy" : qt === "commit" ? "commit" : "unknown";
    if (type === "commit" && d.jobType === "active-commit") type = "active-commit";
    let status: DomainEvent["status"];
    if (kind === "BLOCK_JOB_READY") {
      status = "ready";
      // Only if libvirt already recorded the mirror: it does so after ExitMonitor of the drive-mirror call, so a
      // READY handled during that round trip is missed (GetBlockJobInfo's snooping then recovers it).
      if (d.mirror && (type === "copy" || type === "active-commit")) d.mirrorState = "ready";
    } else {
      status = kind === "BLOCK_JOB_CANCELLED" ? "cancelled" : e.data.error !== undefined ? "failed" : "completed";
      // A pivot that completed makes the mirror the disk's source; anything else drops the mirror.
      d.mirror = null;
      d.mirrorState = "none";
      d.jobType = null;
      d.blockJobActive = false;
    }
    const ev: DomainEvent = { timeNs: this.sim.now, disk: d.target, type, status };
    this.events.push(ev);
    this.sim.record(`mgmt:${this.name}`, "event", { disk: d.target, type, status });
    for (const fn of this.eventListeners) fn(ev);
    this.vmCond.broadcast();
  }

  /** Marks the domain shut off (the QEMU process was killed); waiters see it when they next check. */
  markInactive(): void {
    this.active = false;
    this.vmCond.broadcast();
  }

  /** Waiters on each condition, for deadlock reports and tests. */
  waiting(): { job: number; async: number; vm: number } {
    return { job: this.jobCond.waiting, async: this.asyncCond.waiting, vm: this.vmCond.waiting };
  }
}
