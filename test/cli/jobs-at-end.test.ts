/**
 * Where a run stood when its budget ended it: a replayed fuzz case names the
 * jobs still active, as `blocksim run` does for a scenario.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMain as run } from "./run-main.js";
import { fuzzReport } from "../../sim/fuzz/report.js";
import type { FuzzScenario } from "../../sim/fuzz/model.js";
import { makeReplayOf, writeReplayFile } from "../../sim/scenario/replay.js";
import { FifoStrategy } from "../../sim/scheduler/index.js";

const dir = mkdtempSync(join(tmpdir(), "blocksim-jobs-at-end-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const MiB = 1 << 20;

describe("the jobs left when a run ends on its budget", () => {
  it("a fuzz case's replay names the backup still running at the time limit", async () => {
    // A source whose every read takes 50 ms and a 20 ms budget: the backup has copied nothing when the time runs out.
    const model: FuzzScenario = {
      devices: [{ name: "a", sizeBytes: 4 * MiB, latencyNs: 50_000_000 }, { name: "b", sizeBytes: 4 * MiB, latencyNs: 100_000 }],
      nodes: [{ driver: "raw", "node-name": "s0", file: "a" }, { driver: "raw", "node-name": "t0", file: "b" }],
      actions: [{ atNs: 0, execute: "blockdev-backup", arguments: { "job-id": "j0", device: "s0", target: "t0", sync: "full" } }],
      maxTimeNs: 20_000_000,
    };
    const file = join(dir, "budget.replay.json");
    const report = fuzzReport(model, { profile: "current", seed: 1, strategy: new FifoStrategy() });
    writeReplayFile(file, makeReplayOf({ fuzz: model as unknown as Record<string, unknown> }, report));
    const r = await run("replay", file);
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("(the time limit (20ms from the start of setup) with work still due at 50.000000 ms)");
    expect(r.stdout).toContain("\n  when it ended: job j0 (backup) running, 0B of 4MiB\n");
    expect(r.stdout).toContain("REPLAY REPRODUCED");
  });

});
