/**
 * Steps cost linear time (issue 19: N steps made N(N+1)/2 choices). A timed
 * step's process exists only from its time on, so N steps at distinct times
 * make no same-instant choice at all, and the kernel does the same work per
 * step whatever N is.
 */
import { describe, expect, it } from "vitest";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";
import { RandomStrategy } from "../../sim/scheduler/index.js";

function many(n: number, step: (i: number) => Record<string, unknown>) {
  return loadScenarioText(JSON.stringify({ name: `steps-${n}`, steps: Array.from({ length: n }, (_, i) => step(i)), limits: { time: "600s" } }), `steps-${n}.json`);
}

describe("the step machinery is linear in the number of steps", () => {
  it("timed steps at distinct times: no choice point, the same kernel steps per scenario step at 200 and 2,000 steps", () => {
    const small = runScenario(many(200, (i) => ({ at: i * 1000, execute: "query-jobs" })));
    const big = runScenario(many(2000, (i) => ({ at: i * 1000, execute: "query-jobs" })));
    expect(small.ok && big.ok).toBe(true);
    expect(big.steps.every((s) => s.state === "done")).toBe(true);
    expect(big.choices).toEqual([]);
    expect(big.kernelSteps / 2000).toBe(small.kernelSteps / 200);
  });

  it("steps that each follow the previous one, under a random strategy: choices grow linearly, not quadratically", () => {
    const a = runScenario(many(200, () => ({ execute: "query-jobs" })), { strategy: new RandomStrategy(1) });
    const b = runScenario(many(2000, () => ({ execute: "query-jobs" })), { strategy: new RandomStrategy(1) });
    expect(a.ok && b.ok).toBe(true);
    expect(b.choices.length).toBeLessThanOrEqual(10 * a.choices.length + 10);
    expect(b.kernelSteps).toBeLessThanOrEqual(10 * a.kernelSteps + 10);
  });
});
