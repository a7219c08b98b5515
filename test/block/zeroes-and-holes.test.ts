/**
 * An image file's holes, as QEMU 7.2 has them (goldens/raw_sparse_block_status).
 */
import { describe, expect, it } from "vitest";
import { sleep, type Process } from "../../sim/scheduler/index.js";
import { world } from "./helpers.js";

const C = 4096;

/** base (raw, clusters 0..3 written) <- top (qcow2); `sparse`: base's device is an image file. */
function chain(sparse = false) {
  const w = world();
  const baseDev = w.device("base-dev", { sizeBytes: 16 * C, sparse });
  const topDev = w.device("top-dev", { sizeBytes: 16 * C });
  const base = w.graph.createNode({ name: "base", driver: "raw", device: baseDev });
  const top = w.graph.createNode({ name: "top", driver: "qcow2", device: topDev, backing: base });
  w.sim.spawn("prep", (function* (): Process {
    for (let c = 0; c < 4; c++) yield* base.write(c * C, C, "prep");
  })());
  return { ...w, baseDev, topDev, base, top };
}

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
