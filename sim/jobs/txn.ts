/**
 * A job transaction (QEMU JobTxn): its members finish together.
 *
 * Modelled on QEMU 7.2 job.c (research/qemu-jobs.md §3.1–3.2):
 * - members are kept newest first (QEMU inserts at the head), and every
 *   "for each member" loop walks that order;
 * - a member whose run succeeds waits in `waiting` until every member has
 *   completed; then all go to `pending`, and unless one needs manual
 *   finalization, all are prepared, then all committed (finalize);
 * - a failure or cancel of any member force-cancels the others; the abort
 *   then finalizes members one by one, newest first; one that has not
 *   completed yet is finished first with job_finish_sync, a nested poll (see
 *   Job.finishSync), so everything else that is due runs inside the abort,
 *   and whoever started it (a job's exit, a job-cancel) returns only when
 *   the whole group is done. Members that had already succeeded get `abort`
 *   and emit BLOCK_JOB_CANCELLED. Every member gets exactly one of
 *   commit/abort, then clean.
 * A job created alone gets a private one-member transaction.
 */
import type { Job } from "./job.js";

export class JobTxn {
  /** Newest first. */
  readonly jobs: Job[] = [];
  aborting = false;

  constructor(readonly id: number) {}

  add(job: Job): void {
    this.jobs.unshift(job);
  }

  remove(job: Job): void {
    const i = this.jobs.indexOf(job);
    if (i >= 0) this.jobs.splice(i, 1);
  }

  /** A member's run has ended (QEMU job_completed). */
  completed(job: Job): void {
    if (job.completed) throw new Error(`job '${job.name}' completed twice (state '${job.status}')`);
    if (job.updateRc() !== 0) this.abort(job);
    else this.success(job);
  }

  private success(job: Job): void {
    job.transition("waiting");
    if (this.jobs.some((j) => !j.completed)) return;
    for (const j of [...this.jobs]) {
      j.transition("pending");
      if (!j.autoFinalize) j.emit("BLOCK_JOB_PENDING", { type: j.type, id: j.id });
    }
    if (this.jobs.every((j) => j.autoFinalize)) this.finalize(job);
  }

  /** Prepare every member, then commit all, or abort all if a prepare fails (QEMU job_do_finalize). */
  finalize(job: Job): void {
    if (!this.apply(job, (j) => j.prepare() === 0)) {
      this.abort(job);
      return;
    }
    this.apply(job, (j) => {
      j.finalizeSingle();
      return true;
    });
  }

  /**
   * Runs `fn` on every member until one returns false (QEMU job_txn_apply).
   * The caller's AioContext lock (a job's exit holds its job's) is dropped
   * first and each member's taken around its call, so a member's callback
   * polling its own context holds that lock once. Before 49880165a4
   * (behaviour.txnApplyReleasesCaller off) the caller's lock stayed held
   * too: a member in the caller's IOThread was locked twice there.
   */
  private apply(job: Job, fn: (j: Job) => boolean): boolean {
    const undo = job.ctx.behaviour.txnApplyReleasesCaller ? job.releaseCallerContext() : () => {};
    try {
      for (const j of [...this.jobs]) {
        const ctx = j.acquireContext();
        try {
          if (!fn(j)) return false;
        } finally {
          j.releaseContext(ctx);
        }
      }
      return true;
    } finally {
      undo();
    }
  }

  /**
   * Cancels every other member and finalizes them all, finishing those
   * still running (QEMU job_completed_txn_abort): the caller's AioContext
   * lock is dropped, and each member's is held while it is finished and
   * finalized. Before 644f3a29bd (behaviour.txnAbortLocksOneContext off)
   * the caller's lock stayed held and every member's was taken up front, so
   * finishing a member held its IOThread's lock more than once.
   */
  abort(job: Job): void {
    if (this.aborting) return; // someone else is handling it
    this.aborting = true;
    job.ref();
    const oneAtATime = job.ctx.behaviour.txnAbortLocksOneContext;
    const undo = oneAtATime ? job.releaseCallerContext() : () => {};
    const upFront = oneAtATime ? [] : this.jobs.map((j) => ({ job: j, ctx: j.acquireContext() }));
    try {
      for (const other of [...this.jobs]) if (other !== job) other.cancelAsync(true);
      for (let first = this.firstMember(); first !== undefined; first = this.firstMember()) {
        const held = upFront.findIndex((h) => h.job === first);
        const ctx = held >= 0 ? upFront.splice(held, 1)[0].ctx : first.acquireContext();
        try {
          if (!first.completed) {
            if (!first.started) this.completed(first); // a never-started member concludes at once, as job_cancel does
            else first.finishSync();
          }
          // The nested poll may have run first's whole finalization already (a job-cancel of it inside).
          if (!first.freed && first.txn === this) first.finalizeSingle();
        } finally {
          first.releaseContext(ctx);
        }
      }
    } finally {
      for (const h of upFront) h.job.releaseContext(h.ctx);
      undo();
    }
    job.unref();
  }

  /**
   * The first listed member not finalized yet. Finalizing a member removes
   * it from the list, so that is the list's head — except before
   * 1e93b9fba2 (behaviour.txnRemovesFinalized off), when a finalized member
   * stays listed: the abort's walk passes over it, and touching one that was
   * freed meanwhile is a use after free.
   */
  private firstMember(): Job | undefined {
    for (const j of this.jobs) {
      if (j.txn === this) return j;
      j.assertAlive("the abort of its transaction");
    }
    return undefined;
  }
}
