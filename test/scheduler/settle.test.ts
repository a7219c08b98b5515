import { describe, expect, it } from "vitest";
import { interrupt, Scheduler, settle, sleep, spawn, yieldNow, type Process } from "../../sim/scheduler/index.js";

describe("settle()", () => {
  it("resumes once nothing else is ready at the instant, without advancing time", () => {
    const order: string[] = [];
    const sim = new Scheduler();
    sim.spawn("monitor", (function* (): Process {
      yield spawn("job", (function* (): Process {
        for (let i = 0; i < 3; i++) {
          order.push(`job ${i}`);
          yield sleep(0);
        }
        yield sleep(10);
        order.push("job later");
      })());
      yield settle();
      order.push(`reply at ${sim.now}`);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(order).toEqual(["job 0", "job 1", "job 2", "reply at 0", "job later"]);
  });

  it("waits for work that keeps re-arming at the same instant, and an interrupt releases it", () => {
    const sim = new Scheduler();
    let caught = "";
    sim.spawn("main", (function* (): Process {
      const waiter = yield spawn("waiter", (function* (): Process {
        try { yield settle(); } catch (e) { caught = (e as Error).message; }
      })());
      yield yieldNow();
      yield interrupt(waiter, "stop");
      yield sleep(1);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(caught).toBe("interrupted: stop");
  });
});
