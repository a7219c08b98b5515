import { describe, expect, it } from "vitest";
import { RandomStrategy, sleep } from "../../../sim/scheduler/index.js";
import { BackupDriver, createBackup } from "../../../sim/jobs/drivers/backup.js";
import { blockWorld, MiB } from "./world.js";

describe("backup", () => {
  it("sync=full under a live guest: the target holds the source as it was at creation", () => {
    const w = blockWorld();
    const src = w.disk("src", 64 * MiB), tgt = w.disk("tgt", 64 * MiB, { writeLatencyNs: 2_000_000, queueDepth: 4 });
    let driver!: BackupDriver;
    const r = w.run(function* () {
      const g = w.guest("drive0", src, { stopAtNs: 2_000_000_000 });
      yield sleep(10_000_000); // the guest has written something before the backup
      const job = createBackup(w, { id: "b0", source: src, target: tgt, sync: "full" });
      driver = job.driver as BackupDriver;
      job.start();
      while (!job.freed) yield sleep(1_000_000);
      expect(g.stats.completed).toBeGreaterThan(50);
    });
    // the guest overwrote clusters while the backup ran, yet the target has the old data
    const now = src.content(0, src.sizeBytes).versions;
    expect(now.filter((v, i) => v.writeId !== driver.pointInTime[i].writeId).length).toBeGreaterThan(20);
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(w.events()).toEqual(["b0:created", "b0:running", "b0:waiting", "b0:pending", "BLOCK_JOB_COMPLETED:b0", "b0:concluded", "b0:null"]);
    const got = tgt.content(0, tgt.sizeBytes).versions.map((v) => v.writeId);
    expect(got).toEqual(driver.pointInTime.map((v) => v.writeId));
    expect(new Set(got).size).toBeGreaterThan(10); // not trivially all zeroes
    expect(w.jm.violations).toEqual([]);
    // clean removed the filter and the target's blockers
    expect(w.graph.findNode(driver.filter.name)).toBeUndefined();
    expect(tgt.opBlocker("BACKUP_TARGET")).toBeUndefined();
  });

  it("blocks the target while running, with QEMU's message, but not the source", () => {
    const w = blockWorld();
    const src = w.disk("src", 16 * MiB), tgt = w.disk("tgt", 16 * MiB), t2 = w.disk("t2", 16 * MiB);
    w.run(function* () {
      const job = createBackup(w, { id: "b0", source: src, target: tgt, sync: "full" });
      job.start();
      expect(() => createBackup(w, { id: "b1", source: t2, target: tgt, sync: "full" })).toThrow("Node 'tgt' is busy: block device is in use by block job: backup");
      const second = createBackup(w, { id: "b2", source: src, target: t2, sync: "full" });
      second.start();
      while (!job.freed || !second.freed) yield sleep(1_000_000);
    });
    expect(w.jm.violations).toEqual([]);
  });

  it("two backups of one source, the older finishing first: its filter goes, the newer one's stays under the guest, whose target keeps its point in time", () => {
    const w = blockWorld();
    const src = w.disk("src", 8 * MiB), t1 = w.disk("t1", 8 * MiB), t2 = w.disk("t2", 8 * MiB);
    let newer!: BackupDriver;
    w.run(function* () {
      const g = w.guest("drive0", src, { stopAtNs: 3_000_000_000 });
      yield sleep(5_000_000);
      const older = createBackup(w, { id: "b1", source: src, target: t1, sync: "full" });
      older.start();
      const job = createBackup(w, { id: "b0", source: src, target: t2, sync: "full", speedBytesPerSec: 4 * MiB }); // its filter goes below b1's
      newer = job.driver as BackupDriver;
      job.start();
      while (!older.freed) yield sleep(1_000_000);
      expect(job.status).toBe("running");
      expect(g.backend.root).toBe(newer.filter); // not the bare source: b0's copy-before-write still sees the guest's writes
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(t2.content(0, t2.sizeBytes).versions.map((v) => v.writeId)).toEqual(newer.pointInTime.map((v) => v.writeId));
    expect(src.content(0, src.sizeBytes).versions.filter((v, i) => v.writeId !== newer.pointInTime[i].writeId).length).toBeGreaterThan(5);
  });

  it("a pause drains its copy tasks first, so a paused backup issues no I/O; resume finishes the copy", () => {
    const w = blockWorld();
    const src = w.disk("src", 32 * MiB), tgt = w.disk("tgt", 32 * MiB);
    w.graph.observe(() => {});
    w.run(function* () {
      const job = createBackup(w, { id: "b0", source: src, target: tgt, sync: "full", maxWorkers: 4 });
      job.start();
      yield sleep(300_000);
      job.userPause();
      yield sleep(5_000_000);
      expect(job.status).toBe("paused");
      const at = job.progressCurrent;
      yield sleep(50_000_000);
      expect(job.progressCurrent).toBe(at);
      job.userResume();
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(w.jm.violations).toEqual([]);
    expect(w.events().at(-3)).toBe("BLOCK_JOB_COMPLETED:b0");
  });

  it("a failing target write with on-target-error=report fails the job with EIO", () => {
    const w = blockWorld();
    const src = w.disk("src", 16 * MiB);
    const tgt = w.disk("tgt", 16 * MiB, { faults: [{ op: "write", errno: "EIO", once: true }] });
    w.run(function* () {
      createBackup(w, { id: "b0", source: src, target: tgt, sync: "full" }).start();
      yield sleep(100_000_000);
    });
    expect(w.events()).toEqual(["b0:created", "b0:running", "BLOCK_JOB_ERROR:b0(write,report)", "b0:aborting", "BLOCK_JOB_COMPLETED:b0!", "b0:concluded", "b0:null"]);
  });
});

describe("backup under random schedules", () => {
  it("a guest write still going through the copy-before-write filter when the backup cleans up finishes safely", () => {
    for (let seed = 1; seed <= 12; seed++) {
      const w = blockWorld({ seed, strategy: new RandomStrategy(seed) });
      const src = w.disk("src", 8 * MiB), tgt = w.disk("tgt", 8 * MiB, { writeLatencyNs: 300_000 });
      let driver!: BackupDriver;
      const r = w.run(function* () {
        const g = w.guest("drive0", src, { intervalNs: 20_000, iodepth: 8 });
        const job = createBackup(w, { id: "b0", source: src, target: tgt, sync: "full" });
        driver = job.driver as BackupDriver;
        job.start();
        while (!job.freed) yield sleep(100_000);
        yield sleep(5_000_000);
        g.stop();
      });
      expect(r.outcome, `seed ${seed}`).toEqual({ kind: "ok" });
      expect(tgt.content(0, tgt.sizeBytes).versions.map((v) => v.writeId), `seed ${seed}`).toEqual(driver.pointInTime.map((v) => v.writeId));
      expect(w.graph.findNode(driver.filter.name), `seed ${seed}`).toBeUndefined();
    }
  });
});

describe("backup cancelled while its copies fail", () => {
  it("waits for its copy tasks and ends cancelled, with no error action and no I/O after it is freed (fuzz seed 71000)", async () => {
    const { runModel } = await import("../../../sim/fuzz/index.js");
    const dev = (name: string, latencyNs: number, latencyMaxNs: number) => ({ name, sizeBytes: 4 * MiB, latencyNs, latencyMaxNs });
    const run = runModel({
      devices: [{ ...dev("ds0", 100_000, 10_100_000), faults: [{ op: "read", errno: "ENOSPC", once: false, afterRequests: 3 }] }, dev("dt0", 100_000, 10_100_000)],
      nodes: [{ driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "t0", file: "dt0" }],
      actions: [
        { atNs: 0, execute: "transaction", arguments: { actions: [{ type: "blockdev-backup", data: { "job-id": "j1", device: "s0", target: "t0", sync: "full" } }] } },
        { atNs: 100_000, execute: "job-cancel", arguments: { id: "j1" } },
      ],
      maxTimeNs: 30e9,
    } as Parameters<typeof runModel>[0]);
    expect(run.violations).toEqual([]);
    expect(run.events).toContain("BLOCK_JOB_CANCELLED j1");
    expect(run.events.some((e) => e.startsWith("BLOCK_JOB_ERROR"))).toBe(false);
  });
});
