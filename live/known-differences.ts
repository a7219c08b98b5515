/**
 * Where the simulator knowingly departs from a real QEMU 7.2 recording: the
 * first entry that differs, and why. `blocksim conform` accepts a departure
 * at exactly that entry as declared (exit 0) and the conformance tests check
 * the match holds exactly up to there. Keys are recording names: the goldens
 * in test/conformance/goldens and the ../shared/conformance recordings.
 */
export interface KnownDifference {
  from: number;
  why: string;
}

/** Two or three jobs' exits in one pass of the main loop (the goldens *_exit_newest_first, gen_225). */
const BH_NEWEST_FIRST =
  "QEMU 7.2 runs the bottom halves scheduled between two passes of its loop newest first (util/async.c: aio_bh_enqueue pushes on the head of ctx->bh_list, aio_bh_poll takes the whole list as one slice and runs it from the head): both jobs' last null-co reads end in one run of the timer list, so the later job_exit runs first. blocksim runs bottom halves scheduled in different kernel steps in the order they came (only one step's run newest first), so the other job finishes first. Ordering them per pass alone breaks cancel_two_on_one_source and incremental_txn_failure, which need a job's coroutine entered right after its last copy (co_queue_wakeup) and the thread pool's completions entering coroutines at once (README: Orders QEMU fixes)";

/** Departures from the goldens recorded by live/record.ts. */
export const KNOWN_GOLDEN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {
  txn_backups_exit_newest_first: { from: 18, why: BH_NEWEST_FIRST },
  txn_three_backups_exit_newest_first: { from: 24, why: BH_NEWEST_FIRST },
  gen_225: { from: 22, why: BH_NEWEST_FIRST },
};

/** Departures from the shared recordings (../shared/conformance). */
export const KNOWN_RECORDING_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {
  // id_and_blockers departed at entry 60 until nested polling (a backup's clean drains, so a second job's exit runs inside).
};

/** Both, by recording name. */
export const KNOWN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = { ...KNOWN_GOLDEN_DIFFERENCES, ...KNOWN_RECORDING_DIFFERENCES };
