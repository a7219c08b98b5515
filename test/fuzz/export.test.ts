import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exportFailure, toScenarioFile } from "../../sim/fuzz/export.js";
import { runModel, type FuzzScenario } from "../../sim/fuzz/index.js";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

const MiB = 1 << 20;
const dir = mkdtempSync(join(tmpdir(), "blocksim-export-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

/** Seed 000 as a fuzz scenario: a guest on s0, a backup created at 2 ms (a one-action transaction, so inside a drained section). */
const shim: FuzzScenario = {
  devices: [{ name: "a", sizeBytes: 4 * MiB, latencyNs: 500_000 }, { name: "b", sizeBytes: 4 * MiB, latencyNs: 500_000, faults: [{ op: "write", errno: "EIO", once: true, afterRequests: 1000 }] }],
  nodes: [{ driver: "raw", "node-name": "s0", file: "a" }, { driver: "raw", "node-name": "t0", file: "b" }],
  actions: [
    { atNs: 0, guest: "s0", requests: 20, intervalNs: 100_000 },
    { atNs: 2_000_000, execute: "blockdev-backup", arguments: { "job-id": "j0", device: "s0", target: "t0", sync: "full" } },
    { atNs: 2_000_000, execute: "job-pause", arguments: { id: "nope" } },
    { atNs: 3_000_000, drain: "t0", forNs: 1_000_000 },
  ],
};

describe("a fuzz scenario as a scenario file", () => {
  it("translates devices, faults, nodes, guest bursts, commands (with the reply they got) and drains (own client, begin then end)", () => {
    const run = runModel(shim);
    const sc = toScenarioFile(shim, run, { invariants: ["no-io-while-paused", "jobs-conclude"] });
    expect(sc).toMatchObject({
      profile: "current",
      devices: [{ name: "a", size: 4 * MiB, latency: 500_000 }, { name: "b", faults: [{ op: "write", errno: "EIO", once: true, "after-requests": 1000 }] }],
      guests: [{ node: "s0", start: 0, "max-requests": 20, interval: 100_000 }],
      steps: [
        { at: 2_000_000, execute: "blockdev-backup", expect: "ok" },
        { at: 2_000_000, execute: "job-pause", expect: "error" },
        { client: "drain0", at: 3_000_000, drain: { node: "t0" } },
        { client: "drain0", delay: 1_000_000, undrain: { node: "t0" } },
      ],
      expect: { invariants: ["no-io-while-paused"] },
    });
  });

  it("loads, and runs green under the current profile", () => {
    const run = runModel(shim);
    const out = exportFailure(shim, { ...run, violations: [] }, "current", join(dir, "green"));
    const r = runScenario(loadScenarioFile(out.scenarioFile));
    expect(r.failures.map((f) => f.message)).toEqual([]);
    expect(out.replayFile).toBeUndefined(); // nothing to reproduce
  });

  it("reproduces the failure under the runner and writes a replay that blocksim replay accepts", () => {
    const run = runModel(shim, { profile: "no-start-shim" });
    expect(run.violations.map((v) => v.invariant)).toContain("no-io-while-paused");
    const out = exportFailure(shim, run, "no-start-shim", join(dir, "shim"));
    expect(out.replayFile).toBe(join(dir, "shim.run.replay.json"));
    expect(out.report!.violations.map((v) => v.invariant)).toContain("no-io-while-paused");
    expect(JSON.parse(readFileSync(out.replayFile!, "utf8"))).toMatchObject({ "blocksim-replay": 1, profile: "no-start-shim", hash: out.report!.hash });
  });
});
