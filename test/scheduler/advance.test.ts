import { describe, expect, it } from "vitest";
import { Scheduler, Signal, notify, now, sleep, wait, type Process } from "../../sim/scheduler/index.js";

function* sleeper(log: string[], name: string, delays: number[]): Process {
  for (const d of delays) {
    yield sleep(d);
    log.push(`${name}@${(yield now()) as number}`);
  }
}

describe("Scheduler.advanceTo: a run driven from outside, step by step", () => {
  it("runs exactly the entries due up to the horizon, then sets the clock to it", () => {
    const sim = new Scheduler();
    const log: string[] = [];
    sim.spawn("a", sleeper(log, "a", [10, 10, 10]));
    expect(sim.advanceTo(15)).toBeUndefined();
    expect(log).toEqual(["a@10"]);
    expect(sim.now).toBe(15);
    expect(sim.nextEventNs()).toBe(20);
    sim.advanceTo(100);
    expect(log).toEqual(["a@10", "a@20", "a@30"]);
    expect(sim.now).toBe(100);
    expect(sim.nextEventNs()).toBeUndefined();
  });

  it("takes processes spawned between calls, and a process waiting forever is not a deadlock", () => {
    const sim = new Scheduler();
    const log: string[] = [];
    const sig = new Signal<number>("from outside");
    sim.spawn("waiter", (function* (): Process {
      log.push(`got ${(yield wait(sig)) as number}@${(yield now()) as number}`);
    })());
    expect(sim.advanceTo(50)).toBeUndefined();
    expect(log).toEqual([]);
    sim.spawn("late", (function* (): Process {
      yield sleep(5);
      yield notify(sig, 7);
    })());
    expect(sim.nextEventNs()).toBe(50);
    sim.advanceTo(60);
    expect(log).toEqual(["got 7@55"]);
    expect(sim.result().outcome).toEqual({ kind: "ok" });
  });

  it("gives the same hash as run() would for the same work, and refuses a time in the past", () => {
    const a = new Scheduler();
    a.spawn("a", sleeper([], "a", [10, 20]));
    const ran = a.run();
    const b = new Scheduler();
    b.spawn("a", sleeper([], "a", [10, 20]));
    b.advanceTo(12);
    b.advanceTo(40);
    expect(b.result().hash).toBe(ran.hash);
    expect(() => b.advanceTo(3)).toThrow(/>= now/);
    expect(() => b.run()).toThrow(/only once/);
  });

  it("stops with the failure when a process throws", () => {
    const sim = new Scheduler();
    sim.spawn("bad", (function* (): Process {
      yield sleep(3);
      throw new Error("boom");
    })());
    expect(sim.advanceTo(10)).toMatchObject({ kind: "failure", process: "bad", error: expect.stringContaining("boom") });
  });
});
