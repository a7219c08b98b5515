/**
 * Where QEMU's event loop has a definite order, the kernel has no choice
 * point: a round barrier (the QMP reply's next round), one AioContext's own
 * bottom halves and timers, and coroutine sleeps on QEMU timers (coSleep).
 * Each rule is checked under FIFO (unchanged order) and under many random
 * schedules (the order holds, and the strategy still orders the rest).
 */
import { describe, expect, it } from "vitest";
import { awaitOp, coSleep, PctStrategy, RandomStrategy, Scheduler, Signal, sleep, wait, type Process, type Strategy } from "../../sim/scheduler/index.js";

const strategies = (): Strategy[] => [
  ...Array.from({ length: 30 }, (_, i) => new RandomStrategy(i + 1)),
  ...Array.from({ length: 30 }, (_, i) => new PctStrategy(i + 1)),
];

function noisy(sim: Scheduler, out: string[], name: string): void {
  sim.spawn(name, (function* (): Process {
    out.push(name);
    yield sleep(0);
    out.push(`${name} again`);
  })());
}

describe("nextRound: what becomes ready after the process cannot run before it", () => {
  function order(strategy?: Strategy): string[] {
    const sim = new Scheduler(strategy ? { strategy } : {});
    const out: string[] = [];
    noisy(sim, out, "io");
    sim.spawn("dispatcher", (function* (): Process {
      sim.bottomHalf("next round's work", () => out.push("next round's work"), undefined, 0);
      out.push("command");
      // the bottom half above is pending: a reply waits for it through afterBottomHalves; this one only for the round
      sim.at(sim.now, "scheduled by the round", () => out.push("scheduled by the round"));
      yield awaitOp(sim.nextRound());
      out.push("reply");
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    return out;
  }

  it("keeps FIFO's order, and under any strategy nothing made ready after the barrier passes it", () => {
    expect(order()).toEqual(["io", "command", "io again", "next round's work", "scheduled by the round", "reply"]);
    const seen = new Set<string>();
    for (const s of strategies()) {
      const o = order(s);
      // "io again" became ready before the barrier: either side
      expect(o.indexOf("reply"), `${s.name}: ${o.join(", ")}`).toBeGreaterThan(o.indexOf("command"));
      seen.add(o.join(","));
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it("holds back an entry queued after the barrier, whatever the strategy", () => {
    for (const s of strategies()) {
      const sim = new Scheduler({ strategy: s });
      const out: string[] = [];
      sim.spawn("client", (function* (): Process {
        sim.spawn("job", (function* (): Process {
          out.push("job's step"); // ready before the barrier: either side of the reply
          yield sleep(0); // ready again after it
          out.push("job's next step");
        })());
        yield awaitOp(sim.nextRound());
        out.push("reply");
      })());
      expect(sim.run().outcome).toEqual({ kind: "ok" });
      expect(out.indexOf("job's next step"), `${s.name}: ${out.join(", ")}`).toBeGreaterThan(out.indexOf("reply"));
    }
  });
});

describe("nextRound after main-loop timers due now", () => {
  it("runs after them (that round fires them before it writes a reply), under any strategy", () => {
    for (const s of strategies()) {
      const sim = new Scheduler({ strategy: s });
      const out: string[] = [];
      sim.spawn("dispatcher", (function* (): Process {
        sim.timerAt(sim.now, "job sleep timer, expired", () => out.push("timer"));
        yield awaitOp(sim.nextRound());
        out.push("reply");
      })());
      expect(sim.run().outcome).toEqual({ kind: "ok" });
      expect(out, s.name).toEqual(["timer", "reply"]);
    }
  });
});

describe("one AioContext's own bottom halves and timers run in its loop's order", () => {
  function order(strategy?: Strategy): string[] {
    const sim = new Scheduler(strategy ? { strategy } : {});
    const out: string[] = [];
    noisy(sim, out, "client");
    sim.spawn("keeps the run going", (function* (): Process {
      yield sleep(10);
    })());
    sim.at(5, "loop", () => {
      sim.bottomHalf("exit j1", () => out.push("exit j1"));
      sim.bottomHalf("exit j2", () => out.push("exit j2"));
      sim.timerAt(7, "sleep timer a", () => out.push("timer a"));
      sim.timerAt(7, "sleep timer b", () => out.push("timer b"));
      sim.at(7, "an I/O completion", () => out.push("io"));
    });
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    return out;
  }

  it("bottom halves newest first and equal-deadline timers in arming order, under FIFO and any strategy; other entries still interleave", () => {
    expect(order()).toEqual(["client", "client again", "exit j2", "exit j1", "timer a", "timer b", "io"]);
    const seen = new Set<string>();
    for (const s of strategies()) {
      const o = order(s);
      const loop = o.filter((x) => x.startsWith("exit") || x.startsWith("timer"));
      expect(loop, `${s.name}: ${o.join(", ")}`).toEqual(["exit j2", "exit j1", "timer a", "timer b"]);
      seen.add(o.join(","));
    }
    expect(seen.size).toBeGreaterThan(1);
  });

  it("a bottom half scheduled into another context, or a timer armed there, stays a free entry", () => {
    const seen = new Set<string>();
    for (const s of strategies()) {
      const sim = new Scheduler({ strategy: s });
      const out: string[] = [];
      sim.at(1, "loop of context 1", () => {
        sim.bottomHalf("into main 1", () => out.push("a"), undefined, 0);
        sim.bottomHalf("into main 2", () => out.push("b"), undefined, 0);
      }, undefined, 1);
      expect(sim.run().outcome).toEqual({ kind: "ok" });
      seen.add(out.join(""));
    }
    expect([...seen].sort()).toEqual(["ab", "ba"]);
  });
});

describe("coSleep: a coroutine's sleep on a QEMU timer", () => {
  function order(strategy?: Strategy, sleeper = coSleep): string[] {
    const sim = new Scheduler(strategy ? { strategy } : {});
    const out: string[] = [];
    for (const [k, name] of ["r1", "r2", "r3"].entries()) {
      sim.spawn(name, (function* (): Process {
        yield sleep(k + 1); // armed in this order, all due at 100
        yield sleeper(99 - k);
        out.push(name);
      })());
    }
    sim.spawn("client", (function* (): Process {
      yield sleep(100);
      out.push("client");
    })());
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    return out;
  }

  it("due together, they wake in arming order under any strategy (a plain sleep does not)", () => {
    expect(order()).toEqual(["client", "r1", "r2", "r3"]);
    const seen = new Set<string>();
    for (const s of strategies()) {
      const o = order(s);
      expect(o.filter((x) => x !== "client"), `${s.name}: ${o.join(", ")}`).toEqual(["r1", "r2", "r3"]);
      seen.add(o.join(","));
    }
    expect(seen.size).toBeGreaterThan(1); // the client's sleep is not a QEMU timer: it falls anywhere
    const plain = new Set(strategies().map((s) => order(s, sleep).filter((x) => x !== "client").join(",")));
    expect(plain.size).toBeGreaterThan(1);
  });
});

describe("a coroutine its loop's own work wakes runs in that loop's order", () => {
  function order(strategy: Strategy | undefined, coroutine: boolean): string[] {
    const sim = new Scheduler(strategy ? { strategy } : {});
    const out: string[] = [];
    const gate = new Signal<void>("task done");
    for (const [k, name] of ["j0", "j1"].entries()) {
      sim.spawn(name, (function* (): Process {
        yield sleep(k + 1); // j0 waits first
        yield wait(gate); // woken by the timer below, in the order they waited
        out.push(name);
      })(), { coroutine });
    }
    sim.spawn("client", (function* (): Process {
      yield sleep(5);
      out.push("client");
    })());
    sim.spawn("keeps the run going", (function* (): Process {
      yield sleep(10);
    })());
    sim.at(1, "arms", () => sim.timerAt(5, "task timer", () => sim.notify(gate)));
    expect(sim.run().outcome).toEqual({ kind: "ok" });
    return out;
  }

  it("coroutines: in the order they were woken, under any strategy; an actor outside QEMU (not a coroutine) stays free", () => {
    expect(order(undefined, true)).toEqual(["client", "j0", "j1"]);
    const seen = new Set<string>();
    const free = new Set<string>();
    for (const s of strategies()) {
      const o = order(s, true);
      expect(o.filter((x) => x !== "client"), `${s.name}: ${o.join(", ")}`).toEqual(["j0", "j1"]);
      seen.add(o.join(","));
    }
    for (const s of strategies()) free.add(order(s, false).filter((x) => x !== "client").join(","));
    expect(seen.size).toBeGreaterThan(1);
    expect([...free].sort()).toEqual(["j0,j1", "j1,j0"]);
  });
});

describe("a deadline computed from an earlier moment keeps that moment's place (Scheduler.tieToken)", () => {
  it("a timer armed later with an earlier tie fires before one of the same deadline armed between, under FIFO and any strategy", () => {
    for (const s of [undefined, ...strategies()]) {
      const sim = new Scheduler(s ? { strategy: s } : {});
      const out: string[] = [];
      sim.at(1, "loop", () => {
        const sliceOfB = sim.tieToken(); // b's speed-limit slice begins first
        sim.timerAt(9, "a's sleep, armed first", () => out.push("a"));
        sim.at(3, "b re-arms after a resume", () => sim.timerAt(9, "b's sleep", () => out.push("b"), undefined, sliceOfB));
      });
      expect(sim.run().outcome).toEqual({ kind: "ok" });
      expect(out, s?.name ?? "fifo").toEqual(["b", "a"]);
    }
  });
});
