import fc from "fast-check";
import { afterEach, describe, expect, it, vi } from "vitest";
import {
  Alea,
  FifoStrategy,
  formatChoiceLog,
  PctStrategy,
  RandomStrategy,
  ReplayStrategy,
  type RunResult,
  type Strategy,
  Streams,
} from "../../sim/scheduler/index.js";
import { runWorld, runWorldUnhashed, type World, worldArb } from "./programs.js";

const SEED = 42;
const RUNS = 300;

type StrategyKind = "fifo" | "random" | "pct";
interface Setup { kind: StrategyKind; seed: number; depth: number }

const setupArb: fc.Arbitrary<Setup> = fc.record({
  kind: fc.constantFrom<StrategyKind>("fifo", "random", "pct"),
  seed: fc.integer({ min: 0, max: 2 ** 31 - 1 }),
  depth: fc.integer({ min: 1, max: 4 }),
});

function makeStrategy(s: Setup): Strategy {
  switch (s.kind) {
    case "fifo": return new FifoStrategy();
    case "random": return new RandomStrategy(s.seed);
    case "pct": return new PctStrategy(s.seed, { depth: s.depth, expectedChoices: 30 });
  }
}

/** Runs `check`; if it throws, adds the strategy, its seed and the run's choice log to the message. */
function explain(setup: Setup, r: RunResult, check: () => void): void {
  try {
    check();
  } catch (e) {
    const err = e as Error;
    err.message += `\n  strategy ${setup.kind} seed ${setup.seed} depth ${setup.depth}; outcome ${JSON.stringify(r.outcome)}\n  choice log: ${formatChoiceLog(r.choices)}`;
    throw err;
  }
}

const comparable = (r: RunResult) => ({
  outcome: r.outcome.kind === "failure" ? { ...r.outcome, stack: undefined } : r.outcome,
  endTimeNs: r.endTimeNs,
  steps: r.steps,
  choices: r.choices,
  hash: r.hash,
  trace: r.trace,
});

describe("properties of random process programs", () => {
  afterEach(() => vi.restoreAllMocks());

  it("the programs exercise the kernel (choices, waits, interrupts, deadlocks all occur)", () => {
    // A guard on the generator itself: if it stopped producing these, the properties below would prove little.
    const seen = new Set<string>();
    fc.assert(
      fc.property(worldArb, fc.integer({ min: 0, max: 1000 }), (world, seed) => {
        const { r } = runWorld(world, { strategy: new RandomStrategy(seed), trace: true });
        seen.add(`outcome:${r.outcome.kind}`);
        if (r.choices.some((c) => c.length === 2)) seen.add("scheduling choice");
        if (r.choices.some((c) => c.length === 3)) seen.add("choose");
        for (const t of r.trace!) seen.add(t.kind);
      }),
      { seed: SEED, numRuns: RUNS },
    );
    for (const k of ["outcome:ok", "outcome:deadlock", "scheduling choice", "choose", "woke", "notified", "joined", "interrupt", "caught", "interrupted", "settled"]) {
      expect(seen, k).toContain(k);
    }
  });

  it("running the same program with the same strategy and seed twice gives the same hash, log and trace", () => {
    fc.assert(
      fc.property(worldArb, setupArb, fc.boolean(), (world, setup, traced) => {
        const a = runWorld(world, { seed: setup.seed, strategy: makeStrategy(setup), trace: traced }).r;
        const b = runWorld(world, { seed: setup.seed, strategy: makeStrategy(setup), trace: traced }).r;
        explain(setup, a, () => expect(comparable(b)).toEqual(comparable(a)));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("a run made with runUnhashed() is the same run (outcome, steps, choices, trace), with no hash", () => {
    fc.assert(
      fc.property(worldArb, setupArb, (world, setup) => {
        const a = runWorld(world, { seed: setup.seed, strategy: makeStrategy(setup), trace: true }).r;
        const { sim, r: b } = runWorldUnhashed(world, { seed: setup.seed, strategy: makeStrategy(setup), trace: true });
        expect(b.hash).toBeUndefined();
        explain(setup, a, () => expect(comparable({ ...b, hash: a.hash })).toEqual(comparable(a)));
        expect(() => sim.result()).toThrow(/unhashed/);
      }),
      { seed: SEED, numRuns: 100 },
    );
  });

  it("the trace's choice records are exactly the choice log, in order", () => {
    fc.assert(
      fc.property(worldArb, setupArb, (world, setup) => {
        const { r } = runWorld(world, { strategy: makeStrategy(setup), trace: true });
        const fromTrace = r.trace!
          .filter((t) => t.kind === "choice" || t.kind === "choose")
          .map((t) => (t.kind === "choice" ? [t.data!.n, t.data!.pick] : [t.data!.n, t.data!.pick, t.data!.label]));
        explain(setup, r, () => {
          expect(r.choices).toEqual(fromTrace);
          for (const [n, pick] of r.choices) {
            expect(n).toBeGreaterThanOrEqual(2);
            expect(pick).toBeGreaterThanOrEqual(0);
            expect(pick).toBeLessThan(n);
          }
        });
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("replaying the choice log of a random or PCT run gives the same hash and the same trace", () => {
    fc.assert(
      fc.property(worldArb, setupArb.filter((s) => s.kind !== "fifo"), fc.boolean(), (world, setup, viaText) => {
        const a = runWorld(world, { strategy: makeStrategy(setup), trace: true }).r;
        const log = viaText ? JSON.parse(JSON.stringify(a.choices)) : a.choices;
        const b = runWorld(world, { strategy: new ReplayStrategy(log), trace: true }).r;
        explain(setup, a, () => {
          expect(b.outcome.kind).not.toBe("divergence");
          expect(b.hash).toBe(a.hash);
          expect(b.trace).toEqual(a.trace);
          expect(comparable(b)).toEqual(comparable(a));
        });
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });

  it("a replay of a log with one pick changed either diverges or takes another path", () => {
    // The other half of replay: the log really steers the run (a replay that ignored it would pass the test above).
    let steered = 0;
    fc.assert(
      fc.property(worldArb, setupArb.filter((s) => s.kind !== "fifo"), fc.nat(), (world, setup, which) => {
        const a = runWorld(world, { strategy: makeStrategy(setup), trace: true }).r;
        fc.pre(a.choices.length > 0);
        const i = which % a.choices.length;
        const changed = a.choices.map((c) => [...c]) as typeof a.choices;
        changed[i][1] = (changed[i][1] + 1) % changed[i][0];
        const b = runWorld(world, { strategy: new ReplayStrategy(changed, { afterEnd: new FifoStrategy() }), trace: true }).r;
        explain(setup, a, () => {
          expect(b.choices[i]).toEqual(changed[i]);
          expect(b.choices.slice(0, i)).toEqual(a.choices.slice(0, i));
        });
        if (b.hash !== a.hash) steered++;
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(steered).toBeGreaterThan(RUNS / 2);
  });

  it("FIFO never consults a PRNG: no stream is made or drawn from, and the seed does not matter", () => {
    // Count every stream asked for and every draw from a generator, and Math.random calls.
    let made = 0, draws = 0;
    const realGet = Streams.prototype.get, realNext = Alea.prototype.next;
    vi.spyOn(Streams.prototype, "get").mockImplementation(function (this: Streams, name: string) { made++; return realGet.call(this, name); });
    vi.spyOn(Alea.prototype, "next").mockImplementation(function (this: Alea) { draws++; return realNext.call(this); });
    const mathRandom = vi.spyOn(Math, "random");

    let randomDraws = 0;
    fc.assert(
      fc.property(worldArb, fc.integer({ min: 0, max: 2 ** 31 - 1 }), (world, seed) => {
        made = draws = 0;
        const fifo = runWorld(world, { seed, strategy: new FifoStrategy(), trace: true });
        const fifoMade = made, fifoDraws = draws;
        const other = runWorld(world, { seed: seed + 1, trace: true }); // default strategy, another seed
        explain({ kind: "fifo", seed, depth: 0 }, fifo.r, () => {
          expect(fifoMade).toBe(0);
          expect(fifoDraws).toBe(0);
          expect(fifo.sim.streams.names()).toEqual([]);
          expect(fifo.r.choices.every((c) => c[1] === 0)).toBe(true);
          expect(comparable(other.r)).toEqual(comparable(fifo.r));
        });
        // The same spy sees a random strategy's draws, so the zero above means something.
        draws = 0;
        const rnd = runWorld(world, { seed, strategy: new RandomStrategy(seed) });
        if (rnd.r.choices.length > 0) {
          expect(draws).toBeGreaterThanOrEqual(rnd.r.choices.length);
          randomDraws += draws;
        }
      }),
      { seed: SEED, numRuns: RUNS },
    );
    expect(randomDraws).toBeGreaterThan(0);
    expect(mathRandom).not.toHaveBeenCalled();
  });

  it("replaying a FIFO log reproduces the FIFO run", () => {
    fc.assert(
      fc.property(worldArb, (world: World) => {
        const a = runWorld(world, { trace: true }).r;
        const b = runWorld(world, { strategy: new ReplayStrategy(a.choices), trace: true }).r;
        explain({ kind: "fifo", seed: 0, depth: 0 }, a, () => expect(comparable(b)).toEqual(comparable(a)));
      }),
      { seed: SEED, numRuns: RUNS },
    );
  });
});
