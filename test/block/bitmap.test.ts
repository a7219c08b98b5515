import { describe, expect, it } from "vitest";
import { DirtyBitmap } from "../../sim/block/index.js";
import type { Process } from "../../sim/scheduler/index.js";
import { world } from "./helpers.js";

describe("DirtyBitmap", () => {
  it("marks and cleans chunks overlapping byte ranges", () => {
    const b = new DirtyBitmap("b", 65536, 300_000); // 5 chunks, the last 37,856 bytes
    b.set(65535, 2);
    expect(b.dirtyChunks()).toEqual([0, 1]);
    b.set(0, 100);
    expect(b.count).toBe(2);
    b.set(299_999, 1);
    expect(b.dirtyBytes).toBe(3 * 65536); // QMP's count: whole chunks, the partial last one too (QEMU 7.2: goldens/odd_size_job_len)
    expect(b.nextDirty(2)).toBe(4);
    b.reset(65536, 65536);
    expect(b.dirtyChunks()).toEqual([0, 4]);
    expect(b.chunkRange(4)).toEqual({ offset: 262_144, bytes: 37_856 });
    b.clear();
    expect([b.count, b.dirtyBytes, b.nextDirty()]).toEqual([0, 0, -1]);
    b.setAll();
    expect(b.count).toBe(5);
  });

  it("rejects ranges outside the node", () => {
    const b = new DirtyBitmap("b", 512, 4096);
    expect(() => b.set(4000, 200)).toThrow('bitmap "b": range 4000+200 must lie within [0, 4096)');
    expect(() => b.isDirty(8)).toThrow('bitmap "b": chunk must be a whole number in [0, 8), got 8');
  });
});

describe("node bitmaps", () => {
  it("every modifying request through the node marks enabled bitmaps once it finished; reads and flushes do not", () => {
    const { sim, graph, device } = world();
    const node = graph.createNode({ name: "n", driver: "raw", device: device("d") });
    const blk = graph.createBackend({ issuer: "guest", root: node });
    const mirror = node.addBitmap("mirror", 4096);
    const off = node.addBitmap("off", 4096);
    off.disable();
    const seenDuringWrite: number[] = [];
    sim.spawn("g", (function* (): Process {
      yield* blk.read(0, 4096);
      yield* blk.flush();
      const w = blk.write(8192, 4096);
      let r = w.next();
      while (!r.done) {
        seenDuringWrite.push(mirror.count);
        r = w.next(yield r.value);
      }
      yield* blk.writeZeroes(16384, 4096);
      yield* blk.discard(24576, 8192);
    })());
    sim.run();
    expect(seenDuringWrite).toEqual([0]);
    expect(mirror.dirtyChunks()).toEqual([2, 4, 6, 7]);
    expect(off.count).toBe(0);
    expect(node.bitmaps().map((b) => b.name)).toEqual(["mirror", "off"]);
  });

  it("a failed write still marks (the data may have changed)", () => {
    const { sim, graph, device } = world();
    const dev = device("d");
    dev.addFault({ op: "write", errno: "EIO" });
    const node = graph.createNode({ name: "n", driver: "raw", device: dev });
    const bm = node.addBitmap("b", 65536);
    sim.spawn("g", (function* (): Process {
      try { yield* node.write(0, 4096, "g"); } catch { /* expected */ }
    })());
    sim.run();
    expect(bm.dirtyChunks()).toEqual([0]);
  });

  it("add and remove with QMP's errors", () => {
    const { graph, device } = world();
    const node = graph.createNode({ name: "n", driver: "raw", device: device("d") });
    node.addBitmap("b0", 65536);
    expect(() => node.addBitmap("b0", 65536)).toThrow("Bitmap already exists: b0");
    expect(() => node.addBitmap("b1", 1000)).toThrow("Granularity must be power of 2, and at least 512");
    expect(() => node.addBitmap("b1", 256)).toThrow("Granularity must be power of 2, and at least 512");
    expect(node.bitmap("b0")?.granularityBytes).toBe(65536);
    node.removeBitmap("b0");
    expect(node.bitmap("b0")).toBeUndefined();
    expect(() => node.removeBitmap("b0")).toThrow("Dirty bitmap 'b0' not found");
  });
});
