/**
 * The units of a `blocksim fuzz` campaign, claimed one at a time by
 * whichever thread is free: the main thread and the worker threads share a
 * counter of the next unclaimed unit and the counts of runs and violations
 * (for the progress line). A unit's runs depend only on its seed, so which
 * thread runs it changes no result.
 */
import type { FuzzFailure, FuzzOptions } from "../sim/fuzz/index.js";

/** One unit: a fast-check seed and its share of the runs. */
export interface UnitJob {
  seed: number;
  numRuns: number;
  profile: string;
  replayFile: string;
}

/** What a worker thread is given (its workerData.fuzzJob). */
export interface WorkerJob {
  units: UnitJob[];
  /** Int32 cells: [next unclaimed unit, runs done, runs with a violation]. */
  shared: SharedArrayBuffer;
  /** --time: the end of the campaign, in ms since the epoch (performance.timeOrigin + now). */
  deadline?: number;
}

export const NEXT_UNIT = 0, RUNS = 1, VIOLATIONS = 2;

export const newShared = (): SharedArrayBuffer => new SharedArrayBuffer(3 * Int32Array.BYTES_PER_ELEMENT);

/**
 * Runs units claimed from `job` until none is left (or --time is up);
 * reports each finished unit by its index. `onRun` is called after every
 * run, after the shared counts are updated.
 */
export function runClaimedUnits(
  fuzzCheck: (o: FuzzOptions) => FuzzFailure | undefined,
  job: WorkerJob,
  onUnit: (index: number, failure: FuzzFailure | undefined) => void,
  onRun?: () => void,
): void {
  const cells = new Int32Array(job.shared);
  for (;;) {
    const left = job.deadline === undefined ? undefined : job.deadline - (performance.timeOrigin + performance.now());
    if (left !== undefined && left < 1) return;
    const index = Atomics.add(cells, NEXT_UNIT, 1);
    if (index >= job.units.length) return;
    const u = job.units[index];
    const failure = fuzzCheck({
      seed: u.seed, numRuns: u.numRuns, profile: u.profile, replayFile: u.replayFile, interruptAfterMs: left,
      onRun: (r) => {
        Atomics.add(cells, RUNS, 1);
        if (r.violations.length > 0 || r.outcome.kind === "qemu-crash") Atomics.add(cells, VIOLATIONS, 1);
        onRun?.();
      },
    });
    onUnit(index, failure);
  }
}
