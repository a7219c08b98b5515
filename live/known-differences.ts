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
};

/** Departures from the shared recordings (../shared/conformance). */
export const KNOWN_RECORDING_DIFFERENCES: Readonly<Record<string, KnownDifference>> = {
  // id_and_blockers departed at entry 60 until nested polling (a backup's clean drains, so a second job's exit runs inside).
};

/** Both, by recording name. */
export const KNOWN_DIFFERENCES: Readonly<Record<string, KnownDifference>> = { ...KNOWN_GOLDEN_DIFFERENCES, ...KNOWN_RECORDING_DIFFERENCES };
