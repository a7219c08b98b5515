import { describe, expect, it } from "vitest";
import {
  awaitOp,
  checkDelay,
  choose,
  Interrupted,
  interrupt,
  join,
  notify,
  now,
  type Operation,
  type OperationHost,
  type ProcHandle,
  type Process,
  Scheduler,
  self,
  Signal,
  sleep,
  spawn,
  wait,
  yieldNow,
} from "../../sim/scheduler/index.js";
import { runSim, ScriptedStrategy } from "./helpers.js";

/** A process that logs `${name}@${time}` after each sleep in `delays`. */
function* sleeper(log: string[], name: string, delays: number[]): Process {
  for (const d of delays) {
    yield sleep(d);
    log.push(`${name}@${(yield now()) as number}`);
  }
}

/** An Operation completed by a timer after `delayNs`, which the test can inspect. */
class TimedOp implements Operation {
  started: { proc: ProcHandle; token: number }[] = [];
  constructor(private readonly sim: Scheduler, private readonly delayNs: number, private readonly value: unknown, private readonly fail = false) {}
  start(kernel: OperationHost, proc: ProcHandle, token: number): void {
    this.started.push({ proc, token });
    this.sim.after(this.delayNs, "op-done", () => {
      if (this.fail) kernel.wakeThrow(proc, token, new Error(`io error ${String(this.value)}`));
      else kernel.wake(proc, token, this.value);
    });
  }
  describe(): string {
    return `read of ${String(this.value)}`;
  }
}

describe("ordering and tie-breaking", () => {
  it("runs same-instant wakeups in the order they were scheduled (FIFO)", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      sim.spawn("c", sleeper(log, "c", [10]));
      sim.spawn("a", sleeper(log, "a", [10]));
      sim.spawn("b", sleeper(log, "b", [5, 5]));
    });
    expect(r.outcome).toEqual({ kind: "ok" });
    // c and a were queued for t=10 at t=0, b only at t=5: b goes last.
    expect(log).toEqual(["b@5", "c@10", "a@10", "b@10"]);
    expect(r.endTimeNs).toBe(10);
  });

  it("orders timers and processes at the same instant by when they were scheduled", () => {
    const log: string[] = [];
    runSim((sim) => {
      sim.at(7, "t1", () => log.push("t1"));
      sim.spawn("p", sleeper(log, "p", [7]));
      sim.at(7, "t2", () => log.push("t2"));
      sim.after(3, "t0", () => log.push("t0"));
    });
    expect(log).toEqual(["t0", "t1", "t2", "p@7"]);
  });

  it("a cancelled timer does not disturb the order of the others", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      const timers = [1, 2, 3, 4, 5].map((i) => sim.at(10, `t${i}`, () => log.push(`t${i}`)));
      expect(sim.cancel(timers[0])).toBe(true);
      expect(sim.cancel(timers[2])).toBe(true);
      expect(sim.cancel(timers[2])).toBe(false);
      sim.spawn("p", (function* (): Process {
        yield sleep(10);
        log.push("p");
      })());
      const late = sim.at(20, "late", () => log.push("late"));
      sim.at(15, "canceller", () => {
        expect(late.pending).toBe(true);
        sim.cancel(late);
      });
    });
    expect(log).toEqual(["t2", "t4", "t5", "p"]);
    expect(r.endTimeNs).toBe(10); // the run ends with the last non-daemon process
  });

  it("a timer cancelled while ready at the current instant does not fire", () => {
    const log: string[] = [];
    runSim((sim) => {
      let victim: ReturnType<Scheduler["at"]> | undefined;
      sim.at(5, "killer", () => sim.cancel(victim!));
      victim = sim.at(5, "victim", () => log.push("victim"));
      sim.at(5, "other", () => log.push("other"));
      sim.spawn("p", sleeper(log, "p", [6]));
    });
    expect(log).toEqual(["other", "p@6"]);
  });

  it("a timer at the current instant runs after what is already ready", () => {
    const log: string[] = [];
    runSim((sim) => {
      sim.spawn("a", (function* (): Process {
        sim.at(0, "now-timer", () => log.push("timer"));
        log.push("a");
      })());
      sim.spawn("b", (function* (): Process {
        log.push("b");
      })());
    });
    expect(log).toEqual(["a", "b", "timer"]);
  });

  it("rejects timers in the past or at fractional times, naming the timer", () => {
    const sim = new Scheduler();
    expect(() => sim.at(-1, "early", () => {})).toThrow(/timer "early".*-1/);
    expect(() => sim.at(1.5, "half", () => {})).toThrow(/timer "half"/);
    expect(() => sim.after(-3, "neg", () => {})).toThrow(/timer "neg".*-3/);
    expect(() => sim.after(Number.NaN, "nan", () => {})).toThrow(/timer "nan".*NaN/);
  });
});

describe("sleep", () => {
  it("adds integer nanoseconds to the clock", () => {
    const times: number[] = [];
    const { r } = runSim((sim) => {
      sim.spawn("p", (function* (): Process {
        for (const d of [3, 4, 1_000_000_007, 0, 1]) {
          yield sleep(d);
          times.push((yield now()) as number);
        }
      })());
    });
    expect(times).toEqual([3, 7, 1_000_000_014, 1_000_000_014, 1_000_000_015]);
    expect(r.endTimeNs).toBe(1_000_000_015);
  });

  it("sleep(0) lets the other ready processes run first, at the same instant", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      sim.spawn("a", (function* (): Process {
        log.push("a1");
        yield sleep(0);
        log.push("a2");
      })());
      sim.spawn("b", (function* (): Process {
        log.push("b1");
      })());
    });
    expect(log).toEqual(["a1", "b1", "a2"]);
    expect(r.endTimeNs).toBe(0);
  });

  for (const [what, bad] of [
    ["negative", -1],
    ["fractional", 2.5],
    ["NaN", Number.NaN],
    ["Infinity", Number.POSITIVE_INFINITY],
    ["a string", "5"],
    ["undefined", undefined],
    ["beyond the exact range", 2 ** 53],
  ] as const) {
    it(`a ${what} delay fails the run, naming the process`, () => {
      const { r } = runSim((sim) => {
        sim.spawn("sleepy", (function* (): Process {
          yield sleep(1);
          yield sleep(bad as number);
        })());
      });
      expect(r.outcome.kind).toBe("failure");
      if (r.outcome.kind !== "failure") return;
      expect(r.outcome.process).toBe("sleepy");
      expect(r.outcome.timeNs).toBe(1);
      expect(r.outcome.error).toContain(`process "sleepy"`);
      expect(r.outcome.error).toContain(String(bad));
      expect(r.outcome.error).toMatch(/^RangeError: /);
    });
  }

  it("a sleep whose end time is not an exact integer fails, naming the process", () => {
    const { r } = runSim((sim) => {
      sim.spawn("far", (function* (): Process {
        yield sleep(10);
        yield sleep(Number.MAX_SAFE_INTEGER - 5);
      })());
    });
    expect(r.outcome).toMatchObject({ kind: "failure", process: "far", timeNs: 10 });
  });

  it("a process may catch a bad-delay error and carry on", () => {
    let caught = "";
    const { r } = runSim((sim) => {
      sim.spawn("careful", (function* (): Process {
        try {
          yield sleep(-5);
        } catch (e) {
          caught = (e as Error).message;
        }
        yield sleep(2);
      })());
    });
    expect(caught).toMatch(/process "careful".*-5/);
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.endTimeNs).toBe(2);
  });

  it("checkDelay names who asked", () => {
    expect(() => checkDelay(-1, "disk d0")).toThrow(/^disk d0: delay -1 ns/);
    expect(() => checkDelay(3, "disk d0")).not.toThrow();
  });
});

describe("signals", () => {
  it("notify wakes every current waiter with the value and returns how many woke", () => {
    const sig = new Signal<string>("ready");
    const got: string[] = [];
    let woke = -1;
    const { r } = runSim((sim) => {
      for (const n of ["w1", "w2", "w3"]) {
        sim.spawn(n, (function* (): Process {
          got.push(`${n}:${(yield wait(sig)) as string}@${(yield now()) as number}`);
        })());
      }
      sim.spawn("n", (function* (): Process {
        yield sleep(4);
        woke = (yield notify(sig, "go")) as number;
      })());
    });
    expect(woke).toBe(3);
    expect(got).toEqual(["w1:go@4", "w2:go@4", "w3:go@4"]);
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("a notify with no waiters is lost; a later wait waits for the next notify", () => {
    const sig = new Signal<number>("s");
    const counts: number[] = [];
    let got: unknown;
    const { r } = runSim((sim) => {
      sim.spawn("n", (function* (): Process {
        counts.push((yield notify(sig, 1)) as number);
        yield sleep(10);
        counts.push((yield notify(sig, 2)) as number);
      })());
      sim.spawn("w", (function* (): Process {
        yield sleep(1);
        got = yield wait(sig);
      })());
    });
    expect(counts).toEqual([0, 1]);
    expect(got).toBe(2);
    expect(r.endTimeNs).toBe(10);
  });

  it("a waiter woken by one notify is not woken again by the next one", () => {
    const sig = new Signal<number>("s");
    const counts: number[] = [];
    runSim((sim) => {
      sim.spawn("w", (function* (): Process {
        yield wait(sig);
        yield sleep(100);
      })());
      sim.spawn("n", (function* (): Process {
        yield sleep(1);
        counts.push((yield notify(sig, 1)) as number);
        counts.push((yield notify(sig, 2)) as number);
      })());
    });
    expect(counts).toEqual([1, 0]);
  });
});

describe("spawn and join", () => {
  it("spawn starts the child at this instant and join returns its result", () => {
    const log: string[] = [];
    let child: ProcHandle | undefined;
    const { r } = runSim((sim) => {
      sim.spawn("parent", (function* (): Process {
        child = (yield spawn("child", (function* (): Process {
          log.push(`child@${(yield now()) as number}`);
          yield sleep(5);
          return 42;
        })())) as ProcHandle;
        expect(child.state).toBe("ready");
        log.push("parent spawned");
        const v = (yield join(child)) as number;
        log.push(`joined ${v}@${(yield now()) as number}`);
      })());
    });
    expect(log).toEqual(["parent spawned", "child@0", "joined 42@5"]);
    expect(child!.state).toBe("done");
    expect(child!.result).toBe(42);
    expect(child!.name).toBe("child");
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("join of a process that already ended returns at once, without giving up the processor", () => {
    const log: string[] = [];
    runSim((sim) => {
      sim.spawn("parent", (function* (): Process {
        const child = (yield spawn("child", (function* (): Process { return "early"; })())) as ProcHandle;
        yield sleep(1);
        expect(child.state).toBe("done");
        yield spawn("bystander", (function* (): Process { log.push("bystander"); })());
        log.push(`joined ${(yield join(child)) as string}`);
        yield sleep(1);
      })());
    });
    expect(log).toEqual(["joined early", "bystander"]);
  });

  it("several joiners all wake when the process ends", () => {
    const got: string[] = [];
    runSim((sim) => {
      const target = sim.spawn("target", (function* (): Process { yield sleep(3); return "t"; })());
      for (const n of ["j1", "j2"]) sim.spawn(n, (function* (): Process { got.push(`${n}:${(yield join(target)) as string}`); })());
    });
    expect(got).toEqual(["j1:t", "j2:t"]);
  });

  it("spawning something that is not a generator object throws into the spawner, naming it", () => {
    let caught = "";
    const { r } = runSim((sim) => {
      sim.spawn("parent", (function* (): Process {
        try {
          yield spawn("broken", (function* () {}) as unknown as Process);
        } catch (e) {
          caught = (e as Error).message;
        }
        yield spawn("broken2", 42 as unknown as Process);
      })());
    });
    expect(caught).toMatch(/spawn\("broken"\).*generator/);
    expect(r.outcome).toMatchObject({ kind: "failure", process: "parent" });
    if (r.outcome.kind === "failure") expect(r.outcome.error).toContain(`spawn("broken2")`);
  });

  it("processes() lists every spawned process in spawn order, and self() is the caller", () => {
    let me: unknown;
    const { sim } = runSim((sim) => {
      const a = sim.spawn("a", (function* (): Process {
        me = yield self();
        yield spawn("a.child", (function* (): Process {})());
      })());
      sim.spawn("b", (function* (): Process {})());
      expect(sim.processes()[0]).toBe(a);
    });
    expect(sim.processes().map((p) => p.name)).toEqual(["a", "b", "a.child"]);
    expect(me).toBe(sim.processes()[0]);
    expect(sim.processes().map((p) => p.id)).toEqual([1, 2, 3]);
  });
});

describe("interrupts", () => {
  /** Spawns `victim` that blocks via `block`, catches Interrupted, then cleans up for 5 ns. */
  function interruptScenario(
    block: (sim: Scheduler) => Process,
    opts: { at?: number } = {},
  ) {
    const log: string[] = [];
    let alive: unknown;
    let victim: ProcHandle | undefined;
    const res = runSim((sim) => {
      victim = sim.spawn("victim", (function* (): Process {
        try {
          yield* block(sim);
          log.push("not interrupted");
        } catch (e) {
          expect(e).toBeInstanceOf(Interrupted);
          log.push(`caught "${(e as Interrupted).message}" reason=${String((e as Interrupted).reason)} @${(yield now()) as number}`);
          yield sleep(5); // cleanup may block
          log.push(`cleaned @${(yield now()) as number}`);
          return "cleaned";
        }
      })());
      sim.spawn("killer", (function* (): Process {
        yield sleep(opts.at ?? 10);
        alive = yield interrupt(victim!, "cancel");
        log.push(`joined: ${String(yield join(victim!))}`);
      })());
    }, { trace: true });
    return { ...res, log, alive, victim: victim! };
  }

  it("interrupts a sleeping process; its timer no longer fires", () => {
    const { log, alive, r, victim } = interruptScenario(function* () { yield sleep(100); });
    expect(alive).toBe(true);
    expect(log).toEqual([`caught "interrupted: cancel" reason=cancel @10`, "cleaned @15", "joined: cleaned"]);
    expect(victim.state).toBe("done");
    expect(r.endTimeNs).toBe(15);
    expect(r.trace!.filter((t) => t.kind === "interrupt")).toEqual([
      { t: 10, src: "killer", kind: "interrupt", data: { target: "victim", reason: "cancel" } },
    ]);
  });

  it("interrupts a process waiting on a signal; a later notify does not count it", () => {
    const sig = new Signal("never");
    let count = -1;
    const { log } = interruptScenario(function* (sim) {
      sim.at(12, "late-notify", () => {
        sim.spawn("notifier", (function* (): Process { count = (yield notify(sig, 1)) as number; })());
      });
      yield wait(sig);
    });
    expect(log).toEqual([`caught "interrupted: cancel" reason=cancel @10`, "cleaned @15", "joined: cleaned"]);
    expect(count).toBe(0);
  });

  it("interrupts a process joining another; the later end of the other does not wake it", () => {
    const { log } = interruptScenario(function* (sim) {
      const slow = sim.spawn("slow", (function* (): Process { yield sleep(12); })());
      yield join(slow);
    });
    expect(log).toEqual([`caught "interrupted: cancel" reason=cancel @10`, "cleaned @15", "joined: cleaned"]);
  });

  it("interrupts a process blocked in an Operation; the operation's late wake is ignored", () => {
    let op: TimedOp | undefined;
    const { log, r } = interruptScenario(function* (sim) {
      op = new TimedOp(sim, 12, "block 7");
      yield awaitOp(op);
    });
    expect(op!.started).toHaveLength(1);
    // The op completes at 12, during the cleanup sleep (10..15): it must not cut the sleep short.
    expect(log).toEqual([`caught "interrupted: cancel" reason=cancel @10`, "cleaned @15", "joined: cleaned"]);
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("interrupts a process that is ready but has not run yet: it sees the interrupt, not the wake value", () => {
    const sig = new Signal<string>("s");
    const log: string[] = [];
    const { r } = runSim((sim) => {
      const victim = sim.spawn("victim", (function* (): Process {
        try {
          log.push(`got ${(yield wait(sig)) as string}`);
        } catch (e) {
          log.push(`caught ${(e as Error).name}`);
        }
      })());
      sim.spawn("main", (function* (): Process {
        yield sleep(1);
        log.push(`woke ${(yield notify(sig, "value")) as number}`);
        expect(victim.state).toBe("ready");
        log.push(`alive ${String(yield interrupt(victim))}`);
      })());
    });
    expect(log).toEqual(["woke 1", "alive true", "caught Interrupted"]);
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("interrupts a process whose sleep ends at this very instant but has not been resumed yet", () => {
    const log: string[] = [];
    runSim((sim) => {
      const victim = sim.spawn("victim", (function* (): Process {
        try {
          yield sleep(5);
          log.push("slept");
        } catch {
          log.push("caught");
        }
      })());
      sim.spawn("main", (function* (): Process {
        yield sleep(5); // queued after the victim's timer: the victim is due first, but the script picks main
        log.push(`alive ${String(yield interrupt(victim))}`);
      })());
    }, { strategy: new ScriptedStrategy([0, 1]) });
    expect(log).toEqual(["alive true", "caught"]);
  });

  it("interrupts a process sleeping 0 ns before it resumes", () => {
    const log: string[] = [];
    runSim((sim) => {
      let victim: ProcHandle;
      sim.spawn("main", (function* (): Process {
        victim = (yield spawn("victim", (function* (): Process {
          try {
            yield sleep(0);
            log.push("slept");
          } catch {
            log.push("caught");
          }
        })())) as ProcHandle;
        yield yieldNow(); // the victim runs and sleeps 0
        log.push(`alive ${String(yield interrupt(victim))}`);
      })());
    });
    expect(log).toEqual(["alive true", "caught"]);
  });

  it("interrupting a process that never started ends it as interrupted; joiners get undefined", () => {
    let ran = false;
    let joined: unknown = "unset";
    let child: ProcHandle | undefined;
    const { r } = runSim((sim) => {
      sim.spawn("main", (function* (): Process {
        child = (yield spawn("child", (function* (): Process { ran = true; })())) as ProcHandle;
        yield interrupt(child);
        joined = yield join(child);
      })());
    }, { trace: true });
    expect(ran).toBe(false);
    expect(child!.state).toBe("interrupted");
    expect(joined).toBeUndefined();
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.trace!.some((t) => t.kind === "interrupted" && t.data?.name === "child")).toBe(true);
  });

  it("an uncaught interrupt ends the process as interrupted, not as a failure", () => {
    let victim: ProcHandle | undefined;
    const { r } = runSim((sim) => {
      victim = sim.spawn("victim", (function* (): Process { yield sleep(100); })());
      sim.spawn("main", (function* (): Process { yield sleep(1); yield interrupt(victim!, "stop"); })());
    });
    expect(victim!.state).toBe("interrupted");
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.endTimeNs).toBe(1);
  });

  it("interrupting an ended process returns false; interrupting yourself is an error", () => {
    const results: unknown[] = [];
    let err = "";
    runSim((sim) => {
      const done = sim.spawn("done", (function* (): Process {})());
      sim.spawn("main", (function* (): Process {
        yield sleep(1);
        results.push(yield interrupt(done));
        try {
          yield interrupt((yield self()) as ProcHandle);
        } catch (e) {
          err = (e as Error).message;
        }
      })());
    });
    expect(results).toEqual([false]);
    expect(err).toMatch(/process "main" tried to interrupt itself/);
  });

  it("a wake with a stale token after the process blocked again is ignored", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      let stale: { proc: ProcHandle; token: number } | undefined;
      const op: Operation = {
        start(_k, proc, token) { stale = { proc, token }; },
        describe: () => "never-completing op",
      };
      const victim = sim.spawn("victim", (function* (): Process {
        try { yield awaitOp(op); } catch { log.push("caught"); }
        log.push(`woke with ${String(yield awaitOp({ start(k, p, t) { sim.after(50, "real", () => k.wake(p, t, "real")); }, describe: () => "real op" }))} @${(yield now()) as number}`);
      })());
      sim.spawn("main", (function* (): Process {
        yield sleep(1);
        yield interrupt(victim);
        yield sleep(1);
        sim.wake(stale!.proc, stale!.token, "stale");
        sim.wakeThrow(stale!.proc, stale!.token, new Error("stale"));
      })());
    });
    expect(log).toEqual(["caught", "woke with real @51"]);
    expect(r.outcome).toEqual({ kind: "ok" });
  });
});

describe("operations", () => {
  it("awaitOp resumes with the value or throws the error the operation completes with", () => {
    const log: string[] = [];
    runSim((sim) => {
      sim.spawn("p", (function* (): Process {
        log.push(String(yield awaitOp(new TimedOp(sim, 3, "ok-data"))));
        try {
          yield awaitOp(new TimedOp(sim, 4, "bad", true));
        } catch (e) {
          log.push(`${(e as Error).message} @${(yield now()) as number}`);
        }
      })());
    });
    expect(log).toEqual(["ok-data", "io error bad @7"]);
  });

  it("an operation may complete synchronously from start()", () => {
    let got: unknown;
    runSim((sim) => {
      sim.spawn("p", (function* (): Process {
        got = yield awaitOp({ start: (k, p, t) => k.wake(p, t, "instant"), describe: () => "instant" });
      })());
    });
    expect(got).toBe("instant");
  });

  it("an operation whose start() wakes the process and then throws delivers the error once", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      sim.spawn("p", (function* (): Process {
        try {
          log.push(String(yield awaitOp({ start(k, p, t) { k.wake(p, t, "value"); throw new Error("late failure"); }, describe: () => "op" })));
        } catch (e) {
          log.push((e as Error).message);
        }
        yield sleep(5);
        log.push(`after @${(yield now()) as number}`);
      })());
      sim.spawn("q", (function* (): Process { yield sleep(1); log.push("q"); })());
    });
    expect(log).toEqual(["late failure", "q", "after @5"]);
    expect(r).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 5 });
  });

  it("an operation whose start() throws is reported as a failure of the process", () => {
    const { r } = runSim((sim) => {
      sim.spawn("reader", (function* (): Process {
        yield sleep(2);
        yield awaitOp({ start() { throw new Error("no such device"); }, describe: () => "bad op" });
      })());
    });
    expect(r.outcome).toMatchObject({ kind: "failure", process: "reader", timeNs: 2, error: "no such device" });
  });
});

describe("failures", () => {
  it("a throwing process ends the run with its time, name and error", () => {
    const log: string[] = [];
    const { r } = runSim((sim) => {
      sim.spawn("bad", (function* (): Process {
        yield sleep(7);
        throw new TypeError("disk on fire");
      })());
      sim.spawn("bystander", sleeper(log, "bystander", [3, 5]));
    });
    expect(r.outcome).toMatchObject({ kind: "failure", timeNs: 7, process: "bad", error: "TypeError: disk on fire" });
    if (r.outcome.kind === "failure") expect(r.outcome.stack).toContain("disk on fire");
    expect(log).toEqual(["bystander@3"]); // nothing runs after the failure
    expect(r.endTimeNs).toBe(7);
  });

  it("a thrown non-Error is reported as its string", () => {
    const { r } = runSim((sim) => {
      // eslint-disable-next-line no-throw-literal
      sim.spawn("p", (function* (): Process { throw "plain string"; })());
    });
    expect(r.outcome).toEqual({ kind: "failure", timeNs: 0, process: "p", error: "plain string" });
  });

  it("a throwing timer callback ends the run, naming the timer", () => {
    const { r } = runSim((sim) => {
      sim.after(4, "completion", () => { throw new Error("callback broke"); });
      sim.spawn("p", (function* (): Process { yield sleep(10); })());
    });
    expect(r.outcome).toMatchObject({ kind: "failure", timeNs: 4, process: "completion", error: "callback broke" });
    expect(r.endTimeNs).toBe(4);
  });

  it("yielding something that is not an effect throws into the process with a hint", () => {
    let caught = "";
    const { r } = runSim((sim) => {
      sim.spawn("confused", (function* (): Process {
        try {
          yield sleep as never;
        } catch (e) {
          caught = (e as Error).message;
        }
        yield 42 as never;
      })());
    });
    expect(caught).toMatch(/process "confused" yielded a function \(sleep\), which is not an effect/);
    expect(r.outcome).toMatchObject({ kind: "failure", process: "confused" });
    if (r.outcome.kind === "failure") expect(r.outcome.error).toMatch(/^TypeError: process "confused" yielded 42, which is not an effect/);
  });

  it("a malformed effect object fails the process instead of crashing the caller", () => {
    for (const bad of [{ k: 3 }, { k: 4, proc: undefined }, { k: 14 }]) {
      const { r } = runSim((sim) => {
        sim.spawn("odd", (function* (): Process { yield bad as never; })());
      });
      expect(r.outcome).toMatchObject({ kind: "failure", process: "odd", timeNs: 0 });
    }
  });

  it("run() may be called only once", () => {
    const sim = new Scheduler();
    sim.run();
    expect(() => sim.run()).toThrow(/only once/);
  });
});

describe("deadlock, daemons and budgets", () => {
  it("reports each waiting non-daemon process and what it waits on", () => {
    const sig = new Signal("never");
    const { r } = runSim((sim) => {
      const w = sim.spawn("waiter", (function* (): Process { yield sleep(3); yield wait(sig); })());
      sim.spawn("joiner", (function* (): Process { yield join(w); })());
      sim.spawn("reader", (function* (): Process { yield awaitOp({ start() {}, describe: () => "read of block 9 on d0" }); })());
      sim.spawn("guest", (function* (): Process { yield wait(sig); })(), { daemon: true });
      sim.spawn("finished", (function* (): Process { yield sleep(1); })());
    });
    expect(r.outcome).toEqual({
      kind: "deadlock",
      timeNs: 3,
      waiting: [
        { process: "waiter", on: `signal "never"` },
        { process: "joiner", on: `process "waiter" to end` },
        { process: "reader", on: "read of block 9 on d0" },
      ],
    });
  });

  it("daemons do not keep the run alive once every other process has ended", () => {
    let ticks = 0;
    const { r } = runSim((sim) => {
      sim.spawn("monitor", (function* (): Process { for (;;) { yield sleep(10); ticks++; } })(), { daemon: true });
      sim.spawn("main", (function* (): Process { yield sleep(35); })());
    });
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.endTimeNs).toBe(35);
    expect(ticks).toBe(3);
  });

  it("a daemon may wake a waiting process (so a pending daemon timer is not a deadlock)", () => {
    const sig = new Signal<string>("kick");
    let got: unknown;
    const { r } = runSim((sim) => {
      sim.spawn("main", (function* (): Process { got = yield wait(sig); })());
      sim.spawn("guest", (function* (): Process { yield sleep(20); yield notify(sig, "from guest"); for (;;) yield sleep(5); })(), { daemon: true });
    });
    expect(got).toBe("from guest");
    expect(r).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 20 });
  });

  it("stops at the step budget after exactly that many steps", () => {
    let spins = 0;
    const { r } = runSim((sim) => {
      sim.spawn("spinner", (function* (): Process { for (;;) { spins++; yield yieldNow(); } })());
    }, { maxSteps: 1000 });
    expect(r.outcome).toEqual({ kind: "step-budget", timeNs: 0, maxSteps: 1000 });
    expect(r.steps).toBe(1000);
    expect(spins).toBe(1000);
  });

  it("inline effects count as steps, so a process that never blocks still hits the budget", () => {
    const { r } = runSim((sim) => {
      sim.spawn("busy", (function* (): Process { for (;;) yield now(); })());
    }, { maxSteps: 50 });
    expect(r.outcome).toEqual({ kind: "step-budget", timeNs: 0, maxSteps: 50 });
    expect(r.steps).toBe(50);
  });

  // The loops are bounded (10,000 turns) so that a kernel which does not count
  // these steps fails the test instead of hanging it.
  it("the budget also stops a process that loops on a join of an ended process or on a caught error", () => {
    const joinLoop = runSim((sim) => {
      const done = sim.spawn("done", (function* (): Process {})());
      sim.spawn("joiner", (function* (): Process { yield sleep(1); for (let i = 0; i < 10_000; i++) yield join(done); })());
    }, { maxSteps: 100 });
    expect(joinLoop.r.outcome).toEqual({ kind: "step-budget", timeNs: 1, maxSteps: 100 });
    const errorLoop = runSim((sim) => {
      sim.spawn("stubborn", (function* (): Process {
        for (let i = 0; i < 10_000; i++) {
          try { yield sleep(-1); } catch { /* try again */ }
        }
      })());
    }, { maxSteps: 100 });
    expect(errorLoop.r.outcome).toEqual({ kind: "step-budget", timeNs: 0, maxSteps: 100 });
  });

  it("a run stopped by the step budget logs no choice for a step it did not take", () => {
    const { r } = runSim((sim) => {
      for (const n of ["a", "b"]) sim.spawn(n, (function* (): Process { for (;;) yield yieldNow(); })());
    }, { maxSteps: 5 });
    expect(r.outcome.kind).toBe("step-budget");
    expect(r.steps).toBe(5);
    expect(r.choices).toEqual([[2, 0], [2, 0], [2, 0], [2, 0], [2, 0]]);
  });

  it("ends a Zeno run (virtual time standing still) after the instant bound, naming who spins", () => {
    const { r } = runSim((sim) => {
      sim.spawn("zeno", (function* (): Process { for (;;) yield sleep(0); })());
      sim.spawn("sleeper", (function* (): Process { yield sleep(1_000); })());
    }, { maxInstantSteps: 500 });
    expect(r.outcome).toMatchObject({ kind: "zeno", timeNs: 0, spinning: ["zeno"] });
    expect(r.steps).toBeLessThan(5_000);
  });

  it("steps at many different instants never count as a Zeno run", () => {
    const { r } = runSim((sim) => {
      sim.spawn("ticker", (function* (): Process { for (let i = 0; i < 2_000; i++) yield sleep(1); })());
    }, { maxInstantSteps: 10 });
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("stops before the first event past the time budget and says when it was due", () => {
    let wakes = 0;
    const { r } = runSim((sim) => {
      sim.spawn("ticker", (function* (): Process { for (;;) { yield sleep(300); wakes++; } })());
    }, { maxTimeNs: 1000 });
    expect(r.outcome).toEqual({ kind: "time-budget", timeNs: 900, maxTimeNs: 1000, nextEventNs: 1200 });
    expect(wakes).toBe(3);
    expect(r.endTimeNs).toBe(900);
  });

  it("an event exactly at the time budget still runs", () => {
    const { r } = runSim((sim) => {
      sim.spawn("p", (function* (): Process { yield sleep(1000); })());
    }, { maxTimeNs: 1000 });
    expect(r).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 1000 });
  });

  it("a run with only timers runs them all", () => {
    const fired: number[] = [];
    const { r } = runSim((sim) => {
      for (const t of [5, 1, 3]) sim.at(t, `t${t}`, () => fired.push(sim.now));
    });
    expect(fired).toEqual([1, 3, 5]);
    expect(r).toMatchObject({ outcome: { kind: "ok" }, endTimeNs: 5, steps: 3 });
  });
});

describe("choice points", () => {
  it("logs [n, pick] when n > 1 entries are ready at the same instant, and follows the pick", () => {
    const log: string[] = [];
    const strategy = new ScriptedStrategy([2, 1]);
    const { r } = runSim((sim) => {
      for (const n of ["a", "b", "c"]) sim.spawn(n, (function* (): Process { log.push(n); yield sleep(n === "a" ? 1 : 2); })());
    }, { strategy, trace: true });
    expect(log).toEqual(["c", "b", "a"]);
    // After c and b ran only "a" was ready: no choice. At t=2, c and b (queued in that order) are both due.
    expect(r.choices).toEqual([[3, 2], [2, 1], [2, 0]]);
    expect(strategy.asked).toEqual([
      { kind: "next", n: 3, index: 0, owners: [1, 2, 3] },
      { kind: "next", n: 2, index: 1, owners: [1, 2] },
      { kind: "next", n: 2, index: 2, owners: [3, 2] },
    ]);
    expect(r.trace!.filter((t) => t.kind === "choice").map((t) => t.data)).toEqual([{ n: 3, pick: 2 }, { n: 2, pick: 1 }, { n: 2, pick: 0 }]);
  });

  it("passes the owner of each ready entry to the strategy (spawn option and timers)", () => {
    const strategy = new ScriptedStrategy();
    runSim((sim) => {
      sim.spawn("a", (function* (): Process { yield sleep(1); })(), { owner: 77 });
      sim.spawn("b", (function* (): Process {
        sim.after(1, "b-timer", () => {});
        yield sleep(1);
      })());
      sim.at(1, "free-timer", () => {}, 5);
    }, { strategy });
    expect(strategy.asked.map((a) => a.owners)).toEqual([
      [77, 2],
      [5, 77, 2, 2],
      [77, 2, 2],
      [2, 2],
    ]);
  });

  it("choose(label, n) asks the strategy, logs [n, pick, label] and records it in the trace", () => {
    const picks: number[] = [];
    const strategy = new ScriptedStrategy([2, 0]);
    const { r } = runSim((sim) => {
      sim.spawn("env", (function* (): Process {
        picks.push((yield choose("which-io-fails", 3)) as number);
        picks.push((yield choose("only-one", 1)) as number);
        picks.push((yield choose("coin", 2)) as number);
      })());
    }, { strategy, trace: true });
    expect(picks).toEqual([2, 0, 0]);
    expect(r.choices).toEqual([[3, 2, "which-io-fails"], [2, 0, "coin"]]);
    expect(strategy.asked.map((a) => a.label)).toEqual(["which-io-fails", "coin"]);
    expect(r.trace!.filter((t) => t.kind === "choose")).toEqual([
      { t: 0, src: "env", kind: "choose", data: { label: "which-io-fails", n: 3, pick: 2 } },
      { t: 0, src: "env", kind: "choose", data: { label: "coin", n: 2, pick: 0 } },
    ]);
  });

  it("choose with a bad number of options is an error naming the process", () => {
    for (const n of [0, -1, 1.5, Number.NaN]) {
      const { r } = runSim((sim) => {
        sim.spawn("env", (function* (): Process { yield choose("x", n); })());
      });
      expect(r.outcome).toMatchObject({ kind: "failure", process: "env" });
      if (r.outcome.kind === "failure") expect(r.outcome.error).toContain(`process "env": choose("x", ${n})`);
    }
  });

  it("a strategy that picks out of range is a loud error", () => {
    const sim = new Scheduler({ strategy: new ScriptedStrategy([5]) });
    sim.spawn("a", (function* (): Process {})());
    sim.spawn("b", (function* (): Process {})());
    expect(() => sim.run()).toThrow(/strategy scripted picked 5 of 2 ready entries/);
  });

  it("a strategy that picks an out-of-range option for choose is a loud error", () => {
    const sim = new Scheduler({ strategy: new ScriptedStrategy([7]) });
    sim.spawn("env", (function* (): Process { yield choose("c", 2); })());
    expect(() => sim.run()).toThrow(/strategy scripted picked 7 of 2 options for choose\("c"\)/);
  });
});

describe("trace and hash", () => {
  it("keeps records only when tracing, but hashes them either way", () => {
    const body = (sim: Scheduler) => sim.spawn("p", (function* (): Process {
      yield sleep(2);
      sim.record("p", "note", { x: 1 });
    })());
    const off = runSim(body);
    const on = runSim(body, { trace: true });
    expect(off.r.trace).toBeUndefined();
    expect(off.sim.tracing).toBe(false);
    expect(on.sim.tracing).toBe(true);
    expect(on.r.hash).toBe(off.r.hash);
    expect(on.r.hash).toMatch(/^[0-9a-f]{16}$/);
    expect(on.r.trace).toEqual([
      { t: 0, src: "sched", kind: "spawn", data: { id: 1, name: "p" } },
      { t: 2, src: "p", kind: "note", data: { x: 1 } },
      { t: 2, src: "sched", kind: "end", data: { id: 1, name: "p" } },
    ]);
  });

  it("the hash changes with a record's data, with timing and with the order of steps", () => {
    const hashOf = (note: unknown, delay: number, order: string[]) => runSim((sim) => {
      for (const n of order) {
        sim.spawn(n, (function* (): Process {
          yield sleep(delay);
          sim.record(n, "note", { note });
        })());
      }
    }).r.hash;
    const base = hashOf(1, 5, ["a", "b"]);
    expect(hashOf(1, 5, ["a", "b"])).toBe(base);
    expect(hashOf(2, 5, ["a", "b"])).not.toBe(base);
    expect(hashOf(1, 6, ["a", "b"])).not.toBe(base);
    expect(hashOf(1, 5, ["b", "a"])).not.toBe(base);
  });

  it("the hash covers which process ran each step, even when the records are the same", () => {
    // a and b each yield once, sleep 1 ns and end. FIFO runs a,b,a,b at t=0 and ends a then b at
    // t=1; the script runs b,a,b,a at t=0 and also ends a then b. Same records at the same places.
    const go = (strategy?: ScriptedStrategy) => runSim((sim) => {
      for (const n of ["a", "b"]) sim.spawn(n, (function* (): Process { yield yieldNow(); yield sleep(1); })());
    }, { trace: true, ...(strategy ? { strategy } : {}) }).r;
    const fifo = go();
    const swapped = go(new ScriptedStrategy([1, 0, 0, 1]));
    const records = (r: typeof fifo) => r.trace!.filter((t) => t.kind !== "choice");
    expect(records(swapped)).toEqual(records(fifo));
    expect(swapped.steps).toBe(fifo.steps);
    expect(swapped.hash).not.toBe(fifo.hash);
  });

  it("running, when a timer fires, is undefined; inside a process it is that process", () => {
    const seen: (string | undefined)[] = [];
    runSim((sim) => {
      sim.after(1, "t", () => seen.push(sim.running?.name));
      sim.spawn("p", (function* (): Process { seen.push(sim.running?.name); yield sleep(2); })());
    });
    expect(seen).toEqual(["p", undefined]);
  });
});
