/**
 * `blocksim serve` builds its world from a scenario as `blocksim run` does
 * (the harness's createWorld): the scenario's IOThreads exist, a guest's disk
 * moves to its guest's IOThread and carries its device, so QEMU refuses to
 * move it back. Why a world stopped reads as a run's report reads. Its
 * scenario steps run as `blocksim run` runs them (one step runner): the same
 * commands, replies, drained sections, faults and events at the same moments.
 */
import { describe, expect, it } from "vitest";
import { buildWorld, runSetup } from "../../serve/world.js";
import { loadScenarioFile, loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario, type LogEntry } from "../../sim/scenario/runner.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import type { Process } from "../../sim/scheduler/index.js";

const SCENARIO = `
name: serve-world
iothreads: [io0]
devices:
  - { name: disk.img, size: 4MiB }
  - { name: spare.img, size: 4MiB }
nodes:
  - { driver: raw, node-name: disk, file: disk.img }
  - { driver: raw, node-name: spare, file: spare.img }
guests:
  - { name: guest, node: disk, pattern: sequential, request-size: 64k, iodepth: 1, interval: 1ms, stop: 10ms, iothread: io0 }
`;

describe("serve's world", () => {
  it("has the scenario's IOThreads and attached guest devices, as a run's world has", () => {
    const world = buildWorld(loadScenarioText(SCENARIO, "s.yaml"));
    runSetup(world);
    const replies: QmpResponse[] = [];
    world.sim.spawn("client", (function* (): Process<void> {
      replies.push(yield* world.qemu.monitor.execute({ execute: "x-blockdev-set-iothread", arguments: { "node-name": "spare", iothread: "io0" } }));
      replies.push(yield* world.qemu.monitor.execute({ execute: "x-blockdev-set-iothread", arguments: { "node-name": "disk", iothread: null, force: true } }));
    })(), { daemon: true });
    expect(world.sim.advanceTo(world.sim.now + 1_000_000)).toBeUndefined();
    expect(replies).toEqual([
      { return: {} },
      { error: { class: "GenericError", desc: "Cannot change iothread of active block backend" } },
    ]);
  });

  it("says why setup stopped as a run's report says it, moments in the one time format", () => {
    const slow = SCENARIO.replace("{ name: disk.img, size: 4MiB }", "{ name: disk.img, size: 4MiB, latency: 1ms, data: [{ offset: 0, length: 4MiB }] }") + "limits: { steps: 2 }\n";
    const world = buildWorld(loadScenarioText(slow, "s.yaml"));
    expect(() => runSetup(world)).toThrow(/^the scenario's setup stopped the simulation: the step limit \(2 kernel steps\) at \d+\.\d{6} ms$/);
  });
});

describe("serve's scenario steps", () => {
  // A drained section on a busy node, nested (drain-with-job); a fault added and healed mid-backup, event- and job-triggered steps (fault-and-heal).
  for (const file of ["scenarios/drain-with-job.yaml", "scenarios/fault-and-heal.yaml"]) {
    it(`${file}: the steps act at the moments blocksim run acts, with the same replies and events`, () => {
      const loaded = loadScenarioFile(file);
      const ran = runScenario(loaded);
      expect(ran.ok).toBe(true);
      const lastStepEnd = Math.max(...ran.steps.map((s) => s.endNs!));
      const world = buildWorld(loaded);
      runSetup(world);
      expect(world.harness.t0).toBe(ran.setupEndNs);
      while ((world.sim.nextEventNs() ?? Infinity) <= lastStepEnd) expect(world.sim.advanceTo(world.sim.nextEventNs()!)).toBeUndefined();
      const upTo = (log: LogEntry[]) => log.filter((e) => e.t <= lastStepEnd);
      expect(upTo(world.stepLog).length).toBeGreaterThan(ran.steps.length);
      expect(upTo(world.stepLog)).toEqual(upTo(ran.log));
    });
  }
});
