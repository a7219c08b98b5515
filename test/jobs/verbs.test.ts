import { describe, expect, it } from "vitest";
import { sleep, type Process } from "../../sim/scheduler/index.js";
import { testJobDriver } from "../../sim/jobs/drivers/test-job.js";
import type { Job } from "../../sim/jobs/job.js";
import { JOB_VERBS, type JobStatus, type JobVerb } from "../../sim/jobs/status.js";
import type { JobManager } from "../../sim/jobs/manager.js";
import { runScript } from "./harness.js";

// QEMU 7.2 JobVerbTable, transcribed from qapi/job.json and iotests 056/219 (not from our table).
const ACCEPTS: Record<string, JobVerb[]> = {
  created: ["cancel", "pause", "resume", "set-speed", "change"],
  running: ["cancel", "pause", "resume", "set-speed", "change"],
  paused: ["cancel", "pause", "resume", "set-speed", "change"],
  ready: ["cancel", "pause", "resume", "set-speed", "change", "complete"],
  standby: ["cancel", "pause", "resume", "set-speed", "change", "complete"],
  waiting: ["cancel"],
  pending: ["cancel", "finalize"],
  aborting: [],
  concluded: ["dismiss"],
};

/** Drives a fresh job into `state` and hands it to `check` while it is there. */
function* reach(jm: JobManager, state: JobStatus, check: (job: Job) => void): Process {
  const mk = (id: string, cfg: Parameters<typeof testJobDriver>[0], extra: Partial<{ autoFinalize: boolean; autoDismiss: boolean }> = {}, txn = jm.newTxn()) =>
    jm.create({ id, driver: testJobDriver(cfg), txn, ...extra });
  let job: Job;
  switch (state) {
    case "created":
      job = mk("j", {});
      break;
    case "running":
      job = mk("j", { iterations: 100, workNs: 10_000_000 });
      job.start();
      yield sleep(1_000);
      break;
    case "paused":
      job = mk("j", { iterations: 100 });
      job.start();
      yield sleep(1_000);
      job.userPause();
      yield sleep(1_000);
      break;
    case "ready":
    case "standby":
      job = mk("j", { readyAfter: 1 });
      job.start();
      yield sleep(5_000_000);
      if (state === "standby") {
        job.userPause();
        yield sleep(1_000);
      }
      break;
    case "waiting": {
      const txn = jm.newTxn();
      job = mk("j", { iterations: 1 }, {}, txn);
      mk("slow", { iterations: 100, workNs: 10_000_000 }, {}, txn).start();
      job.start();
      yield sleep(5_000_000);
      break;
    }
    case "pending":
      job = mk("j", { iterations: 1 }, { autoFinalize: false });
      job.start();
      yield sleep(5_000_000);
      break;
    case "aborting": {
      const txn = jm.newTxn();
      job = mk("j", { failAt: 0 }, {}, txn);
      mk("slow", { iterations: 100, workNs: 50_000_000 }, {}, txn).start(); // newest: finalized first, so j waits in aborting
      job.start();
      yield sleep(1_000_000);
      break;
    }
    case "concluded":
      job = mk("j", { iterations: 1 }, { autoDismiss: false });
      job.start();
      yield sleep(5_000_000);
      break;
    default:
      throw new Error(`cannot reach ${state}`);
  }
  expect(job.status).toBe(state);
  check(job);
}

describe("every state × verb", () => {
  for (const state of Object.keys(ACCEPTS) as JobStatus[]) {
    it(`in ${state}: accepts ${ACCEPTS[state].join(", ") || "nothing"}, refuses the rest with QEMU's message`, () => {
      const { result } = runScript(function* ({ jm }) {
        yield* reach(jm, state, (job) => {
          for (const verb of JOB_VERBS) {
            const run = () => job.applyVerb(verb);
            if (ACCEPTS[state].includes(verb)) expect(run).not.toThrow();
            else expect(run).toThrow(`Job 'j' in state '${state}' cannot accept command verb '${verb}'`);
          }
        });
      });
      expect(result.outcome.kind).not.toBe("failure");
    });
  }

  it("a dismissed job is gone: touching it is a use-after-free", () => {
    const { result } = runScript(function* ({ jm }) {
      yield* reach(jm, "concluded", (job) => {
        job.dismiss();
        expect(job.status).toBe("null");
        expect(() => job.applyVerb("cancel")).toThrow("use after free");
        expect(jm.get("j")).toBeUndefined();
      });
    });
    expect(result.outcome.kind).not.toBe("failure");
  });
});
