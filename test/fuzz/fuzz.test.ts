import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { fuzz, fuzzCheck, readFuzzReplay, replayFuzz, runModel, scenario, schedule, type FuzzScenario } from "../../sim/fuzz/index.js";

const dir = mkdtempSync(join(tmpdir(), "blocksim-fuzz-test-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const MiB = 1 << 20;

describe("the scenario arbitrary", () => {
  it("draws scenarios whose topology always sets up (every blockdev-add succeeds) and that run to an outcome", () => {
    const samples = fc.sample(scenario(), { seed: 7, numRuns: 25 });
    for (const sc of samples) {
      const r = runModel(sc);
      const adds = r.responses.filter((x) => x.execute === "blockdev-add");
      expect(adds.length).toBe(sc.nodes.length);
      expect(adds.every((x) => "return" in x.response), JSON.stringify(adds)).toBe(true);
      expect(["ok", "deadlock", "time-budget", "failure"]).toContain(r.outcome.kind);
    }
  });

  it("covers the vocabulary: job starts, verbs, transactions, drains and guest bursts all appear", () => {
    const kinds = new Set<string>();
    for (const sc of fc.sample(scenario(), { seed: 1, numRuns: 200 })) {
      for (const a of sc.actions) {
        kinds.add("execute" in a ? a.execute : "drain" in a ? "drain" : "guest");
        if ("execute" in a && a.execute === "blockdev-backup" && a.arguments?.bitmap !== undefined) kinds.add(`sync ${String(a.arguments?.sync)}`);
      }
    }
    for (const k of ["sync incremental", "sync bitmap", "block-dirty-bitmap-add", "block-dirty-bitmap-clear", "block-dirty-bitmap-remove", "blockdev-backup", "blockdev-mirror", "block-stream", "block-commit", "transaction", "job-pause", "job-resume", "job-cancel", "job-complete", "block-job-set-speed", "drain", "guest"]) {
      expect(kinds, k).toContain(k);
    }
  });

  it("schedules shrink towards FIFO: the smallest value is the empty list", () => {
    const out = fc.check(fc.property(schedule(), (p) => p.length === 0), { seed: 3, numRuns: 100 });
    expect(out.failed).toBe(true);
    expect(out.counterexample![0]).toEqual([0]);
  });
});

describe("fuzzing the current profile", () => {
  it("no invariant breaks over 60 random scenarios and schedules (fast-check seed 42)", () => {
    // groupedTransactions: false — a grouped transaction whose later action fails to prepare
    // currently ends in a use-after-free in sim/qmp (found by this fuzzer, see the race catalog README)
    fuzz({ seed: 42, numRuns: 60, scenarioOptions: { groupedTransactions: false }, replayFile: join(dir, "current-42.replay.json") });
  });
});

describe("the widened fuzzer finds the mirror's stale-copy race by itself", () => {
  it("draws devices with variable latency and long guest writers on job sources", () => {
    const samples = fc.sample(scenario(), { seed: 3, numRuns: 50 });
    expect(samples.some((sc) => sc.devices.some((d) => d.latencyMaxNs !== undefined && d.latencyMaxNs > d.latencyNs))).toBe(true);
    expect(samples.some((sc) => sc.actions.some((a) => "guest" in a && a.requests >= 100))).toBe(true);
  });

  it("with the conflict wait off (mirror-no-conflict-wait) a mirror or active commit pivots onto a stale chunk; under current the same 100 runs pivot clean (fast-check seed 4)", () => {
    const stale = fuzzCheck({ seed: 4, numRuns: 100, profile: "mirror-no-conflict-wait", invariants: ["mirror-pivot-content"], replayFile: join(dir, "stale.replay.json") });
    expect(stale, "the stale-copy race should be found in 100 runs").toBeDefined();
    expect(stale!.replay.violations[0]).toMatch(/mirror-pivot-content .* at pivot, target '\w+' differs from source/);
    expect(stale!.replay.scenario.devices.some((d) => d.latencyMaxNs !== undefined)).toBe(true);
    expect(fuzzCheck({ seed: 4, numRuns: 100, invariants: ["mirror-pivot-content"], replayFile: join(dir, "clean.replay.json") })).toBeUndefined();
  });
});

describe("a fuzz failure", () => {
  const file = join(dir, "shim.replay.json");
  const failure = fuzzCheck({ seed: 5, numRuns: 100, profile: "no-start-shim", scenarioOptions: { groupedTransactions: false }, replayFile: file });

  it("is found under the profile without the start shim, shrunk to a few actions", () => {
    expect(failure, "the seed-000 race should be found in 100 runs").toBeDefined();
    expect(failure!.replay.violations.some((v) => v.includes("no-io-while-paused"))).toBe(true);
    expect(failure!.replay.scenario.actions.length).toBeLessThanOrEqual(3);
    expect(failure!.replay.scenario.actions.some((a) => "execute" in a && /backup|transaction|mirror|stream|commit/.test(a.execute))).toBe(true);
  });

  it("prints the seed, the violation, the replay file and the one-line command", () => {
    expect(failure!.message).toMatch(/^blocksim fuzz: property failed after \d+ runs \(fast-check seed 5, path [\d:]+, \d+ shrinks\)/);
    expect(failure!.message).toContain("no-io-while-paused");
    expect(failure!.message).toContain(`replay: npx blocksim fuzz --replay ${file}`);
    expect(failure!.command).toBe(`npx blocksim fuzz --replay ${file}`);
  });

  it("writes a replay file that reproduces the same trace hash and violations", () => {
    const replay = readFuzzReplay(file);
    const again = replayFuzz(replay);
    expect(again.sameHash).toBe(true);
    expect(again.violations.map((v) => v.invariant)).toContain("no-io-while-paused");
  });

  it("fuzz() throws the same message, so a vitest property fails with it", () => {
    expect(() => fuzz({ seed: 5, numRuns: 100, profile: "no-start-shim", scenarioOptions: { groupedTransactions: false }, replayFile: file })).toThrow(/replay: npx blocksim fuzz --replay/);
  });
});

describe("user properties", () => {
  const one: FuzzScenario = {
    devices: [{ name: "a", sizeBytes: 4 * MiB, latencyNs: 100_000 }, { name: "b", sizeBytes: 4 * MiB, latencyNs: 100_000 }],
    nodes: [{ driver: "raw", "node-name": "s0", file: "a" }, { driver: "raw", "node-name": "t0", file: "b" }],
    actions: [{ atNs: 0, execute: "blockdev-backup", arguments: { "job-id": "j0", device: "s0", target: "t0", sync: "full" } }],
  };

  it("a property of the user's own fails with its counterexample", () => {
    const f = fuzzCheck({ seed: 1, numRuns: 5, scenarios: fc.constant(one), property: (run) => !run.events.includes("BLOCK_JOB_COMPLETED j0"), replayFile: join(dir, "user.replay.json") });
    expect(f?.message).toMatch(/Property failed by returning false/);
    expect(f?.message).toContain('0.0ms {"execute":"blockdev-backup"');
  });

  it("a command real QEMU 7.2 dies on is reported as the qemu-crash outcome, by the model and by fuzzCheck", () => {
    const crash: FuzzScenario = { ...one, actions: [...one.actions, { atNs: 1_000_000, execute: "blockdev-reopen", arguments: { options: [] } }] };
    expect(runModel(crash).outcome).toMatchObject({ kind: "qemu-crash", signal: "SIGABRT" });
    const f = fuzzCheck({ seed: 1, numRuns: 5, scenarios: fc.constant(crash), replayFile: join(dir, "crash.replay.json") });
    expect(f?.message).toMatch(/QEMU crashed at 1\.000 ms \(SIGABRT\): .*bs_queue != NULL/);
    expect(f?.replay.violations[0]).toMatch(/^QEMU crashed at/);
    expect(runModel(one).outcome.kind).toBe("ok");
  });

  it("a replay file of another kind is refused clearly", () => {
    const bad = join(dir, "bad.json");
    writeFileSync(bad, JSON.stringify({ "blocksim-replay": 1 }));
    expect(() => readFuzzReplay(bad)).toThrow(`${bad}: expected "blocksim-fuzz-replay": 1 (a replay file written by blocksim fuzz)`);
    expect(readFileSync(bad, "utf8")).toContain("blocksim-replay");
  });
});
