import { describe, expect, it } from "vitest";
import {
  choose,
  Divergence,
  FifoStrategy,
  PctStrategy,
  type Process,
  RandomStrategy,
  ReplayStrategy,
  Scheduler,
  sleep,
  type Strategy,
  yieldNow,
} from "../../sim/scheduler/index.js";
import { runSim, ScriptedStrategy } from "./helpers.js";

const owners = (...ids: number[]) => (i: number) => ids[i];

/** n processes that each yield `turns` times and log their name each turn. */
function yielders(names: string[], turns: number, log: string[], opts: { owner?: (name: string) => number } = {}) {
  return (sim: Scheduler) => {
    for (const n of names) {
      sim.spawn(n, (function* (): Process {
        for (let i = 0; i < turns; i++) {
          log.push(n);
          yield yieldNow();
        }
      })(), opts.owner ? { owner: opts.owner(n) } : {});
    }
  };
}

describe("FifoStrategy", () => {
  it("always picks the oldest ready entry and option 0", () => {
    const s: Strategy = new FifoStrategy();
    expect(s.name).toBe("fifo");
    expect(s.pickNext(5, owners(1, 2, 3, 4, 5), 0)).toBe(0);
    expect(s.choose("x", 7, 1)).toBe(0);
  });

  it("round-robins processes that yield", () => {
    const log: string[] = [];
    const { r } = runSim(yielders(["a", "b", "c"], 2, log));
    expect(log).toEqual(["a", "b", "c", "a", "b", "c"]);
    expect(r.choices.every((c) => c[1] === 0)).toBe(true);
    expect(r.choices.length).toBeGreaterThan(0);
  });
});

describe("RandomStrategy", () => {
  const draws = (s: Strategy, count: number, n = 10) => Array.from({ length: count }, (_, i) => s.pickNext(n, owners(), i));

  it("is a function of its seed", () => {
    expect(draws(new RandomStrategy(7), 50)).toEqual(draws(new RandomStrategy(7), 50));
    expect(draws(new RandomStrategy("seed-a"), 50)).not.toEqual(draws(new RandomStrategy("seed-b"), 50));
  });

  it("picks every option in range, roughly uniformly", () => {
    const s: Strategy = new RandomStrategy(1);
    const counts = [0, 0, 0];
    for (let i = 0; i < 3000; i++) counts[s.pickNext(3, owners(), i)]++;
    for (const c of counts) expect(c).toBeGreaterThan(850);
    const env: Strategy = new RandomStrategy(1);
    const seen = new Set<number>();
    for (let i = 0; i < 200; i++) {
      const v = env.choose("c", 4, i);
      expect(v).toBeGreaterThanOrEqual(0);
      expect(v).toBeLessThan(4);
      seen.add(v);
    }
    expect([...seen].sort()).toEqual([0, 1, 2, 3]);
  });

  it("draws scheduling and environment choices from separate streams", () => {
    const plain = draws(new RandomStrategy(3), 20);
    const mixed: Strategy = new RandomStrategy(3);
    const got: number[] = [];
    for (let i = 0; i < 20; i++) {
      mixed.choose("noise", 5, i); // extra environment choices must not shift the schedule
      got.push(mixed.pickNext(10, owners(), i));
    }
    expect(got).toEqual(plain);
  });

  it("produces different schedules for different seeds in a real run", () => {
    const order = (seed: number) => {
      const log: string[] = [];
      runSim(yielders(["a", "b", "c"], 6, log), { strategy: new RandomStrategy(seed) });
      return log.join("");
    };
    expect(order(1)).toBe(order(1));
    const distinct = new Set([1, 2, 3, 4, 5, 6].map(order));
    expect(distinct.size).toBeGreaterThan(1);
  });
});

describe("PctStrategy", () => {
  it("rejects bad options", () => {
    expect(() => new PctStrategy(1, { depth: 0 })).toThrow(/pct: depth must be an integer >= 1, got 0/);
    expect(() => new PctStrategy(1, { expectedChoices: 0.5 })).toThrow(/pct: expectedChoices must be an integer >= 1, got 0.5/);
  });

  it("with depth 1 (no change points) runs the highest-priority actor whenever it is ready", () => {
    for (const seed of [1, 2, 3, 4]) {
      const log: string[] = [];
      runSim(yielders(["a", "b", "c"], 4, log), { strategy: new PctStrategy(seed, { depth: 1 }) });
      // Each process keeps running until it ends: the log is three blocks of four.
      expect(log.join("")).toMatch(/^(a{4}|b{4}|c{4}){3}$/);
      expect(new Set(log.join("").match(/(.)\1{3}/g))).toHaveProperty("size", 3);
    }
  });

  it("drops the running actor below every other at a change point", () => {
    // depth 2, expectedChoices 1: the one change point is the first choice (index 0).
    for (const seed of [1, 2, 3, 4, 5]) {
      const s = new PctStrategy(seed, { depth: 2, expectedChoices: 1 });
      const first = s.pickNext(2, owners(10, 20), 0);
      const second = s.pickNext(2, owners(10, 20), 1);
      expect(second).toBe(1 - first);
      expect(s.pickNext(2, owners(10, 20), 2)).toBe(second);
      // An actor seen for the first time later gets an initial priority, above the dropped one.
      expect(s.pickNext(2, owners([10, 20][first], 30), 3)).toBe(1);
    }
  });

  it("gives entries of the same owner the same priority", () => {
    const log: string[] = [];
    // a1 and a2 belong to actor 1, b to actor 2: with depth 1 the a's never interleave with b.
    runSim(yielders(["a1", "a2", "b"], 3, log, { owner: (n) => (n === "b" ? 2 : 1) }), {
      strategy: new PctStrategy(9, { depth: 1 }),
    });
    const s = log.map((n) => n[0]).join("");
    expect(s === "aaaaaabbb" || s === "bbbaaaaaa").toBe(true);
  });

  it("is a function of its seed", () => {
    const run = (seed: number) => {
      const log: string[] = [];
      const { r } = runSim(yielders(["a", "b", "c", "d"], 5, log), { strategy: new PctStrategy(seed, { depth: 3, expectedChoices: 20 }) });
      return { log: log.join(""), hash: r.hash, choices: r.choices };
    };
    expect(run(11)).toEqual(run(11));
    expect(new Set([11, 12, 13, 14, 15, 16].map((s) => run(s).log)).size).toBeGreaterThan(1);
  });
});

describe("ReplayStrategy", () => {
  /** Three processes racing, and an environment choice. */
  const race = (log: string[]) => (sim: Scheduler) => {
    for (const n of ["a", "b", "c"]) {
      sim.spawn(n, (function* (): Process {
        log.push(n);
        yield yieldNow();
        log.push(`${n}:${(yield choose(`${n}/fail`, 2)) as number}`);
      })());
    }
  };

  it("follows a recorded log exactly", () => {
    const original: string[] = [];
    const a = runSim(race(original), { strategy: new RandomStrategy(5), trace: true }).r;
    const replayed: string[] = [];
    const b = runSim(race(replayed), { strategy: new ReplayStrategy(a.choices), trace: true }).r;
    expect(b.outcome).toEqual({ kind: "ok" });
    expect(replayed).toEqual(original);
    expect(b.choices).toEqual(a.choices);
    expect(b.hash).toBe(a.hash);
    expect(b.trace).toEqual(a.trace);
  });

  // In `race`, a process that yields goes back among the ready ones, so the
  // first four choices are among 3; the fourth picks a process that then calls choose.
  it("follows a hand-written log", () => {
    const log: string[] = [];
    const { r } = runSim(race(log), { strategy: new ReplayStrategy([[3, 2], [3, 1], [3, 0], [3, 1], [2, 1, "b/fail"]], { afterEnd: new FifoStrategy() }) });
    expect(log.slice(0, 4)).toEqual(["c", "b", "a", "b:1"]);
    expect(r.outcome).toEqual({ kind: "ok" });
  });

  it("stops with a divergence naming the step when the number of options differs", () => {
    const { r } = runSim(race([]), { strategy: new ReplayStrategy([[3, 0], [2, 0]]) });
    expect(r.outcome).toEqual({
      kind: "divergence",
      timeNs: 0,
      index: 1,
      error: "replay diverged at choice #1: the log has a scheduling choice among 2 but the run asks for a scheduling choice among 3",
    });
  });

  it("stops with a divergence when a choose label or kind differs", () => {
    const wrongLabel = runSim(race([]), { strategy: new ReplayStrategy([[3, 0], [3, 0], [3, 0], [3, 0], [2, 0, "x/fail"]]) }).r;
    expect(wrongLabel.outcome).toMatchObject({ kind: "divergence", index: 4 });
    if (wrongLabel.outcome.kind === "divergence") {
      expect(wrongLabel.outcome.error).toBe(`replay diverged at choice #4: the log has a choose("x/fail") among 2 but the run asks for a choose("a/fail") among 2`);
    }
    const wrongKind = runSim(race([]), { strategy: new ReplayStrategy([[3, 0, "a/fail"]]) }).r;
    expect(wrongKind.outcome).toMatchObject({ kind: "divergence", index: 0 });
    if (wrongKind.outcome.kind === "divergence") expect(wrongKind.outcome.error).toContain(`the log has a choose("a/fail") among 3 but the run asks for a scheduling choice among 3`);
  });

  it("stops with a divergence when the run outlives the log", () => {
    const { r } = runSim(race([]), { strategy: new ReplayStrategy([[3, 0]]) });
    expect(r.outcome).toEqual({
      kind: "divergence",
      timeNs: 0,
      index: 1,
      error: "replay diverged at choice #1: the run asks for a scheduling choice among 3 but the log has only 1 entries",
    });
  });

  it("a divergence inside choose() also ends the run cleanly", () => {
    const { r } = runSim((sim) => {
      sim.spawn("env", (function* (): Process { yield sleep(3); yield choose("coin", 2); })());
    }, { strategy: new ReplayStrategy([]) });
    expect(r.outcome).toEqual({
      kind: "divergence",
      timeNs: 3,
      index: 0,
      error: `replay diverged at choice #0: the run asks for a choose("coin") among 2 but the log has only 0 entries`,
    });
  });

  it("with afterEnd continues with another strategy once the log runs out", () => {
    const fallback = new ScriptedStrategy([1, 1, 1, 1, 1, 1]);
    const log: string[] = [];
    const { r } = runSim(race(log), { strategy: new ReplayStrategy([[3, 2]], { afterEnd: fallback }) });
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(r.choices[0]).toEqual([3, 2]);
    expect(r.choices.length).toBeGreaterThan(1);
    expect(fallback.asked[0]).toMatchObject({ kind: "next", n: 3, index: 1 });
    expect(r.choices.slice(1).every((c) => c[1] === 1)).toBe(true);
    expect(log[0]).toBe("c");
  });

  it("Divergence carries the index", () => {
    const d = new Divergence("x", 4);
    expect(d.index).toBe(4);
    expect(d.name).toBe("Divergence");
  });
});
