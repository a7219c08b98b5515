/**
 * Where setup ends in the kernel trace (the report's setupTraceIndex, which
 * the kernel trace listing marks) is an index into the trace, which holds
 * choice entries besides records, and it is the same whether the run's
 * trace hash is computed or not.
 */
import { describe, expect, it } from "vitest";
import { runWorld } from "../../sim/harness/run.js";
import { createWorld } from "../../sim/harness/world.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario, scenarioStrategy, ScenarioSteps, worldSpec } from "../../sim/scenario/runner.js";

const SCENARIO = `
name: setup-trace-index
strategy: random
seed: 7
devices:
  - { name: disk.img, size: 4MiB, latency: 100us, data: [{ offset: 0, length: 4MiB }] }
  - { name: backup.img, size: 4MiB, latency: 100us, data: [{ offset: 0, length: 1MiB }] }   # filled as disk.img is: same-instant choices in setup
nodes:
  - { driver: raw, node-name: disk, file: disk.img }
  - { driver: raw, node-name: target, file: backup.img }
guests:
  - { name: guest, node: disk, pattern: random, request-size: 64k, iodepth: 4, interval: 200us, stop: 5ms }
steps:
  - at: 1ms
    execute: blockdev-backup
    arguments: { job-id: b0, device: disk, target: target, sync: full }
expect:
  jobs: { b0: "null" }
`;

/** The scenario's steps run in a world through the harness, the hash computed or not; where setup ended in the trace. */
function stepsRun(hash: boolean) {
  const loaded = loadScenarioText(SCENARIO, "setup-trace-index.yaml");
  const sc = loaded.scenario;
  const world = createWorld(worldSpec(sc, { seed: sc.seed, profile: sc.profile, strategy: scenarioStrategy(sc, sc.seed), trace: true }));
  const steps = new ScenarioSteps(world, sc);
  const driver = { name: "scenario", safety: () => steps.main() };
  const r = hash ? runWorld(world, driver) : runWorld(world, driver, { hash: false });
  return { r, index: steps.setupTraceIndex, setupEndNs: world.t0 };
}

describe("the end of setup in the kernel trace", () => {
  it("is the count of trace entries made during setup, choice entries included", () => {
    const report = runScenario(loadScenarioText(SCENARIO, "setup-trace-index.yaml"), { keepTrace: true });
    expect(report.ok).toBe(true);
    const trace = report.trace!, at = report.setupTraceIndex!;
    expect(at).toBeGreaterThan(0);
    expect(trace.slice(0, at).some((e) => e.kind === "choice")).toBe(true); // not a count of records only
    expect(trace.slice(0, at).every((e) => e.t <= report.setupEndNs)).toBe(true);
    expect(trace.slice(at).every((e) => e.t >= report.setupEndNs)).toBe(true);
  });

  it("is the same in a run whose trace hash is not computed, which runs as the hashed one does", () => {
    const hashed = stepsRun(true), unhashed = stepsRun(false);
    expect(unhashed.r.outcome).toEqual({ kind: "ok" });
    expect(unhashed.r.hash).toBeUndefined();
    expect(unhashed.index).toBe(hashed.index);
    expect(unhashed.index).toBeGreaterThan(0);
    expect(unhashed.r.trace).toEqual(hashed.r.trace);
  });
});
