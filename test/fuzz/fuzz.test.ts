import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { main, type Io } from "../../cli/main.js";
import { fuzz, fuzzCheck, runModel, scenario, schedule, type FuzzScenario } from "../../sim/fuzz/index.js";
import { PickListStrategy } from "../../sim/harness/strategy.js";

const dir = mkdtempSync(join(tmpdir(), "blocksim-fuzz-test-"));

async function cli(...args: string[]) {
  const io: Io & { stdout: string; stderr: string } = { stdout: "", stderr: "", tty: false, out: (t) => void (io.stdout += t), err: (t) => void (io.stderr += t) };
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}
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

  it("with activeMirror, also draws write-blocking mirrors, and those runs break no invariant (fast-check seed 9)", () => {
    const active = fc.sample(scenario({ activeMirror: true }), { seed: 9, numRuns: 60 })
      .filter((sc) => sc.actions.some((a) => "execute" in a && a.arguments?.["copy-mode"] === "write-blocking"));
    expect(active.length).toBeGreaterThan(5);
    expect(fc.sample(scenario(), { seed: 9, numRuns: 60 }).some((sc) => sc.actions.some((a) => "execute" in a && a.arguments?.["copy-mode"] !== undefined))).toBe(false);
    let mirrored = 0;
    for (const sc of active.slice(0, 12)) {
      const r = runModel(sc);
      expect(r.violations, JSON.stringify(sc.actions)).toEqual([]);
      if (r.events.some((e) => /^BLOCK_JOB_(READY|COMPLETED)/.test(e))) mirrored++;
    }
    expect(mirrored).toBeGreaterThan(0);
  });

  it("covers the vocabulary: job starts, verbs, transactions, drains and guest bursts all appear", () => {
    const kinds = new Set<string>();
    for (const sc of fc.sample(scenario(), { seed: 1, numRuns: 200 })) {
      for (const a of sc.actions) {
        kinds.add("execute" in a ? a.execute : "drain" in a ? "drain" : "guest");
        if ("execute" in a && a.execute === "blockdev-backup" && a.arguments?.bitmap !== undefined) kinds.add(`sync ${String(a.arguments?.sync)}`);
      }
    }
    for (const k of ["sync incremental", "sync bitmap", "block-dirty-bitmap-add", "block-dirty-bitmap-clear", "block-dirty-bitmap-remove", "blockdev-backup", "blockdev-mirror", "block-stream", "block-commit", "transaction", "job-pause", "job-resume", "job-cancel", "block-job-cancel", "job-complete", "block-job-set-speed", "drain", "guest"]) {
      expect(kinds, k).toContain(k);
    }
  });

  it("a run with hash: false (as a campaign makes them) is the same run without its trace hash", () => {
    for (const [sc, picks] of fc.sample(fc.tuple(scenario(), schedule()), { seed: 11, numRuns: 20 })) {
      const hashed = runModel(sc, { strategy: new PickListStrategy(picks) });
      const unhashed = runModel(sc, { strategy: new PickListStrategy(picks), hash: false });
      expect(hashed.hash).toMatch(/^[0-9a-f]{16}$/);
      expect(unhashed.hash).toBeUndefined();
      expect({ ...unhashed, hash: hashed.hash }).toEqual(hashed);
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

  // Since the mirror's dirty iterator goes on where it stopped (a chunk dirtied again behind it waits for the wrap),
  // the race is rarer: seed 4 finds it after 1,042 runs, seed 35 after 33.
  it("with the conflict wait off (mirror-no-conflict-wait) a mirror or active commit pivots onto a stale chunk; under current the same 100 runs pivot clean (fast-check seed 35)", () => {
    const stale = fuzzCheck({ seed: 35, numRuns: 100, profile: "mirror-no-conflict-wait", invariants: ["mirror-pivot-content"], replayFile: join(dir, "stale.replay.json") });
    expect(stale, "the stale-copy race should be found in 100 runs").toBeDefined();
    expect(stale!.replay.violations[0]).toMatchObject({ invariant: "mirror-pivot-content", detail: expect.stringMatching(/at pivot, target '\w+' differs from source/) });
    expect(stale!.scenario.devices.some((d) => d.latencyMaxNs !== undefined)).toBe(true);
    expect(stale!.replay.subject).toMatchObject({ invariants: ["mirror-pivot-content"] });
    expect(fuzzCheck({ seed: 35, numRuns: 100, invariants: ["mirror-pivot-content"], replayFile: join(dir, "clean.replay.json") })).toBeUndefined();
  });
});

describe("a fuzz drain is held as QEMU's internal callers hold one: no QMP command is dispatched inside it", () => {
  // fuzz --seed 114000's case at run 64,037, shrunk: a READY mirror of top to t0, a guest burst on top, t0 drained
  // for 2.2 ms, and a soft cancel sent 0.1 ms after the drain. QEMU 7.2 would wake the drained mirror if the cancel
  // ran inside the section (job_enter_cond ignores `paused`), but the dispatcher waits in the iohandler context,
  // which the section's nested polls never run: the cancel is dispatched after drained_end.
  const sc: FuzzScenario = {
    devices: [
      { name: "ds0", sizeBytes: 4 * MiB, latencyNs: 500_000, latencyMaxNs: 10_500_000 },
      { name: "dt0", sizeBytes: 4 * MiB, latencyNs: 100_000 },
      { name: "top.qcow2", sizeBytes: 4 * MiB, latencyNs: 2_000_000, latencyMaxNs: 5_000_000 },
    ],
    nodes: [
      { driver: "raw", "node-name": "t0", file: "dt0" },
      { driver: "qcow2", "node-name": "top", file: "top.qcow2" },
    ],
    actions: [
      { atNs: 39_300_000, execute: "blockdev-mirror", arguments: { "job-id": "j1", device: "top", target: "t0", sync: "full" } },
      { atNs: 93_500_000, guest: "top", requests: 100, intervalNs: 100_000 },
      { atNs: 153_800_000, drain: "t0", forNs: 2_200_000 },
      { atNs: 153_900_000, execute: "block-job-cancel", arguments: { device: "j1", force: false } },
    ],
    maxTimeNs: 30e9,
  };
  const sectionOf = (run: ReturnType<typeof runModel>) => {
    const trace = run.trace!;
    const established = trace.findIndex((x) => x.src === "block" && x.kind === "drained" && x.data?.node === "t0");
    const ended = trace.findIndex((x) => x.src === "block" && x.kind === "drained-end" && x.data?.node === "t0");
    expect(established).toBeGreaterThan(0);
    expect(ended).toBeGreaterThan(established);
    return { before: trace.slice(0, established), inside: trace.slice(established, ended), after: trace.slice(ended) };
  };

  it("the soft cancel sent inside the section is dispatched and answered after its end, and the mirror writes nothing to t0 inside it", () => {
    const r = runModel(sc, { trace: true });
    const { inside, after } = sectionOf(r);
    expect(inside.filter((x) => x.src === "qmp")).toEqual([]);
    expect(after.find((x) => x.src === "qmp")).toMatchObject({ kind: "command", data: { execute: "block-job-cancel" } });
    expect(inside.filter((x) => x.kind === "io" && x.data?.issuer === "job:j1")).toEqual([]);
    expect(r.violations).toEqual([]);
    expect(r.responses.find((x) => x.execute === "block-job-cancel")?.response).toEqual({ return: {} });
    expect(r.events.slice(0, 7)).toEqual(["j1:created", "j1:running", "j1:ready", "BLOCK_JOB_READY j1", "j1:standby", "j1:ready", "j1:waiting"]);
  });

  it("what is due meanwhile runs in the section's nested poll: the guest's writes to top go on, the drained mirror stays in standby", () => {
    // top fast, and the burst later, so that the guest writes on top throughout the section
    const fast: FuzzScenario = {
      ...sc,
      devices: sc.devices.map((d) => (d.name === "top.qcow2" ? { name: d.name, sizeBytes: d.sizeBytes, latencyNs: 100_000 } : d)),
      actions: sc.actions.map((a) => ("guest" in a ? { ...a, atNs: 153_000_000 } : a)),
    };
    const { before, inside, after } = sectionOf(runModel(fast, { trace: true }));
    expect(before.filter((x) => x.kind === "status").at(-1)?.data).toEqual({ from: "ready", to: "standby" });
    expect(inside.filter((x) => x.src === "top.qcow2" && x.kind === "io" && x.data?.issuer === "guest").length).toBeGreaterThan(5);
    // the job paused when the section began and is resumed by its end, at the end's instant
    expect(inside.filter((x) => x.kind === "status").map((x) => [x.t, x.data])).toEqual([[after[0].t, { from: "standby", to: "ready" }]]);
    expect(inside.filter((x) => x.src === "qmp" || (x.kind === "io" && x.data?.issuer === "job:j1"))).toEqual([]);
  });
});

describe("a QMP command's own drained sections are nested polls of the main loop, not yields", () => {
  // fuzz --seed 120000's case at run 228,717, shrunk: an incremental backup j2 of s0 to t2, then a full backup j0
  // of s1 to the same t2 while a guest writes to s1. blockdev-backup (a transaction: bdrv_drain_all, then a drained
  // section of the source around creating the job) is no coroutine in QEMU 7.2: its drains poll from the main loop,
  // so j2's exit, which runs in that poll, finishes (its clean drops its filter in a nested poll of its own) before
  // the handler goes on to j0's checks. A handler that yielded instead was resumed inside j2's clean, created j0
  // there, and j0 overwrote t2 before j2 completed: backup-point-in-time.
  const sc: FuzzScenario = {
    devices: [
      { name: "ds0", sizeBytes: 4 * MiB, latencyNs: 500_000, latencyMaxNs: 10_500_000 },
      { name: "ds1", sizeBytes: 4 * MiB, latencyNs: 100_000, latencyMaxNs: 3_100_000, faults: [{ op: "read", errno: "ENOSPC", once: true, afterRequests: 38 }] },
      { name: "dt2", sizeBytes: 4 * MiB, latencyNs: 2_000_000 },
    ],
    nodes: [
      { driver: "raw", "node-name": "s0", file: "ds0" },
      { driver: "raw", "node-name": "s1", file: "ds1" },
      { driver: "raw", "node-name": "t2", file: "dt2" },
    ],
    actions: [
      { atNs: 0, execute: "block-dirty-bitmap-add", arguments: { node: "s0", name: "b0" } },
      { atNs: 0, guest: "s1", requests: 130, intervalNs: 500_000 },
      { atNs: 80_800_000, guest: "s0", requests: 13, intervalNs: 0 },
      { atNs: 97_700_000, execute: "blockdev-backup", arguments: { "job-id": "j2", device: "s0", target: "t2", sync: "incremental", bitmap: "b0" } },
      { atNs: 97_800_000, execute: "blockdev-backup", arguments: { "job-id": "j0", device: "s1", target: "t2", sync: "full" } },
    ],
    maxTimeNs: 30e9,
  };

  it("the first backup completes inside the second's drain, before the second job is created; t2 holds j2's point in time at its end", () => {
    const r = runModel(sc);
    expect(r.violations).toEqual([]);
    expect(r.responses.filter((x) => x.execute === "blockdev-backup").map((x) => x.response)).toEqual([{ return: {} }, { return: {} }]);
    expect(r.events.indexOf("BLOCK_JOB_COMPLETED j2")).toBeGreaterThan(0);
    expect(r.events.indexOf("BLOCK_JOB_COMPLETED j2")).toBeLessThan(r.events.indexOf("j0:created"));
  });
});

describe("a fuzz failure", () => {
  const file = join(dir, "shim.replay.json");
  const failure = fuzzCheck({ seed: 5, numRuns: 100, profile: "no-start-shim", scenarioOptions: { groupedTransactions: false }, replayFile: file });

  it("is found under the profile without the start shim, shrunk to a few actions", () => {
    expect(failure, "the seed-000 race should be found in 100 runs").toBeDefined();
    expect(failure!.replay.violations.some((v) => v.invariant === "no-io-while-paused")).toBe(true);
    expect(failure!.scenario.actions.length).toBeLessThanOrEqual(3);
    expect(failure!.scenario.actions.some((a) => "execute" in a && /backup|transaction|mirror|stream|commit/.test(a.execute))).toBe(true);
    expect(failure!.replay.subject).toEqual({ fuzz: failure!.scenario });
  });

  it("prints the seed, the violation, the replay file and the one-line command", () => {
    expect(failure!.message).toMatch(/^blocksim fuzz: property failed after \d+ runs \(fast-check seed 5, path [\d:]+, \d+ shrinks\)/);
    expect(failure!.message).toContain("no-io-while-paused");
    expect(failure!.message).toContain(`replay: npx blocksim replay ${file}`);
    expect(failure!.message).toContain(`timeline: npx blocksim timeline ${file} -o ${join(dir, "shim")}.html`);
    expect(failure!.command).toBe(`npx blocksim replay ${file}`);
  });

  it("writes one replay file that blocksim replay reproduces (same trace hash, same violation) and timeline draws", async () => {
    const r = await cli("replay", file, "--quiet");
    expect(r.stdout).toContain(`REPLAY REPRODUCED ${file}: same choices, trace hash ${failure!.replay.hash}, and the same failure`);
    expect(r.code).toBe(1);
    const t = await cli("timeline", file, "-o", join(dir, "shim.html"));
    expect(t.stdout).toBe(`FAIL fuzz case: timeline written to ${join(dir, "shim.html")}\n`);
    expect(readFileSync(join(dir, "shim.html"), "utf8")).toMatch(/job j\d+|blockdev-backup|no-io-while-paused/);
  });

  it("a file of the old fuzz format is refused in one line, and convert-replay converts it", async () => {
    const old = join(dir, "old.replay.json"), conv = join(dir, "old-new.replay.json");
    const rec = failure!.replay;
    writeFileSync(old, JSON.stringify({ "blocksim-fuzz-replay": 1, profile: rec.profile, seed: 0, scenario: failure!.scenario, choices: rec.choices, hash: rec.hash, violations: [], found: { fcSeed: 5, runs: 9 } }));
    const refused = await cli("replay", old);
    expect(refused.stderr).toBe(`blocksim: ${old}: an old replay format ("blocksim-fuzz-replay" (blocksim fuzz)); convert it with: blocksim convert-replay ${old} -o ${old}\n`);
    expect(refused.code).toBe(2);
    expect((await cli("convert-replay", old, "-o", conv)).code).toBe(0);
    expect(JSON.parse(readFileSync(conv, "utf8"))).toMatchObject({ subject: { fuzz: failure!.scenario }, hash: rec.hash, ok: false, violations: rec.violations });
    expect((await cli("replay", conv, "--quiet")).stdout).toContain(`REPLAY REPRODUCED ${conv}`);
  });

  it("fuzz() throws the same message, so a vitest property fails with it", () => {
    expect(() => fuzz({ seed: 5, numRuns: 100, profile: "no-start-shim", scenarioOptions: { groupedTransactions: false }, replayFile: file })).toThrow(/replay: npx blocksim replay /);
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
    expect(f?.message).toContain('0.000000 ms {"execute":"blockdev-backup"');
  });

  it("a command real QEMU 7.2 dies on is reported as the qemu-crash outcome, by the model and by fuzzCheck", () => {
    const crash: FuzzScenario = { ...one, actions: [...one.actions, { atNs: 1_000_000, execute: "blockdev-reopen", arguments: { options: [] } }] };
    expect(runModel(crash).outcome).toMatchObject({ kind: "qemu-crash", signal: "SIGABRT" });
    const f = fuzzCheck({ seed: 1, numRuns: 5, scenarios: fc.constant(crash), replayFile: join(dir, "crash.replay.json") });
    expect(f?.message).toMatch(/QEMU crashed at 1\.000000 ms \(SIGABRT\): .*bs_queue != NULL/);
    expect(f?.replay).toMatchObject({ ok: false, outcome: "qemu-crash" });
    expect(runModel(one).outcome.kind).toBe("ok");
  });

});

describe("under txn-dead-pointer (finalized members stay in their transaction's list)", () => {
  // Fast-check seed 1's first run: a grouped transaction whose second action fails to prepare. Its abort walked
  // the member list from the head, and the first member, finalized but kept listed by this profile, was never
  // passed over: the run looped for ever inside one step.
  const txn: FuzzScenario = {
    devices: [{ name: "ds0", sizeBytes: 4 * MiB, latencyNs: 2_000_000 }, { name: "ds1", sizeBytes: 4 * MiB, latencyNs: 100_000 }, { name: "dt0", sizeBytes: 4 * MiB, latencyNs: 500_000 }],
    nodes: [{ driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "s1", file: "ds1" }, { driver: "raw", "node-name": "t0", file: "dt0" }],
    actions: [{
      atNs: 0, execute: "transaction", arguments: {
        actions: [{ type: "blockdev-backup", data: { "job-id": "j1", device: "s0", target: "t0", sync: "full" } }, { type: "blockdev-backup", data: { "job-id": "j1", device: "s1", target: "t0", sync: "none" } }],
        properties: { "completion-mode": "grouped" },
      },
    }],
    maxTimeNs: 30e9,
  };

  it("the abort of a transaction passes over its finalized member and the run ends with the profile's violation", () => {
    const r = runModel(txn, { profile: "txn-dead-pointer" });
    expect(r.outcome.kind).toBe("ok");
    expect(r.responses.at(-1)).toEqual({ execute: "transaction", response: { error: { class: "GenericError", desc: "Node 't0' is busy: block device is in use by block job: backup" } } });
    expect(r.events).toEqual(["j1:created", "j1:running", "j1:paused", "j1:running", "j1:aborting", "BLOCK_JOB_CANCELLED j1", "j1:concluded", "j1:null"]);
    expect(r.violations.map((v) => v.invariant)).toEqual(["txn-member-completes-before-commit"]);
    // current (both fixes: the job starts in the commit, the finalized member leaves the list) runs it clean
    expect(runModel(txn, { profile: "current" }).violations).toEqual([]);
  });

  it("a campaign from fast-check seed 1 finds that violation in its first run and shrinks it", () => {
    const f = fuzzCheck({ seed: 1, numRuns: 2000, profile: "txn-dead-pointer", replayFile: join(dir, "txn-dead-pointer.replay.json") });
    expect(f?.message).toMatch(/property failed after 1 runs/);
    expect(f?.message).toContain("txn-member-completes-before-commit");
  });
});
