import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { Device, transferNs, ZERO_VERSION, type Content, type IoOp, type IoRequest } from "../../sim/disk/index.js";
import { interrupt, now, Scheduler, sleep, spawn, type Process } from "../../sim/scheduler/index.js";
import { issueAll, makeDevice } from "./helpers.js";

const KiB = 1024;

describe("Device timing", () => {
  it("serves one request at a time at queue depth 1: completion = start + latency", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim, { writeLatencyNs: 1_000, queueDepth: 1 });
    const done = issueAll(sim, dev, [0, 1, 2].map((i) => ({ req: { op: "write" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })));
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_000, 2_000, 3_000]);
  });

  it("overlaps latency up to the queue depth", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim, { writeLatencyNs: 1_000, queueDepth: 2 });
    const done = issueAll(sim, dev, [0, 1, 2, 3, 4].map((i) => ({ req: { op: "write" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })));
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_000, 1_000, 2_000, 2_000, 3_000]);
  });

  it("shares one bandwidth channel: completion = max(start, channel free) + size/bandwidth + latency", () => {
    const sim = new Scheduler();
    // 4 KiB at 4,096,000 B/s = exactly 1 ms on the channel.
    const dev = makeDevice(sim, { readLatencyNs: 100_000, bandwidthBytesPerSec: 4_096_000, queueDepth: 4 });
    const done = issueAll(sim, dev, [0, 1, 2].map((i) => ({ req: { op: "read" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })));
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_100_000, 2_100_000, 3_100_000]);
  });

  it("with transferPerRequest each request moves its bytes on its own: completion = start + size/bandwidth + latency", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim, { readLatencyNs: 100_000, bandwidthBytesPerSec: 4_096_000, queueDepth: 4, transferPerRequest: true });
    const done = issueAll(sim, dev, [
      ...[0, 1, 2].map((i) => ({ req: { op: "read" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })),
      { req: { op: "read" as IoOp, offset: 16384, bytes: 8192, issuer: "t" } },
    ]);
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_100_000, 1_100_000, 1_100_000, 2_100_000]);
  });

  it("with flushBytesPerSec a flush also syncs the bytes written since the last flush started", () => {
    const sim = new Scheduler();
    // 4 KiB at 4,096,000 B/s = 1 ms of sync
    const dev = makeDevice(sim, { writeLatencyNs: 1_000, flushBytesPerSec: 4_096_000, queueDepth: 4 });
    const done = issueAll(sim, dev, [
      { req: { op: "write", offset: 0, bytes: 4096, issuer: "t" } },
      { req: { op: "write-zeroes", offset: 4096, bytes: 4096, issuer: "t" } },
      { req: { op: "flush", issuer: "t" }, atNs: 10_000 },
      { req: { op: "flush", issuer: "t" }, atNs: 2_000_000 },
    ]);
    sim.run();
    // the first flush syncs the 4 KiB written (write-zeroes moves no data); the second has nothing to sync
    expect(done.map((d) => d.doneNs)).toEqual([1_000, 1_000, 1_011_000, 2_001_000]);
    expect(() => makeDevice(sim, { flushBytesPerSec: -1 })).toThrow(/flushBytesPerSec must be a whole number >= 0, got -1/);
  });

  it("refuses a transferPerRequest or coldMetadataCaches that is not true or false, naming the device", () => {
    const sim = new Scheduler();
    expect(() => makeDevice(sim, { transferPerRequest: 1 as unknown as boolean })).toThrow(/transferPerRequest must be true or false, got 1/);
    expect(() => makeDevice(sim, { coldMetadataCaches: "yes" as unknown as boolean })).toThrow(/coldMetadataCaches must be true or false, got "yes"/);
  });

  it("a request that waits for a slot starts when the slot frees, then queues for the channel", () => {
    const sim = new Scheduler();
    // 1 byte/ns; 4 KiB = 4096 ns on the channel; write latency 10,000 ns.
    const dev = makeDevice(sim, { writeLatencyNs: 10_000, bandwidthBytesPerSec: 1_000_000_000, queueDepth: 1 });
    const done = issueAll(sim, dev, [
      { req: { op: "write", offset: 0, bytes: 4096, issuer: "t" } },
      { req: { op: "write", offset: 4096, bytes: 8192, issuer: "t" }, atNs: 50 },
    ]);
    sim.run();
    // First: 0 + 4096 + 10000. Second waits for the slot (14096), then 8192 + 10000.
    expect(done.map((d) => d.doneNs)).toEqual([14_096, 32_288]);
  });

  it("write-zeroes and discard take the write latency and no bandwidth", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim, { writeLatencyNs: 700, readLatencyNs: 5, bandwidthBytesPerSec: 1, queueDepth: 2 });
    const done = issueAll(sim, dev, [
      { req: { op: "write-zeroes", offset: 0, bytes: 65536, issuer: "t" } },
      { req: { op: "discard", offset: 65536, bytes: 65536, issuer: "t" } },
    ]);
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([700, 700]);
  });

  it("a flush completes no earlier than every modifying request started before it", () => {
    const sim = new Scheduler();
    // 1 MiB at 1 MiB/s = 1 s on the channel.
    const dev = makeDevice(sim, { writeLatencyNs: 2_000, bandwidthBytesPerSec: 1 << 20, queueDepth: 4 });
    const done = issueAll(sim, dev, [
      { req: { op: "write", offset: 0, bytes: 1 << 20, issuer: "t" } },
      { req: { op: "flush", issuer: "t" }, atNs: 10 },
      { req: { op: "flush", issuer: "t" }, atNs: 2_000_000_000 },
    ]);
    sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_000_002_000, 1_000_002_000, 2_000_002_000]);
  });

  it("matches the documented formula for random workloads (fast-check, fixed seed)", () => {
    const reqArb = fc.record({
      atNs: fc.integer({ min: 0, max: 20_000 }),
      op: fc.constantFrom<IoOp>("read", "write", "write-zeroes", "discard", "flush"),
      cluster: fc.integer({ min: 0, max: 252 }),
      clusters: fc.integer({ min: 1, max: 4 }),
    });
    fc.assert(
      fc.property(
        fc.array(reqArb, { minLength: 1, maxLength: 30 }),
        fc.integer({ min: 1, max: 5 }),
        fc.constantFrom(0, 1_000_000, 333_333_333, 1_000_000_000),
        fc.integer({ min: 0, max: 5_000 }),
        fc.integer({ min: 0, max: 5_000 }),
        (reqs, queueDepth, bw, readLat, writeLat) => {
          const sim = new Scheduler();
          const dev = makeDevice(sim, { queueDepth, bandwidthBytesPerSec: bw, readLatencyNs: readLat, writeLatencyNs: writeLat });
          const list = reqs.map((r) => ({
            atNs: r.atNs,
            req: { op: r.op, offset: r.cluster * 4096, bytes: r.clusters * 4096, issuer: "t" } as IoRequest,
          }));
          const done = issueAll(sim, dev, list);
          expect(sim.run().outcome).toEqual({ kind: "ok" });
          expect(done.filter((d) => d.error !== undefined)).toEqual([]);
          const expected = modelCompletions(list, { queueDepth, bw, readLat, writeLat });
          expect(done.map((d) => d.doneNs)).toEqual(expected);
        },
      ),
      { seed: 4242, numRuns: 300 },
    );
  });

  it("draws ranged latencies from the named stream, within the range, reproducibly", () => {
    const draw = (seed: number) => {
      const sim = new Scheduler({ seed });
      const dev = makeDevice(sim, { readLatencyNs: { minNs: 100, maxNs: 200 }, queueDepth: 64 });
      const done = issueAll(sim, dev, Array.from({ length: 50 }, (_, i) => ({ req: { op: "read" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })));
      const r = sim.run();
      return { times: done.map((d) => d.doneNs), hash: r.hash, streams: sim.streams.names() };
    };
    const a = draw(1), b = draw(1), c = draw(2);
    expect(a.times.every((t) => t >= 100 && t <= 200)).toBe(true);
    expect(new Set(a.times).size).toBeGreaterThan(10);
    expect(b).toEqual(a);
    expect(c.times).not.toEqual(a.times);
    expect(a.streams).toContain("disk/d0/latency");
  });

  it("computes transfer time exactly, also past 2^53", () => {
    expect(transferNs(4096, 0)).toBe(0);
    expect(transferNs(1, 3)).toBe(333_333_334);
    expect(transferNs(3, 3)).toBe(1_000_000_000);
    expect(transferNs(4096, 1_000_000_000)).toBe(4096);
    const big = 2 ** 40, bw = 1_000_000_007;
    expect(transferNs(big, bw)).toBe(Number((BigInt(big) * 1_000_000_000n + BigInt(bw) - 1n) / BigInt(bw)));
  });
});

describe("Device content", () => {
  it("stamps clusters with a global, increasing write id and the writer; reads return them", () => {
    const sim = new Scheduler();
    const a = makeDevice(sim, { name: "a" });
    const b = makeDevice(sim, { name: "b" });
    let read: Content | undefined;
    const ids: number[] = [];
    sim.spawn("w", (function* (): Process {
      ids.push((yield a.io({ op: "write", offset: 0, bytes: 8192, issuer: "guest" })) as number);
      ids.push((yield b.io({ op: "write", offset: 0, bytes: 4096, issuer: "guest" })) as number);
      ids.push((yield a.io({ op: "write", offset: 4096, bytes: 100, issuer: "job" })) as number);
      read = (yield a.io({ op: "read", offset: 0, bytes: 3 * 4096, issuer: "guest" })) as Content;
    })());
    sim.run();
    expect(ids).toEqual([1, 2, 3]);
    expect(read).toEqual({
      offset: 0,
      clusterSizeBytes: 4096,
      versions: [{ writeId: 1, writer: "guest" }, { writeId: 3, writer: "job" }, ZERO_VERSION],
    });
    expect(a.isWritten(1)).toBe(true);
    expect(a.isWritten(2)).toBe(false);
  });

  it("a write carrying data copies versions, also across cluster sizes", () => {
    const sim = new Scheduler();
    const src = makeDevice(sim, { name: "src", clusterSizeBytes: 8192 });
    const dst = makeDevice(sim, { name: "dst", clusterSizeBytes: 4096 });
    let copied: unknown;
    sim.spawn("copy", (function* (): Process {
      yield src.io({ op: "write", offset: 0, bytes: 8192, issuer: "guest" });
      yield src.io({ op: "write", offset: 8192, bytes: 8192, issuer: "guest" });
      const data = (yield src.io({ op: "read", offset: 0, bytes: 16384, issuer: "job" })) as Content;
      copied = yield dst.io({ op: "write", offset: 0, bytes: 16384, issuer: "job", data });
    })());
    sim.run();
    expect(copied).toBe(0);
    expect([0, 1, 2, 3].map((c) => dst.versionAt(c).writeId)).toEqual([1, 1, 2, 2]);
    expect(dst.versionAt(0).writer).toBe("guest");
  });

  it("write-zeroes and discard read back as write id 0 but count as written", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim);
    sim.spawn("z", (function* (): Process {
      yield dev.io({ op: "write", offset: 0, bytes: 8192, issuer: "g" });
      yield dev.io({ op: "write-zeroes", offset: 0, bytes: 4096, issuer: "g" });
      yield dev.io({ op: "discard", offset: 4096, bytes: 4096, issuer: "g" });
    })());
    sim.run();
    expect(dev.versionAt(0)).toEqual({ writeId: 0, writer: "g" });
    expect(dev.versionAt(1).writeId).toBe(0);
    expect(dev.isWritten(0) && dev.isWritten(1)).toBe(true);
  });

  it("random writes then reads return the last write id per cluster (fast-check, fixed seed)", () => {
    const opArb = fc.record({
      kind: fc.constantFrom("write", "write", "write", "write-zeroes", "read"),
      cluster: fc.integer({ min: 0, max: 31 }),
      clusters: fc.integer({ min: 1, max: 6 }),
    });
    fc.assert(
      fc.property(fc.array(opArb, { minLength: 1, maxLength: 60 }), (ops) => {
        const sim = new Scheduler();
        const dev = makeDevice(sim, { sizeBytes: 40 * 4096 });
        const model = new Array<number>(40).fill(0);
        const mismatches: string[] = [];
        sim.spawn("p", (function* (): Process {
          for (const o of ops) {
            const offset = o.cluster * 4096, bytes = o.clusters * 4096;
            if (o.kind === "read") {
              const c = (yield dev.io({ op: "read", offset, bytes, issuer: "p" })) as Content;
              c.versions.forEach((v, i) => {
                if (v.writeId !== model[o.cluster + i]) mismatches.push(`cluster ${o.cluster + i}: read ${v.writeId}, wrote ${model[o.cluster + i]}`);
              });
            } else {
              const id = (yield dev.io({ op: o.kind as IoOp, offset, bytes, issuer: "p" })) as number | undefined;
              for (let i = 0; i < o.clusters; i++) model[o.cluster + i] = id ?? 0;
            }
          }
        })());
        sim.run();
        expect(mismatches).toEqual([]);
        model.forEach((id, c) => expect(dev.versionAt(c).writeId).toBe(id));
      }),
      { seed: 7, numRuns: 200 },
    );
  });

  it("with concurrent writers, each cluster holds the write that completed last", () => {
    fc.assert(
      fc.property(
        fc.array(fc.record({ at: fc.integer({ min: 0, max: 3_000 }), cluster: fc.integer({ min: 0, max: 7 }) }), { minLength: 1, maxLength: 40 }),
        (writes) => {
          const sim = new Scheduler({ seed: 3, trace: true });
          const dev = makeDevice(sim, { sizeBytes: 8 * 4096, queueDepth: 8, writeLatencyNs: { minNs: 10, maxNs: 5_000 } });
          issueAll(sim, dev, writes.map((w) => ({ atNs: w.at, req: { op: "write" as IoOp, offset: w.cluster * 4096, bytes: 4096, issuer: "g" } })));
          const r = sim.run();
          const last = new Array<number>(8).fill(0);
          for (const rec of r.trace!) {
            if (rec.src === "d0" && rec.kind === "io") last[(rec.data!.offset as number) / 4096] = rec.data!.writeId as number;
          }
          last.forEach((id, c) => expect(dev.versionAt(c).writeId).toBe(id));
        },
      ),
      { seed: 11, numRuns: 100 },
    );
  });
});

describe("Device accounting", () => {
  it("counts requests in flight (queued included) and reports every change", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim, { queueDepth: 1 });
    const seen: number[] = [];
    dev.onInFlightChange((n) => seen.push(n));
    let atIdle = -1;
    issueAll(sim, dev, [0, 1, 2].map((i) => ({ req: { op: "write" as IoOp, offset: i * 4096, bytes: 4096, issuer: "t" } })));
    sim.spawn("observer", (function* (): Process {
      yield sleep(1);
      expect([dev.inFlight, dev.active, dev.queued]).toEqual([3, 1, 2]);
      yield dev.waitIdle();
      atIdle = (yield now()) as number;
    })());
    sim.run();
    expect(seen).toEqual([1, 2, 3, 2, 1, 0]);
    expect(atIdle).toBe(3_000);
    expect(dev.stats).toMatchObject({ submitted: 3, completed: 3, bytesWritten: 3 * 4096 });
  });

  it("an interrupted issuer leaves its request to complete on the device", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim);
    sim.spawn("main", (function* (): Process {
      const w = yield spawn("w", (function* (): Process {
        yield dev.io({ op: "write", offset: 0, bytes: 4096, issuer: "w" });
      })());
      yield sleep(10);
      yield interrupt(w);
      expect(dev.inFlight).toBe(1);
      yield sleep(2_000);
      expect(dev.inFlight).toBe(0);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(dev.versionAt(0).writeId).toBe(1);
  });

  it("marks a write that leaves what readers see unchanged (copy-on-read) in its io and fault records, and only that one", () => {
    const sim = new Scheduler({ trace: true });
    const dev = makeDevice(sim, { queueDepth: 4 });
    dev.faults.add({ op: "write", startBytes: 8192, endBytes: 12288, errno: "EIO" });
    issueAll(sim, dev, [
      { req: { op: "write", offset: 0, bytes: 4096, issuer: "cor", unchanged: true } },
      { req: { op: "write", offset: 4096, bytes: 4096, issuer: "guest" } },
      { req: { op: "write", offset: 8192, bytes: 4096, issuer: "cor", unchanged: true } },
      { req: { op: "read", offset: 0, bytes: 4096, issuer: "guest" } },
    ]);
    const records = sim.run().trace!.filter((r) => r.src === "d0").map((r) => ({ kind: r.kind, issuer: r.data!.issuer, unchanged: "unchanged" in r.data! ? r.data!.unchanged : "absent" }));
    expect(records).toEqual([
      { kind: "fault", issuer: "cor", unchanged: true },
      { kind: "io", issuer: "cor", unchanged: true },
      { kind: "io", issuer: "guest", unchanged: "absent" }, // the other records keep their shape
      { kind: "io", issuer: "guest", unchanged: "absent" },
    ]);
    expect(() => dev.io({ op: "read", offset: 0, bytes: 4096, issuer: "g", unchanged: true })).toThrow('device "d0": only a write or write-zeroes may be unchanged, not read');
  });

  it("a copy-on-read write-zeroes (a stream's chunk that reads as zeroes) says unchanged in its record too; a plain one keeps its shape", () => {
    const sim = new Scheduler({ trace: true });
    const dev = makeDevice(sim, { queueDepth: 1 });
    issueAll(sim, dev, [
      { req: { op: "write-zeroes", offset: 0, bytes: 4096, issuer: "cor", unchanged: true } },
      { req: { op: "write-zeroes", offset: 4096, bytes: 4096, issuer: "guest" } },
    ]);
    const records = sim.run().trace!.filter((r) => r.src === "d0").map((r) => ({ op: r.data!.op, issuer: r.data!.issuer, unchanged: "unchanged" in r.data! ? r.data!.unchanged : "absent" }));
    expect(records).toEqual([
      { op: "write-zeroes", issuer: "cor", unchanged: true },
      { op: "write-zeroes", issuer: "guest", unchanged: "absent" },
    ]);
    expect(dev.versionAt(0).writeId).toBe(0);
    expect(() => dev.io({ op: "discard", offset: 0, bytes: 4096, issuer: "g", unchanged: true })).toThrow('device "d0": only a write or write-zeroes may be unchanged, not discard');
  });

  it("a metadata write takes a write's time and counts toward the next flush's sync, but changes no cluster, meets no fault rule, and its record has no offset", () => {
    const sim = new Scheduler({ trace: true });
    const dev = makeDevice(sim, { writeLatencyNs: 1_000, flushBytesPerSec: 4_096_000, queueDepth: 4 });
    dev.faults.add({ op: "write", startBytes: 0, endBytes: 4096, errno: "EIO" });
    const done = issueAll(sim, dev, [
      { req: { op: "write", offset: 0, bytes: 4096, issuer: "qcow2", metadata: true } },
      { req: { op: "flush", issuer: "qcow2" }, atNs: 10_000 },
    ]);
    const r = sim.run();
    expect(done.map((d) => d.doneNs)).toEqual([1_000, 1_011_000]);
    expect(dev.isWritten(0)).toBe(false);
    expect(r.trace!.filter((t) => t.src === "d0").map((t) => t.data)).toEqual([{ op: "write", bytes: 4096, issuer: "qcow2", metadata: true }, { op: "flush", issuer: "qcow2" }]);
    expect(() => dev.io({ op: "read", offset: 0, bytes: 4096, issuer: "g", metadata: true })).toThrow('device "d0": only a plain write may be a metadata write, not read');
  });

  it("gives the same trace hash for the same run", () => {
    const once = () => {
      const sim = new Scheduler({ seed: 9 });
      const dev = makeDevice(sim, { queueDepth: 4, readLatencyNs: { minNs: 1, maxNs: 900 }, writeLatencyNs: { minNs: 1, maxNs: 900 } });
      issueAll(sim, dev, Array.from({ length: 40 }, (_, i) => ({ atNs: (i * 37) % 500, req: { op: (i % 3 ? "write" : "read") as IoOp, offset: (i % 16) * 4096, bytes: 4096, issuer: "g" } })));
      return sim.run().hash;
    };
    expect(once()).toBe(once());
  });
});

describe("Device validation", () => {
  const base = { name: "d", sizeBytes: 1 << 20, clusterSizeBytes: 4096, readLatencyNs: 1, writeLatencyNs: 1, bandwidthBytesPerSec: 0, queueDepth: 1 };
  const make = (over: object) => () => new Device(new Scheduler(), { ...base, ...over });

  it("names the bad field and what was expected", () => {
    expect(make({ name: "" })).toThrow('device config: name must be a non-empty string, got ""');
    expect(make({ queueDepth: 0 })).toThrow('device "d": queueDepth must be a whole number >= 1, got 0');
    expect(make({ clusterSizeBytes: 3000 })).toThrow('device "d": clusterSizeBytes must be a power of two >= 512, got 3000');
    expect(make({ clusterSizeBytes: 256 })).toThrow("clusterSizeBytes must be a whole number >= 512, got 256");
    expect(make({ bandwidthBytesPerSec: -1 })).toThrow("bandwidthBytesPerSec must be a whole number >= 0, got -1");
    expect(make({ sizeBytes: 1.5 })).toThrow("sizeBytes must be a whole number >= 1, got 1.5");
    expect(make({ readLatencyNs: { minNs: 5, maxNs: 1 } })).toThrow('readLatencyNs range needs whole numbers 0 <= minNs <= maxNs, got {"minNs":5,"maxNs":1}');
    expect(make({ writeLatencyNs: "fast" })).toThrow('writeLatencyNs must be ns or { minNs, maxNs }, got "fast"');
    expect(make({ faults: [{ errno: "EBADF" }] })).toThrow('device "d": fault rule 1: errno must be one of EIO, ENOSPC, EPERM, EINVAL, ENOMEDIUM, ECANCELED, got "EBADF"');
  });

  it("rejects malformed requests in the issuing process", () => {
    const dev = new Device(new Scheduler(), base);
    expect(() => dev.io({ op: "write", offset: (1 << 20) - 4096, bytes: 8192, issuer: "g" })).toThrow('device "d": write 1044480+8192 ends past the device size (1048576 bytes)');
    expect(() => dev.io({ op: "read", offset: -1, bytes: 1, issuer: "g" })).toThrow("read offset must be a whole number of bytes >= 0, got -1");
    expect(() => dev.io({ op: "read", offset: 0, bytes: 0, issuer: "g" })).toThrow("read bytes must be a whole number >= 1, got 0");
    expect(() => dev.io({ op: "trim" as IoOp, offset: 0, bytes: 1, issuer: "g" })).toThrow('op must be one of read, write, flush, write-zeroes, discard, got "trim"');
    const data: Content = { offset: 0, clusterSizeBytes: 4096, versions: [ZERO_VERSION] };
    expect(() => dev.io({ op: "write-zeroes", offset: 0, bytes: 4096, issuer: "g", data })).toThrow("only a write may carry data, not write-zeroes");
    expect(() => dev.io({ op: "write", offset: 0, bytes: 8192, issuer: "g", data })).toThrow("write 0+8192 carries data covering only [0, 4096)");
  });
});

/** The timing formula of device.ts, written independently of the device. */
function modelCompletions(
  list: { atNs: number; req: IoRequest }[],
  c: { queueDepth: number; bw: number; readLat: number; writeLat: number },
): number[] {
  const order = list.map((_, i) => i).sort((a, b) => list[a].atNs - list[b].atNs || a - b);
  const slots = new Array<number>(c.queueDepth).fill(0);
  const out = new Array<number>(list.length);
  let prevStart = 0, channelFree = 0, lastModify = 0;
  for (const i of order) {
    const { atNs, req } = list[i];
    let k = 0;
    for (let j = 1; j < slots.length; j++) if (slots[j] < slots[k]) k = j;
    const start = Math.max(atNs, prevStart, slots[k]);
    prevStart = start;
    const lat = req.op === "read" ? c.readLat : c.writeLat;
    let done: number;
    if (req.op === "flush") {
      done = Math.max(start + lat, lastModify);
    } else {
      const t = (req.op === "read" || req.op === "write") && c.bw > 0 ? Math.ceil((req.bytes! * 1e9) / c.bw) : 0;
      const ch = t > 0 ? Math.max(start, channelFree) : start;
      if (t > 0) channelFree = ch + t;
      done = ch + t + lat;
      if (req.op !== "read") lastModify = Math.max(lastModify, done);
    }
    slots[k] = done;
    out[i] = done;
  }
  return out;
}
