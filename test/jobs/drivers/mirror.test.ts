import { describe, expect, it } from "vitest";
import { sleep } from "../../../sim/scheduler/index.js";
import { createMirror, MirrorDriver } from "../../../sim/jobs/drivers/mirror.js";
import { blockWorld, MiB } from "./world.js";

describe("mirror", () => {
  it("copies under a live guest, reaches ready, and complete pivots: the target equals the source at pivot", () => {
    const w = blockWorld();
    const src = w.disk("src", 32 * MiB), tgt = w.disk("tgt", 32 * MiB, { writeLatencyNs: 300_000 });
    let driver!: MirrorDriver;
    const r = w.run(function* () {
      const g = w.guest("drive0", src, { intervalNs: 1_000_000 });
      yield sleep(5_000_000);
      const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full" });
      driver = job.driver as MirrorDriver;
      job.start();
      while (job.status !== "ready") yield sleep(1_000_000);
      yield sleep(300_000_000); // stays ready while copying new writes
      expect(job.status).toBe("ready");
      job.complete();
      while (!job.freed) yield sleep(1_000_000);
      // the guest now writes to the target
      expect(g.backend.root).toBe(tgt);
      const before = g.stats.completed;
      yield sleep(50_000_000);
      expect(g.stats.completed).toBeGreaterThan(before);
    });
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(w.events()).toEqual([
      "m0:created", "m0:running", "m0:ready", "BLOCK_JOB_READY:m0",
      "m0:waiting", "m0:pending", "BLOCK_JOB_COMPLETED:m0", "m0:concluded", "m0:null",
    ]);
    expect(driver.pivoted).toBe(true);
    const atPivot = driver.contentAtPivot!.map((v) => v.writeId);
    const tgtNow = tgt.content(0, tgt.sizeBytes).versions.map((v) => v.writeId);
    // the guest kept writing to the target after the pivot; every cluster it did not touch equals the source at pivot
    const srcNow = src.content(0, src.sizeBytes).versions.map((v) => v.writeId);
    expect(srcNow).toEqual(atPivot);
    const differing = tgtNow.filter((id, i) => id !== atPivot[i]);
    expect(differing.every((id) => id > Math.max(...atPivot))).toBe(true);
    expect(w.jm.violations).toEqual([]);
  });

  it("a soft cancel in ready finishes with COMPLETED and no pivot; a cancel before ready is hard", () => {
    for (const when of ["ready", "running"] as const) {
      const w = blockWorld();
      const src = w.disk("src", 16 * MiB), tgt = w.disk("tgt", 16 * MiB, { writeLatencyNs: 2_000_000 });
      let driver!: MirrorDriver;
      w.run(function* () {
        const g = w.guest("drive0", src, { intervalNs: 3_000_000 });
        const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full" });
        driver = job.driver as MirrorDriver;
        job.start();
        if (when === "ready") while (job.status !== "ready") yield sleep(1_000_000);
        else yield sleep(1_000_000);
        job.userCancel(false);
        while (!job.freed) yield sleep(1_000_000);
        expect(g.backend.root).toBe(src);
      });
      expect(driver.pivoted).toBe(false);
      const tail = w.events().slice(-4);
      expect(tail).toEqual(when === "ready"
        ? ["m0:pending", "BLOCK_JOB_COMPLETED:m0", "m0:concluded", "m0:null"]
        : ["m0:aborting", "BLOCK_JOB_CANCELLED:m0", "m0:concluded", "m0:null"]);
    }
  });

  it("refuses a source that is not a root node, and blocks its target", () => {
    const w = blockWorld();
    const src = w.disk("src", 16 * MiB), tgt = w.disk("tgt", 16 * MiB), other = w.disk("other", 16 * MiB);
    w.run(function* () {
      const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full" });
      expect(() => createMirror(w, { id: "m1", source: src, target: other, sync: "full" })).toThrow("Need a root block node");
      expect(() => createMirror(w, { id: "m2", source: other, target: tgt, sync: "full" })).toThrow("Node 'tgt' is busy: block device is in use by block job: mirror");
      job.userCancel(true);
      yield sleep(1);
    });
    expect(w.graph.nodes().map((n) => n.name)).toEqual(["src", "tgt", "other"]);
  });
});

describe("mirror copy-mode write-blocking (active mirroring, QEMU 7.2)", () => {
  /** A mirror of a 16 MiB disk (source writes 100 µs, target writes 2 ms) in `copyMode`, driven to READY; then `writes` guest writes of 64 KiB. */
  function activeWorld(copyMode: "background" | "write-blocking", writes: number) {
    const w = blockWorld();
    const src = w.disk("src", 16 * MiB), tgt = w.disk("tgt", 16 * MiB, { writeLatencyNs: 2_000_000 });
    const blk = w.graph.createBackend({ name: "drive0", issuer: "guest", root: src, queueWhenDrained: true });
    const seen: { latencyNs: number; targetMatches: boolean; offset: number }[] = [];
    let job!: ReturnType<typeof createMirror>;
    const r = w.run(function* () {
      job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full", copyMode });
      job.start();
      while (job.status !== "ready") yield sleep(1_000_000);
      for (let i = 0; i < writes; i++) {
        const offset = ((i * 7) % 256) * 65536, t0 = w.sim.now;
        yield* blk.write(offset, 65536);
        const s = src.content(offset, 65536).versions, t = tgt.content(offset, 65536).versions;
        seen.push({ latencyNs: w.sim.now - t0, targetMatches: s.every((v, k) => v.writeId === t[k].writeId), offset });
        yield sleep(3_000_000);
      }
      job.complete();
      while (!job.freed) yield sleep(1_000_000);
    });
    return { w, r, seen, job, src, tgt };
  }

  it("after READY a guest write completes only once the target holds it: the target never lags the source for written ranges", () => {
    const { r, seen, w } = activeWorld("write-blocking", 20);
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(seen.every((s) => s.targetMatches)).toBe(true);
    // the guest's write latency includes the target write: source 100 µs, then target 2 ms
    expect(seen.every((s) => s.latencyNs === 2_100_000)).toBe(true);
    expect(w.events()).toEqual(["m0:created", "m0:running", "m0:ready", "BLOCK_JOB_READY:m0", "m0:waiting", "m0:pending", "BLOCK_JOB_COMPLETED:m0", "m0:concluded", "m0:null"]);
    expect(w.jm.violations).toEqual([]);
  });

  it("in background mode the same writes return after the source write and reach the target later", () => {
    const { seen } = activeWorld("background", 20);
    expect(seen.every((s) => s.latencyNs === 100_000)).toBe(true);
    expect(seen.some((s) => !s.targetMatches)).toBe(true);
  });

  it("progress: an active write adds its bytes to len and, once copied, to offset, and leaves the bitmap clean; in background mode the write dirties the bitmap", () => {
    for (const mode of ["write-blocking", "background"] as const) {
      const w = blockWorld();
      const src = w.disk("src", 4 * MiB), tgt = w.disk("tgt", 4 * MiB);
      const blk = w.graph.createBackend({ name: "drive0", issuer: "guest", root: src, queueWhenDrained: true });
      const progress: [number, number][] = [];
      w.run(function* () {
        const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full", copyMode: mode });
        job.start();
        while (job.status !== "ready") yield sleep(1_000_000);
        progress.push([job.progressCurrent, job.progressTotal]);
        yield* blk.write(0, 65536);
        progress.push([job.progressCurrent, job.progressTotal]);
        expect((job.driver as MirrorDriver).bitmap.count).toBe(mode === "write-blocking" ? 0 : 1);
        job.userCancel(true);
      });
      const len = 4 * MiB;
      expect(progress).toEqual(mode === "write-blocking" ? [[len, len], [len + 65536, len + 65536]] : [[len, len], [len, len]]); // background: len moves only when the job next goes round its loop
    }
  });

  it("an active write waits for a copy of the same chunk still in flight, so the stale copy never lands last", () => {
    // before READY: the background copy of chunk 0 is slow (4 ms reads); a guest write to chunk 0 lands meanwhile
    const w = blockWorld();
    const src = w.disk("src", 4 * MiB, { readLatencyNs: 4_000_000 }), tgt = w.disk("tgt", 4 * MiB);
    const blk = w.graph.createBackend({ name: "drive0", issuer: "guest", root: src, queueWhenDrained: true });
    let latency = 0;
    w.run(function* () {
      const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full", copyMode: "write-blocking" });
      job.start();
      yield sleep(1_000_000);
      const t0 = w.sim.now;
      yield* blk.write(0, 65536);
      latency = w.sim.now - t0;
      while (job.status !== "ready") yield sleep(1_000_000);
      job.complete();
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(latency).toBeGreaterThan(3_000_000); // it waited for the 1 MiB copy covering chunk 0
    expect(tgt.content(0, 65536).versions).toEqual(src.content(0, 65536).versions);
    expect(w.jm.violations).toEqual([]);
  });
});

describe("mirror speed in READY (QEMU 7.2 mirror_run)", () => {
  it("a READY mirror that is not completing does not sleep for its rate limit: new writes are copied at once", () => {
    const w = blockWorld();
    const src = w.disk("src", 4 * MiB), tgt = w.disk("tgt", 4 * MiB);
    const blk = w.graph.createBackend({ name: "drive0", issuer: "guest", root: src, queueWhenDrained: true });
    let lagging = -1;
    w.run(function* () {
      const job = createMirror(w, { id: "m0", source: src, target: tgt, sync: "full", speedBytesPerSec: 1 * MiB });
      job.start();
      while (job.status !== "ready") yield sleep(10_000_000);
      // two bursts of 1 MiB, 150 ms apart: at 1 MiB/s the first one's copy would hold the second back for a second
      for (const burst of [0, 1]) {
        for (let i = 0; i < 16; i++) yield* blk.write((burst * 16 + i) * 65536, 65536);
        yield sleep(150_000_000); // more than the idle slice after which the job looks again
      }
      lagging = (job.driver as MirrorDriver).bitmap.count;
      job.userCancel(true);
    });
    expect(lagging).toBe(0);
  });
});

describe("blockdev-mirror copy-mode write-blocking starting under a guest write", () => {
  it("drains the source before inserting mirror_top, so a write in flight below it is in the bulk copy (fuzz seed 74000 with activeMirror)", async () => {
    const { runModel } = await import("../../../sim/fuzz/index.js");
    const run = runModel({
      devices: [
        { name: "dt0", sizeBytes: 4 * MiB, latencyNs: 500_000, latencyMaxNs: 10_500_000 },
        { name: "base.qcow2", sizeBytes: 4 * MiB, latencyNs: 1_000_000 },
        { name: "mid.qcow2", sizeBytes: 4 * MiB, latencyNs: 2_000_000 },
        { name: "top.qcow2", sizeBytes: 4 * MiB, latencyNs: 100_000, latencyMaxNs: 10_100_000 },
      ],
      nodes: [
        { driver: "raw", "node-name": "t0", file: "dt0" }, { driver: "raw", "node-name": "base", file: "base.qcow2" },
        { driver: "qcow2", "node-name": "mid", file: "mid.qcow2", backing: "base" }, { driver: "qcow2", "node-name": "top", file: "top.qcow2", backing: "mid" },
      ],
      actions: [
        { atNs: 0, guest: "top", requests: 1, intervalNs: 0 },
        { atNs: 100_000, execute: "blockdev-mirror", arguments: { "job-id": "j0", device: "top", target: "t0", sync: "full", "copy-mode": "write-blocking" } },
      ],
      maxTimeNs: 30e9,
    } as Parameters<typeof runModel>[0]);
    expect(run.violations).toEqual([]);
    expect(run.events).toContain("BLOCK_JOB_COMPLETED j0");
  });
});
