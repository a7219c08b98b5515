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

/** Departures from the goldens recorded by live/record.ts. */
export const KNOWN_GOLDEN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {
  cancel_two_on_one_source: {
    from: 27,
    why: "job-cancel of j1 then j0, two backups of one source: in all 5 runs QEMU shows j1 'aborting', then all of j0 (aborting, cancelled, concluded, null), then j1's cancelled, concluded, null — " +
      "j0's completion runs nested inside j1's finalization, most likely because backup's clean drops the copy-before-write filter, which drains the source and polls the main loop, where j0's job_exit bottom half runs. " +
      "blocksim's finalization (Job.finalizeSingle) does not poll, so j1 finishes before j0 starts. The same cause as id_and_blockers from entry 60.",
  },
  mirror_null_source: {
    from: 7,
    why: "QEMU's mirror asks the source's block status: a null-co node without read-zeroes reports no data, so mirror writes zeroes (no read, no pwritev) and is READY at once; " +
      "the injected pwritev error never fires. blocksim's mirror copies every dirty chunk (read, then write), so it hits the error and stops. A deliberate abstraction for now: use a source with data (mirror_target_error_stop).",
  },
};

/** Departures from the shared recordings (../shared/conformance). */
export const KNOWN_RECORDING_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {
  id_and_blockers: {
    from: 60,
    why: "after job-cancel of j3 then j0 (two backups stacked on one source), QEMU runs j0's whole finalization (aborting, cancelled, concluded, null) nested inside j3's: " +
      "j3's 'aborting', all of j0, then the rest of j3 (4 of 5 runs; in the fifth j0 finished first, so the recorder lists j3's 'aborting' as only_in_some_runs). " +
      "most likely because backup's clean drops its copy-before-write filter, which drains the source and polls the main loop, where j0's job_exit runs; blocksim's finalization does not poll, " +
      "so it finishes j3, then j0. The same cause as goldens/cancel_two_on_one_source, where QEMU does it in all 5 runs.",
  },
};

/** Both, by recording name. */
export const KNOWN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = { ...KNOWN_GOLDEN_DIFFERENCES, ...KNOWN_RECORDING_DIFFERENCES };
