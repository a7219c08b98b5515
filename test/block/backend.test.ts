import { describe, expect, it } from "vitest";
import { IoError } from "../../sim/disk/index.js";
import { now, sleep, type Process } from "../../sim/scheduler/index.js";
import { world } from "./helpers.js";

const C = 4096;

describe("BlockBackend requests", () => {
  it("carry the issuer into the device trace and written versions", () => {
    const { sim, graph, device } = world();
    const n = graph.createNode({ name: "n", driver: "raw", device: device("d") });
    const guest = graph.createBackend({ name: "drive0", issuer: "guest", root: n });
    const job = graph.createBackend({ issuer: "job:backup0", root: n });
    sim.spawn("g", (function* (): Process {
      yield* guest.write(0, C);
      yield* job.write(C, C);
      yield* job.io({ op: "write", offset: 2 * C, bytes: C, issuer: "job:cbw" });
    })());
    const r = sim.run();
    expect(r.trace!.filter((t) => t.kind === "io").map((t) => t.data!.issuer)).toEqual(["guest", "job:backup0", "job:cbw"]);
    expect([0, 1, 2].map((c) => n.contentAt(c).writer)).toEqual(["guest", "job:backup0", "job:cbw"]);
  });

  it("fail with ENOMEDIUM without a root, and follow setRoot", () => {
    const { sim, graph, device } = world();
    const blk = graph.createBackend({ name: "drive0", issuer: "guest" });
    const errs: string[] = [];
    sim.spawn("g", (function* (): Process {
      try { yield* blk.read(0, C); } catch (e) { errs.push((e as Error).message); }
      blk.setRoot(graph.createNode({ name: "n", driver: "raw", device: device("d") }));
      yield* blk.write(0, C);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(errs).toEqual(["drive0: read 0+4096: No medium found"]);
    expect(blk.inFlight).toBe(0);
  });

  it("tell observers when requests pass the backend and finish", () => {
    const { sim, graph, device } = world();
    const dev = device("d", { writeLatencyNs: 300 });
    dev.addFault({ op: "read", errno: "EIO" });
    const blk = graph.createBackend({ issuer: "guest", root: graph.createNode({ name: "n", driver: "raw", device: dev }) });
    const seen: string[] = [];
    graph.observe((ev) => {
      if (ev.type === "submit" || ev.type === "complete") {
        seen.push(`${ev.timeNs} ${ev.type} ${ev.req.op} ${ev.type === "complete" && ev.error ? "error" : ""}`.trim());
      }
    });
    sim.spawn("g", (function* (): Process {
      yield* blk.write(0, C);
      yield sleep(50);
      try { yield* blk.read(0, C); } catch { /* expected */ }
    })());
    sim.run();
    expect(seen).toEqual(["0 submit write", "300 complete write", "350 submit read", "350 complete read error"]);
  });

  it("a request its node refuses (past the end) finishes at once: counts back to zero, a complete event with the error, and a drain is not held", () => {
    const { sim, graph, device } = world();
    const n = graph.createNode({ name: "n", driver: "raw", device: device("d", { sizeBytes: 4 * C }) });
    const blk = graph.createBackend({ issuer: "guest", root: n });
    const seen: string[] = [];
    graph.observe((ev) => {
      if (ev.type === "submit" || ev.type === "complete") seen.push(`${ev.type}${ev.type === "complete" && ev.error instanceof RangeError ? " RangeError" : ""}`);
    });
    const errs: string[] = [];
    sim.spawn("g", (function* (): Process {
      try { yield* blk.write(3 * C, 2 * C); } catch (e) { errs.push((e as Error).message); }
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(errs).toEqual(['node "n": write 12288+8192 ends past the node size (16384 bytes)']);
    expect(seen).toEqual(["submit", "complete RangeError"]);
    expect([blk.inFlight, n.inFlight]).toEqual([0, 0]);
    expect(graph.isIdle(n)).toBe(true);
  });
});

describe("BlockBackend queuing while drained", () => {
  function setup() {
    const w = world();
    const node = w.graph.createNode({ name: "n", driver: "raw", device: w.device("d", { writeLatencyNs: 1_000 }) });
    const guest = w.graph.createBackend({ name: "drive0", issuer: "guest", root: node, queueWhenDrained: true });
    const job = w.graph.createBackend({ issuer: "job:j", root: node });
    return { ...w, node, guest, job };
  }

  it("a guest backend parks requests issued in a drained section and releases them in order at its end", () => {
    const { sim, graph, node, guest } = setup();
    const done: string[] = [];
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(node);
      yield sleep(5_000);
      expect(guest.queued).toBe(3);
      graph.drainedEnd(node);
    })());
    for (const i of [0, 1, 2]) {
      sim.spawn(`g${i}`, (function* (): Process {
        yield sleep(100 * (i + 1));
        const id = yield* guest.write(i * C, C);
        done.push(`g${i} id ${id} at ${String(yield now())}`);
      })());
    }
    const r = sim.run();
    expect(done).toEqual(["g0 id 1 at 6000", "g1 id 2 at 6000", "g2 id 3 at 6000"]);
    expect(r.trace!.filter((t) => t.src === "drive0").map((t) => `${t.t} ${t.kind}`)).toEqual(["100 queued", "200 queued", "300 queued", "5000 released"]);
    expect(guest.inFlight).toBe(0);
  });

  it("a job backend does not queue", () => {
    const { sim, graph, node, job } = setup();
    let doneAt = -1;
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(node);
      yield sleep(5_000);
      graph.drainedEnd(node);
    })());
    sim.spawn("job", (function* (): Process {
      yield sleep(100);
      yield* job.write(0, C);
      doneAt = (yield now()) as number;
    })());
    sim.run();
    expect(doneAt).toBe(1_100);
  });

  it("released requests count as in flight at once: a drain begun right after the end waits for them", () => {
    const { sim, graph, node, guest } = setup();
    let redrainedAt = -1;
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(node);
      yield sleep(1_000);
      graph.drainedEnd(node);
      yield* graph.drainedBegin(node); // same instant: the released write is in flight
      redrainedAt = (yield now()) as number;
      graph.drainedEnd(node);
    })());
    sim.spawn("g", (function* (): Process {
      yield sleep(10);
      yield* guest.write(0, C);
    })());
    sim.run();
    expect(redrainedAt).toBe(2_000);
  });

  it("parked requests of a removed backend fail with ENOMEDIUM; none is lost", () => {
    const { sim, graph, node, guest } = setup();
    const errs: string[] = [];
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(node);
      yield sleep(500);
      graph.removeBackend(guest);
      graph.drainedEnd(node);
    })());
    for (const i of [0, 1]) {
      sim.spawn(`g${i}`, (function* (): Process {
        yield sleep(10);
        try { yield* guest.write(i * C, C); } catch (e) { errs.push((e as IoError).errno); }
      })());
    }
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(errs).toEqual(["ENOMEDIUM", "ENOMEDIUM"]);
    expect(guest.inFlight).toBe(0);
  });
});
