/**
 * Profiles: named historical behaviours. Each is a set of behaviour switches
 * with the change it corresponds to, so a fixed race can be replayed under
 * the code that had it and shown gone under the fix.
 */
import { CURRENT_JOB_BEHAVIOUR, type JobBehaviour } from "../jobs/job.js";

/** Switches of the QMP layer. */
export interface QmpBehaviour {
  /**
   * Transaction backup actions start their job in the commit phase, after
   * every action prepared (111049a4ec, seed 001). Off: the job starts as soon
   * as its action creates it, while the transaction is still being built.
   */
  txnStartInCommit: boolean;
}

export type Behaviour = JobBehaviour & QmpBehaviour;

export interface Profile {
  name: string;
  description: string;
  /** The upstream change this profile undoes or corresponds to. */
  change: string;
  behaviour: Partial<Behaviour>;
}

export const CURRENT_BEHAVIOUR: Behaviour = { ...CURRENT_JOB_BEHAVIOUR, txnStartInCommit: true };

export const PROFILES: readonly Profile[] = [
  {
    name: "current",
    description: "QEMU 7.2 as recorded in ../shared/conformance (the default)",
    change: "QEMU v7.2.0",
    behaviour: {},
  },
  {
    name: "txn-start-on-create",
    description: "transaction backup actions start their job as soon as they create it, before the transaction is fully built",
    change: "before qemu 111049a4ec (2016-11, 'blockjob: refactor backup_start as backup_job_create'; seed 001)",
    behaviour: { txnStartInCommit: false },
  },
  {
    name: "no-start-shim",
    description: "a pause requested before a job's first start is honoured the pre-2017 way: the first entry can come from a resume, with busy still false",
    change: "before qemu e3796a245a (2017-03, 'blockjob: add block_job_start_shim'; seed 000)",
    behaviour: { startShim: false },
  },
  {
    name: "drain-ignores-jobs",
    description: "a drained section waits only for the node's in-flight requests, not for a busy job to reach a pause point, so the job can issue I/O inside it",
    change: "before qemu 89bd030533 (2018-03, 'block: Really pause block jobs on drain')",
    behaviour: { drainWaitsForJob: false },
  },
  {
    name: "error-stop-stacks-pauses",
    description: "every failed request of an error-stop action adds a pause, so a job with several failing requests in flight stays paused after block-job-resume",
    change: "before qemu 8d9648cbf3 (2019-03, 'blockjob: fix user pause in block_job_error_action')",
    behaviour: { errorStopPausesOnce: false },
  },
  {
    name: "cancel-clears-user-paused-early",
    description: "cancelling a user-paused job clears user_paused before the resume hook, whose assertion aborts QEMU when the job was stopped by an I/O error",
    change: "before qemu e321c0597c (2018-08, 'block: for jobs, do not clear user_paused until after the resume')",
    behaviour: { cancelResumesBeforeClear: false },
  },
  {
    name: "set-speed-zero-no-kick",
    description: "block-job-set-speed to 0 (unlimited) does not wake a job from its rate-limit sleep; it sleeps out the old delay",
    change: "before qemu d4fce18844 (2018-03, 'blockjobs: fix set-speed kick')",
    behaviour: { setSpeedZeroKicks: false },
  },
  {
    name: "mirror-soft-cancel-pre-ready",
    description: "a block-job-cancel without force does not cancel a mirror before READY: it runs on to READY and completes without a pivot",
    change: "before qemu eb36639f7b (2018-05, 'block/mirror: Make cancel always cancel pre-READY'), after b76e4458b1",
    behaviour: { mirrorCancelsPreReady: false },
  },
  {
    name: "txn-dead-pointer",
    description: "transaction backup actions start their job at once (as txn-start-on-create) and a finalized job stays in its transaction's list after it is freed",
    change: "before qemu 1e93b9fba2 (2016-11, 'blockjob: fix dead pointer in txn list') and 111049a4ec",
    behaviour: { txnStartInCommit: false, txnRemovesFinalized: false },
  },
  {
    name: "enter-skips-sleeping-job",
    description: "a sleeping job is not entered (cancel, set-speed, pause): it notices only when its sleep runs out",
    change: "between qemu 4afeffc857 (2017-11-21, 'blockjob: do not allow coroutine double entry or entry-after-completion') and fc24908e7d (2017-11-29)",
    behaviour: { enterWakesSleepingJob: false },
  },
  {
    name: "finalize-asserts-txn",
    description: "job-finalize asserts the job still has a transaction before checking the verb, so finalizing an already concluded job aborts QEMU",
    change: "before qemu 37aa19b63c (2018-05, 'blockjob: Fix assertion in block_job_finalize()')",
    behaviour: { finalizeChecksVerbFirst: false },
  },
  {
    name: "job-idle-no-kick",
    description: "a job in an IOThread that reaches a pause point does not wake the main loop's drain poll, which then waits for ever",
    change: "before qemu 34dc97b9a0 (2018-08, 'blockjob: Wake up BDS when job becomes idle')",
    behaviour: { jobIdleKicksMainLoop: false },
  },
  {
    name: "job-wakes-in-old-context",
    description: "the job's coroutine, woken where it last ran (aio_co_wake), does not move itself to its nodes' new AioContext (no aio_co_reschedule_self): after x-blockdev-set-iothread the job runs on in the old thread",
    change: "before qemu 13726123ba (2019-05, 'blockjob: Fix coroutine thread after AioContext change'), after 463e0be10",
    behaviour: { rescheduleToJobContext: false },
  },
  {
    name: "finish-sync-holds-context",
    description: "job_finish_sync (a transaction's abort finishing a cancelled member) polls the main loop still holding the member's AioContext lock: a member in an IOThread never completes and QEMU hangs",
    change: "before qemu de0fbe6480 (2018-08, 'job: Use AIO_WAIT_WHILE() in job_finish_sync()')",
    behaviour: { finishSyncReleasesContext: false },
  },
  {
    name: "drain-skips-pending-exit",
    description: "a job whose run has returned but whose exit (a main-loop bottom half) has not run yet counts as quiescent: a drain settles first, and the job completes inside the drained section",
    change: "between qemu 4cf077b59f (2018-08, 'block: Remove aio_poll() in bdrv_drain_poll variants') and b5a7a05735 (2018-09, 'blockjob: Lie better in child_job_drained_poll()'); before 91af091f92 (2017-04) too",
    behaviour: { drainWaitsForJobExit: false },
  },
  {
    name: "txn-apply-relocks-context",
    description: "job_txn_apply takes each member's AioContext lock on top of the one the finishing job's exit holds: a poll in a member's finalization (a backup dropping its filter) leaves its IOThread locked, and QEMU hangs",
    change: "before qemu 49880165a4 (2018-08, 'job: Fix nested aio_poll() hanging in job_txn_apply')",
    behaviour: { txnApplyReleasesCaller: false },
  },
  {
    name: "txn-abort-locks-all-contexts",
    description: "job_completed_txn_abort keeps the failing job's AioContext lock and takes every member's up front: finishing a member whose IOThread is locked more than once never ends, and QEMU hangs",
    change: "before qemu 644f3a29bd (2018-09, 'job: Avoid deadlocks in job_completed_txn_abort()'), after de0fbe6480",
    behaviour: { txnAbortLocksOneContext: false },
  },
  {
    name: "mirror-no-conflict-wait",
    description: "a mirror iteration copies its first dirty chunk again while an earlier copy of it is still in flight; under variable latency the stale copy can land last",
    change: "before qemu 9c83625bdd (2016-04, 'block/mirror: Revive dead yielding code')",
    behaviour: { mirrorWaitsOnConflicts: false },
  },
];

/**
 * A profile name no catalog knows. A class of its own, so callers tell it
 * from other errors by type (an exit code never comes from an error's text).
 */
export class UnknownProfileError extends Error {
  override name = "UnknownProfileError";
  constructor(readonly profile: string, readonly known: readonly string[]) {
    super(`unknown profile "${profile}"; known profiles: ${known.join(", ")}`);
  }
}

/** The behaviour of a named QMP profile; throws UnknownProfileError with the known names. */
export function profileBehaviour(name: string): Behaviour {
  const p = PROFILES.find((x) => x.name === name);
  if (!p) throw new UnknownProfileError(name, PROFILES.map((x) => x.name));
  return { ...CURRENT_BEHAVIOUR, ...p.behaviour };
}
