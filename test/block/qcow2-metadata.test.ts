/**
 * qcow2 nodes on devices with coldMetadataCaches: QEMU's qcow2 keeps refcount
 * blocks and L2 tables in caches that are empty when the image is opened, so
 * the first block status of an image reads its refcount block
 * (qcow2_detect_metadata_preallocation) and its L2 table, the first lookup
 * (a read, a write) its L2 table, and an allocating write its refcount block
 * too (goldens/qcow2_mirror_first_status); the tables an allocating write
 * dirtied are written back, with a sync of their own, by the next flush
 * (goldens/qcow2_flush_before_ready); the first write to an image never
 * written makes its L2 table, three writes and syncs before the data
 * (goldens/qcow2_first_write_allocates_l2).
 */
import { describe, expect, it } from "vitest";
import { now, type Process } from "../../sim/scheduler/index.js";
import { world } from "./helpers.js";

const C = 4096;
const LAT = 1_000;

/** base (qcow2, cluster 0 written) <- top (qcow2, cluster 1 written, or nothing with `freshTop`), written on the devices before the nodes' first use. */
function chain(opts: { cold?: boolean; freshTop?: boolean } = {}) {
  const w = world();
  const cold = opts.cold ?? true;
  const baseDev = w.device("base-dev", { sizeBytes: 16 * C, readLatencyNs: LAT, writeLatencyNs: LAT, coldMetadataCaches: cold });
  const topDev = w.device("top-dev", { sizeBytes: 16 * C, readLatencyNs: LAT, writeLatencyNs: LAT, coldMetadataCaches: cold });
  const base = w.graph.createNode({ name: "base", driver: "qcow2", device: baseDev });
  const top = w.graph.createNode({ name: "top", driver: "qcow2", device: topDev, backing: base });
  const prep = function* (): Process {
    yield baseDev.io({ op: "write", offset: 0, bytes: C, issuer: "qemu-img" });
    if (!opts.freshTop) yield topDev.io({ op: "write", offset: C, bytes: C, issuer: "qemu-img" });
  };
  /** The reads and writes the devices served after `fromNs`: "<time> <device> <op> <issuer>". */
  const io = (r: { trace?: { t: number; src: string; kind: string; data?: Record<string, unknown> }[] }, fromNs: number) =>
    r.trace!.filter((t) => t.kind === "io" && t.t > fromNs).map((t) => `${t.t - fromNs} ${t.src} ${String(t.data!.op)} ${String(t.data!.issuer)}`);
  return { ...w, base, top, baseDev, topDev, prep, io };
}

describe("qcow2 metadata caches that start cold", () => {
  it("the first block status reads each visited image's refcount block, then its L2 table; the next reads nothing", () => {
    const { sim, top, base, prep, io } = chain();
    let t0 = 0;
    const needs: boolean[] = [];
    sim.spawn("job", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      needs.push(top.statusNeedsTables());
      // cluster 0 is not allocated in top: the walk goes on to base, where it is
      yield* top.loadStatusTables(0, C, null, "job:j0");
      needs.push(top.statusNeedsTables(), base.statusNeedsTables());
      yield* top.loadStatusTables(0, 4 * C, null, "job:j0");
    })());
    const r = sim.run();
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(needs).toEqual([true, false, false]);
    expect(io(r, t0)).toEqual([
      "1000 top-dev read job:j0 (top refcount block)",
      "2000 top-dev read job:j0 (top L2 table)",
      "3000 base-dev read job:j0 (base refcount block)",
      "4000 base-dev read job:j0 (base L2 table)",
    ]);
    expect(top.blockStatus(0, C)).toEqual({ data: true, zero: false, bytes: C });
  });

  it("a block status that finds the range allocated in top stops there; base keeps its cold tables", () => {
    const { sim, top, base, prep, io } = chain();
    let t0 = 0;
    sim.spawn("job", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      yield* top.loadStatusTables(C, C, null, "job:j0");
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual(["1000 top-dev read job:j0 (top refcount block)", "2000 top-dev read job:j0 (top L2 table)"]);
    expect(base.statusNeedsTables()).toBe(true);
  });

  it("a read looks up the L2 tables only: none on an image never written, base's where it falls through", () => {
    const { sim, top, prep, io } = chain({ freshTop: true });
    let t0 = 0;
    sim.spawn("guest", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      yield* top.read(0, C, "guest");
      yield* top.read(0, C, "guest");
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual(["1000 base-dev read guest (base L2 table)", "2000 base-dev read guest", "3000 base-dev read guest"]);
    expect(top.statusNeedsTables(top.backing)).toBe(true); // its refcount block is still to be read by a status
  });

  it("an allocating write reads the L2 table, then the refcount block; a rewrite of the cluster reads nothing", () => {
    const { sim, base, prep, io } = chain();
    let t0 = 0;
    sim.spawn("job", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      yield* base.write(2 * C, C, "job:j0");
      yield* base.write(2 * C, C, "job:j0");
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual([
      "1000 base-dev read job:j0 (base L2 table)",
      "2000 base-dev read job:j0 (base refcount block)",
      "3000 base-dev write job:j0",
      "4000 base-dev write job:j0",
    ]);
  });

  it("two first uses at once read the tables once, the second waiting for the first (qcow2's lock)", () => {
    const { sim, top, base, prep, io } = chain();
    let t0 = 0;
    const ended: number[] = [];
    sim.spawn("prep", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      for (const who of ["a", "b"]) {
        sim.spawn(who, (function* (): Process {
          yield* base.loadStatusTables(0, C, null, `job:${who}`);
          ended.push(((yield now()) as number) - t0);
        })());
      }
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual(["1000 base-dev read job:a (base refcount block)", "2000 base-dev read job:a (base L2 table)"]);
    expect(ended).toEqual([2000, 2000]);
    expect(top.statusNeedsTables()).toBe(true);
  });

  it("an allocating write leaves the tables dirty: the next flush syncs them first (refcount block before L2 table), a flush after that only itself", () => {
    const { sim, base, prep, io } = chain();
    let t0 = 0;
    sim.spawn("job", (function* (): Process {
      yield* prep();
      yield* base.write(2 * C, C, "job:j0");
      t0 = (yield now()) as number;
      yield* base.flush("job:j0");
      yield* base.write(2 * C, C, "job:j0"); // a rewrite: nothing allocated
      yield* base.flush("job:j0");
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual([
      "1000 base-dev flush job:j0 (base tables)",
      "2000 base-dev flush job:j0",
      "3000 base-dev write job:j0",
      "4000 base-dev flush job:j0",
    ]);
  });

  it("the first write to an image never written makes its L2 table: the refcount block, the table and its L1 entry each written and synced before the data, changing no content; a second write only itself", () => {
    const { sim, top, topDev, prep, io } = chain({ freshTop: true });
    let t0 = 0;
    sim.spawn("job", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      yield* top.write(2 * C, C, "job:j0");
      yield* top.write(3 * C, C, "job:j0");
    })());
    const r = sim.run();
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(io(r, t0)).toEqual([
      "1000 top-dev read job:j0 (top refcount block)",
      "2000 top-dev write job:j0 (top refcount block)",
      "3000 top-dev flush job:j0 (top refcount block)",
      "4000 top-dev write job:j0 (top L2 table)",
      "5000 top-dev flush job:j0 (top L2 table)",
      "6000 top-dev write job:j0 (top L1 entry)",
      "7000 top-dev flush job:j0 (top L1 entry)",
      "8000 top-dev write job:j0",
      "9000 top-dev write job:j0",
    ]);
    // the tables' writes changed no cluster: only the two data writes did
    expect(Array.from({ length: 16 }, (_, c) => topDev.isWritten(c))).toEqual(Array.from({ length: 16 }, (_, c) => c === 2 || c === 3));
    expect(r.trace!.filter((t) => t.kind === "io" && t.data!.metadata === true).map((t) => t.data!.offset)).toEqual([undefined, undefined, undefined]);
  });

  it("without coldMetadataCaches nothing is read and no time passes", () => {
    const { sim, top, base, prep, io } = chain({ cold: false });
    let t0 = 0, t1 = -1;
    sim.spawn("job", (function* (): Process {
      yield* prep();
      t0 = (yield now()) as number;
      expect(top.statusNeedsTables()).toBe(false);
      yield* top.loadStatusTables(0, 4 * C, null, "job:j0");
      yield* base.write(2 * C, C, "job:j0");
      t1 = (yield now()) as number;
    })());
    const r = sim.run();
    expect(io(r, t0)).toEqual([`${LAT} base-dev write job:j0`]);
    expect(t1 - t0).toBe(LAT);
  });
});
