/**
 * Partial-cluster write-zeroes and an image file's holes, as QEMU 7.2 has
 * them (goldens/write_zeroes_partial_cluster, goldens/raw_sparse_block_status).
 */
import { describe, expect, it } from "vitest";
import { sleep, type Process } from "../../sim/scheduler/index.js";
import { chain as chainOf } from "./helpers.js";

const C = 4096;
const chain = (sparse = false) => chainOf(C, sparse);


describe("a write-zeroes covering part of a cluster", () => {
  it("writes data where the rest of the cluster does not read as zeroes, and zeroes where it does", () => {
    const { sim, top, topDev } = chain();
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* top.writeZeroes(C + 512, C, "guest"); // tail of cluster 1 (base's data) and head of cluster 2 (base's data)
      yield* top.writeZeroes(5 * C + 512, 512, "guest"); // inside cluster 5, which reads as zeroes
      yield* top.writeZeroes(8 * C + 512, 2 * C, "guest"); // cluster 8 reads as zeroes, 9 whole, 10 reads as zeroes
    })());
    const before = topDev.stats.submitted;
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    const ids = [1, 2, 5, 8, 9, 10].map((c) => top.contentAt(c).writeId);
    expect(ids[0]).toBeGreaterThan(4); // new data, neither base's nor zeroes
    expect(ids[1]).toBeGreaterThan(4);
    expect(ids.slice(2)).toEqual([0, 0, 0, 0]);
    expect(top.blockStatus(C, 2 * C)).toEqual({ data: true, zero: false, bytes: 2 * C });
    expect(top.blockStatus(5 * C, C)).toEqual({ data: false, zero: true, bytes: C });
    expect(topDev.stats.submitted - before).toBe(2 + 1 + 1); // head and tail written, the others whole
  });

  it("on a raw disk too: a written cluster partly zeroed holds new data", () => {
    const { sim, base } = chain();
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* base.writeZeroes(512, 512, "guest");
      yield* base.writeZeroes(2 * C, C, "guest");
    })());
    sim.run();
    expect(base.contentAt(0).writeId).toBeGreaterThan(4);
    expect(base.contentAt(2).writeId).toBe(0);
  });
});

describe("a raw node's block status", () => {
  it("says data everywhere on a disk", () => {
    const { sim, base } = chain(false);
    sim.run();
    expect(base.blockStatus(0, 16 * C)).toEqual({ data: true, zero: false, bytes: 16 * C });
  });

  it("says zero for an image file's holes and zeroed clusters", () => {
    const { sim, base } = chain(true);
    sim.spawn("g", (function* (): Process {
      yield sleep(100_000);
      yield* base.writeZeroes(C, C, "guest");
    })());
    sim.run();
    expect(base.blockStatus(0, 16 * C)).toEqual({ data: true, zero: false, bytes: C });
    expect(base.blockStatus(C, 15 * C)).toEqual({ data: false, zero: true, bytes: C });
    expect(base.blockStatus(2 * C, 14 * C)).toEqual({ data: true, zero: false, bytes: 2 * C });
    expect(base.blockStatus(4 * C + 100, 12 * C - 100)).toEqual({ data: false, zero: true, bytes: 12 * C - 100 });
  });
});
