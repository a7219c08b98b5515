import { describe, expect, it } from "vitest";
import { Scheduler, sleep, type Process } from "../../sim/scheduler/index.js";
import { testJobDriver } from "../../sim/jobs/drivers/test-job.js";
import { JobManager } from "../../sim/jobs/manager.js";
import { JOB_COMMANDS } from "../../sim/qmp/job-commands.js";
import { commandTable, Monitor } from "../../sim/qmp/monitor.js";
import type { QmpResponse } from "../../sim/qmp/types.js";

function world() {
  const sim = new Scheduler({ maxSteps: 1_000_000 });
  const jm = new JobManager(sim);
  const mon = new Monitor(sim, { jm }, commandTable(JOB_COMMANDS));
  return { sim, jm, mon };
}

describe("the QMP monitor", () => {
  it("answers unknown commands and bad arguments with QEMU's classes and messages", () => {
    const { sim, mon } = world();
    const out: QmpResponse[] = [];
    sim.spawn("client", (function* (): Process {
      out.push(yield* mon.execute({ execute: "no-such-thing" }));
      out.push(yield* mon.execute({ execute: "job-pause" }));
      out.push(yield* mon.execute({ execute: "job-pause", arguments: { id: 7 } }));
      out.push(yield* mon.execute({ execute: "job-pause", arguments: { id: "x", extra: 1 } }));
      out.push(yield* mon.execute({ execute: "job-pause", arguments: { id: "x" } }));
      out.push(yield* mon.execute({ execute: "block-job-pause", arguments: { device: "x" } }));
      out.push(yield* mon.execute({ execute: "query-jobs", id: "q1" }));
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(out).toEqual([
      { error: { class: "CommandNotFound", desc: "The command no-such-thing has not been found" } },
      { error: { class: "GenericError", desc: "Parameter 'id' is missing" } },
      { error: { class: "GenericError", desc: "Invalid parameter type for 'id', expected: string" } },
      { error: { class: "GenericError", desc: "Parameter 'extra' is unexpected" } },
      { error: { class: "GenericError", desc: "Job not found" } },
      { error: { class: "DeviceNotActive", desc: "Block job 'x' not found" } },
      { return: [], id: "q1" },
    ]);
  });

  it("replies one main-loop round after the handler, so the job work a command starts comes first; events carry virtual time", () => {
    const { sim, jm, mon } = world();
    sim.spawn("client", (function* (): Process {
      const job = jm.create({ id: "j0", driver: testJobDriver({ iterations: 2, sleepNs: 0 }) });
      job.start();
      yield sleep(1_500_000_000);
      jm.create({ id: "j1", driver: testJobDriver({ iterations: 100, sleepNs: 1_000_000 }) }).start();
      yield* mon.execute({ execute: "job-pause", arguments: { id: "j1" } });
      yield* mon.execute({ execute: "query-block-jobs" });
      yield sleep(5_000_000);
      yield* mon.execute({ execute: "block-job-cancel", arguments: { device: "j1" } });
      yield* mon.execute({ execute: "block-job-cancel", arguments: { device: "j1", force: true } });
    })());
    sim.run();
    const lines = mon.transcript.map((t) => ("cmd" in t ? `> ${t.cmd}` : "event" in t ? `E ${t.event} ${t.data.status ?? ""}`.trim() : "error" in t ? `! ${t.error.desc}` : "<"));
    expect(lines.slice(lines.indexOf("> job-pause"))).toEqual([
      "> job-pause", "E JOB_STATUS_CHANGE paused", "<",
      "> query-block-jobs", "<",
      "> block-job-cancel", "! The block job for device 'j1' is currently paused",
      "> block-job-cancel", "E JOB_STATUS_CHANGE running", "E JOB_STATUS_CHANGE aborting",
      "E BLOCK_JOB_CANCELLED", "E JOB_STATUS_CHANGE concluded", "E JOB_STATUS_CHANGE null", "<",
    ]);
    const q = mon.transcript[mon.transcript.findIndex((t) => "cmd" in t && t.cmd === "query-block-jobs") + 1];
    expect(q).toMatchObject({ return: [{ device: "j1", status: "paused", paused: true, busy: false, "io-status": "ok" }] });
    expect(mon.events[0].timestamp).toEqual({ seconds: 0, microseconds: 0 });
    expect(mon.events.at(-1)!.timestamp).toEqual({ seconds: 1, microseconds: 505000 });
  });
});
