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
