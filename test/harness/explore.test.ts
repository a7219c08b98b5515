import { describe, expect, it } from "vitest";
import { explore, nextPrefix, PickListStrategy, shrinkPicks, type Subject } from "../../sim/harness/explore.js";
import { Scheduler, yieldNow, type Process } from "../../sim/scheduler/index.js";
import { breaksSubject, loadRaces, type Race } from "../../sim/races/catalog.js";

/**
 * k processes, all ready at once, each recording and yielding `yields` times
 * and then ending: yields+1 resumptions each, so (k(yields+1))! / ((yields+1)!)^k
 * interleavings, every one with its own trace hash.
 */
const interleavings = (k: number, steps: number, bad?: (order: string) => boolean): Subject => (strategy, seed) => {
  const sim = new Scheduler({ strategy, seed });
  let order = "";
  for (let p = 0; p < k; p++) {
    sim.spawn(`p${p}`, (function* (): Process {
      for (let i = 0; i < steps; i++) {
        order += String(p);
        sim.record(`p${p}`, "step", { i });
        yield yieldNow();
      }
    })());
  }
  const r = sim.run();
  return { hash: r.hash, choices: r.choices, violations: bad?.(order) ? [{ invariant: "bad-order", detail: order }] : [] };
};

const raceSubject = (race: Race, profile: string): Subject => breaksSubject(race, profile);
const [TXN_START_RACE, START_SHIM_RACE] = ["txn-start-before-commit", "pause-before-first-start"].map((n) => loadRaces().find((r) => r.name === n)!);

describe("PickListStrategy", () => {
  it("answers pick % n, then FIFO past the end, and records each width", () => {
    const s = new PickListStrategy([5, 1]);
    expect([s.pickNext(3, () => 0, 0), s.choose("x", 2, 1), s.pickNext(4, () => 0, 2)]).toEqual([2, 1, 0]);
    expect(s.widths).toEqual([3, 2, 4]);
  });
});

describe("bounded exhaustive exploration", () => {
  it("enumerates every interleaving of two 2-step processes exactly once: 6 distinct schedules", () => {
    const r = explore(interleavings(2, 1), { strategy: "exhaustive", maxChoicePoints: 20, maxPreemptions: 20, all: true });
    expect(r.complete).toBe(true);
    expect(r.distinct).toBe(6);
    expect(r.runs).toBe(6);
    expect(r.found).toEqual([]);
  });

  it("three 2-step processes: 90 interleavings; a preemption bound cuts the tree and says it is not the whole space", () => {
    const all = explore(interleavings(3, 1), { strategy: "exhaustive", maxChoicePoints: 20, maxPreemptions: 20, all: true });
    expect([all.distinct, all.complete]).toEqual([90, true]);
    const bounded = explore(interleavings(3, 1), { strategy: "exhaustive", maxChoicePoints: 20, maxPreemptions: 1, all: true });
    expect(bounded.complete).toBe(true);
    expect(bounded.distinct).toBeLessThan(90);
    expect(bounded.distinct).toBeGreaterThan(1);
  });

  it("stops at the first violating schedule, or collects all with `all`", () => {
    const bad = (o: string) => o.startsWith("11");
    const first = explore(interleavings(2, 2, bad), { strategy: "exhaustive", maxChoicePoints: 20, maxPreemptions: 20 });
    expect(first.found).toHaveLength(1);
    expect(first.found[0].result.violations[0].detail).toMatch(/^11/);
    const every = explore(interleavings(2, 2, bad), { strategy: "exhaustive", maxChoicePoints: 20, maxPreemptions: 20, all: true });
    expect(every.runs).toBe(20);
    // p1 records twice before p0 records: p1's two records first, then p0's 3 steps and p1's end in any order (4 ways)
    expect(every.found.map((f) => f.result.violations[0].detail)).toEqual(["1100", "1100", "1100", "1100"]);
  });

  it("nextPrefix walks depth first and ends", () => {
    expect(nextPrefix([0, 0, 0], [2, 2, 2], 10, 10)).toEqual([0, 0, 1]);
    expect(nextPrefix([0, 1, 1], [2, 2, 2], 10, 10)).toEqual([1]);
    expect(nextPrefix([1, 1], [2, 2], 10, 10)).toBeUndefined();
    expect(nextPrefix([0, 0, 0], [2, 2, 2], 2, 10)).toEqual([0, 1]); // only the first 2 choice points branch
  });
});

describe("random and PCT walks over the seed races", () => {
  for (const race of [TXN_START_RACE, START_SHIM_RACE]) {
    it(`${race.name}: random finds it under ${race.header["buggy-profile"]}, not under current`, () => {
      const found = explore(raceSubject(race, race.header["buggy-profile"]), { strategy: "random", budget: 20 });
      expect(found.found.length, `random, 20 seeds`).toBe(1);
      const clean = explore(raceSubject(race, "current"), { strategy: "random", budget: 20 });
      expect(clean.found).toEqual([]);
      expect(clean.runs).toBe(20);
    });
  }

  it("pct walks are deterministic per seed and count distinct schedules", () => {
    const a = explore(raceSubject(TXN_START_RACE, "current"), { strategy: "pct", budget: 5, depth: 2, all: true });
    const b = explore(raceSubject(TXN_START_RACE, "current"), { strategy: "pct", budget: 5, depth: 2, all: true });
    expect(a.runs).toBe(5);
    expect(b.distinct).toBe(a.distinct);
    expect(a.distinct).toBeGreaterThan(1);
  });
});

describe("shrinking a failing schedule", () => {
  it("keeps it failing and makes it no longer and no more preemptive", () => {
    const subject = raceSubject(START_SHIM_RACE, START_SHIM_RACE.header["buggy-profile"]);
    const found = explore(subject, { strategy: "random", budget: 20 }).found[0];
    const picks = found.result.choices.map((c) => c[1]);
    const shrunk = shrinkPicks(subject, picks, (r) => r.violations.length > 0, { seed: found.seed });
    expect(shrunk.result.violations.length).toBeGreaterThan(0);
    expect(shrunk.picks.length).toBeLessThanOrEqual(picks.length);
    expect(shrunk.picks.filter((p) => p !== 0).length).toBeLessThanOrEqual(picks.filter((p) => p !== 0).length);
  });

  it("returns the input unchanged when it does not fail", () => {
    const r = shrinkPicks(interleavings(2, 2), [1, 0, 1], () => false);
    expect(r).toMatchObject({ picks: [1, 0, 1], runs: 1 });
  });
});
