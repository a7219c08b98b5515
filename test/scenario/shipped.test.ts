import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario, type RunOptions } from "../../sim/scenario/runner.js";
import { loadReplayScenario, readReplayFile } from "../../sim/scenario/replay.js";
import { verdict } from "../../sim/report/text.js";
import { RandomStrategy, type Strategy } from "../../sim/scheduler/index.js";

const dir = new URL("../../scenarios/", import.meta.url);
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith(".replay.json")).sort();

describe("every shipped scenario", () => {
  it("is listed in scenarios/README.md", () => {
    const readme = readFileSync(new URL("README.md", dir), "utf8");
    for (const f of files) expect(readme, `${f} is not in scenarios/README.md`).toContain(`\`${f}\``);
    expect(files.length).toBeGreaterThanOrEqual(10);
  });

  for (const f of files) {
    it(`${f} runs green, twice with the same trace hash, with or without the trace kept`, () => {
      const loaded = loadScenarioFile(new URL(f, dir).pathname, `scenarios/${f}`);
      const a = runScenario(loaded);
      expect(a.ok, verdict(a)).toBe(true);
      expect([loaded.scenario.expect.outcome].flat()).toContain(a.outcome.kind);
      const b = runScenario(loaded, { keepTrace: true });
      expect(b.hash).toBe(a.hash);
      expect(b.trace!.length).toBeGreaterThan(0);
      expect(a.trace).toBeUndefined();
    });
  }
});

describe("the scenarios show what they say", () => {
  const run = (f: string, opts: RunOptions = {}) => runScenario(loadScenarioFile(new URL(f, dir).pathname, f), opts);

  it("reopen-empty-crash: QEMU crashes on the empty reopen, at that instant, with the signal and the assertion; no reply", () => {
    const r = run("reopen-empty-crash.yaml");
    expect(r.outcome).toEqual({ kind: "qemu-crash", timeNs: 11_000_000, signal: "SIGABRT", reason: expect.stringContaining("bs_queue != NULL") });
    expect(r.steps[1].state).toBe("running");
    expect(r.log.some((e) => e.kind === "reply" && e.step === 1)).toBe(false);
  });

  it("iothread-exit-returns-to-main: QEMU 7.2's hang, deadlocked on io0's lock in the filter drop's poll (FIFO); when io0 wins the lock, both go on", () => {
    const events = (r: ReturnType<typeof run>) =>
      r.log.flatMap((e) => (e.kind === "event" && e.t >= 70e6 ? [`${e.event} ${String(e.data.id ?? e.data.device)}${e.data.status ? ` ${String(e.data.status)}` : ""}`] : []));
    const hang = run("iothread-exit-returns-to-main.yaml");
    expect(hang.outcome.kind).toBe("deadlock");
    const waiting = hang.outcome.kind === "deadlock" ? hang.outcome.waiting : [];
    expect(waiting).toContainEqual({ process: "job:j0", on: "job 'j0' to be entered" });
    expect(waiting).toContainEqual({ process: 'timer "co_schedule_bh"', on: "the AioContext lock of io0, held 1 time by the main loop" });
    expect(waiting.find((w) => w.process === "main loop")?.on).toMatch(/^nested poll: drained_begin\("#block\d+"\)$/);
    expect(events(hang)).toEqual(["JOB_STATUS_CHANGE j1 aborting", "JOB_STATUS_CHANGE j0 paused"]);
    // The one other order: io0 takes its lock in the move's window (the choice the kernel logs there).
    const io0First: Strategy = { name: "io0-first", pickNext: () => 0, choose: (label) => (label.startsWith("the thread of io0 takes its AioContext lock") ? 1 : 0) };
    const goesOn = run("iothread-exit-returns-to-main.yaml", { strategy: io0First });
    expect(goesOn.outcome.kind, verdict(goesOn)).toBe("ok");
    expect(events(goesOn)).toEqual([
      "JOB_STATUS_CHANGE j1 aborting", "JOB_STATUS_CHANGE j0 paused", "JOB_STATUS_CHANGE j0 running", "JOB_STATUS_CHANGE j0 paused", "JOB_STATUS_CHANGE j0 running",
      "BLOCK_JOB_CANCELLED j1", "JOB_STATUS_CHANGE j1 concluded", "JOB_STATUS_CHANGE j1 null",
      "JOB_STATUS_CHANGE j0 waiting", "JOB_STATUS_CHANGE j0 pending", "BLOCK_JOB_COMPLETED j0", "JOB_STATUS_CHANGE j0 concluded", "JOB_STATUS_CHANGE j0 null",
    ]);
  });

  it("mirror-pending-qemu-io-hang: the qemu-io write gets no reply, ever; the run ends in a deadlock whose unanswered step names the completed mirror's section", () => {
    const r = run("mirror-pending-qemu-io-hang.yaml");
    expect(r.outcome.kind).toBe("deadlock");
    expect(r.steps[2].state).toBe("running");
    expect(r.steps[2].waitingFor).toBe("blk(qemu-io): its node to leave the drained section (1 request queued), which the completed mirror job 'mirror0' holds until its exit (job-finalize: auto-finalize is off)");
    expect(r.log.some((e) => e.kind === "reply" && e.step === 2)).toBe(false);
    expect(verdict(r)).toContain("steps[2] human-monitor-command still running, waiting for blk(qemu-io)");
  });

  it("start-shim: under no-start-shim some random schedule does I/O while paused, and the report names the invariant", () => {
    const r = run("start-shim.yaml", { profile: "no-start-shim", strategy: new RandomStrategy(1), seed: 1 });
    expect(r.ok).toBe(false);
    expect(r.violations.some((v) => v.invariant === "no-io-while-paused")).toBe(true);
    expect(r.failures.some((f) => f.kind === "invariant" && f.message.includes("no-io-while-paused"))).toBe(true);
  });

  it("mgmt-polling: the poller waits behind the synchronous abort under libvirt profiles, not beside it under query-beside-modify", () => {
    const starved = run("mgmt-polling.yaml", { profile: "info-modify-job" });
    expect(starved.ok, verdict(starved)).toBe(true);
    expect(starved.violations.filter((v) => v.invariant === "query-wait-bound").length).toBeGreaterThan(0);
    const poll = starved.steps.find((s) => s.label === "poll vda")!;
    expect((poll.response as { return: { "worst-latency-ns": number } }).return["worst-latency-ns"]).toBeGreaterThan(1e9);
    const beside = run("mgmt-polling.yaml", { profile: "query-beside-modify" });
    expect(beside.violations.filter((v) => v.invariant === "query-wait-bound")).toEqual([]);
    expect(beside.failures.map((f) => f.message)).toEqual(["expected invariant query-wait-bound to be violated (the race reproduced), but it held"]);
  });

  it("mirror-variable-latency: the mirror waits for a chunk's in-flight copy (seeds 0-15 pivot clean); without the wait a stale copy lands last", () => {
    const clean = Array.from({ length: 16 }, (_, seed) => run("mirror-variable-latency.yaml", { seed }));
    expect(clean.filter((r) => !r.ok).map((r) => verdict(r))).toEqual([]);
    // seed 4 of 0-15 (2 and 3 before the mirror's dirty iterator went on where it stopped)
    const stale = [4].map((seed) => run("mirror-variable-latency.yaml", { seed, profile: "mirror-no-conflict-wait" }));
    for (const r of stale) {
      expect(r.ok).toBe(false);
      expect(r.violations.map((v) => v.invariant)).toEqual(["mirror-pivot-content"]);
    }
  });

  it("a changed expectation fails with a diff naming what differs", () => {
    const loaded = loadScenarioFile(new URL("stream.yaml", dir).pathname, "stream.yaml");
    const seq = (loaded.scenario.expect.events as { sequence: unknown[] }).sequence;
    seq[2] = { event: "JOB_STATUS_CHANGE", data: { id: "stream0", status: "ready" } };
    const r = runScenario(loaded);
    expect(r.ok).toBe(false);
    expect(r.failures[0].message).toBe("the events differ from the expected exact sequence at event #2");
    expect(r.failures[0].expected).toContain('=> #2 JOB_STATUS_CHANGE {"id":"stream0","status":"ready"}');
    expect(r.failures[0].observed?.find((l) => l.startsWith("=>"))).toMatch(/"status":"waiting"/);
  });
});

describe("the replay files of shipped scenarios that are not races (subject: a scenario file; the races' own are checked in test/fuzz/races.test.ts)", () => {
  const replays = (readdirSync(dir, { recursive: true }) as string[]).filter((f) => f.endsWith(".replay.json") && !f.startsWith("races/"))
    .filter((f) => "scenario" in readReplayFile(new URL(f, dir).pathname).replay.subject).sort();

  it("there is one per seed scenario", () => {
    expect(replays).toEqual(["start-shim.no-start-shim.replay.json", "txn-start-in-commit.txn-start-on-create.replay.json"]);
  });

  for (const f of replays) {
    it(`${f}: records the race's violation; the same scenario passes under the current profile`, () => {
      const rp = readReplayFile(new URL(f, dir).pathname);
      const { loaded, staleScenario } = loadReplayScenario(rp);
      expect(staleScenario).toBeUndefined();
      expect(rp.replay.ok).toBe(false);
      const want = f.startsWith("start-shim") ? "no-io-while-paused" : "txn-member-completes-before-commit";
      expect(rp.replay.violations.map((v) => v.invariant)).toContain(want);
      const fixed = runScenario(loaded, { seed: rp.replay.seed, profile: "current", strategy: new RandomStrategy(rp.replay.seed) });
      expect(fixed.ok, verdict(fixed)).toBe(true);
    });
  }
});
