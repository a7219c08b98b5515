import { describe, expect, it } from "vitest";
import { startGuest, type BlockRequest, type GuestConfig } from "../../sim/block/index.js";
import { world } from "./helpers.js";

const C = 4096;

/** Runs a guest on a 64-cluster raw disk; returns what it issued, when, and its stats. */
function runGuest(over: Partial<GuestConfig>, opts: { seed?: number; writeLatencyNs?: number; fault?: boolean } = {}) {
  const w = world({ seed: opts.seed ?? 1 });
  const dev = w.device("d", { sizeBytes: 64 * C, queueDepth: 64, writeLatencyNs: opts.writeLatencyNs ?? 1_000, readLatencyNs: 500 });
  if (opts.fault) dev.addFault({ op: "write", errno: "EIO", afterRequests: 2, once: true });
  const node = w.graph.createNode({ name: "n", driver: "raw", device: dev });
  const blk = w.graph.createBackend({ name: "drive0", issuer: "guest", root: node, queueWhenDrained: true });
  const issued: (BlockRequest & { t: number })[] = [];
  let inFlight = 0, maxInFlight = 0;
  w.graph.observe((ev) => {
    if (ev.type === "submit") {
      issued.push({ ...ev.req, t: ev.timeNs });
      maxInFlight = Math.max(maxInFlight, ++inFlight);
    } else if (ev.type === "complete") inFlight--;
  });
  const g = startGuest(w.sim, { name: "g", backend: blk, pattern: "random", requestBytes: C, daemon: false, maxRequests: 20, ...over });
  const result = w.sim.run();
  return { result, issued, stats: g.stats, maxInFlight, guest: g };
}

describe("guest workload", () => {
  it("paces issues intervalNs apart while fewer than iodepth are outstanding", () => {
    const r = runGuest({ intervalNs: 400, iodepth: 2, maxRequests: 6 }, { writeLatencyNs: 500 });
    expect(r.issued.map((q) => q.t)).toEqual([0, 400, 800, 1200, 1600, 2000]);
    const slow = runGuest({ intervalNs: 400, iodepth: 2, maxRequests: 6 }, { writeLatencyNs: 1_000 });
    // Two outstanding at most: the third waits for the first to complete.
    expect(slow.issued.map((q) => q.t)).toEqual([0, 400, 1000, 1400, 2000, 2400]);
    expect(slow.maxInFlight).toBe(2);
  });

  it("keeps iodepth requests outstanding when not paced", () => {
    const r = runGuest({ iodepth: 3, maxRequests: 9 });
    expect(r.issued.map((q) => q.t)).toEqual([0, 0, 0, 1000, 1000, 1000, 2000, 2000, 2000]);
    expect(r.maxInFlight).toBe(3);
    expect(r.stats).toEqual({ issued: 9, completed: 9, failed: 0, reads: 0, writes: 9 });
  });

  it("walks the region sequentially and wraps", () => {
    const r = runGuest({ pattern: "sequential", requestBytes: 2 * C, regionOffsetBytes: 8 * C, regionBytes: 5 * C, maxRequests: 5 });
    expect(r.issued.map((q) => q.offset / C)).toEqual([8, 10, 8, 10, 8]);
  });

  it("draws aligned offsets inside the region, sizes in range, reads at the given share", () => {
    const r = runGuest({ requestBytes: { minBytes: C, maxBytes: 4 * C }, readFraction: 0.5, regionOffsetBytes: 16 * C, regionBytes: 32 * C, maxRequests: 400, iodepth: 8 });
    for (const q of r.issued) {
      expect(q.offset % C).toBe(0);
      expect(q.bytes % C).toBe(0);
      expect(q.offset).toBeGreaterThanOrEqual(16 * C);
      expect(q.offset + q.bytes).toBeLessThanOrEqual(48 * C);
    }
    expect(new Set(r.issued.map((q) => q.bytes))).toEqual(new Set([C, 2 * C, 3 * C, 4 * C]));
    const reads = r.issued.filter((q) => q.op === "read").length;
    expect(reads).toBeGreaterThan(160);
    expect(reads).toBeLessThan(240);
    expect(r.stats.reads).toBe(reads);
  });

  it("sends the hot share of requests to the hot range", () => {
    const r = runGuest({ pattern: { kind: "hot", offsetBytes: 0, bytes: 4 * C, hotFraction: 0.9 }, maxRequests: 500, iodepth: 8 });
    const hot = r.issued.filter((q) => q.offset < 4 * C).length;
    expect(hot).toBeGreaterThan(430);
    expect(hot).toBeLessThan(490);
  });

  it("stops issuing at stopAtNs", () => {
    const r = runGuest({ intervalNs: 1_000, maxRequests: undefined, stopAtNs: 4_500, iodepth: 4 });
    expect(r.issued.map((q) => q.t)).toEqual([0, 1000, 2000, 3000, 4000]);
    expect(r.result.outcome).toEqual({ kind: "ok" });
  });

  it("stops issuing on stop(); requests in flight still complete", () => {
    const w = world();
    const node = w.graph.createNode({ name: "n", driver: "raw", device: w.device("d", { writeLatencyNs: 1_000 }) });
    const blk = w.graph.createBackend({ issuer: "guest", root: node });
    const g = startGuest(w.sim, { name: "g", backend: blk, pattern: "random", requestBytes: C, iodepth: 2, daemon: false });
    w.sim.at(2_500, "stop", () => g.stop());
    expect(w.sim.run()).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 3_000 });
    expect([g.stopped, g.stats.issued, g.stats.completed, blk.inFlight]).toEqual([true, 6, 6, 0]);
  });

  it("counts and traces failed requests and carries on", () => {
    const r = runGuest({ maxRequests: 5 }, { fault: true });
    expect(r.stats).toMatchObject({ issued: 5, completed: 4, failed: 1 });
    expect(r.result.trace!.filter((t) => t.kind === "io-error")).toEqual([
      { t: 2000, src: "g", kind: "io-error", data: { op: "write", offset: r.issued[2].offset, bytes: C, errno: "EIO" } },
    ]);
  });

  it("draws from its named stream: same seed, same workload", () => {
    const a = runGuest({ readFraction: 0.3, iodepth: 4 }, { seed: 5 });
    const b = runGuest({ readFraction: 0.3, iodepth: 4 }, { seed: 5 });
    const c = runGuest({ readFraction: 0.3, iodepth: 4 }, { seed: 6 });
    expect(b.issued).toEqual(a.issued);
    expect(b.result.hash).toBe(a.result.hash);
    expect(c.issued).not.toEqual(a.issued);
  });

  it("rejects bad configuration, naming the field", () => {
    expect(() => runGuest({ requestBytes: 1000 })).toThrow('guest "g": requestBytes must be a multiple of alignBytes (4096), or a { minBytes, maxBytes } range of such, no larger than the region; got 1000');
    expect(() => runGuest({ iodepth: 0 })).toThrow('guest "g": iodepth must be a whole number >= 1, got 0');
    expect(() => runGuest({ readFraction: 2 })).toThrow('guest "g": readFraction must be between 0 and 1, got 2');
    expect(() => runGuest({ regionBytes: 65 * C })).toThrow('guest "g": the region [0, 266240) must be non-empty and lie within the disk (262144 bytes)');
    expect(() => runGuest({ pattern: { kind: "hot", offsetBytes: 62 * C, bytes: 4 * C, hotFraction: 0.5 } })).toThrow('guest "g": the hot range 253952+16384 must lie within the region and hold the largest request');
    expect(() => runGuest({ pattern: "zipf" as GuestConfig["pattern"] })).toThrow('guest "g": pattern must be "sequential", "random" or { kind: "hot", … }, got "zipf"');
    expect(() => runGuest({ intervalNs: { minNs: 5, maxNs: 1 } })).toThrow('guest "g": intervalNs must be whole ns >= 0 or { minNs, maxNs } with minNs <= maxNs, got {"minNs":5,"maxNs":1}');
  });
});
