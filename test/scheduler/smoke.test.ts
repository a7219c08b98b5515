import { describe, expect, it } from "vitest";
import { join, notify, RandomStrategy, ReplayStrategy, Scheduler, Signal, sleep, spawn, wait, type Process } from "../../sim/scheduler/index.js";

function program(): Process {
  return (function* (): Process {
    const sig = new Signal<number>("go");
    const a = yield spawn("a", (function* (): Process { return (yield wait(sig)) as number; })());
    const b = yield spawn("b", (function* (): Process { yield sleep(5); return 2; })());
    yield sleep(5);
    yield notify(sig, 1);
    return [(yield join(a)) as number, (yield join(b)) as number];
  })();
}

describe("kernel smoke", () => {
  it("runs a program to completion at the expected virtual time", () => {
    const sim = new Scheduler();
    const main = sim.spawn("main", program());
    const r = sim.run();
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.endTimeNs).toBe(5);
    expect(main.result).toEqual([1, 2]);
  });

  it("replays a random run to the same hash", () => {
    const a = new Scheduler({ strategy: new RandomStrategy(3) });
    a.spawn("main", program());
    const ra = a.run();
    const b = new Scheduler({ strategy: new ReplayStrategy(ra.choices) });
    b.spawn("main", program());
    expect(b.run().hash).toBe(ra.hash);
  });
});
