import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { UNSPECIFIED_VERSION, type BlockRequest } from "../../sim/block/index.js";
import { IoError, ZERO_VERSION, type Content } from "../../sim/disk/index.js";
import { now, sleep, spawn, join, type Process } from "../../sim/scheduler/index.js";
import { chain as chainOf, world } from "./helpers.js";

const C = 4096;
const chain = (sparse = false) => chainOf(C, sparse);


describe("BlockNode reads through backing chains", () => {
  it("an unallocated cluster falls through to the backing node; the top device is not read", () => {
    const { sim, top, topDev, baseDev } = chain();
    let got: Content | undefined;
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* top.write(C, C, "guest"); // id 5
      const before = topDev.stats.submitted;
      got = yield* top.read(0, 6 * C, "guest");
      expect(topDev.stats.submitted - before).toBe(1); // only the allocated run
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(got!.versions.map((v) => v.writeId)).toEqual([1, 5, 3, 4, 0, 0]);
    expect(got!.versions[1].writer).toBe("guest");
    expect(baseDev.stats.bytesRead).toBe(5 * C);
  });

  it("resolves content and allocation instantly, without I/O", () => {
    const { sim, top, base } = chain();
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* top.write(2 * C, 2 * C, "guest");
    })());
    sim.run();
    expect([0, 1, 2, 3, 4].map((c) => top.contentAt(c).writeId)).toEqual([1, 2, 5, 5, 0]);
    expect(top.content(C, 2 * C).versions.map((v) => v.writeId)).toEqual([2, 5]);
    expect(top.isAllocated(2 * C, 2 * C)).toBe(true);
    expect(top.isAllocated(C, 2 * C)).toBe(false);
    expect(top.allocation(0, 16 * C)).toEqual({ allocated: false, bytes: 2 * C });
    expect(top.allocation(2 * C + 100, 8 * C)).toEqual({ allocated: true, bytes: 2 * C - 100 });
    expect(top.allocationAbove(null, 0, 16 * C)).toEqual({ allocated: true, bytes: 2 * C }); // raw base: allocated, for as long as the top answer holds
    expect(top.allocationAbove(base, 0, 16 * C)).toEqual({ allocated: false, bytes: 2 * C });
    expect(top.chain().map((n) => n.name)).toEqual(["top", "base"]);
    expect(() => top.contentAt(16)).toThrow('node "top": cluster must be a whole number in [0, 16), got 16');
  });

  it("write-zeroes allocates in the top: the cluster no longer falls through", () => {
    const { sim, top } = chain();
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* top.writeZeroes(0, C, "guest");
    })());
    sim.run();
    expect(top.isAllocated(0, C)).toBe(true);
    expect(top.contentAt(0)).toEqual({ writeId: 0, writer: "guest" });
  });

  it("reads past the end of a smaller backing node return zeroes; a qcow2 without backing reads unallocated as zeroes", () => {
    const w = world();
    const base = w.graph.createNode({ name: "base", driver: "raw", device: w.device("b", { sizeBytes: 2 * C }) });
    const top = w.graph.createNode({ name: "top", driver: "qcow2", device: w.device("t", { sizeBytes: 4 * C }), backing: base });
    const lone = w.graph.createNode({ name: "lone", driver: "qcow2", device: w.device("l", { sizeBytes: 4 * C }) });
    let a: Content | undefined, b: Content | undefined;
    w.sim.spawn("g", (function* (): Process {
      yield* base.write(0, 2 * C, "prep");
      a = yield* top.read(0, 4 * C, "g");
      b = yield* lone.read(0, 4 * C, "g");
    })());
    w.sim.run();
    expect(a!.versions.map((v) => v.writeId)).toEqual([1, 1, 0, 0]);
    expect(b!.versions).toEqual([ZERO_VERSION, ZERO_VERSION, ZERO_VERSION, ZERO_VERSION]);
    expect(top.contentAt(3)).toBe(ZERO_VERSION);
  });

  it("allocationAbove over layers of other sizes, as QEMU's bdrv_co_common_block_status_above: past the node's own end nothing for 0 bytes, past a lower layer's end allocated there (goldens/stream_short_backing)", () => {
    const w = world();
    const bottom = w.graph.createNode({ name: "bottom", driver: "qcow2", device: w.device("b", { sizeBytes: 2 * C }) });
    const top = w.graph.createNode({ name: "top", driver: "qcow2", device: w.device("t", { sizeBytes: 4 * C }), backing: bottom });
    w.sim.spawn("g", (function* (): Process {
      yield* bottom.write(0, C, "prep");
    })());
    w.sim.run();
    expect(top.allocationAbove(null, 0, 4 * C)).toEqual({ allocated: true, bytes: C }); // in bottom
    expect(top.allocationAbove(null, C, 3 * C)).toEqual({ allocated: false, bytes: C }); // down to bottom's end
    expect(top.allocationAbove(null, 2 * C, 2 * C)).toEqual({ allocated: true, bytes: 2 * C }); // bottom's synthesized zeroes
    expect(top.allocationAbove(bottom, 2 * C, 2 * C)).toEqual({ allocated: false, bytes: 2 * C }); // bottom excluded
    expect(bottom.allocationAbove(null, 2 * C, C)).toEqual({ allocated: false, bytes: 0 }); // at its EOF
    expect(bottom.allocationAbove(null, C, 3 * C)).toEqual({ allocated: false, bytes: C }); // clamped to its end
  });

  it("random writes through a chain then reads return the last write id per cluster (fast-check, fixed seed)", () => {
    const op = fc.record({
      target: fc.constantFrom("top", "top", "base"),
      kind: fc.constantFrom("write", "write", "zero", "read"),
      cluster: fc.integer({ min: 0, max: 12 }),
      clusters: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(fc.array(op, { minLength: 1, maxLength: 50 }), (ops) => {
        const w = world({ trace: false });
        const base = w.graph.createNode({ name: "base", driver: "qcow2", device: w.device("b", { sizeBytes: 16 * C }) });
        const top = w.graph.createNode({ name: "top", driver: "qcow2", device: w.device("t", { sizeBytes: 16 * C }), backing: base });
        const baseModel = new Array<number>(16).fill(0);
        const topModel = new Array<number | undefined>(16).fill(undefined);
        const problems: string[] = [];
        w.sim.spawn("p", (function* (): Process {
          for (const o of ops) {
            const node = o.target === "top" ? top : base;
            const model = o.target === "top" ? topModel : baseModel;
            const offset = o.cluster * C, bytes = o.clusters * C;
            if (o.kind === "read") {
              const got = (yield* node.read(offset, bytes, "p")).versions.map((v) => v.writeId);
              const want = got.map((_, i) => (o.target === "top" ? topModel[o.cluster + i] ?? baseModel[o.cluster + i] : baseModel[o.cluster + i]));
              if (JSON.stringify(got) !== JSON.stringify(want)) problems.push(`read ${o.target} ${o.cluster}+${o.clusters}: ${got} != ${want}`);
            } else {
              const id = o.kind === "write" ? yield* node.write(offset, bytes, "p") : (yield* node.writeZeroes(offset, bytes, "p"), 0);
              for (let i = 0; i < o.clusters; i++) model[o.cluster + i] = id;
            }
          }
        })());
        w.sim.run();
        expect(problems).toEqual([]);
        for (let c = 0; c < 16; c++) expect(top.contentAt(c).writeId).toBe(topModel[c] ?? baseModel[c]);
      }),
      { seed: 2024, numRuns: 150 },
    );
  });
});

describe("other drivers", () => {
  it("a filter passes requests to its file child; both count them in flight", () => {
    const w = world();
    const base = w.graph.createNode({ name: "base", driver: "raw", device: w.device("d", { writeLatencyNs: 500 }) });
    const cbw = w.graph.createNode({ name: "cbw", driver: "filter", file: base, filterDriver: "copy-before-write" });
    const counts: number[][] = [];
    w.sim.spawn("g", (function* (): Process {
      const p = yield spawn("w", cbw.write(0, C, "guest"));
      yield sleep(100);
      counts.push([cbw.inFlight, base.inFlight]);
      yield join(p);
      counts.push([cbw.inFlight, base.inFlight]);
    })());
    w.sim.run();
    expect(counts).toEqual([[1, 1], [0, 0]]);
    expect([cbw.file, cbw.filterDriver, cbw.sizeBytes, cbw.clusterSizeBytes]).toEqual([base, "copy-before-write", base.sizeBytes, base.clusterSizeBytes]);
    expect(cbw.contentAt(0).writeId).toBe(1);
    expect(cbw.isAllocated(0, C)).toBe(true);
  });

  it("null-co drops writes, reads zeroes (or unspecified data) and takes its latency", () => {
    const w = world();
    const zeroes = w.graph.createNode({ name: "nz", driver: "null-co", sizeBytes: 1 << 20, latencyNs: 250 });
    const junk = w.graph.createNode({ name: "nj", driver: "null-co", sizeBytes: 1 << 20, readZeroes: false, clusterSizeBytes: 4096 });
    const times: number[] = [];
    let a: Content | undefined, b: Content | undefined;
    w.sim.spawn("g", (function* (): Process {
      expect(yield* zeroes.write(0, 65536, "g")).toBe(0);
      times.push((yield now()) as number);
      a = yield* zeroes.read(0, 65536, "g");
      times.push((yield now()) as number);
      b = yield* junk.read(4096, 8192, "g");
    })());
    w.sim.run();
    expect(times).toEqual([250, 500]);
    expect(a!.versions).toEqual([ZERO_VERSION]);
    expect(b).toEqual({ offset: 4096, clusterSizeBytes: 4096, versions: [UNSPECIFIED_VERSION, UNSPECIFIED_VERSION] });
  });

  it("a flush costs time only if something was written since the last good flush; a flush hook runs only then", () => {
    const w = world();
    const dev = w.graph.createNode({ name: "n", driver: "raw", device: w.device("d", { writeLatencyNs: 1_000 }) });
    const dbg = w.graph.createNode({ name: "dbg", driver: "filter", file: dev, filterDriver: "blkdebug" });
    let failNext = false;
    const hooked: number[] = [];
    dbg.addBeforeFlushHook(function* (): Process<void> {
      hooked.push((yield now()) as number);
      if (failNext) {
        failNext = false;
        throw new IoError("EIO", "dbg", "flush", 0, 0);
      }
    });
    const took: (number | string)[] = [];
    const timed = function* (p: Process<unknown>): Process<void> {
      const t0 = (yield now()) as number;
      try {
        yield* p;
        took.push(((yield now()) as number) - t0);
      } catch (e) {
        took.push((e as IoError).errno);
      }
    };
    w.sim.spawn("g", (function* (): Process {
      yield* timed(dbg.flush("g")); // nothing written yet: free, no hook
      yield* dbg.write(0, C, "g");
      failNext = true;
      yield* timed(dbg.flush("g")); // the hook fails it: the write stays unflushed
      yield* timed(dbg.flush("g")); // so this one flushes, through to the device
      yield* timed(dbg.flush("g")); // and this one has nothing to do
    })());
    expect(w.sim.run().outcome).toEqual({ kind: "ok" });
    expect(took).toEqual([0, "EIO", 1_000, 0]);
    expect(hooked.length).toBe(2);
  });

  it("rejects requests outside the node", () => {
    const w = world();
    const n = w.graph.createNode({ name: "n", driver: "null-co", sizeBytes: 8192 });
    expect(() => n.read(4096, 8192, "g").next()).toThrow('node "n": read 4096+8192 ends past the node size (8192 bytes)');
    expect(() => n.io({ op: "discard", offset: 0, bytes: 512, issuer: "g", data: { offset: 0, clusterSizeBytes: 512, versions: [ZERO_VERSION] } }).next())
      .toThrow('node "n": only a write may carry data, not discard');
  });
});

describe("beforeWrite hooks", () => {
  it("run in the writer's process before its write: copy-before-write saves the old data first", () => {
    const w = world();
    const src = w.graph.createNode({ name: "src", driver: "raw", device: w.device("s", { writeLatencyNs: 1_000, readLatencyNs: 1_000 }) });
    const tgt = w.graph.createNode({ name: "tgt", driver: "raw", device: w.device("t", { writeLatencyNs: 5_000 }) });
    const copied = new Set<number>();
    const order: string[] = [];
    src.addBeforeWriteHook(function* (req: BlockRequest, node): Process<void> {
      const c = Math.floor(req.offset / C);
      if (copied.has(c)) return;
      copied.add(c);
      order.push(`hook in ${String(w.sim.running?.name)}`);
      const old = yield* node.read(c * C, C, "job:backup");
      yield* tgt.write(c * C, C, "job:backup", old);
    });
    let doneAt = 0;
    w.sim.spawn("prep", (function* (): Process {
      yield* src.write(0, C, "prep"); // id 1, through the hook (copies zeroes)
      copied.clear();
      order.length = 0;
      const start = (yield now()) as number;
      yield* src.write(0, C, "guest"); // id 2
      doneAt = ((yield now()) as number) - start;
      order.push("write done");
    })());
    expect(w.sim.run().outcome).toEqual({ kind: "ok" });
    expect(order).toEqual(["hook in prep", "write done"]);
    expect(doneAt).toBe(1_000 + 5_000 + 1_000); // read old, write target, then the guest write
    expect(tgt.contentAt(0).writeId).toBe(1);
    expect(src.contentAt(0).writeId).toBe(2);
  });

  it("a hook that throws fails the write: nothing written, nothing marked dirty", () => {
    const w = world();
    const n = w.graph.createNode({ name: "n", driver: "raw", device: w.device("d") });
    const bm = n.addBitmap("b", 4096);
    const remove = n.addBeforeWriteHook(function* (): Process<void> {
      throw new IoError("EIO", "cbw", "write", 0, C);
    });
    const errs: string[] = [];
    w.sim.spawn("g", (function* (): Process {
      try { yield* n.write(0, C, "guest"); } catch (e) { errs.push((e as IoError).errno); }
      remove();
      yield* n.write(0, C, "guest");
    })());
    w.sim.run();
    expect(errs).toEqual(["EIO"]);
    expect(n.contentAt(0).writeId).toBe(1);
    expect(n.inFlight).toBe(0);
    expect(bm.count).toBe(1);
  });
});

describe("BlockNode block status (what a mirror asks of its source)", () => {
  it("qcow2: data where the chain holds it, zero where nothing down to the bottom does; a filter and null-co", () => {
    const w = world();
    const lowDev = w.device("low-dev", { sizeBytes: 16 * C });
    const topDev = w.device("top-dev", { sizeBytes: 16 * C });
    const low = w.graph.createNode({ name: "low", driver: "qcow2", device: lowDev });
    const top = w.graph.createNode({ name: "top", driver: "qcow2", device: topDev, backing: low });
    const f = w.graph.createNode({ name: "f", driver: "filter", file: top, filterDriver: "blkdebug" });
    w.sim.spawn("prep", (function* (): Process {
      yield* low.write(4 * C, 2 * C, "prep");
      yield* top.write(8 * C, C, "prep");
    })());
    expect(w.sim.run().outcome).toEqual({ kind: "ok" });
    expect(f.blockStatus(0, 16 * C)).toEqual({ data: false, zero: true, bytes: 4 * C });
    expect(f.blockStatus(4 * C, 12 * C)).toEqual({ data: true, zero: false, bytes: 2 * C }); // held by the backing node
    expect(f.blockStatus(6 * C, 10 * C)).toEqual({ data: false, zero: true, bytes: 2 * C });
    expect(f.blockStatus(8 * C, 8 * C)).toEqual({ data: true, zero: false, bytes: C });
    const nz = w.graph.createNode({ name: "nz", driver: "null-co", sizeBytes: 16 * C, readZeroes: false });
    const z = w.graph.createNode({ name: "z", driver: "null-co", sizeBytes: 16 * C });
    expect(nz.blockStatus(C, 3 * C)).toEqual({ data: false, zero: false, bytes: 3 * C });
    expect(z.blockStatus(C, 3 * C)).toEqual({ data: false, zero: true, bytes: 3 * C });
  });
});
