/**
 * Zeno runs: steps that keep running while virtual time stands still end the
 * run with outcome `zeno`, naming the processes that spin, instead of burning
 * the whole step budget (issue 19).
 */
import { describe, expect, it } from "vitest";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

const LIMITS = "limits: { instant-steps: 20000, steps: 10000000 }\n";

describe("Zeno runs", () => {
  it("a guest with interval 0 on a zero-latency device ends as a Zeno run naming the guest", () => {
    const r = runScenario(loadScenarioText(`name: zeno-guest
devices: [{ name: d, size: 1MiB }]
nodes: [{ driver: raw, node-name: n, file: d }]
guests: [{ name: g, node: n, interval: 0 }]
steps: [{ at: 1ms, execute: query-jobs }]
${LIMITS}`));
    expect(r.outcome).toMatchObject({ kind: "zeno", timeNs: 0 });
    expect(r.outcome.kind === "zeno" && r.outcome.spinning.join(" ")).toMatch(/\bg\b|g\//);
    expect(r.ok).toBe(false);
    expect(r.failures[0].message).toMatch(/Zeno run: virtual time stood still at 0/);
    expect(r.kernelSteps).toBeLessThan(100_000);
  });

  it("a poller with interval 0 ends as a Zeno run naming the poller", () => {
    const r = runScenario(loadScenarioText(`name: zeno-poll
devices: [{ name: d, size: 1MiB, latency: 1ms }]
nodes: [{ driver: raw, node-name: n, file: d }]
guests: [{ name: g, node: n, drive: vda0 }]
domain: { disks: [{ target: vda, device: vda0 }], qmp-round-trip: 0 }
steps: [{ poll: { disk: vda, interval: 0, count: 100000000 } }]
${LIMITS}`));
    expect(r.outcome.kind).toBe("zeno");
    expect(r.outcome.kind === "zeno" && r.outcome.spinning[0]).toMatch(/poll/);
  });

  it("a scenario may expect a Zeno end (the outcome then holds; the step that never ran still fails)", () => {
    const r = runScenario(loadScenarioText(`name: zeno-expected
devices: [{ name: d, size: 1MiB }]
nodes: [{ driver: raw, node-name: n, file: d }]
guests: [{ name: g, node: n, interval: 0 }]
steps: [{ at: 1ms, execute: query-jobs }]
expect: { outcome: zeno, invariants: none }
${LIMITS}`));
    expect(r.outcome.kind).toBe("zeno");
    expect(r.failures.map((f) => f.kind)).toEqual(["trigger"]);
  });
});
