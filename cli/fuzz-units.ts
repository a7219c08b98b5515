/**
 * The units of a `blocksim fuzz` campaign: consecutive ranges of its runs
 * (fast-check's run indices at one seed), claimed one at a time by whichever
 * thread is free. The threads share the next unclaimed unit, the counts of
 * runs and violations (for the progress line) and the first failing run
 * found so far. Run k's case depends only on the seed and k, and the
 * campaign reports its first failing run whichever thread found it, so the
 * number of threads changes no result: `--workers N` makes the runs, output
 * and replay file of `--workers 1`.
 */
import type { FuzzCampaign, FuzzOptions } from "../sim/fuzz/index.js";

/**
 * Runs per unit. Threads hand work over at unit boundaries, so a thread
 * that has just started (a worker) gets work within one unit, and the last
 * unit of one thread outlasts the others by at most its length: 100 runs
 * are ~0.05 s warm (~0.2 s cold), short against a worker's ~1 s warm-up.
 * A unit costs next to nothing to claim (one atomic add; a thread's
 * generator jumps over the runs others took, ~0.3 µs a run).
 */
export const UNIT_RUNS = 100;

/** What a worker thread is given (its workerData.fuzzJob): the campaign of one shard. */
export interface WorkerJob {
  /** fast-check seed of the campaign (the shard's). */
  seed: number;
  runs: number;
  profile: string;
  /** Int32 cells: [next unclaimed unit, runs done, runs with a violation, first failing run (runs: none)]. */
  shared: SharedArrayBuffer;
  /** --time: the end of the campaign, in ms since the epoch (performance.timeOrigin + now). */
  deadline?: number;
}

export const NEXT_UNIT = 0, RUNS = 1, VIOLATIONS = 2, FIRST_FAILURE = 3;

export function newShared(runs: number): SharedArrayBuffer {
  const shared = new SharedArrayBuffer(4 * Int32Array.BYTES_PER_ELEMENT);
  new Int32Array(shared)[FIRST_FAILURE] = runs;
  return shared;
}

/** The campaign of `job` in this thread; every run (shrinks too) is counted in the shared cells before `onRun`. */
export function campaignOf(Campaign: typeof FuzzCampaign, job: WorkerJob, o: Pick<FuzzOptions, "replayFile"> & { onRun?: () => void } = {}): FuzzCampaign {
  const cells = new Int32Array(job.shared);
  return new Campaign({
    seed: job.seed, profile: job.profile, ...(o.replayFile !== undefined ? { replayFile: o.replayFile } : {}),
    onRun: (r) => {
      Atomics.add(cells, RUNS, 1);
      if (r.violations.length > 0 || r.outcome.kind === "qemu-crash") Atomics.add(cells, VIOLATIONS, 1);
      o.onRun?.();
    },
  });
}

/** Whether --time is up. */
export const pastDeadline = (job: WorkerJob): boolean => job.deadline !== undefined && performance.timeOrigin + performance.now() >= job.deadline;

/**
 * Runs units claimed from `job` until none is left, --time is up, or every
 * unit left starts past a failing run already found (it cannot hold an
 * earlier one); records a failing run in the shared cells.
 */
export function runClaimedUnits(campaign: FuzzCampaign, job: WorkerJob): void {
  const cells = new Int32Array(job.shared);
  const stop = (k: number) => k > Atomics.load(cells, FIRST_FAILURE) || pastDeadline(job);
  for (;;) {
    const from = Atomics.add(cells, NEXT_UNIT, 1) * UNIT_RUNS;
    if (from >= job.runs || stop(from)) return;
    const failed = campaign.run(from, Math.min(from + UNIT_RUNS, job.runs), stop);
    if (failed !== undefined) {
      for (let seen = Atomics.load(cells, FIRST_FAILURE); failed < seen; seen = Atomics.load(cells, FIRST_FAILURE)) {
        if (Atomics.compareExchange(cells, FIRST_FAILURE, seen, failed) === seen) break;
      }
    }
  }
}

/** The first failing run of the campaign, once every thread is done; undefined when none failed. */
export function firstFailure(job: WorkerJob): number | undefined {
  const k = Atomics.load(new Int32Array(job.shared), FIRST_FAILURE);
  return k < job.runs ? k : undefined;
}
