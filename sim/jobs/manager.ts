/**
 * The job list (QEMU's global `jobs`): creates jobs and transactions, checks
 * job ids, and is the JobContext every job reports to — events out, broken
 * rules, idle notifications for drain pollers.
 */
import { Signal, type ProcHandle, type Scheduler } from "../scheduler/index.js";
import { genericError } from "./errors.js";
import { CURRENT_JOB_BEHAVIOUR, Job, withDefaults, type JobBehaviour, type JobContext, type JobEvent, type JobOptions, type Violation } from "./job.js";
import { JobTxn } from "./txn.js";

export interface JobManagerOptions {
  behaviour?: Partial<JobBehaviour>;
}

const JOB_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;

export class JobManager implements JobContext {
  readonly behaviour: JobBehaviour;
  /** Live jobs, newest first (QEMU inserts at the head; query-jobs lists them so). */
  readonly jobs: Job[] = [];
  /** Every event emitted so far, in order. */
  readonly events: JobEvent[] = [];
  readonly violations: Violation[] = [];
  private readonly eventListeners: ((e: JobEvent) => void)[] = [];
  private readonly idleListeners: ((job: Job) => void)[] = [];
  private txnSeq = 0;
  /**
   * Notified when a job's status, user pause or life changes: a watcher
   * (the harness's liveness phase, as a management layer waits for
   * JOB_STATUS_CHANGE) waits on it instead of polling.
   */
  readonly statusChanged = new Signal<void>("a job's status to change");
  /** How many such changes so far: a watcher compares it to see whether it missed one while busy. */
  changes = 0;

  constructor(readonly sim: Scheduler, opts: JobManagerOptions = {}) {
    this.behaviour = withDefaults(CURRENT_JOB_BEHAVIOUR, opts.behaviour ?? {});
  }

  /** A new, empty transaction. */
  newTxn(): JobTxn {
    return new JobTxn(++this.txnSeq);
  }

  /**
   * Creates a job in state `created` (not started). Without a txn it gets a
   * private one. Throws QmpError for a malformed or duplicate id.
   */
  create(opts: Omit<JobOptions, "txn"> & { txn?: JobTxn }): Job {
    if (opts.id !== null) {
      if (!JOB_ID.test(opts.id)) throw genericError(`Invalid job ID '${opts.id}'`);
      if (this.get(opts.id)) throw genericError(`Job ID '${opts.id}' already in use`);
    }
    const job = new Job(this, { ...opts, txn: opts.txn ?? this.newTxn() });
    this.jobs.unshift(job);
    return job;
  }

  /** The live job with this id (concluded but undismissed jobs included). */
  get(id: string): Job | undefined {
    // a loop, not find(): the invariants ask for a job by id on many records
    const jobs = this.jobs;
    for (let i = 0; i < jobs.length; i++) if (jobs[i].id === id) return jobs[i];
    return undefined;
  }

  /** Calls `fn` for every event; returns the function that stops it. */
  onEvent(fn: (e: JobEvent) => void): () => void {
    this.eventListeners.push(fn);
    return () => {
      const i = this.eventListeners.indexOf(fn);
      if (i >= 0) this.eventListeners.splice(i, 1);
    };
  }

  /** Drain pollers register here to re-check when a job stops being busy. */
  onIdle(fn: (job: Job) => void): void {
    this.idleListeners.push(fn);
  }

  // ---- JobContext ----

  emit(e: JobEvent): void {
    this.events.push(e);
    this.sim.record("event", e.event, e.data);
    for (const fn of this.eventListeners) fn(e);
  }

  violation(v: Omit<Violation, "timeNs">): void {
    const full = { timeNs: this.sim.now, ...v };
    this.violations.push(full);
    this.sim.record("check", "violation", { ...v });
  }

  idle(job: Job): void {
    // Before 34dc97b9a0 nothing woke the main loop when a job in an IOThread went idle.
    if (!this.behaviour.jobIdleKicksMainLoop && !job.aioContext.isMain) return;
    for (const fn of this.idleListeners) fn(job);
  }

  /** The process running a monitor command: main-loop context, like timer callbacks. */
  mainLoopProcess: ProcHandle | undefined = undefined;

  /** Callbacks and monitor commands are the main loop; any other process is a coroutine. */
  inCoroutine(): boolean {
    const r = this.sim.running;
    return r !== undefined && r !== this.mainLoopProcess;
  }

  freed(job: Job): void {
    const i = this.jobs.indexOf(job);
    if (i >= 0) this.jobs.splice(i, 1);
  }

  changed(_job: Job): void {
    this.changes++;
    if (this.statusChanged.waiters.length > 0) this.sim.notify(this.statusChanged);
  }
}
