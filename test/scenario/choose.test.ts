/**
 * `at: { choose: … }` and `delay: { choose: … }`: a step's moment left to
 * the strategy. It is a choice point in the run's log: FIFO takes `from`,
 * a pick list or a random walk takes others, a replay of the log takes the
 * same, exhaustive exploration visits every value and shrinking moves a
 * failing moment towards `from`.
 */
import { describe, expect, it } from "vitest";
import { explore, shrinkPicks, type Subject } from "../../sim/harness/explore.js";
import { PickListStrategy } from "../../sim/harness/strategy.js";
import { FifoStrategy, RandomStrategy, ReplayStrategy } from "../../sim/scheduler/index.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario, type RunReport } from "../../sim/scenario/runner.js";

const SCENARIO = `
name: chosen
devices:
  - { name: disk.img, size: 8MiB, latency: 500us, data: [{ offset: 0, length: 8MiB }] }
  - { name: copy.img, size: 8MiB, latency: 1ms }
nodes:
  - { driver: raw, node-name: src, file: disk.img }
  - { driver: raw, node-name: tgt, file: copy.img }
steps:
  - execute: blockdev-mirror
    arguments: { job-id: m0, device: src, target: tgt, sync: full }
  - at: { choose: { from: 1ms, to: 4ms, step: 500us } }
    execute: query-jobs
  - on-event: { event: BLOCK_JOB_READY }
    delay: { choose: { from: 0ms, to: 3ms, step: 1ms } }
    execute: job-complete
    arguments: { id: m0 }
`;
const loaded = loadScenarioText(SCENARIO, "chosen.yaml");

/** When a step's command was sent, relative to the first command (setup's end). */
function sentAt(r: RunReport, step: number): number {
  const cmds = r.log.filter((e) => e.kind === "cmd");
  return cmds.find((e) => e.kind === "cmd" && e.step === step)!.t - cmds[0].t;
}
const readyAt = (r: RunReport) => r.log.find((e) => e.kind === "event" && e.event === "BLOCK_JOB_READY")!.t;
const completeAfterReady = (r: RunReport) => r.log.find((e) => e.kind === "cmd" && e.step === 2)!.t - readyAt(r);

describe("a chosen moment", () => {
  it("takes `from` under FIFO, and the run logs both choice points by step", () => {
    const r = runScenario(loaded, { strategy: new FifoStrategy() });
    expect(r.ok).toBe(true);
    expect(sentAt(r, 1)).toBe(1_000_000);
    expect(completeAfterReady(r)).toBe(0);
    const labelled = r.choices.filter((c) => c.length === 3);
    expect(labelled).toEqual([[7, 0, "steps[1].at"], [4, 0, "steps[2].delay"]]);
  });

  it("takes the picked option: from + pick × step", () => {
    const r = runScenario(loaded, { strategy: new PickListStrategy([5]) });
    expect(sentAt(r, 1)).toBe(3_500_000);
    const at = r.choices.findIndex((c) => c[2] === "steps[2].delay");
    const picks = r.choices.map(() => 0);
    picks[0] = 5;
    picks[at] = 2;
    const r2 = runScenario(loaded, { strategy: new PickListStrategy(picks) });
    expect(sentAt(r2, 1)).toBe(3_500_000);
    expect(completeAfterReady(r2)).toBe(2_000_000);
  });

  it("is reproduced by a replay of the choice log, trace hash and all", () => {
    const a = runScenario(loaded, { strategy: new RandomStrategy(11), seed: 11 });
    const b = runScenario(loaded, { strategy: new ReplayStrategy(a.choices), seed: 11 });
    expect(b.hash).toBe(a.hash);
    expect(sentAt(b, 1)).toBe(sentAt(a, 1));
  });

  it("is explored: random walks reach several values, exhaustive exploration every one", () => {
    const seen = new Set<number>();
    const subject: Subject = (strategy, seed) => {
      const r = runScenario(loaded, { strategy, seed });
      seen.add(sentAt(r, 1));
      return { hash: r.hash, choices: r.choices, violations: [] };
    };
    explore(subject, { strategy: "random", budget: 20 });
    expect(seen.size).toBeGreaterThan(3);
    seen.clear();
    // Only the first choice point branches: its 7 values.
    const ex = explore(subject, { strategy: "exhaustive", budget: 100, maxChoicePoints: 1 });
    expect(ex.complete).toBe(true);
    expect([...seen].sort((x, y) => x - y)).toEqual([1, 1.5, 2, 2.5, 3, 3.5, 4].map((ms) => ms * 1e6));
  });

  it("is shrunk towards `from`: the smallest moment that still fails", () => {
    // "Fails" when the query goes out at 2.5 ms or later: shrinking keeps a failing pick and lowers the others.
    const subject: Subject = (strategy, seed) => {
      const r = runScenario(loaded, { strategy, seed });
      return { hash: r.hash, choices: r.choices, violations: sentAt(r, 1) >= 2_500_000 ? [{ invariant: "late", detail: "" }] : [] };
    };
    const s = shrinkPicks(subject, [6, 1, 1, 1], (r) => r.violations.length > 0);
    expect(s.picks).toEqual([3]);
    expect(s.result.violations).toHaveLength(1);
  });
});
