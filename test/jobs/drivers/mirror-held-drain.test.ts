/**
 * A completed mirror or active commit holds a drained section of its source
 * from its run's end until its exit (QEMU 7.2 mirror_run leaves in_drain set,
 * mirror_exit_common ends the section): with auto-finalize off, through
 * PENDING until job-finalize. Goldens mirror_pending_qemu_io_hang,
 * mirror_pending_aio_write_queued and mirror_autofinalize_qemu_io_answered
 * pin it against QEMU 7.2.
 */
import { describe, expect, it } from "vitest";
import { FuzzCampaign } from "../../../sim/fuzz/index.js";
import { loadScenarioText } from "../../../sim/scenario/loader.js";
import { runScenario } from "../../../sim/scenario/runner.js";
import type { MirrorDriver } from "../../../sim/jobs/drivers/mirror.js";
import type { Qemu } from "../../../sim/qmp/qemu.js";
import type { QmpResponse } from "../../../sim/qmp/types.js";
import { sleep, type Process } from "../../../sim/scheduler/index.js";
import { session } from "../../qmp/harness.js";

type Qmp = (execute: string, args?: Record<string, unknown>) => Process<QmpResponse>;

/** A 16 MiB source "src" (d1, written) mirrored to "tgt" (d2), READY, then completed; waits for PENDING (or the end). */
function* completedMirror(q: Qemu, qmp: Qmp, autoFinalize: boolean): Process<void> {
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "d1" });
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
  expect(yield* qmp("blockdev-mirror", { "job-id": "m0", device: "src", target: "tgt", sync: "full", "auto-finalize": autoFinalize })).toEqual({ return: {} });
  while (!q.jm.jobs[0]?.ready) yield sleep(1e6);
  yield* qmp("job-complete", { id: "m0" });
  while (q.jm.jobs.length > 0 && q.jm.jobs[0].status !== "pending") yield sleep(1e6);
}

describe("a completed mirror's drained section on its source, until its exit", () => {
  it("queues a guest write on the source while the job is pending; job-finalize ends the section and the write lands on the target it pivoted to", () => {
    let wroteAt = -1, finalizedAt = -1, pendingAt = -1;
    const { q, result } = session(function* (q, qmp) {
      yield* completedMirror(q, qmp, false);
      pendingAt = q.sim.now;
      // a guest device on the job's filter above the source, as blockdev-mirror leaves a guest's BlockBackend
      const guest = q.graph.createBackend({ name: "guest0", issuer: "guest", root: (q.jm.jobs[0].driver as MirrorDriver).mirrorTop, queueWhenDrained: true });
      q.sim.spawn("guest", (function* () {
        yield* guest.write(0, 65536);
        wroteAt = q.sim.now;
      })());
      yield sleep(500e6);
      expect(wroteAt).toBe(-1); // half a second later, still queued
      expect(guest.queued).toBe(1);
      yield* qmp("job-finalize", { id: "m0" });
      finalizedAt = q.sim.now;
      while (wroteAt < 0) yield sleep(1e6);
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(pendingAt).toBeGreaterThan(0);
    expect(wroteAt).toBeGreaterThanOrEqual(finalizedAt);
    // released after the pivot: the guest's backend now uses the target
    expect(q.graph.findNode("tgt")!.content(0, 65536).versions[0].writer).toBe("guest");
  });

  it("hangs QEMU on an HMP qemu-io write to the source while the job is pending: no reply, ever, and the monitor answers no one (a deadlock naming the section's holder)", () => {
    let secondReply: QmpResponse | undefined;
    const { q, result, lines } = session(function* (q, qmp) {
      yield* completedMirror(q, qmp, false);
      q.sim.spawn("second client", (function* () {
        yield sleep(10e6);
        secondReply = yield* qmp("query-jobs");
      })());
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io src "write -P 0x5 0 64k"' });
      throw new Error("the qemu-io write was answered");
    });
    expect(secondReply).toBeUndefined();
    expect(lines.slice(-1)).toEqual(["> human-monitor-command"]);
    expect(q.jm.jobs[0].status).toBe("pending");
    expect(result.outcome.kind).toBe("deadlock");
    const waiting = result.outcome.kind === "deadlock" ? result.outcome.waiting : [];
    expect(waiting).toContainEqual({
      process: "client",
      on: "blk(qemu-io): its node to leave the drained section (1 request queued), which the completed mirror job 'm0' holds until its exit (job-finalize: auto-finalize is off)",
    });
    expect(waiting.find((w) => w.process === "second client")?.on).toContain("monitor free");
  });

  it("a scenario shows the hang as a deadlock whose unfinished step says what its qemu-io waits for", () => {
    const yaml = `
name: mirror-pending-qemu-io-hang
devices:
  - { name: disk.img, size: 16MiB, latency: 100us, data: [{ offset: 0, length: 8MiB }] }
  - { name: mirror.img, size: 16MiB, latency: 150us }
nodes:
  - { driver: raw, node-name: disk, file: disk.img }
  - { driver: raw, node-name: copy, file: mirror.img }
steps:
  - at: 1ms
    execute: blockdev-mirror
    arguments: { job-id: mirror0, device: disk, target: copy, sync: full, auto-finalize: false }
  - on-event: { event: BLOCK_JOB_READY, data: { device: mirror0 } }
    execute: job-complete
    arguments: { id: mirror0 }
  - on-event: { event: BLOCK_JOB_PENDING, data: { id: mirror0 } }
    execute: human-monitor-command
    arguments: { command-line: 'qemu-io disk "write 0 64k"' }
  - execute: job-finalize
    arguments: { id: mirror0 }
`;
    const report = runScenario(loadScenarioText(yaml));
    expect(report.outcome.kind).toBe("deadlock");
    expect(report.failures.map((f) => f.message)).toContain(
      "steps[2] human-monitor-command had not finished when the run ended: it waits for blk(qemu-io): its node to leave the drained section (1 request queued), which the completed mirror job 'mirror0' holds until its exit (job-finalize: auto-finalize is off)");
    expect(report.failures.map((f) => f.message)).toContain("steps[3] job-finalize never ran: it was waiting for the previous step (steps[2] human-monitor-command)");
  });

  it("answers the qemu-io write with auto-finalize on: the exit ends the section by itself", () => {
    let reply: QmpResponse | undefined;
    const { result } = session(function* (q, qmp) {
      yield* completedMirror(q, qmp, true);
      reply = yield* qmp("human-monitor-command", { "command-line": 'qemu-io src "write -P 0x5 0 64k"' });
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(reply).toEqual({ return: "" });
  });

  it("counts as quiescent to other drains while its exit is pending, as QEMU's mirror_drained_poll does (in_drain): fuzz seed 1's case, a drain of base settling there, holds every invariant", () => {
    // Under `current`, fast-check seed 1 run 172: an active commit of top completed, and a drained section of
    // base settles before the commit's exit has run; the exit then runs inside it. job-exit-in-drained-section
    // reported it until the invariant exempted a job that holds its own section.
    const campaign = new FuzzCampaign({ seed: 1, profile: "current" });
    expect(campaign.run(172, 174, () => false)).toBeUndefined();
  });
});
