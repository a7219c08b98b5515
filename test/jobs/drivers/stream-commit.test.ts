import { describe, expect, it } from "vitest";
import type { BlockNode } from "../../../sim/block/index.js";
import { sleep, type Process } from "../../../sim/scheduler/index.js";
import { createCommit } from "../../../sim/jobs/drivers/commit.js";
import { createMirror, type MirrorDriver } from "../../../sim/jobs/drivers/mirror.js";
import { createStream } from "../../../sim/jobs/drivers/stream.js";
import { chainBetween } from "../../../sim/jobs/drivers/stream.js";
import { blockWorld, MiB } from "./world.js";

/**
 * A parent of `node` standing for a job above it (a backup's): it pauses when the first drained section reaches it
 * and resumes when the last ends. Returns what it saw: "begin <state()> after <last event>", "end".
 */
function watchSections(w: ReturnType<typeof blockWorld>, node: BlockNode, state: () => string): string[] {
  const seen: string[] = [];
  let depth = 0;
  w.graph.attachParent(node, {
    name: "watcher",
    drainedBegin: () => {
      if (depth++ === 0) seen.push(`begin ${state()} after ${w.events().at(-1)}`);
    },
    drainedEnd: () => {
      if (--depth === 0) seen.push("end");
    },
    drainedPoll: () => false,
  });
  return seen;
}

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

  it("completes through QEMU 7.2's four drained sections: filter drop, backing change, and its BlockBackend's unref (two)", () => {
    const { w, base, mid, top, fill } = chain();
    // A filter above top stands for a backup's copy-before-write filter; a DrainParent on it for the backup.
    const above = w.graph.createNode({ name: "above", driver: "filter", file: top });
    const seen = watchSections(w, above, () => `above->${above.file?.name} top->${top.backing?.name ?? "none"} blk:${w.graph.backends().map((b) => b.root?.name).join(",")}`);
    let filter = "";
    w.run(function* () {
      yield* fill();
      const job = createStream(w, { id: "s0", top, base });
      filter = above.file!.name;
      seen.length = 0; // from here on: the stream's completion only
      job.start();
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(filter).not.toBe("top"); // the copy-on-read filter went in between
    expect(seen).toEqual([
      `begin above->${filter} top->mid blk:${filter} after s0:pending`, // bdrv_cor_filter_drop: a drained section of the filter
      "end",
      "begin above->top top->mid blk:top after s0:pending", // above_base (mid) drained, base set as top's backing inside
      "end",
      "begin above->top top->base blk:top after s0:pending", // stream_clean's blk_unref: blk_drain...
      "end",
      "begin above->top top->base blk:top after s0:pending", // ...and blk_remove_bs's blk_drain
      "end",
    ]);
    expect(w.events().slice(-3)).toEqual(["BLOCK_JOB_COMPLETED:s0", "s0:concluded", "s0:null"]);
    expect(w.graph.backends()).toEqual([]);
    expect(w.graph.findNode(filter)).toBeUndefined();
    expect(mid.parents().filter((l) => l.parentIsNode)).toEqual([]);
  });

  it("a cancelled stream drops its filter in clean, before BLOCK_JOB_CANCELLED, and its BlockBackend drains top twice", () => {
    const { w, base, top, fill } = chain();
    const above = w.graph.createNode({ name: "above", driver: "filter", file: top });
    const seen = watchSections(w, above, () => `above->${above.file?.name}`);
    let filter = "";
    w.run(function* () {
      yield* fill();
      const job = createStream(w, { id: "s0", top, base, speedBytesPerSec: 1 });
      filter = above.file!.name;
      job.start();
      yield sleep(1_000_000);
      seen.length = 0;
      job.userCancel(true);
      while (!job.freed) yield sleep(1_000_000);
    });
    expect(seen).toEqual([
      `begin above->${filter} after s0:aborting`, "end",
      "begin above->top after s0:aborting", "end",
      "begin above->top after s0:aborting", "end",
    ]);
    expect(w.events().slice(-3)).toEqual(["BLOCK_JOB_CANCELLED:s0", "s0:concluded", "s0:null"]);
    expect(top.backing?.name).toBe("mid");
    expect(w.graph.findNode(filter)).toBeUndefined();
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
