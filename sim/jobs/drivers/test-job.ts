/**
 * A job whose run loop is fully configurable, for tests and fuzzing (in the
 * spirit of QEMU's test-blockjob-txn TestBlockJob and test-blockjob CancelJob).
 * Each iteration does `workNs` of busy work (like I/O: the job stays busy),
 * then sleeps `sleepNs` (or yields, to be entered by hand) — a pause point.
 */
import { sleep, type Process } from "../../scheduler/index.js";
import type { ErrorAction, Job, JobDriver } from "../job.js";

/** A ready job with nothing to do sleeps at least this long (QEMU's CancelJob sleeps 100 µs). */
const READY_IDLE_NS = 100_000;

export interface TestJobConfig {
  /** Iterations before the run ends (default 10). */
  iterations?: number;
  /** Busy time per iteration, like an I/O the job waits for (default 0). */
  workNs?: number;
  /** Sleep per iteration (default 1,000,000 ns); ignored when `yields` is set. */
  sleepNs?: number;
  /** Park with job_yield instead of sleeping: the job must be entered to go on. */
  yields?: boolean;
  /** Fail with EIO when reaching this iteration (0-based). */
  failAt?: number;
  /** Return this from prepare (0 = succeed). */
  prepareRet?: number;
  /** Go to ready after this many iterations and wait for `complete` (like mirror). */
  readyAfter?: number;
  /** Bytes of progress per iteration (default 65536). */
  bytesPerIteration?: number;
  /** The work of this iteration fails once with `errno`, handled by `onError` (a write error). */
  ioErrorAt?: number;
  errno?: "EIO" | "ENOSPC";
  onError?: ErrorAction;
}

/** Records the completion callbacks it saw, so tests can check commit/abort/clean order. */
export interface TestJobLog {
  calls: string[];
}

export function testJobDriver(cfg: TestJobConfig = {}, log?: TestJobLog): JobDriver {
  const iterations = cfg.iterations ?? 10;
  const bytes = cfg.bytesPerIteration ?? 65536;
  const note = (job: Job, what: string) => log?.calls.push(`${job.name}:${what}`);
  return {
    type: "test",
    *run(job: Job): Process<number> {
      let failedOnce = false;
      job.progressSetRemaining(iterations * bytes);
      for (let i = 0; ; i++) {
        if (job.isCancelled) return 0;
        if (cfg.readyAfter !== undefined && i >= cfg.readyAfter) {
          if (!job.ready) job.transitionToReady();
          if (job.shouldComplete) return 0;
        } else if (i >= iterations) {
          return 0;
        }
        if (cfg.failAt === i) return job.fail("EIO");
        if (cfg.workNs) {
          job.checkMayIssueIo(`work at iteration ${i}`);
          yield sleep(cfg.workNs); // busy: not a pause point
        }
        if (cfg.ioErrorAt === i && !failedOnce) {
          failedOnce = true;
          const errno = cfg.errno ?? "EIO";
          const action = job.errorAction(cfg.onError ?? "report", "write", errno);
          if (action === "report") return job.fail(errno);
          if (action === "stop") {
            i--; // retry this iteration once resumed
            yield* job.pausePoint();
            continue;
          }
        }
        if (!job.ready) job.progressUpdate(bytes);
        if (cfg.yields) yield* job.yieldJob();
        else if (job.ready) yield* job.sleepNs(Math.max(cfg.sleepNs ?? 1_000_000, READY_IDLE_NS));
        else yield* job.sleepNs(cfg.sleepNs ?? 1_000_000);
      }
    },
    prepare: (job) => {
      note(job, "prepare");
      return cfg.prepareRet ?? 0;
    },
    commit: (job) => note(job, "commit"),
    abort: (job) => note(job, "abort"),
    clean: (job) => note(job, "clean"),
    complete: cfg.readyAfter === undefined ? undefined : (job) => {
      job.shouldComplete = true;
      if (!job.paused) job.enter(); // a paused job is re-entered when it is resumed (as mirror does)
    },
  };
}
