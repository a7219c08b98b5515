import { describe, expect, it } from "vitest";
import { AioContexts, RandomStrategy, Scheduler, sleep, spawn, type Process } from "../../sim/scheduler/index.js";

describe("AioContexts: one event loop per IOThread, in virtual time", () => {
  it("a process or timer runs in its spawner's context unless told otherwise", () => {
    const sim = new Scheduler({});
    const aio = AioContexts.of(sim);
    const io0 = aio.create("io0");
    const seen: string[] = [];
    sim.spawn("in-io0", (function* (): Process {
      seen.push(`self:${aio.current().name}`);
      const child = (yield spawn("child", (function* (): Process { seen.push(`child:${aio.current().name}`); })())) as { context: number };
      seen.push(`child-context:${aio.byNumber(child.context).name}`);
      sim.at(sim.now + 5, "t", () => seen.push(`timer:${aio.current().name}`));
      sim.at(sim.now + 6, "bh", () => seen.push(`main-bh:${aio.current().name}`), undefined, 0);
      yield sleep(10);
    })(), { context: io0.id });
    sim.spawn("in-main", (function* (): Process { seen.push(`main:${aio.current().name}`); })());
    expect(sim.run().outcome.kind).toBe("ok");
    expect(seen).toEqual(["self:io0", "child-context:io0", "main:main", "child:io0", "timer:io0", "main-bh:main"]);
  });

  it("a lock let go and taken back without a poll (withoutLock): the IOThread woken meanwhile waits for it (FIFO) or takes it first, a logged choice", () => {
    const world = (strategy?: RandomStrategy) => {
      const sim = new Scheduler({ trace: true, ...(strategy ? { strategy } : {}) });
      const aio = AioContexts.of(sim);
      const io0 = aio.create("io0");
      const seen: string[] = [];
      sim.spawn("main", (function* (): Process {
        yield sleep(1);
        aio.acquire(io0);
        aio.withoutLock(io0, () => {
          const co = sim.spawn("co", (function* (): Process { seen.push(`co runs at depth ${io0.depth}`); })(), { context: io0.id });
          aio.coEnter(io0, co, false);
        });
        seen.push(`main holds io0 ${io0.depth} time(s)`);
        yield sleep(5);
        aio.release(io0);
      })());
      const r = sim.run();
      return { seen, r, choices: r.trace!.filter((t) => t.kind === "choose" && String(t.data?.label).startsWith("the thread of io0 takes its AioContext lock")) };
    };
    const fifo = world();
    expect(fifo.r.outcome.kind).toBe("ok");
    expect(fifo.seen).toEqual(["main holds io0 1 time(s)", "co runs at depth 0"]);
    expect(fifo.r.trace!.some((t) => t.kind === "gated")).toBe(true);
    expect(fifo.choices.map((c) => c.data?.pick)).toEqual([0]);
    const orders = new Set<string>();
    for (let seed = 1; seed <= 20; seed++) orders.add(world(new RandomStrategy(seed)).seen.join(" / "));
    expect([...orders].sort()).toEqual(["co runs at depth 0 / main holds io0 1 time(s)", "main holds io0 1 time(s) / co runs at depth 0"]);
  });

  it("aio_co_enter from another context schedules the coroutine into its own loop; from its own loop it runs at once", () => {
    const order: string[] = [];
    const sim1 = new Scheduler({});
    const aio1 = AioContexts.of(sim1);
    const io0 = aio1.create("io0");
    let co1: ReturnType<Scheduler["spawn"]> | undefined;
    sim1.spawn("driver", (function* (): Process {
      yield sleep(1);
      co1 = sim1.spawn("co", (function* (): Process { order.push("co in io0 runs"); })(), { context: io0.id });
      order.push(`io0 from main: ${aio1.coEnter(io0, co1, false)}`);
      order.push("main goes on");
      const co2 = sim1.spawn("co2", (function* (): Process { order.push("co2 in main runs"); })(), { context: 0 });
      order.push(`main from main: ${aio1.coEnter(aio1.main, co2, false)}`);
    })());
    expect(sim1.run().outcome.kind).toBe("ok");
    expect(order).toEqual(["io0 from main: scheduled", "main goes on", "co2 in main runs", "main from main: entered", "co in io0 runs"]);
  });

  it("aio_co_reschedule_self moves the running coroutine through a bottom half of its loop: it runs in the new context only after that loop's next round; to its own context it is a no-op", () => {
    const sim = new Scheduler({ trace: true });
    const aio = AioContexts.of(sim);
    const io0 = aio.create("io0");
    const seen: string[] = [];
    const co = sim.spawn("co", (function* (): Process {
      yield* aio.rescheduleSelf(aio.main);
      seen.push(`co in ${aio.current().name}`);
      yield* aio.rescheduleSelf(io0);
      seen.push(`co in ${aio.current().name}`);
    })());
    sim.spawn("other", (function* (): Process { seen.push(`other in ${aio.current().name}`); })());
    const r = sim.run();
    expect(r.outcome.kind).toBe("ok");
    expect(seen).toEqual(["co in main", "other in main", "co in io0"]);
    expect(co.context).toBe(io0.id);
    expect(r.trace!.filter((t) => t.kind === "co-schedule")).toEqual([{ t: 0, src: "aio", kind: "co-schedule", data: { context: io0.id, proc: "co" } }]);
  });

  it("while the main loop holds an IOThread's lock across a wait, that IOThread's entries are held back; a lock never released is a deadlock naming it", () => {
    const times: number[] = [];
    const world = (releaseAt: number | undefined) => {
      const sim = new Scheduler({ trace: true });
      const aio = AioContexts.of(sim);
      const io0 = aio.create("io0");
      sim.spawn("iothread work", (function* (): Process {
        yield sleep(1_000);
        times.push(sim.now);
      })(), { context: io0.id });
      sim.spawn("main holder", (function* (): Process {
        aio.acquire(io0);
        yield sleep(releaseAt ?? 1e9);
        if (releaseAt !== undefined) aio.release(io0);
      })());
      return sim.run();
    };
    const ok = world(10_000);
    expect(ok.outcome.kind).toBe("ok");
    expect(times).toEqual([10_000]);
    expect(ok.trace!.some((r) => r.kind === "gated")).toBe(true);
    const stuck = world(undefined);
    expect(stuck.outcome).toMatchObject({ kind: "deadlock", waiting: [{ process: "iothread work", on: "the AioContext lock of io0, held 1 time by the main loop" }] });
  });

  it("AIO_WAIT_WHILE from the main loop releases the IOThread's lock once: taken once it finishes, taken twice it deadlocks", () => {
    const world = (depth: number) => {
      const sim = new Scheduler({});
      const aio = AioContexts.of(sim);
      const io0 = aio.create("io0");
      let done = false;
      sim.spawn("iothread job", (function* (): Process {
        yield sleep(1_000);
        done = true;
        aio.kick();
      })(), { context: io0.id });
      sim.spawn("main drain", (function* (): Process {
        for (let i = 0; i < depth; i++) aio.acquire(io0);
        yield* aio.waitWhile(io0, "drain", () => (done ? undefined : "job busy"));
        for (let i = 0; i < depth; i++) aio.release(io0);
      })());
      return sim.run();
    };
    expect(world(1)).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 1_000 });
    expect(world(2).outcome).toMatchObject({ kind: "deadlock" });
    expect(JSON.stringify(world(2).outcome)).toContain("the AioContext lock of io0, held 1 time by the main loop");
  });

  it("a nested poll from the main loop runs main-loop entries itself and lets an IOThread's run on; their code sees its own context, the poller sees the main loop", () => {
    const sim = new Scheduler({ trace: true });
    const aio = AioContexts.of(sim);
    const io0 = aio.create("io0");
    const seen: string[] = [];
    let ioDone = false;
    sim.at(5, "io0 work", () => {
      seen.push(`io0 work in ${aio.current().name}`);
      ioDone = true;
    }, undefined, io0.id);
    sim.at(3, "main bh", () => seen.push(`main bh in ${aio.current().name}`), undefined, 0);
    sim.at(1, "poller", () => {
      sim.pollWhile("io0 work done", () => !ioDone);
      seen.push(`poll returns in ${aio.current().name} at ${sim.now}`);
    }, undefined, 0);
    expect(sim.run().outcome.kind).toBe("ok");
    expect(seen).toEqual(["main bh in main", "io0 work in io0", "poll returns in main at 5"]);
  });

  it("a nested poll from an IOThread's loop is refused loudly (QEMU's IOThreads poll their own context, which this kernel does not model)", () => {
    const sim = new Scheduler({});
    const io0 = AioContexts.of(sim).create("io0");
    sim.at(1, "io0 poller", () => sim.pollWhile("something", () => true), undefined, io0.id);
    expect(sim.run().outcome).toMatchObject({ kind: "failure", process: "io0 poller", error: expect.stringContaining("only the main loop's polls are modelled") });
  });

  it("a run with IOThreads is deterministic under a random strategy (same seed, same hash)", () => {
    const run = (seed: number) => {
      const sim = new Scheduler({ strategy: new RandomStrategy(seed) });
      const aio = AioContexts.of(sim);
      const ctxs = [aio.main, aio.create("io0"), aio.create("io1")];
      for (let i = 0; i < 6; i++) {
        sim.spawn(`p${i}`, (function* (): Process {
          for (let j = 0; j < 5; j++) yield sleep(((i * 7 + j * 3) % 4) * 100);
        })(), { context: ctxs[i % 3].id });
      }
      return sim.run();
    };
    expect(run(3).hash).toBe(run(3).hash);
    expect(run(3).choices.length).toBeGreaterThan(0);
  });
});
