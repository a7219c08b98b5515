import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { startGuest, type BlockBackend, type BlockGraph, type BlockNode, type DrainParent } from "../../sim/block/index.js";
import { Waiters } from "../../sim/disk/index.js";
import { join, now, RandomStrategy, sleep, spawn, type Process, type ProcHandle } from "../../sim/scheduler/index.js";
import { RecordingParent, world } from "./helpers.js";

const C = 4096;

/** base (qcow2) <- top (qcow2) <- cbw (filter) <- guest backend "drive0". */
function stack(opts: { seed?: number; strategySeed?: number; latency?: number | { minNs: number; maxNs: number }; bounded?: boolean } = {}) {
  const w = world({
    seed: opts.seed ?? 0,
    ...(opts.strategySeed !== undefined ? { strategy: new RandomStrategy(opts.strategySeed) } : {}),
    // A scenario that never settles fails with a time budget instead of running on.
    ...(opts.bounded ? { trace: false, maxTimeNs: 10_000_000_000 } : {}),
  });
  const lat = opts.latency ?? 1_000;
  const base = w.graph.createNode({ name: "base", driver: "qcow2", device: w.device("base-dev", { sizeBytes: 64 * C, readLatencyNs: lat, writeLatencyNs: lat }) });
  const top = w.graph.createNode({ name: "top", driver: "qcow2", device: w.device("top-dev", { sizeBytes: 64 * C, readLatencyNs: lat, writeLatencyNs: lat }), backing: base });
  const cbw = w.graph.createNode({ name: "cbw", driver: "filter", file: top, filterDriver: "copy-before-write" });
  const guest = w.graph.createBackend({ name: "drive0", issuer: "guest", root: cbw, queueWhenDrained: true });
  return { ...w, base, top, cbw, guest };
}

describe("drained sections", () => {
  it("wait in virtual time for the requests in flight on the node", () => {
    const { sim, graph, top } = stack();
    let drainedAt = -1;
    sim.spawn("writer", top.write(0, C, "guest"));
    sim.spawn("drainer", (function* (): Process {
      yield sleep(100);
      yield* graph.drainedBegin(top);
      drainedAt = (yield now()) as number;
      expect(top.inFlight).toBe(0);
      graph.drainedEnd(top);
    })());
    const r = sim.run();
    expect(drainedAt).toBe(1_000);
    expect(r.trace!.filter((t) => t.src === "block").map((t) => `${t.t} ${t.kind} ${JSON.stringify(t.data)}`)).toEqual([
      '100 drained-begin {"node":"top","quiesce":1}',
      '1000 drained {"node":"top"}',
      '1000 drained-end {"node":"top","quiesce":0}',
    ]);
  });

  it("return at once when nothing is in flight", () => {
    const { sim, graph, top } = stack();
    let at = -1;
    sim.spawn("drainer", (function* (): Process {
      yield sleep(50);
      yield* graph.drainedBegin(top);
      at = (yield now()) as number;
    })());
    sim.run();
    expect(at).toBe(50);
  });

  it("nest: counters and parent calls add up, each end undoes one begin", () => {
    const { sim, graph, top, guest } = stack();
    const job = new RecordingParent("job0");
    graph.attachParent(top, job);
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(top);
      yield* graph.drainedBegin(top);
      expect([top.quiesceCount, job.begins, guest.quiesceCount]).toEqual([2, 2, 2]);
      graph.drainedEnd(top);
      expect([top.quiesceCount, job.begins, guest.quiesceCount]).toEqual([1, 1, 1]);
      graph.drainedEnd(top);
      expect([top.quiesceCount, job.begins, guest.quiesceCount]).toEqual([0, 0, 0]);
      expect(() => graph.drainedEnd(top)).toThrow('drainedEnd("top"): no drained section begun on this node is in force');
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(job.calls).toEqual(["begin", "begin", "end", "end"]);
  });

  it("tell parents newest first, as QEMU walks its parent list from the head", () => {
    const { sim, graph, top } = stack();
    const log: string[] = [];
    const parent = (name: string) => ({
      name,
      drainedBegin: () => log.push(`${name} begin`),
      drainedEnd: () => log.push(`${name} end`),
      drainedPoll: () => false,
    });
    graph.attachParent(top, parent("j0"));
    graph.attachParent(top, parent("j3"));
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(top);
      graph.drainedEnd(top);
    })());
    sim.run();
    expect(log).toEqual(["j3 begin", "j0 begin", "j3 end", "j0 end"]);
  });

  it("end: parents hear drained_end before the node's counter drops (5cb2737e92)", () => {
    const { sim, graph, top } = stack();
    const seen: number[] = [];
    graph.attachParent(top, new RecordingParent("job0", () => seen.push(top.quiesceCount)));
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(top);
      graph.drainedEnd(top);
    })());
    sim.run();
    expect(seen).toEqual([1]);
  });

  it("climb to every ancestor and its users, never to children", () => {
    const { sim, graph, base, top, cbw, guest } = stack();
    const jobOnTop = new RecordingParent("job-top");
    graph.attachParent(top, jobOnTop);
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(base);
      expect([base, top, cbw].map((n) => n.quiesceCount)).toEqual([1, 1, 1]);
      expect([guest.quiesceCount, jobOnTop.begins]).toEqual([1, 1]);
      graph.drainedEnd(base);
      yield* graph.drainedBegin(top);
      expect([base, top, cbw].map((n) => n.quiesceCount)).toEqual([0, 1, 1]);
      graph.drainedEnd(top);
      expect([base, top, cbw].map((n) => n.quiesceCount)).toEqual([0, 0, 0]);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
  });

  it("wait for requests in flight on any ancestor, even ones that never reach the drained node", () => {
    const { sim, graph, base, top } = stack();
    let drainedAt = -1;
    sim.spawn("prep-then-write", (function* (): Process {
      yield* top.write(0, C, "guest"); // allocate cluster 0 in top: later writes stay in top
      yield* top.write(0, C, "guest"); // in flight 1000..2000 on top only
    })());
    sim.spawn("drainer", (function* (): Process {
      yield sleep(1_500);
      yield* graph.drainedBegin(base);
      drainedAt = (yield now()) as number;
    })());
    sim.run();
    expect(base.inFlight).toBe(0);
    expect(drainedAt).toBe(2_000);
  });

  it("wait until every busy parent says it is idle and kicks the graph", () => {
    const { sim, graph, top } = stack();
    const job = new RecordingParent("job0");
    job.busy = true;
    graph.attachParent(top, job);
    let drainedAt = -1;
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(top);
      drainedAt = (yield now()) as number;
    })());
    sim.at(700, "job pauses", () => {
      job.busy = false;
      graph.kick();
    });
    sim.run();
    expect(drainedAt).toBe(700);
  });

  it("report what a stuck drain waits for", () => {
    const { sim, graph, top } = stack();
    const job = new RecordingParent("job0");
    job.busy = true;
    graph.attachParent(top, job);
    sim.spawn("drainer", graph.drainedBegin(top));
    expect(sim.run().outcome).toEqual({
      kind: "deadlock",
      timeNs: 0,
      waiting: [{ process: "drainer", on: 'drained_begin("top"): parent "job0" of node "top" is busy' }],
    });
  });

  it("replay a quiesced node's count on a parent that attaches, and end it when it detaches", () => {
    const { sim, graph, top } = stack();
    const late = new RecordingParent("late");
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(top);
      yield* graph.drainedBegin(top);
      const link = graph.attachParent(top, late);
      expect(late.calls).toEqual(["begin", "begin"]);
      graph.drainedEnd(top);
      expect(late.begins).toBe(1);
      graph.detachParent(link);
      expect(late.calls).toEqual(["begin", "begin", "end", "end"]);
      graph.drainedEnd(top);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
  });

  it("settle drains when links move: setBacking and replaceNode", () => {
    const { sim, graph, device, base, top, guest } = stack();
    sim.spawn("drainer", (function* (): Process {
      yield* graph.drainedBegin(base);
      // A new overlay on a quiesced base is quiesced with it, and so are its users.
      const snap = graph.createNode({ name: "snap", driver: "qcow2", device: device("snap-dev", { sizeBytes: 64 * C }), backing: base });
      const snapUser = graph.createBackend({ name: "drive1", issuer: "guest2", root: snap, queueWhenDrained: true });
      expect([snap.quiesceCount, snapUser.quiesceCount]).toEqual([1, 1]);
      graph.setBacking(snap, null);
      expect([snap.quiesceCount, snapUser.quiesceCount]).toEqual([0, 0]);
      // Pivot: the guest's filter moves from top (quiesced through base) to a fresh node.
      const tgt = graph.createNode({ name: "tgt", driver: "raw", device: device("tgt-dev", { sizeBytes: 64 * C }) });
      graph.replaceNode(top, tgt);
      expect([top.quiesceCount, guest.quiesceCount, guest.root!.quiesceCount]).toEqual([1, 0, 0]);
      graph.drainedEnd(base);
      expect([base.quiesceCount, top.quiesceCount]).toEqual([0, 0]);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
  });

  it("drain all: every node once, each non-node parent once per node it uses", () => {
    const { sim, graph, device, base, top, cbw, guest } = stack();
    const job = new RecordingParent("job0");
    graph.attachParent(base, job);
    graph.attachParent(top, job);
    let drainedAt = -1;
    sim.spawn("writer", base.write(0, C, "x"));
    sim.spawn("drainer", (function* (): Process {
      yield sleep(10);
      yield* graph.drainAllBegin();
      drainedAt = (yield now()) as number;
      expect([base, top, cbw].map((n) => n.quiesceCount)).toEqual([1, 1, 1]);
      expect([job.begins, guest.quiesceCount]).toEqual([2, 1]);
      const born = graph.createNode({ name: "born", driver: "raw", device: device("born-dev") });
      expect(born.quiesceCount).toBe(1);
      yield* graph.drainedBegin(top); // nests with drain-all
      expect(cbw.quiesceCount).toBe(2);
      graph.drainedEnd(top);
      graph.drainAllEnd();
      expect([base, top, cbw, born].map((n) => n.quiesceCount)).toEqual([0, 0, 0, 0]);
      expect([job.begins, guest.quiesceCount]).toEqual([0, 0]);
      expect(() => graph.drainAllEnd()).toThrow("drainAllEnd: no drain-all section is in force");
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(drainedAt).toBe(1_000);
  });

  it("guest requests issued during a drain all complete after it, in issue order", () => {
    const { sim, graph, top, guest } = stack();
    const completions: { id: number; at: number }[] = [];
    const g = startGuest(sim, { name: "g", backend: guest, pattern: "random", requestBytes: C, iodepth: 4, intervalNs: 300, stopAtNs: 20_000 });
    let endAt = -1;
    sim.spawn("drainer", (function* (): Process {
      yield sleep(5_000);
      yield* graph.drainedBegin(top);
      yield sleep(8_000);
      endAt = (yield now()) as number;
      graph.drainedEnd(top);
      yield sleep(30_000);
    })());
    graph.observe((ev) => {
      if (ev.type === "complete" && ev.backend === guest) completions.push({ id: 0, at: ev.timeNs });
    });
    const r = sim.run();
    const queued = r.trace!.filter((t) => t.src === "drive0" && t.kind === "queued");
    expect(queued.length).toBe(4); // every worker parked behind the drain
    const released = r.trace!.filter((t) => t.src === "drive0" && t.kind === "released");
    expect(released).toEqual([{ t: endAt, src: "drive0", kind: "released", data: { count: queued.length } }]);
    // Released in the order they were parked: their writes reach the device in that order.
    const queuedOffsets = queued.map((t) => t.data!.offset);
    const deviceWritesAfter = r.trace!.filter((t) => t.src === "top-dev" && t.kind === "io" && t.t > endAt).map((t) => t.data!.offset);
    expect(deviceWritesAfter.slice(0, queuedOffsets.length)).toEqual(queuedOffsets);
    expect(g.stats.issued).toBe(g.stats.completed);
    expect(g.stats.failed).toBe(0);
  });
});

/** A job as the block layer sees it: pauses at pause points when drained, busy in between (QEMU's child_job). */
class TestJob implements DrainParent {
  pauseCount = 0;
  busy = false;
  iterationsDone = 0;
  private readonly resumed = new Waiters("job0 to be resumed");
  constructor(readonly name: string, private readonly graph: BlockGraph) {}
  drainedBegin(): void {
    this.pauseCount++;
  }
  drainedEnd(): void {
    if (--this.pauseCount === 0) this.resumed.wakeAll();
  }
  drainedPoll(): boolean {
    return this.busy;
  }
  private *pausePoint(): Process<void> {
    while (this.pauseCount > 0) {
      this.busy = false;
      this.graph.kick();
      yield this.resumed.wait();
    }
    this.busy = true;
  }
  /** Commit-like: read a cluster through `from`, write it to `to`, think; a pause point between iterations only. */
  *run(from: BlockBackend, to: BlockBackend, iterations: number, thinkNs: number, rng: () => number): Process<void> {
    this.busy = true;
    for (let i = 0; i < iterations; i++) {
      yield* this.pausePoint();
      const offset = Math.floor(rng() * 64) * C;
      const data = yield* from.read(offset, C);
      yield* to.write(offset, C, data);
      yield sleep(thinkNs);
      this.iterationsDone++;
    }
    this.busy = false;
    this.graph.kick();
  }
}

interface DrainPlan { atNs: number; holdNs: number; target: "base" | "top" | "cbw" | "all" }

function drainScenario(input: {
  strategySeed: number;
  seed: number;
  iodepth: number;
  intervalNs: number;
  readFraction: number;
  jobIterations: number;
  jobThinkNs: number;
  drains: DrainPlan[];
}) {
  const { sim, graph, base, top, cbw, guest } = stack({ seed: input.seed, strategySeed: input.strategySeed, latency: { minNs: 100, maxNs: 3_000 }, bounded: true });
  const job = new TestJob("job0", graph);
  graph.attachParent(top, job);
  graph.attachParent(base, job);
  const jobRead = graph.createBackend({ issuer: "job:job0", root: top });
  const jobWrite = graph.createBackend({ issuer: "job:job0", root: base });
  const violations: string[] = [];
  // Sections in force (drained, not yet ended) that reach the guest (all of them: every node is below
  // its filter) and that reach the job (those on the nodes it is attached to, and drain-all; a drain
  // of the filter above does not reach down to it).
  let guestInForce = 0, jobInForce = 0;
  const reachesJob = (n: BlockNode) => n === top || n === base;
  // Written out independently of the graph: the node and its ancestors.
  const ancestry = new Map<BlockNode, BlockNode[]>([[base, [base, top, cbw]], [top, [top, cbw]], [cbw, [cbw]]]);
  const settled = (what: string, nodes: BlockNode[], backends: BlockBackend[], t: number) => {
    for (const n of nodes) if (n.inFlight > 0) violations.push(`${t}: ${what} settled with ${n.inFlight} in flight on "${n.name}"`);
    for (const b of backends) if (b.inFlight > 0) violations.push(`${t}: ${what} settled with ${b.inFlight} in flight from ${b.issuer}`);
  };
  graph.observe((ev) => {
    switch (ev.type) {
      case "drained":
        guestInForce++;
        if (!graph.isIdle(ev.node)) violations.push(`${ev.timeNs}: "${ev.node.name}" drained while busy`);
        settled(`drain of "${ev.node.name}"`, ancestry.get(ev.node)!, reachesJob(ev.node) ? [guest, jobRead, jobWrite] : [guest], ev.timeNs);
        if (reachesJob(ev.node)) {
          jobInForce++;
          if (job.busy) violations.push(`${ev.timeNs}: "${ev.node.name}" drained while the job is busy`);
        }
        break;
      case "drain-all":
        guestInForce++;
        jobInForce++;
        if (job.busy) violations.push(`${ev.timeNs}: drain-all settled while the job is busy`);
        settled("drain-all", [base, top, cbw], [guest, jobRead, jobWrite], ev.timeNs);
        break;
      case "drained-end":
        guestInForce--;
        if (reachesJob(ev.node)) jobInForce--;
        break;
      case "drain-all-end":
        guestInForce--;
        jobInForce--;
        break;
      case "submit": {
        const inForce = ev.backend === guest ? guestInForce : jobInForce;
        if (inForce > 0) violations.push(`${ev.timeNs}: ${ev.req.issuer} ${ev.req.op} ${ev.req.offset} started inside a drained section`);
        break;
      }
    }
  });
  const g = startGuest(sim, {
    name: "guest", backend: guest, pattern: "random", requestBytes: { minBytes: C, maxBytes: 4 * C },
    readFraction: input.readFraction, iodepth: input.iodepth, intervalNs: input.intervalNs,
  });
  const jobProc = sim.spawn("job0", job.run(jobRead, jobWrite, input.jobIterations, input.jobThinkNs, sim.streams.get("test/job")));
  const nodes = { base, top, cbw };
  sim.spawn("finisher", (function* (): Process {
    const drainers: ProcHandle[] = [];
    for (const [i, d] of input.drains.entries()) {
      drainers.push((yield spawn(`drainer${i}`, (function* (): Process {
        yield sleep(d.atNs);
        if (d.target === "all") yield* graph.drainAllBegin();
        else yield* graph.drainedBegin(nodes[d.target]);
        yield sleep(d.holdNs);
        if (d.target === "all") graph.drainAllEnd();
        else graph.drainedEnd(nodes[d.target]);
      })())) as ProcHandle);
    }
    for (const p of drainers) yield join(p);
    yield join(jobProc);
    g.stop();
    while (guest.inFlight > 0 || guest.queued > 0) yield sleep(1_000);
  })());
  const result = sim.run();
  return { result, violations, guest: g.stats, job, quiesce: [base, top, cbw].map((n) => n.quiesceCount) };
}

describe("drain property", () => {
  const drainArb = fc.record({
    atNs: fc.integer({ min: 0, max: 60_000 }),
    holdNs: fc.integer({ min: 0, max: 15_000 }),
    target: fc.constantFrom<DrainPlan["target"]>("base", "top", "cbw", "all"),
  });
  const scenarioArb = fc.record({
    strategySeed: fc.integer({ min: 0, max: 1_000_000 }),
    seed: fc.integer({ min: 0, max: 1_000_000 }),
    iodepth: fc.integer({ min: 1, max: 4 }),
    intervalNs: fc.integer({ min: 0, max: 3_000 }),
    readFraction: fc.constantFrom(0, 0.3, 0.7),
    jobIterations: fc.integer({ min: 1, max: 30 }),
    jobThinkNs: fc.integer({ min: 0, max: 2_000 }),
    drains: fc.array(drainArb, { minLength: 1, maxLength: 6 }),
  });

  it("no job or guest request starts inside a drained section, no guest request is lost (fast-check, fixed seed)", () => {
    fc.assert(
      fc.property(scenarioArb, (input) => {
        const r = drainScenario(input);
        expect(r.result.outcome).toEqual({ kind: "ok" });
        expect(r.violations).toEqual([]);
        expect(r.job.iterationsDone).toBe(input.jobIterations);
        expect(r.guest.issued).toBe(r.guest.completed);
        expect(r.guest.failed).toBe(0);
        expect(r.quiesce).toEqual([0, 0, 0]);
      }),
      { seed: 20_240_601, numRuns: 120 },
    );
  });

  it("gives the same trace hash when run twice", () => {
    fc.assert(
      fc.property(scenarioArb, (input) => {
        expect(drainScenario(input).result.hash).toBe(drainScenario(input).result.hash);
      }),
      { seed: 99, numRuns: 15 },
    );
  });
});

