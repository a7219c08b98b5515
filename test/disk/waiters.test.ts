import { describe, expect, it } from "vitest";
import { Waiters } from "../../sim/disk/index.js";
import { awaitOp, interrupt, Interrupted, now, Scheduler, sleep, spawn, type Process } from "../../sim/scheduler/index.js";

describe("Waiters", () => {
  it("wakes parked processes from a timer callback, oldest first, with a value", () => {
    const sim = new Scheduler();
    const w = new Waiters("the gate");
    const woke: string[] = [];
    for (const name of ["a", "b", "c"]) {
      sim.spawn(name, (function* (): Process {
        const v = yield w.wait();
        woke.push(`${name}:${String(v)}@${String(yield now())}`);
      })());
    }
    sim.at(500, "open", () => {
      expect(w.length).toBe(3);
      w.wakeFirst("first");
      w.wakeAll("rest");
    });
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    expect(woke).toEqual(["a:first@500", "b:rest@500", "c:rest@500"]);
  });

  it("names what is awaited in a deadlock report", () => {
    const sim = new Scheduler();
    const w = new Waiters(() => "nothing, forever");
    sim.spawn("stuck", (function* (): Process { yield w.wait(); })());
    expect(sim.run().outcome).toEqual({ kind: "deadlock", timeNs: 0, waiting: [{ process: "stuck", on: "nothing, forever" }] });
  });

  it("lets an interrupted waiter cancel its ticket", () => {
    const sim = new Scheduler();
    const w = new Waiters("x");
    sim.spawn("main", (function* (): Process {
      const p = yield spawn("p", (function* (): Process {
        const t = w.ticket();
        try {
          yield awaitOp(t);
        } catch (e) {
          expect(e).toBeInstanceOf(Interrupted);
          expect(w.cancel(t)).toBe(true);
          throw e;
        }
      })());
      yield sleep(1);
      yield interrupt(p);
      yield sleep(1);
      expect(w.length).toBe(0);
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
  });
});
