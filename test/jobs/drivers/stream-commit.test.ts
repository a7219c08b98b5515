import { describe, expect, it } from "vitest";
import type { BlockNode } from "../../../sim/block/index.js";
import { sleep, type Process } from "../../../sim/scheduler/index.js";
import { createCommit } from "../../../sim/jobs/drivers/commit.js";
import { createMirror, type MirrorDriver } from "../../../sim/jobs/drivers/mirror.js";
import { createStream } from "../../../sim/jobs/drivers/stream.js";
import { chainBetween } from "../../../sim/jobs/drivers/stream.js";
import { blockWorld, MiB } from "./world.js";

/** base <- mid <- top, 8 MiB; one distinct MiB written into each layer before the job. */
function chain() {
  const w = blockWorld();
  const base = w.qcow2("base", 8 * MiB, null), mid = w.qcow2("mid", 8 * MiB, base), top = w.qcow2("top", 8 * MiB, mid);
  function* fill(): Process {
    yield* base.write(0, MiB, "setup");
    yield* mid.write(2 * MiB, MiB, "setup");
    yield* top.write(4 * MiB, MiB, "setup");
  }
  const view = (n: BlockNode) => n.content(0, n.sizeBytes).versions.map((v) => v.writeId);
  return { w, base, mid, top, fill, view };
}

describe("stream", () => {
  it("pulls the chain above base into top under a live guest, then drops mid; what the guest sees never changes", () => {
    const { w, base, mid, top, fill, view } = chain();
    let before: number[] = [];
    w.run(function* () {
      yield* fill();
      const g = w.guest("drive0", top, { intervalNs: 2_000_000, regionOffsetBytes: 6 * MiB, regionBytes: 2 * MiB });
      yield sleep(1_000_000);
      before = view(top);
      const job = createStream(w, { id: "s0", top, base });
      job.start();
      while (!job.freed) yield sleep(1_000_000);
      g.stop();
    });
    expect(w.events()).toEqual(["s0:created", "s0:running", "s0:waiting", "s0:pending", "BLOCK_JOB_COMPLETED:s0", "s0:concluded", "s0:null"]);
    expect(top.backing).toBe(base);
    expect(chainBetween(top, null).map((n) => n.name)).toEqual(["top", "base"]);
    // mid's data now lives in top; base's data is still reached through the backing link
    expect(top.isAllocated(2 * MiB, MiB)).toBe(true);
    expect(top.isAllocated(0, MiB)).toBe(false);
    const after = view(top);
    expect(after.slice(0, 96)).toEqual(before.slice(0, 96)); // outside the guest's region, content is unchanged
    expect(mid.parents().filter((l) => l.parentIsNode)).toEqual([]);
    expect(w.jm.violations).toEqual([]);
  });

  it("blocks STREAM on the chain it works on", () => {
    const { w, base, top } = chain();
    w.run(function* () {
      const job = createStream(w, { id: "s0", top, base });
      expect(() => createStream(w, { id: "s1", top, base })).toThrow("Node 'top' is busy: block device is in use by block job: stream");
      job.userCancel(true);
      yield sleep(1);
    });
  });
});

describe("commit", () => {
  it("intermediate: commits mid into base and makes base top's backing; top's view is unchanged", () => {
    const { w, base, mid, top, fill, view } = chain();
    let before: number[] = [];
    w.run(function* () {
      yield* fill();
      before = view(top);
      const job = createCommit(w, { id: "c0", top: mid, base });
      job.start();
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(w.events()).toEqual(["c0:created", "c0:running", "c0:waiting", "c0:pending", "BLOCK_JOB_COMPLETED:c0", "c0:concluded", "c0:null"]);
    expect(top.backing).toBe(base);
    expect(base.isAllocated(2 * MiB, MiB)).toBe(true);
    expect(view(top)).toEqual(before);
  });

  it("active: goes ready, and complete pivots the guest onto base, which then holds the whole image", () => {
    const { w, base, mid, top, fill, view } = chain();
    let driver!: MirrorDriver;
    let guestRoot: BlockNode | null = null;
    w.run(function* () {
      yield* fill();
      const g = w.guest("drive0", top, { intervalNs: 3_000_000 });
      const job = createMirror(w, { id: "c1", source: top, target: base, sync: "top", commit: { intermediates: chainBetween(top, base).slice(1) } });
      driver = job.driver as MirrorDriver;
      job.start();
      while (job.status !== "ready") yield sleep(1_000_000);
      g.stop();
      yield sleep(20_000_000);
      job.complete();
      while (!job.freed) yield sleep(1_000_000);
      guestRoot = g.backend.root;
    });
    expect(w.events()).toEqual([
      "c1:created", "c1:running", "c1:ready", "BLOCK_JOB_READY:c1",
      "c1:waiting", "c1:pending", "BLOCK_JOB_COMPLETED:c1", "c1:concluded", "c1:null",
    ]);
    expect(guestRoot).toBe(base);
    expect(view(base)).toEqual(driver.contentAtPivot!.map((v) => v.writeId));
    expect(mid.opBlocker("COMMIT_TARGET")).toBeUndefined();
    expect(w.jm.violations).toEqual([]);
  });
});
