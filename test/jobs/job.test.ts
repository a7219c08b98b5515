import { describe, expect, it } from "vitest";
import { sleep } from "../../sim/scheduler/index.js";
import { testJobDriver, type TestJobLog } from "../../sim/jobs/drivers/test-job.js";
import { quiesce, runScript, until } from "./harness.js";

describe("a job on its own", () => {
  it("runs created → running → waiting → pending → concluded → null and is freed", () => {
    const { result, events, jm } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver({ iterations: 3 }) }).start();
      yield sleep(1);
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(events).toEqual([
      "j0:created", "j0:running", "j0:waiting", "j0:pending",
      "BLOCK_JOB_COMPLETED:j0", "j0:concluded", "j0:null",
    ]);
    expect(jm.jobs).toEqual([]);
    expect(jm.events.find((e) => e.event === "BLOCK_JOB_COMPLETED")!.data).toEqual({ type: "test", device: "j0", len: 196608, offset: 196608, speed: 0 });
  });

  it("ends after its iterations of work and sleeps, in virtual time", () => {
    let concludedAt = -1;
    runScript(function* ({ jm, sim }) {
      jm.onEvent((e) => { if (e.data.status === "concluded") concludedAt = sim.now; });
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 4, sleepNs: 250, workNs: 1000 }) });
      job.start();
      yield* until(() => job.freed, 1);
    });
    expect(concludedAt).toBe(4 * 1250);
  });

  it("started with a pause pending, pauses at the entry pause point before any work (start shim)", () => {
    let ioBeforeResume = -1;
    const { events, jm } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 2, workNs: 100 }) });
      job.pause(); // a drained section around creation
      job.start();
      yield sleep(1_000_000);
      ioBeforeResume = job.progressCurrent;
      job.resume();
      yield* until(() => job.freed);
    });
    expect(ioBeforeResume).toBe(0);
    expect(events.slice(0, 4)).toEqual(["j0:created", "j0:running", "j0:paused", "j0:running"]);
    expect(jm.violations).toEqual([]);
  });

  it("cancel of a running job: aborting, BLOCK_JOB_CANCELLED, concluded, null", () => {
    const { events } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 100 }) });
      job.start();
      yield sleep(3_500_000);
      job.userCancel(true);
      yield* until(() => job.freed);
    });
    expect(events).toEqual(["j0:created", "j0:running", "j0:aborting", "BLOCK_JOB_CANCELLED:j0", "j0:concluded", "j0:null"]);
  });

  it("cancel before start: aborting, concluded, null and no BLOCK_JOB_CANCELLED", () => {
    const { events } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver() }).userCancel(false);
      yield sleep(1);
    });
    expect(events).toEqual(["j0:created", "j0:aborting", "j0:concluded", "j0:null"]);
  });

  it("a failing run emits BLOCK_JOB_COMPLETED with the error", () => {
    const { jm, events } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver({ failAt: 2 }) }).start();
      yield sleep(1);
    });
    expect(events).toEqual(["j0:created", "j0:running", "j0:aborting", "BLOCK_JOB_COMPLETED:j0!", "j0:concluded", "j0:null"]);
    expect(jm.events[3].data).toMatchObject({ error: "Input/output error", offset: 2 * 65536 });
  });

  it("auto-finalize and auto-dismiss off: pending until finalize, concluded until dismiss", () => {
    const { events, jm } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 1 }), autoFinalize: false, autoDismiss: false });
      job.start();
      yield sleep(10_000_000);
      expect(job.status).toBe("pending");
      job.finalize();
      expect(job.status).toBe("concluded");
      expect(jm.get("j0")).toBe(job);
      job.dismiss();
      expect(job.freed).toBe(true);
    });
    expect(events).toEqual([
      "j0:created", "j0:running", "j0:waiting", "j0:pending", "BLOCK_JOB_PENDING:j0",
      "BLOCK_JOB_COMPLETED:j0", "j0:concluded", "j0:null",
    ]);
    expect(jm.jobs).toEqual([]);
  });

  it("a ready job goes to standby when paused and completes on complete", () => {
    const { events } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "m0", driver: testJobDriver({ readyAfter: 2 }) });
      job.start();
      yield sleep(5_000_000);
      job.userPause();
      yield sleep(5_000_000);
      job.userResume();
      yield sleep(1);
      job.complete();
      yield* until(() => job.freed);
    });
    expect(events).toEqual([
      "m0:created", "m0:running", "m0:ready", "BLOCK_JOB_READY:m0", "m0:standby", "m0:ready",
      "m0:waiting", "m0:pending", "BLOCK_JOB_COMPLETED:m0", "m0:concluded", "m0:null",
    ]);
  });

  it("any touch of a freed job fails the run as a use-after-free", () => {
    const { result } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 1 }) });
      job.start();
      yield sleep(10_000_000);
      job.pause();
    });
    expect(result.outcome).toMatchObject({ kind: "failure", process: "script", error: "use after free: pause on job 'j0', which was freed" });
  });

  it("refuses malformed and duplicate job ids with QEMU's messages", () => {
    runScript(function* ({ jm }) {
      expect(() => jm.create({ id: "0bad", driver: testJobDriver() })).toThrow("Invalid job ID '0bad'");
      jm.create({ id: "j0", driver: testJobDriver() });
      expect(() => jm.create({ id: "j0", driver: testJobDriver() })).toThrow("Job ID 'j0' already in use");
      yield sleep(0);
    });
  });
});

describe("pause counting", () => {
  it("a job paused by the user is not resumed by the end of a drain", () => {
    const { events } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 50, workNs: 10_000 }) });
      job.start();
      yield sleep(2_000_000);
      job.userPause();
      yield* quiesce(job);
      expect(job.pauseCount).toBe(2);
      job.resume(); // drain ends
      yield sleep(5_000_000);
      expect(job.status).toBe("paused");
      expect(job.pauseCount).toBe(1);
      job.userResume();
      yield sleep(1);
      expect(job.status).toBe("running");
      job.userCancel(true);
      yield* until(() => job.freed);
    });
    expect(events.filter((e) => e.startsWith("j0:paused"))).toHaveLength(1);
  });

  it("a pause takes effect only at a pause point: a busy job stays running until its work ends", () => {
    runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 5, workNs: 1_000_000, sleepNs: 10 }) });
      job.start();
      yield sleep(500_000); // inside the first 1 ms of work
      job.userPause();
      expect(job.status).toBe("running");
      expect(job.busy).toBe(true);
      yield sleep(499_999);
      expect(job.status).toBe("running");
      yield sleep(20);
      expect(job.status).toBe("paused");
      expect(job.busy).toBe(false);
      job.userResume();
      yield* until(() => job.freed);
    });
  });

  it("pausing a sleeping job cuts its sleep short and resuming it restarts the work", () => {
    runScript(function* ({ jm, sim }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 2, sleepNs: 1_000_000_000 }) });
      job.start();
      yield sleep(10);
      job.userPause();
      yield sleep(0);
      yield sleep(0);
      expect(job.status).toBe("paused");
      expect(sim.now).toBe(10);
      job.userResume();
      yield* until(() => job.freed, 1_000_000);
      // the cut-short sleep counted as one iteration: one more full sleep remains
      expect(sim.now).toBeLessThan(1_100_000_000);
    });
  });

  it("resume and verbs refused with QEMU's messages", () => {
    runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 100 }) });
      job.start();
      yield sleep(1);
      expect(() => job.userResume()).toThrow("Can't resume a job that was not paused");
      job.userPause();
      expect(() => job.userPause()).toThrow("Job is already paused");
      expect(() => job.complete()).toThrow("Job 'j0' in state 'running' cannot accept command verb 'complete'");
      expect(() => job.setSpeed(-1)).toThrow("Parameter 'speed' expects a non-negative value");
      job.userCancel(true);
      yield* until(() => job.freed);
    });
  });
});

describe("start shim orderings (seed 000)", () => {
  for (const order of ["start-then-resume", "resume-then-start"] as const) {
    it(`${order}: pauses before any work, then runs with no I/O while paused`, () => {
      const { jm, events } = runScript(function* ({ jm }) {
        const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 3, workNs: 1000 }) });
        job.pause(); // drained section begins before creation completes
        if (order === "start-then-resume") {
          job.start();
          yield sleep(100);
          expect(job.progressCurrent).toBe(0);
          job.resume();
        } else {
          job.resume();
          yield sleep(100);
          job.start();
        }
        yield* until(() => job.freed);
      });
      expect(jm.violations).toEqual([]);
      expect(events.at(-1)).toBe("j0:null");
    });
  }

  it("a user pause before start holds the job at its entry until resumed", () => {
    const { jm } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 3, workNs: 1000 }) });
      job.userPause();
      job.start();
      yield sleep(1_000_000);
      expect(job.status).toBe("paused");
      expect(job.progressCurrent).toBe(0);
      job.userResume();
      yield* until(() => job.freed);
    });
    expect(jm.violations).toEqual([]);
  });

  it("without the shim (pre-2017), start-then-resume runs the job while it still counts as paused", () => {
    const { jm } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 3, workNs: 1000 }) });
      job.pause();
      job.start();
      yield sleep(100);
      job.resume(); // the first entry comes from resume, with busy still false
      yield sleep(10);
      expect(job.busy).toBe(false); // the lie the shim fixed
      yield* until(() => job.freed);
    }, { behaviour: { startShim: false } });
    expect(jm.violations.map((v) => v.invariant)).toContain("no-io-while-paused");
  });
});

describe("error actions", () => {
  it("report ends the job with the error", () => {
    const { events } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver({ ioErrorAt: 1, onError: "report" }) }).start();
      yield sleep(1);
    });
    expect(events).toEqual(["j0:created", "j0:running", "BLOCK_JOB_ERROR:j0(write,report)", "j0:aborting", "BLOCK_JOB_COMPLETED:j0!", "j0:concluded", "j0:null"]);
  });

  it("ignore goes on and completes", () => {
    const { events } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver({ ioErrorAt: 1, onError: "ignore" }) }).start();
      yield sleep(1);
    });
    expect(events).toContain("BLOCK_JOB_ERROR:j0(write,ignore)");
    expect(events.at(-3)).toBe("BLOCK_JOB_COMPLETED:j0");
  });

  it("stop pauses with an I/O status; resume clears it and the job retries and completes", () => {
    const { events } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ ioErrorAt: 1, onError: "stop", errno: "ENOSPC" }) });
      job.start();
      yield sleep(50_000_000);
      expect(job.status).toBe("paused");
      expect(job.iostatus).toBe("nospace");
      expect(job.userPaused).toBe(true);
      job.userResume();
      expect(job.iostatus).toBe("ok");
      yield* until(() => job.freed);
    });
    expect(events.slice(2, 5)).toEqual(["BLOCK_JOB_ERROR:j0(write,stop)", "j0:paused", "j0:running"]);
    expect(events.at(-3)).toBe("BLOCK_JOB_COMPLETED:j0");
  });

  it("enospc stops on ENOSPC and reports EIO", () => {
    const { events } = runScript(function* ({ jm }) {
      jm.create({ id: "j0", driver: testJobDriver({ ioErrorAt: 0, onError: "enospc", errno: "EIO" }) }).start();
      yield sleep(1);
    });
    expect(events[2]).toBe("BLOCK_JOB_ERROR:j0(write,report)");
  });
});

describe("rate limiting", () => {
  it("speed paces the job by 100 ms slices, and raising it wakes a sleeping job", () => {
    const finish: number[] = [];
    for (const raise of [false, true]) {
      runScript(function* ({ jm, sim }) {
        // 10 chunks of 64 KiB at 64 KiB/s: quota 6553.6 B per slice, so ~1 s per chunk
        const job = jm.create({
          id: "j0",
          speedBytesPerSec: 65536,
          driver: {
            type: "test",
            *run(j) {
              j.progressSetRemaining(10 * 65536);
              for (let i = 0; i < 10; i++) {
                yield sleep(1000);
                j.progressUpdate(65536);
                yield* j.rateLimitedSleep(65536);
              }
              return 0;
            },
          },
        });
        job.start();
        if (raise) {
          yield sleep(2_500_000_000);
          job.setSpeed(0);
        }
        yield* until(() => job.freed, 1_000_000, 100e9);
        finish.push(sim.now);
      });
    }
    expect(finish[0]).toBeGreaterThan(8_000_000_000);
    expect(finish[1]).toBeLessThan(3_100_000_000);
  });
});

describe("transactions", () => {
  it("members wait for each other; prepare all, then commit and clean each, newest first", () => {
    const log: TestJobLog = { calls: [] };
    const { events } = runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const a = jm.create({ id: "a", driver: testJobDriver({ iterations: 1 }, log), txn });
      const b = jm.create({ id: "b", driver: testJobDriver({ iterations: 4 }, log), txn });
      a.start();
      b.start();
      yield* until(() => b.freed);
      expect(a.freed).toBe(true);
    });
    expect(log.calls).toEqual(["b:prepare", "a:prepare", "b:commit", "b:clean", "a:commit", "a:clean"]);
    expect(events.indexOf("a:waiting")).toBeLessThan(events.indexOf("b:waiting"));
    expect(events.slice(-8)).toEqual([
      "b:pending", "a:pending", "BLOCK_JOB_COMPLETED:b", "b:concluded", "b:null", "BLOCK_JOB_COMPLETED:a", "a:concluded", "a:null",
    ]);
  });

  it("one member failing cancels the other; the failed one reports COMPLETED with error, the other CANCELLED", () => {
    const log: TestJobLog = { calls: [] };
    const { events } = runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const slow = jm.create({ id: "j1", driver: testJobDriver({ iterations: 100, workNs: 3_000_000 }, log), txn });
      const bad = jm.create({ id: "j2", driver: testJobDriver({ failAt: 0 }, log), txn });
      slow.start();
      bad.start();
      yield* until(() => slow.freed && bad.freed);
    });
    expect(events.slice(4)).toEqual([
      "j2:aborting", "BLOCK_JOB_COMPLETED:j2!", "j2:concluded", "j2:null",
      "j1:aborting", "BLOCK_JOB_CANCELLED:j1", "j1:concluded", "j1:null",
    ]);
    expect(log.calls).toEqual(["j2:abort", "j2:clean", "j1:abort", "j1:clean"]);
  });

  it("a member that already waits gets abort and CANCELLED when a peer fails later", () => {
    const log: TestJobLog = { calls: [] };
    const { events } = runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const quick = jm.create({ id: "q", driver: testJobDriver({ iterations: 1 }, log), txn });
      const late = jm.create({ id: "l", driver: testJobDriver({ failAt: 5 }, log), txn });
      quick.start();
      late.start();
      yield* until(() => quick.freed && late.freed);
    });
    expect(events).toContain("q:waiting");
    expect(events.slice(-8)).toEqual([
      "l:aborting", "BLOCK_JOB_COMPLETED:l!", "l:concluded", "l:null",
      "q:aborting", "BLOCK_JOB_CANCELLED:q", "q:concluded", "q:null",
    ]);
    expect(log.calls).not.toContain("q:commit");
  });

  it("a failing prepare of the member that finishes last aborts every member", () => {
    const log: TestJobLog = { calls: [] };
    runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const a = jm.create({ id: "a", driver: testJobDriver({ iterations: 1 }, log), txn });
      const b = jm.create({ id: "b", driver: testJobDriver({ iterations: 3, prepareRet: -5 }, log), txn });
      a.start();
      b.start();
      yield* until(() => a.freed && b.freed);
    });
    expect(log.calls).toEqual(["b:prepare", "b:abort", "b:clean", "a:abort", "a:clean"]);
  });

  it("QEMU 7.2 quirk, kept faithfully: when another member's prepare fails, the member that finished last still commits", () => {
    // job_do_finalize() hands its own (healthy, uncancelled) job to the txn abort, which
    // cancels only the *other* members: b commits while a aborts.
    const log: TestJobLog = { calls: [] };
    runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const a = jm.create({ id: "a", driver: testJobDriver({ iterations: 1, prepareRet: -5 }, log), txn });
      const b = jm.create({ id: "b", driver: testJobDriver({ iterations: 3 }, log), txn });
      a.start();
      b.start();
      yield* until(() => a.freed && b.freed);
    });
    expect(log.calls).toEqual(["b:prepare", "a:prepare", "b:commit", "b:clean", "a:abort", "a:clean"]);
  });

  it("one manual-finalize member holds the whole transaction in pending; finalizing one finalizes all", () => {
    const { events } = runScript(function* ({ jm }) {
      const txn = jm.newTxn();
      const a = jm.create({ id: "a", driver: testJobDriver({ iterations: 1 }), txn });
      const b = jm.create({ id: "b", driver: testJobDriver({ iterations: 1 }), txn, autoFinalize: false });
      a.start();
      b.start();
      yield sleep(50_000_000);
      expect([a.status, b.status]).toEqual(["pending", "pending"]);
      a.finalize();
      yield sleep(1);
      expect(a.freed && b.freed).toBe(true);
    });
    expect(events.filter((e) => e.startsWith("BLOCK_JOB_PENDING"))).toEqual(["BLOCK_JOB_PENDING:b"]);
  });

  it("cancel in pending (manual finalize) aborts: CANCELLED then concluded", () => {
    const { events } = runScript(function* ({ jm }) {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 1 }), autoFinalize: false });
      job.start();
      yield sleep(50_000_000);
      job.userCancel(true);
      yield sleep(1);
    });
    expect(events.slice(-5)).toEqual(["BLOCK_JOB_PENDING:j0", "j0:aborting", "BLOCK_JOB_CANCELLED:j0", "j0:concluded", "j0:null"]);
  });
});
