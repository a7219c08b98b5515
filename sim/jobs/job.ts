/**
 * A block job: QEMU's Job and BlockJob folded into one object, run as a
 * coroutine (a kernel process) on the scheduler.
 *
 * The rules modelled (QEMU 7.2 job.c / blockjob.c, research/qemu-jobs.md §1–2):
 * - pause is cooperative and counted: `pause()` adds to pauseCount and kicks a
 *   parked job; the job parks only at its own pause points (`pausePoint`,
 *   `yieldJob`, `sleepNs`); `resume()` enters it again when the count is back
 *   to zero and no sleep timer is pending;
 * - `busy` is false only while the coroutine is parked in yield/sleep/pause;
 *   `enter()` is a no-op on a busy, unstarted or finished job;
 * - the start shim (seed 000, e3796a245a): a job starts busy, and a pause
 *   requested before the start takes effect at an entry pause point before any
 *   work. `behaviour.startShim = false` restores the earlier start, whose first
 *   entry could come from a resume with busy still false.
 * - completion is two-phase: `run` returns inside the coroutine, then the
 *   exit runs later in the main loop as a bottom half (the
 *   deferred_to_main_loop window); exit, finalization and clean are
 *   synchronous main-loop code, and where QEMU polls inside them (a drain
 *   in a driver's clean, job_finish_sync in a transaction's abort) they run
 *   a nested poll: other jobs' exits and everything else due run inside.
 *   The exit holds the job's AioContext lock (job_exit, as from 2018
 *   until the 7.2 job mutex; 7.2's job_exit takes none, and the lock is
 *   taken around the driver callbacks instead — job_prepare_locked,
 *   job_finalize_single_locked, job_cancel_async_locked — with
 *   job_finish_sync polling unlocked: the transaction code here drops the
 *   exit's lock and holds the member's around the same calls, so every
 *   wait sees the same depth, the historical profiles build on it); the coroutine
 *   runs in the job's AioContext: woken where it last ran (aio_co_wake),
 *   it moves itself there if its nodes moved meanwhile (7.2's
 *   job_do_yield_locked, `followContext`). Left out: that QEMU's job sleep timer
 *   belongs to the main loop's timer list, which a nested aio_poll does not
 *   run (here it fires inside polls too).
 */
import { AioContexts, awaitOp, checkDelay, type AioContext, type Operation, type OperationHost, type Process, type ProcHandle, type Scheduler, type Timer, UseAfterFree } from "../scheduler/index.js";
import { strerror, type Errno, type IoError } from "../disk/index.js";
import { ERRNO_CODE, genericError, strerrorRet } from "./errors.js";
import { RateLimit } from "./ratelimit.js";
import { acceptsVerb, IllegalTransition, isCompleted, isLegalTransition, type JobStatus, type JobVerb } from "./status.js";
import type { JobTxn } from "./txn.js";

export type JobType = "backup" | "mirror" | "stream" | "commit" | "test";

/** What a job type plugs into the core (QEMU's JobDriver/BlockJobDriver callbacks). */
export interface JobDriver {
  readonly type: JobType;
  /** The coroutine body. Returns 0 or a negative errno; may set `job.err`. */
  run(job: Job): Process<number>;
  /** First completion phase, for all members before any commit; returns 0 or a negative errno. */
  prepare?(job: Job): number;
  commit?(job: Job): void;
  abort?(job: Job): void;
  clean?(job: Job): void;
  /** `complete` verb; absent means the job cannot be completed. */
  complete?(job: Job): void;
  /** Decides whether a cancel is a hard one (absent: always hard). */
  cancel?(job: Job, force: boolean): boolean;
  /** Called at a pause point before parking (may wait, e.g. for in-flight copies), and after leaving it. */
  pause?(job: Job): Process<void> | void;
  resume?(job: Job): void;
  /** Whether a busy job may still issue requests (QEMU drained_poll); absent: yes. */
  drainedPoll?(job: Job): boolean;
  /** The speed was set (QEMU BlockJobDriver.set_speed): called on every set-speed, before the core decides whether to kick. */
  setSpeed?(job: Job): void;
  /** The job is freed: drop whatever it still holds. */
  free?(job: Job): void;
}

/** Behaviour switches of the job core that profiles turn (see the profiles catalog). */
export interface JobBehaviour {
  /** The start shim of seed 000 (e3796a245a). Off: a pause pending at start is honoured the pre-2017 way. */
  startShim: boolean;
  /**
   * A drain waits for a busy job to reach a pause point (89bd030533, 2018-03,
   * "block: Really pause block jobs on drain"). Off: a drain waits only for
   * the node's in-flight requests, so a busy job can issue I/O inside it.
   */
  drainWaitsForJob: boolean;
  /**
   * An error-stop pauses a job only if it is not already user-paused
   * (8d9648cbf3, 2019-03). Off: every failed request of a stop action adds a
   * pause, so one resume no longer releases a job that had several failing.
   */
  errorStopPausesOnce: boolean;
  /**
   * Cancel of a user-paused job clears user_paused only after the resume hook
   * (e321c0597c, 2018-08). Off: it clears it first, and the hook's assertion
   * (block_job_iostatus_reset) aborts QEMU when the job was stopped by an error.
   */
  cancelResumesBeforeClear: boolean;
  /**
   * set-speed 0 (unlimited) kicks a job out of its rate-limit sleep
   * (d4fce18844, 2018-03, "blockjobs: fix set-speed kick"). Off: 0 counts as
   * "not faster", and the job sleeps out its old delay.
   */
  setSpeedZeroKicks: boolean;
  /**
   * A soft block-job-cancel before READY cancels a mirror (eb36639f7b,
   * 2018-05, "block/mirror: Make cancel always cancel pre-READY"). Off: only
   * a forced cancel cancels; a soft one runs on to READY and completes
   * without a pivot (the side effect of b76e4458b1).
   */
  mirrorCancelsPreReady: boolean;
  /**
   * A finalized job leaves its transaction's list (1e93b9fba2, 2016-11,
   * "blockjob: fix dead pointer in txn list"). Off: it stays there after it
   * is freed, and the next walk of the list touches it.
   */
  txnRemovesFinalized: boolean;
  /**
   * job_enter wakes a job from its sleep, cutting the sleep short
   * (fc24908e7d, 2017-11, "blockjob: reimplement block_job_sleep_ns to allow
   * cancellation"). Off: as after 4afeffc857, a sleeping job is not entered,
   * so a cancel (or kick) waits until the sleep ends.
   */
  enterWakesSleepingJob: boolean;
  /**
   * The finalize verb is checked before the job's transaction is used
   * (37aa19b63c, 2018-05, "blockjob: Fix assertion in block_job_finalize()").
   * Off: finalize asserts the job still has a transaction, which a second
   * finalize of an already concluded job fails: QEMU aborts.
   */
  finalizeChecksVerbFirst: boolean;
  /**
   * A mirror iteration waits for in-flight operations on its first dirty
   * chunk before copying it again (9c83625bdd, 2016-04, "block/mirror:
   * Revive dead yielding code"; mirror_wait_on_conflicts since 1181e19a6d).
   * Off: the first chunk is copied again at once, so two copies of it can
   * land in either order and the stale one can win.
   */
  mirrorWaitsOnConflicts: boolean;
  /**
   * A job that becomes idle (parks, or ends) kicks the main loop's
   * AIO_WAIT_WHILE pollers (34dc97b9a0, 2018-08, "blockjob: Wake up BDS when
   * job becomes idle"). Off: a job in an IOThread going idle does not wake
   * a drain polling from the main loop, which waits for ever.
   */
  jobIdleKicksMainLoop: boolean;
  /**
   * A job whose nodes moved to another AioContext while it was parked
   * follows them: QEMU 7.2's job_do_yield_locked, once entered, moves the
   * coroutine with aio_co_reschedule_self until it runs in the job's
   * context (13726123ba, 2019-05, "blockjob: Fix coroutine thread after
   * AioContext change", did it by entering it with aio_co_enter in the
   * job's context; 7.2 wakes it with aio_co_wake where it last ran and
   * moves it from there). Off: nothing moves it, so after x-blockdev-set-iothread
   * the job goes on running in the old thread.
   */
  rescheduleToJobContext: boolean;
  /**
   * job_finish_sync polls with AIO_WAIT_WHILE, which drops the job's
   * AioContext lock around the poll (de0fbe6480, 2018-08, "job: Use
   * AIO_WAIT_WHILE() in job_finish_sync()"). Off: it polls the main loop
   * still holding the lock its caller (a transaction's abort) took, so a job
   * in an IOThread can never run to completion: QEMU hangs.
   */
  finishSyncReleasesContext: boolean;
  /**
   * A drain waits for a job whose run has returned until its exit (job_exit,
   * a main-loop bottom half) has begun: the job stays busy meanwhile
   * (b5a7a05735, 2018-09, "blockjob: Lie better in child_job_drained_poll()").
   * Off: as between 4cf077b59f and that fix, a job whose exit is pending
   * counts as quiescent, so the drain settles first and the job completes,
   * changing the graph, inside the drained section.
   */
  drainWaitsForJobExit: boolean;
  /**
   * job_txn_apply drops the caller's AioContext lock before taking each
   * member's (49880165a4, 2018-08, "job: Fix nested aio_poll() hanging in
   * job_txn_apply"; since b660a84bbb it takes each member's). Off: the lock
   * a job's exit holds stays held and the member's is taken again, so a
   * poll in a member's finalization (a backup dropping its filter) leaves
   * the IOThread locked: QEMU hangs.
   */
  txnApplyReleasesCaller: boolean;
  /**
   * job_completed_txn_abort holds only the member's AioContext lock while
   * it finishes and finalizes it (644f3a29bd, 2018-09, "job: Avoid
   * deadlocks in job_completed_txn_abort()"). Off: the caller's lock stays
   * held and every member's is taken up front, so members in one IOThread
   * are finished with its lock held more than once: QEMU hangs.
   */
  txnAbortLocksOneContext: boolean;
}

/** The prefix of a job's trace source and I/O issuer: `job:<name>` (the checker finds jobs by it). */
export const JOB_LABEL = "job:";

export const CURRENT_JOB_BEHAVIOUR: JobBehaviour = {
  startShim: true, drainWaitsForJob: true, errorStopPausesOnce: true, cancelResumesBeforeClear: true, setSpeedZeroKicks: true, mirrorCancelsPreReady: true, txnRemovesFinalized: true,
  enterWakesSleepingJob: true, finalizeChecksVerbFirst: true, mirrorWaitsOnConflicts: true,
  jobIdleKicksMainLoop: true, rescheduleToJobContext: true, finishSyncReleasesContext: true, drainWaitsForJobExit: true,
  txnApplyReleasesCaller: true, txnAbortLocksOneContext: true,
};

/**
 * `partial` over `defaults`. A `partial` that sets every switch (a profile's
 * behaviour from the catalog) is used as it is, not copied: behaviours are
 * never changed, and spreading a whole one over the defaults cost ~2.7 µs,
 * twice for every world built.
 */
export function withDefaults<T extends object>(defaults: T, partial: Partial<T>): T {
  for (const k in defaults) if (!(k in partial)) return { ...defaults, ...partial };
  return partial as T;
}

/** QMP events the job core emits (the QMP layer stamps them with virtual time). */
export interface JobEvent {
  event: "JOB_STATUS_CHANGE" | "BLOCK_JOB_READY" | "BLOCK_JOB_COMPLETED" | "BLOCK_JOB_CANCELLED" | "BLOCK_JOB_ERROR" | "BLOCK_JOB_PENDING";
  data: Record<string, unknown>;
}

/** A broken invariant observed while running (the run goes on, the report names it): the one Violation type. */
import type { Violation } from "./violation.js";
export type { Violation };

/** What every job shares: the kernel, behaviour switches, and where events and violations go. */
export interface JobContext {
  readonly sim: Scheduler;
  readonly behaviour: JobBehaviour;
  emit(event: JobEvent): void;
  violation(v: Omit<Violation, "timeNs">): void;
  /** Called whenever a job stops being busy, so drain pollers re-check. */
  idle(job: Job): void;
  /** Called when a job is freed, so registries drop it. */
  freed(job: Job): void;
  /** Called when what a user can see of a job changes (its status, user pause, or its end), so its watchers look again. */
  changed(job: Job): void;
  /** Whether the code running now is a coroutine (a job or its tasks) rather than the main loop. */
  inCoroutine(): boolean;
}

export type ErrorAction = "report" | "ignore" | "enospc" | "stop" | "auto";
export type IoStatus = "ok" | "failed" | "nospace";

export interface JobOptions {
  /** null for an internal job: no events, invisible to QMP. */
  id: string | null;
  driver: JobDriver;
  txn: JobTxn;
  speedBytesPerSec?: number;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
  /** The creator's completion callback (QEMU's cb), called in finalize with ret. */
  onComplete?: (ret: number) => void;
}

/** Parks the job coroutine until `enter()` wakes it. */
class Park implements Operation {
  constructor(private readonly job: Job) {}
  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.job.parked = { host, proc, token };
    this.job.awaitingEntry = false;
  }
  describe(): string {
    return `job '${this.job.name}' to be entered`;
  }
}

export class Job {
  readonly id: string | null;
  readonly driver: JobDriver;
  /** `job:<name>`: its coroutine's name, and where its records come from. */
  readonly traceName: string;
  /** Its sleep timer's label (made once: a job sleeps often). */
  private readonly sleepLabel: string;
  status: JobStatus = "undefined";
  refcnt = 1;
  pauseCount = 1; // the creation pause, released by start
  userPaused = false;
  busy = false;
  paused = true;
  /** The coroutine exists (QEMU: job->co != NULL). */
  started = false;
  cancelled = false;
  /**
   * When it was first cancelled: its status then and the kernel's record
   * count (the index of the next record), for the cancel-honoured invariant.
   */
  cancelledAt: { status: JobStatus; record: number } | undefined = undefined;
  forceCancel = false;
  deferredToMainLoop = false;
  ret = 0;
  err: string | undefined = undefined;
  autoFinalize: boolean;
  autoDismiss: boolean;
  txn: JobTxn | null;
  progressCurrent = 0;
  progressTotal = 0;
  speed: number;
  readonly limit: RateLimit;
  /**
   * What the job told its rate limit it copied while it had a speed: when,
   * how much, at what speed, and whether the sleep before it was cut short
   * (an early wake), and whether the job was READY. Nothing in the simulation reads it; the rate invariant
   * (sim/check) does.
   */
  readonly copyLedger: { t: number; bytes: number; speed: number; afterEarlyWake: boolean; ready: boolean }[] = [];
  /** Since the last accounted copy, a sleep ended before its deadline (entered by pause, resume, complete...) or was skipped for a pause. */
  private wokeEarly = false;
  iostatus: IoStatus = "ok";
  freed = false;
  /** Whether the driver has asked to be completed (mirror's should_complete). */
  shouldComplete = false;
  /** @internal where the parked coroutine waits for `enter()`. */
  parked: { host: OperationHost; proc: ProcHandle; token: number } | undefined = undefined;
  /** @internal start() parked the job at its entry pause point, but its process has not run yet. */
  awaitingEntry = false;
  private sleepTimer: Timer | undefined = undefined;
  /** What the sleep timer runs: one closure per job, not one per sleep. */
  private readonly wakeFromSleep: () => void;
  private readonly park = new Park(this);
  private co: ProcHandle | undefined = undefined;
  /** Pre-shim only: the coroutine was created but not yet entered. */
  private coPending = false;
  private readonly onComplete?: (ret: number) => void;
  /** The event loop the coroutine runs in (QEMU job->aio_context): its main node's; the main loop by default. */
  aioContext: AioContext;
  private readonly aio: AioContexts;
  private wrongThreadReported = false;

  constructor(readonly ctx: JobContext, opts: JobOptions) {
    this.id = opts.id;
    this.driver = opts.driver;
    this.traceName = JOB_LABEL + this.name;
    this.sleepLabel = `job '${this.name}' sleep timer`;
    // Through a local: a function literal stored straight into a property is allocated in V8's old
    // generation, and its context (the job, the whole world) then outlived the run (sim/qmp/qemu.ts).
    const wakeFromSleep = () => {
      this.sleepTimer = undefined;
      this.enter();
    };
    this.wakeFromSleep = wakeFromSleep;
    this.speed = opts.speedBytesPerSec ?? 0;
    this.limit = new RateLimit(this.speed, () => ctx.sim.tieToken());
    this.autoFinalize = opts.autoFinalize ?? true;
    this.autoDismiss = opts.autoDismiss ?? true;
    this.onComplete = opts.onComplete;
    this.txn = opts.txn;
    this.aio = AioContexts.of(ctx.sim);
    this.aioContext = this.aio.main;
    opts.txn.add(this);
    this.transition("created");
  }

  /** The id, or a placeholder for internal jobs, for messages and traces. */
  get name(): string {
    return this.id ?? `<internal ${this.driver.type}>`;
  }

  get type(): JobType {
    return this.driver.type;
  }

  get completed(): boolean {
    return isCompleted(this.status);
  }

  get ready(): boolean {
    return this.status === "ready" || this.status === "standby";
  }

  /** A hard cancel was requested (QEMU 6.2+ job_is_cancelled). */
  get isCancelled(): boolean {
    return this.forceCancel;
  }

  get shouldPause(): boolean {
    return this.pauseCount > 0;
  }

  /** A pause point would park now: a pause is pending and no hard cancel came. */
  get pauseDue(): boolean {
    return this.pauseCount > 0 && !this.forceCancel;
  }

  // ---- state ----

  /** Moves to `to`, emitting JOB_STATUS_CHANGE when the state really changes. */
  transition(to: JobStatus): void {
    this.assertAlive("transition");
    const from = this.status;
    if (!isLegalTransition(from, to)) throw new IllegalTransition(this.name, from, to);
    this.status = to;
    this.ctx.sim.record(this.traceName, "status", { from, to });
    if (from !== to) this.emit("JOB_STATUS_CHANGE", { id: this.id, status: to });
    this.ctx.changed(this);
  }

  /** Refuses a verb the current state does not accept, with QEMU's message. */
  applyVerb(verb: JobVerb): void {
    this.assertAlive(verb);
    if (!acceptsVerb(this.status, verb)) {
      throw genericError(`Job '${this.id}' in state '${this.status}' cannot accept command verb '${verb}'`);
    }
  }

  emit(event: JobEvent["event"], data: Record<string, unknown>): void {
    if (this.id === null) return; // internal jobs are silent
    this.ctx.emit({ event, data });
  }

  /** The common payload of BLOCK_JOB_COMPLETED/CANCELLED/READY. */
  blockJobInfo(): Record<string, unknown> {
    return { type: this.type, device: this.id, len: this.progressTotal, offset: this.progressCurrent, speed: this.speed };
  }

  // ---- references ----

  ref(): void {
    this.assertAlive("ref");
    this.refcnt++;
  }

  unref(): void {
    this.assertAlive("unref");
    if (--this.refcnt > 0) return;
    if (this.status !== "null") {
      throw new Error(`job '${this.name}': last reference dropped in state '${this.status}'`);
    }
    this.driver.free?.(this);
    this.freed = true;
    this.ctx.sim.record(this.traceName, "freed");
    this.ctx.freed(this);
    this.ctx.changed(this);
  }

  /** Any touch of a freed job is a use-after-free: the run fails loudly. */
  assertAlive(what: string): void {
    if (this.freed) throw new UseAfterFree(`use after free: ${what} on job '${this.name}', which was freed`);
  }

  // ---- pause counting (main-loop side) ----

  /** Asks the job to pause at its next pause point (user, drain or error-stop). */
  pause(): void {
    this.assertAlive("pause");
    this.pauseCount++;
    if (!this.paused) this.enter(); // a job parked in yield/sleep reaches its pause point now
  }

  /** Releases one pause; at zero the job is entered unless a sleep timer will do it. */
  resume(): void {
    this.assertAlive("resume");
    if (this.pauseCount <= 0) {
      this.ctx.violation({ invariant: "pause-count-non-negative", job: this.name, detail: "resume with pause_count 0" });
      return;
    }
    this.pauseCount--;
    if (this.pauseCount > 0) return;
    if (this.sleepTimer?.pending) return;
    this.enter();
  }

  /** Re-enters the coroutine if it is parked (QEMU job_enter). */
  enter(): void {
    this.assertAlive("enter");
    if (this.coPending) {
      // Pre-shim: the first entry comes from here, with busy still false — the bug the shim fixed.
      // `paused` stays set too: in that era only a pause point cleared it.
      this.coPending = false;
      this.transition("running");
      this.spawnCoroutine(false);
      return;
    }
    if (!this.started || this.deferredToMainLoop || this.busy) return;
    if (this.awaitingEntry) {
      this.awaitingEntry = false; // the process will see busy and skip parking
      this.busy = true;
      return;
    }
    if (!this.parked && this.co) {
      // busy says parked but the coroutine is running (in I/O): entering it now would re-enter a live coroutine.
      this.ctx.violation({ invariant: "coroutine-reentered", job: this.name, detail: "entered while not parked at a yield point (busy was false)" });
      return;
    }
    if (this.sleepTimer) {
      if (!this.ctx.behaviour.enterWakesSleepingJob) return; // 4afeffc857..fc24908e7d: the sleep runs out first
      this.ctx.sim.cancel(this.sleepTimer);
      this.sleepTimer = undefined;
    }
    this.busy = true;
    const p = this.parked;
    if (p) {
      this.parked = undefined;
      // aio_co_wake: into the context the coroutine last ran in. From that loop itself (a command,
      // a timer, a drain) QEMU enters it at once, up to its next yield; from another coroutine it
      // runs as soon as that one yields; from another thread it is scheduled into that loop. A job
      // whose nodes moved since then moves itself on once entered (`followContext`).
      this.aio.coWake(this.aio.byNumber(p.proc.context), p.host, p.proc, p.token, this.ctx.inCoroutine());
    }
  }

  // ---- the coroutine side: generators a driver's run() uses with yield* ----

  /**
   * A pause point: parks here if a pause is due. Callers test `pauseDue`
   * first: most pause points have nothing to do, and then no generator is made.
   */
  *pausePoint(): Process<void> {
    if (!this.pauseDue) return;
    const quiescing = this.driver.pause?.(this);
    if (quiescing) yield* quiescing;
    if (this.shouldPause && !this.isCancelled) {
      const was = this.enterPause();
      yield* this.doYield();
      this.leavePause(was);
    }
    this.driver.resume?.(this);
  }

  /** Parks until entered (QEMU job_yield); then a pause point. */
  *yieldJob(): Process<void> {
    if (this.isCancelled) return;
    if (!this.shouldPause) yield* this.doYield();
    if (this.pauseDue) yield* this.pausePoint();
  }

  /** Sleeps `ns` of virtual time unless entered earlier (pause, cancel, set-speed); then a pause point. */
  *sleepNs(ns: number): Process<void> {
    if (!(Number.isSafeInteger(ns) && ns >= 0)) checkDelay(ns, `job '${this.name}' sleep`); // the message only when it throws
    if (this.isCancelled) return;
    if (!this.shouldPause) {
      // doYield with a timer, written out: a copying job sleeps here once a chunk, and a generator level costs on each resume
      const deadlineNs = this.ctx.sim.now + ns;
      this.sleepTimer = this.ctx.sim.timerAt(deadlineNs, this.sleepLabel, this.wakeFromSleep, this.aioContext.id, this.limit.tieFor(deadlineNs));
      this.busy = false;
      this.ctx.idle(this);
      yield awaitOp(this.park);
      if (this.ctx.sim.now < deadlineNs) this.wokeEarly = true;
      // enter() set busy before waking us
      if (this.aio.active) yield* this.followContext();
    } else if (ns > 0) this.wokeEarly = true; // a pending pause skips the sleep (QEMU job_sleep_ns)
    if (this.pauseDue) yield* this.pausePoint();
  }

  /** Accounts `bytes` of work against the speed limit and sleeps as much as it says (0 still yields once). */
  *rateLimitedSleep(bytes: number): Process<void> {
    yield* this.sleepNs(this.accountCopy(bytes));
  }

  /** Accounts `bytes` just copied (or issued) against the speed limit; returns the delay before the next chunk. */
  accountCopy(bytes: number): number {
    const now = this.ctx.sim.now;
    if (this.speed > 0 && bytes > 0) {
      this.copyLedger.push({ t: now, bytes, speed: this.speed, afterEarlyWake: this.wokeEarly, ready: this.ready });
      this.wokeEarly = false;
    }
    return this.limit.delayNs(now, bytes);
  }

  /** Parks until entered (QEMU job_do_yield without a timer; sleepNs has its own copy with one). */
  private *doYield(): Process<void> {
    this.busy = false;
    this.ctx.idle(this);
    yield awaitOp(this.park);
    // enter() set busy before waking us
    if (this.aio.active) yield* this.followContext();
  }

  /**
   * After a wake: if the job's nodes moved to another AioContext while it was
   * parked, the coroutine moves itself there (aio_co_reschedule_self, QEMU
   * 7.2 job_do_yield_locked) before it goes on; then it must run there.
   */
  private *followContext(): Process<void> {
    if (this.ctx.behaviour.rescheduleToJobContext) {
      while (this.ctx.sim.currentContext !== this.aioContext.id) yield* this.aio.rescheduleSelf(this.aioContext);
    }
    this.checkThread();
  }

  /** The coroutine must run in the job's AioContext (the thread its nodes are served by). */
  private checkThread(): void {
    const running = this.ctx.sim.currentContext;
    if (running === this.aioContext.id || this.wrongThreadReported) return;
    this.wrongThreadReported = true;
    this.ctx.violation({ invariant: "job-runs-in-its-context", job: this.name, detail: `coroutine running in the loop of ${this.aio.byNumber(running).name}, but the job's AioContext is ${this.aioContext.name}` });
  }

  private enterPause(): JobStatus {
    const was = this.status;
    this.transition(was === "ready" ? "standby" : "paused");
    this.paused = true;
    return was;
  }

  private leavePause(was: JobStatus): void {
    this.paused = false;
    this.transition(was === "ready" || was === "standby" ? "ready" : "running");
  }

  // ---- lifecycle (main-loop side) ----

  /** Starts the coroutine (QEMU job_start). */
  start(): void {
    this.assertAlive("start");
    if (this.started || this.coPending || !this.paused) throw new Error(`job '${this.name}' started twice`);
    if (this.status !== "created") throw new Error(`job '${this.name}' started in state '${this.status}'`);
    this.started = true;
    this.pauseCount--;
    if (!this.ctx.behaviour.startShim && this.pauseCount > 0) {
      // Pre-shim: the coroutine exists but is not entered; a later resume enters it.
      this.coPending = true;
      return;
    }
    this.busy = true;
    this.paused = false;
    this.transition("running");
    // The shim's entry pause point runs synchronously inside start, as in QEMU.
    const parkAtEntry = this.ctx.behaviour.startShim && this.shouldPause && !this.isCancelled;
    const was = parkAtEntry ? this.enterPause() : "running";
    if (parkAtEntry) {
      this.busy = false;
      this.awaitingEntry = true;
    }
    this.spawnCoroutine(parkAtEntry, was);
    if (parkAtEntry) this.ctx.idle(this);
  }

  private spawnCoroutine(parkedAtEntry: boolean, was: JobStatus = "running"): void {
    this.co = this.ctx.sim.spawn(this.traceName, this.coroutine(parkedAtEntry, was), { context: this.aioContext.id, coroutine: true });
    // QEMU job_start enters the coroutine with aio_co_enter: from the main loop at once, up to its
    // first yield, when the job is in the main loop; scheduled into its IOThread's loop otherwise.
    if (!this.ctx.inCoroutine()) this.aio.coEnter(this.aioContext, this.co, false);
  }

  /** The job's coroutine (QEMU job_co_entry): the driver's run, then job_exit as a main-loop bottom half. */
  private *coroutine(parkedAtEntry: boolean, was: JobStatus): Process<void> {
    if (parkedAtEntry) {
      // A resume may have entered the job before this process first ran; then busy is already set.
      if (!this.busy) yield awaitOp(this.park);
      if (this.aio.active) yield* this.followContext();
      this.leavePause(was);
    }
    const ret = yield* this.driver.run(this);
    this.ret = ret;
    this.deferredToMainLoop = true;
    this.busy = true;
    // job_exit is a bottom half of the main loop, whatever the job's context (QEMU job_co_entry: aio_bh_schedule_oneshot).
    this.ctx.sim.bottomHalf(`job '${this.name}' exit`, () => this.exit(), undefined, 0);
  }

  /**
   * Follows its nodes into another AioContext (QEMU child_job_set_aio_ctx,
   * job_set_aio_context): only the job's context changes. The parked
   * coroutine is still woken where it last ran and moves itself over once
   * entered (`followContext`).
   */
  setAioContext(ctx: AioContext): void {
    this.assertAlive("set AioContext");
    if (ctx === this.aioContext) return;
    this.ctx.sim.record(this.traceName, "aio-context", { from: this.aioContext.name, to: ctx.name });
    this.aioContext = ctx;
  }

  /**
   * The main-loop half of completion (QEMU job_exit), holding the job's
   * AioContext lock: the transaction code below drops it where it polls.
   */
  private exit(): void {
    this.ref();
    const ctx = this.acquireContext();
    try {
      this.busy = false;
      this.ctx.idle(this);
      this.txnOps().completed(this);
    } finally {
      this.releaseContext(ctx);
    }
    this.unref();
  }

  /**
   * Drops the lock of this job's AioContext if the main loop holds it (QEMU
   * job_txn_apply and job_completed_txn_abort release the caller's context
   * before taking each member's); returns the undo.
   */
  releaseCallerContext(): () => void {
    const ctx = this.aioContext;
    if (!this.aio.active || ctx.isMain || ctx.holder !== this.aio.main || ctx.depth === 0) return () => {};
    this.aio.release(ctx);
    return () => this.aio.acquire(ctx);
  }

  private txnOps(): JobTxn {
    if (!this.txn) throw new Error(`job '${this.name}' has no transaction in state '${this.status}'`);
    return this.txn;
  }

  /** If ret is 0 but a hard cancel came, ret becomes -ECANCELED; a failing job moves to aborting. */
  updateRc(): number {
    if (this.ret === 0 && this.isCancelled) this.ret = -ERRNO_CODE.ECANCELED;
    if (this.ret !== 0) {
      this.err ??= strerrorRet(this.ret);
      this.transition("aborting");
    }
    return this.ret;
  }

  /** Commit or abort, clean, callback, events, leave the txn, conclude (QEMU job_finalize_single). */
  finalizeSingle(): void {
    if (!this.completed) throw new Error(`job '${this.name}' finalized in state '${this.status}'`);
    this.updateRc();
    if (this.ret === 0) this.driver.commit?.(this);
    else this.driver.abort?.(this);
    this.driver.clean?.(this);
    this.onComplete?.(this.ret);
    if (this.started) {
      if (this.isCancelled) this.emit("BLOCK_JOB_CANCELLED", this.blockJobInfo());
      else this.emit("BLOCK_JOB_COMPLETED", this.ret < 0 ? { ...this.blockJobInfo(), error: this.err } : this.blockJobInfo());
    }
    if (this.ctx.behaviour.txnRemovesFinalized) this.txn?.remove(this); // before 1e93b9fba2 the dead job stayed listed
    this.txn = null;
    this.transition("concluded");
    if (this.autoDismiss || !this.started) this.doDismiss();
  }

  /** Runs `prepare` if the job succeeded so far; returns the resulting ret. */
  prepare(): number {
    if (this.ret === 0 && this.driver.prepare) this.ret = this.driver.prepare(this);
    return this.updateRc();
  }

  doDismiss(): void {
    this.transition("null");
    this.unref();
  }

  /**
   * QEMU job_early_fail: a job whose setup failed after it was created (a
   * permission its driver could not take) goes from created straight to
   * null and is freed, leaving its transaction.
   */
  earlyFail(): void {
    if (this.status !== "created") throw new Error(`job '${this.name}': early fail in state '${this.status}'`);
    this.txn?.remove(this);
    this.txn = null;
    this.doDismiss();
  }

  /** Marks the job cancelled (QEMU job_cancel_async); undoes an outstanding user pause. */
  cancelAsync(force: boolean): void {
    force = this.driver.cancel ? this.driver.cancel(this, force) : true;
    if (this.userPaused) {
      if (this.ctx.behaviour.cancelResumesBeforeClear) {
        this.userResumeHook();
        this.userPaused = false;
      } else {
        this.userPaused = false; // before e321c0597c
        this.userResumeHook();
      }
      this.pauseCount--;
    }
    if (this.deferredToMainLoop && !force) return; // a soft cancel after run ended is ignored
    if (!this.cancelled) this.cancelledAt = { status: this.status, record: this.ctx.sim.records };
    this.cancelled = true;
    this.forceCancel ||= force;
  }

  /**
   * Runs the main loop, nested, until this job has completed, entering it
   * each round so a cancelled job notices (QEMU job_finish_sync's
   * AIO_WAIT_WHILE). Its exit and whatever else is due run inside. Main loop only.
   */
  finishSync(): void {
    this.ref();
    // AIO_WAIT_WHILE(job->aio_context, …): a lock on an IOThread's context that the caller holds
    // is dropped once around the poll (before de0fbe6480 the poll kept it).
    const ctx = this.aioContext;
    const drop = this.aio.active && this.ctx.behaviour.finishSyncReleasesContext && ctx.holder === this.aio.main && ctx.depth > 0;
    if (drop) this.aio.release(ctx);
    try {
      this.ctx.sim.pollWhile(`job '${this.name}' to complete`, () => {
        if (this.completed) return false;
        this.enter();
        return !this.completed;
      });
    } finally {
      if (drop) this.aio.acquire(ctx);
    }
    this.unref();
  }

  /** aio_context_acquire of the job's context from the main loop (a no-op without IOThreads). */
  acquireContext(): AioContext {
    const ctx = this.aioContext;
    this.aio.acquire(ctx);
    return ctx;
  }

  releaseContext(ctx: AioContext): void {
    this.aio.release(ctx);
  }

  /** QEMU job_cancel_sync: cancel, then finish synchronously. Main loop only. */
  cancelSync(force: boolean): void {
    this.ref();
    this.cancel(force);
    if (!this.completed) this.finishSync();
    this.unref();
  }

  /** QEMU job_cancel: conclude a never-started job at once, else wake it so it notices. */
  cancel(force: boolean): void {
    this.assertAlive("cancel");
    if (this.status === "concluded") {
      this.doDismiss();
      return;
    }
    this.cancelAsync(force);
    if (!this.started) {
      this.txnOps().completed(this);
    } else if (this.deferredToMainLoop) {
      if (this.isCancelled) this.txnOps().abort(this);
    } else {
      this.enter();
    }
  }

  // ---- user verbs (QMP job-* and block-job-*) ----

  userPause(): void {
    this.applyVerb("pause");
    if (this.userPaused) throw genericError("Job is already paused");
    this.userPaused = true;
    this.pause();
    this.ctx.changed(this);
  }

  userResume(): void {
    this.assertAlive("resume");
    if (!this.userPaused || this.pauseCount <= 0) throw genericError("Can't resume a job that was not paused");
    this.applyVerb("resume");
    this.userResumeHook();
    this.userPaused = false;
    this.resume();
  }

  userCancel(force: boolean): void {
    this.applyVerb("cancel");
    this.cancel(force);
  }

  complete(): void {
    this.applyVerb("complete");
    if (this.cancelled || !this.driver.complete) {
      throw genericError(`The active block job '${this.id}' cannot be completed`);
    }
    this.driver.complete(this);
  }

  finalize(): void {
    if (!this.ctx.behaviour.finalizeChecksVerbFirst && !this.txn) {
      // before 37aa19b63c: assert(job->txn) in block_job_finalize, ahead of the verb check
      throw new Error(`assertion failed in block_job_finalize: job '${this.name}' has no transaction (state '${this.status}')`);
    }
    this.applyVerb("finalize");
    this.txnOps().finalize(this);
  }

  dismiss(): void {
    this.applyVerb("dismiss");
    this.doDismiss();
  }

  setSpeed(speed: number): void {
    this.applyVerb("set-speed");
    if (!Number.isSafeInteger(speed) || speed < 0) throw genericError("Parameter 'speed' expects a non-negative value");
    const old = this.speed;
    this.speed = speed;
    this.limit.setSpeed(speed);
    this.driver.setSpeed?.(this);
    if ((speed !== 0 || !this.ctx.behaviour.setSpeedZeroKicks) && speed <= old) return;
    if (this.sleepTimer?.pending) this.enter(); // only a sleeping job is kicked
  }

  /** Block jobs reset the I/O status when the user resumes them (QEMU block_job_iostatus_reset, with its assertion). */
  private userResumeHook(): void {
    if (this.iostatus === "ok") return;
    if (!(this.userPaused && this.pauseCount > 0)) {
      throw new Error(`assertion failed in block_job_iostatus_reset: job '${this.name}' has I/O status ${this.iostatus} but user_paused=${this.userPaused}, pause_count=${this.pauseCount}`);
    }
    this.iostatus = "ok";
  }

  // ---- errors ----

  /**
   * Applies an error action to a failed request (QEMU block_job_error_action):
   * emits BLOCK_JOB_ERROR, and for stop pauses the job as a user pause with an
   * I/O status. Returns the action taken.
   */
  errorAction(onError: ErrorAction, operation: "read" | "write", errno: Errno): "report" | "ignore" | "stop" {
    const action: "report" | "ignore" | "stop" =
      onError === "enospc" || onError === "auto" ? (errno === "ENOSPC" ? "stop" : "report") : onError;
    this.emit("BLOCK_JOB_ERROR", { device: this.id, operation, action });
    if (action === "stop") {
      if (!this.userPaused || !this.ctx.behaviour.errorStopPausesOnce) {
        this.pause();
        this.userPaused = true;
        this.ctx.changed(this);
      }
      if (this.iostatus === "ok") this.iostatus = errno === "ENOSPC" ? "nospace" : "failed";
    }
    return action;
  }

  /** The same, for a failed request: a read applies to the source side, anything else to the target side. */
  requestFailed(onError: ErrorAction, e: IoError): "report" | "ignore" | "stop" {
    return this.errorAction(onError, e.op === "read" ? "read" : "write", e.errno);
  }

  /** Records `errno` as the job's error; returns what its run() returns for it. */
  fail(errno: Errno): number {
    this.err = strerror(errno);
    return -ERRNO_CODE[errno];
  }

  /** Moves a running job to ready and tells the user (mirror, active commit). */
  transitionToReady(): void {
    this.transition("ready");
    this.emit("BLOCK_JOB_READY", this.blockJobInfo());
  }

  // ---- progress ----

  progressUpdate(bytes: number): void {
    this.progressCurrent += bytes;
  }

  progressSetRemaining(bytes: number): void {
    this.progressTotal = this.progressCurrent + bytes;
  }

  progressIncreaseRemaining(bytes: number): void {
    this.progressTotal += bytes;
  }

  /**
   * Whether the job may issue I/O now: callers test it before building
   * checkMayIssueIo's description, so that a job's every request does not
   * pay for a message only a violation prints.
   */
  get mayIssueIo(): boolean {
    return !(this.freed || this.status === "concluded" || this.status === "null" || this.paused);
  }

  /** Reports a job-issued request made while the job may not do I/O. */
  checkMayIssueIo(what: string): void {
    if (this.freed || this.status === "concluded" || this.status === "null") {
      this.ctx.violation({ invariant: "no-io-after-conclude", job: this.name, detail: `${what} in state ${this.freed ? "freed" : this.status}` });
    } else if (this.paused) {
      this.ctx.violation({ invariant: "no-io-while-paused", job: this.name, detail: `${what} while paused (state ${this.status})` });
    }
  }
}

