/**
 * The race catalog: races from QEMU's (and libvirt's) history, each a
 * scenario on the simulated QEMU, a profile that restores the buggy
 * behaviour, the invariant it breaks, and the commit that fixed it.
 *
 *   npx tsx sim/races/catalog.ts            explore each under its buggy and fixed profile
 *   npx tsx sim/races/catalog.ts --write    also (re)write <name>.replay.json for the new races
 *
 * The seed races (seed-races.ts, seed-004.ts) are listed here through thin
 * adapters; their replay files belong to those files.
 *
 * New races (each checked with sim/check; see README.md here):
 * - drain-during-job-io (89bd030533): a backup (1 MiB copy tasks) from
 *   a slow source to a fast target; at a chosen moment a short drained
 *   section is taken on the target. Before the fix a drain waited only for
 *   the node's in-flight requests, not for the job to reach a pause point:
 *   if it began while the copy tasks were reading the source, the target had
 *   nothing in flight, the drain settled, and the tasks' writes landed
 *   inside it.
 * - error-stop-stacks-pauses (8d9648cbf3): a mirror with on-target-error
 *   enospc; the target is out of space for the writes the schedule picks.
 *   Before the fix every failed request of the stop action added a pause:
 *   after the administrator frees space and resumes, a mirror that had two
 *   writes fail stays paused for ever (the commit names mirror's parallel
 *   requests).
 * - cancel-error-stopped-job (e321c0597c): a backup with on-target-error
 *   stop whose target writes may fail (a choice), cancelled by the user at
 *   5 ms. If the cancel finds the job stopped by an I/O error, the pre-fix
 *   cancel cleared user_paused before the resume hook, whose assertion
 *   (block_job_iostatus_reset) aborts QEMU.
 */
import { writeFileSync } from "node:fs";
import { checkRun, type CheckViolation } from "../check/index.js";
import { explore as exploreSchedules, picksOf, shrinkPicks, PickListStrategy, type ExploreStrategy, type Found, type Subject, type SubjectRun } from "../harness/explore.js";
import { packageUrl } from "../scenario/package-root.js";
import { makeReplayRecord, replayText, type ReplayFile } from "../scenario/replay.js";
import { profileBehaviour } from "../qmp/profiles.js";
import { createQemu, type Qemu } from "../qmp/qemu.js";
import type { QmpResponse } from "../qmp/types.js";
import { choose, parseChoiceLog, ReplayStrategy, Scheduler, sleep, spawn, type Process, type Strategy } from "../scheduler/index.js";
import { SEED_004_RACES } from "./seed-004.js";
import { SEED_RACES, TXN_START_RACE } from "./seed-races.js";

const MiB = 1 << 20;
const ms = 1_000_000;

/** One catalogued race. */
export interface CatalogRace {
  name: string;
  /** One line: what happens. */
  title: string;
  /** The profile that restores the bug, and one that has the fix. */
  buggyProfile: string;
  fixedProfile: string;
  /** The invariant (or rule) it breaks. */
  invariant: string;
  /** The commit that fixed it, with its title and date. */
  fixedBy: string;
  /** Runs the scenario once; violations are of `invariant` only. */
  run(profile: string, seed: number, strategy: Strategy): SubjectRun;
  /** Where its replay file lives (owned by this file for the new races). */
  replayFile?: URL;
}

/** A race on one simulated QEMU: builds the world, checks `invariant` with sim/check, runs. */
function qemuRace(o: Omit<CatalogRace, "run" | "replayFile"> & { maxTimeNs?: number; build(q: Qemu, qmp: (e: string, a?: Record<string, unknown>) => Process<QmpResponse>): Process }): CatalogRace {
  return {
    ...o,
    replayFile: packageUrl("scenarios", "races", `${o.name}.replay.json`),
    run(profile, seed, strategy) {
      const sim = new Scheduler({ seed, strategy, maxTimeNs: o.maxTimeNs ?? 10e9, maxSteps: 2_000_000 });
      const q = createQemu(sim, profileBehaviour(profile));
      const check = checkRun(q, [o.invariant]);
      const qmp = (execute: string, args?: Record<string, unknown>) => q.monitor.execute(args ? { execute, arguments: args } : { execute });
      sim.spawn("client", o.build(q, qmp));
      const r = sim.run();
      const violations: CheckViolation[] = check.finish(r);
      return { hash: r.hash, choices: r.choices, violations };
    },
  };
}

const disk = (q: Qemu, name: string, sizeBytes: number, latencyNs: number) =>
  q.addDevice({ name, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: latencyNs, writeLatencyNs: latencyNs, bandwidthBytesPerSec: 0, queueDepth: 8 });

/**
 * A stream of a 4 MiB qcow2 over a raw base full of data, at 64 KiB/s: after
 * its first 512 KiB chunk the job sleeps about 8 s (the world of two races).
 */
function* throttledStream(q: Qemu, qmp: (e: string, a?: Record<string, unknown>) => Process<QmpResponse>): Process<void> {
  disk(q, "base.img", 4 * MiB, 500_000);
  disk(q, "top.qcow2", 4 * MiB, 500_000);
  yield q.devices.get("base.img")!.io({ op: "write", offset: 0, bytes: 4 * MiB, issuer: "qemu-img" });
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "base", file: "base.img" });
  yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top.qcow2", backing: "base" });
  yield* qmp("block-stream", { "job-id": "stream0", device: "top", speed: 64 * 1024 });
}

function* untilGone(q: Qemu, boundNs: number): Process<void> {
  const end = q.sim.now + boundNs;
  while (q.jm.jobs.length > 0 && q.sim.now < end) yield sleep(ms);
}

export const DRAIN_DURING_JOB_IO = qemuRace({
  name: "drain-during-job-io",
  title: "a drain of a backup's target settles while the backup's copies are still reading the source; their writes land inside it",
  buggyProfile: "drain-ignores-jobs",
  fixedProfile: "current",
  invariant: "job-io-in-drained-section",
  fixedBy: "qemu 89bd030533 (2018-03-22, 'block: Really pause block jobs on drain')",
  *build(q, qmp) {
    disk(q, "disk.img", 8 * MiB, 2 * ms);
    disk(q, "backup.img", 8 * MiB, 200_000);
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "disk.img" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "backup.img" });
    yield* qmp("blockdev-backup", { "job-id": "backup0", device: "src", target: "tgt", sync: "full" });
    const tgt = q.graph.node("tgt");
    // A short drained section on the target, as QEMU's internal callers take them (block_resize, a snapshot, …), at a chosen moment.
    const atNs = ((yield choose("drain start (100 us)", 20)) as number) * 100_000;
    yield sleep(1 * ms + atNs);
    yield* q.graph.drainedBegin(tgt);
    yield sleep(2 * ms);
    q.graph.drainedEnd(tgt);
    yield* untilGone(q, 5e9);
  },
});

export const ERROR_STOP_STACKS_PAUSES = qemuRace({
  name: "error-stop-stacks-pauses",
  title: "two of a mirror's parallel writes hit ENOSPC; each stop adds a pause, so one resume leaves the job paused for ever",
  buggyProfile: "error-stop-stacks-pauses",
  fixedProfile: "current",
  invariant: "jobs-conclude",
  fixedBy: "qemu 8d9648cbf3 (2019-03-19, 'blockjob: fix user pause in block_job_error_action')",
  *build(q, qmp) {
    disk(q, "disk.img", 4 * MiB, 200_000);
    const tgt = disk(q, "full.img", 4 * MiB, 1 * ms);
    // The target is out of space for whichever writes the schedule picks, until the administrator frees some.
    tgt.faults.add({ op: "write", errno: "ENOSPC", choose: "full.img write fails" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "disk.img" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "full.img" });
    yield* qmp("blockdev-mirror", { "job-id": "mirror0", device: "src", target: "tgt", sync: "full", "on-target-error": "enospc" });
    const job = () => q.jm.get("mirror0");
    while (job() && job()!.iostatus === "ok" && job()!.status !== "ready") yield sleep(100_000);
    if (job()?.iostatus !== "ok") {
      while (job() && job()!.status !== "paused") yield sleep(100_000);
      tgt.faults.clear(); // space freed
      yield* qmp("block-job-resume", { device: "mirror0" });
    }
    tgt.faults.clear();
    const end = q.sim.now + 2e9;
    while (job() && job()!.status !== "ready" && q.sim.now < end) yield sleep(ms);
    if (job()?.status === "ready") yield* qmp("block-job-complete", { device: "mirror0" });
    yield* untilGone(q, 2e9);
  },
});

export const CANCEL_ERROR_STOPPED_JOB = qemuRace({
  name: "cancel-error-stopped-job",
  title: "a cancel finds the backup stopped by an I/O error; the resume hook asserts and QEMU aborts",
  buggyProfile: "cancel-clears-user-paused-early",
  fixedProfile: "current",
  invariant: "no-crash",
  fixedBy: "qemu e321c0597c (2018-08-21, 'block: for jobs, do not clear user_paused until after the resume')",
  *build(q, qmp) {
    disk(q, "disk.img", 4 * MiB, 200_000);
    const tgt = disk(q, "flaky.img", 4 * MiB, 1_000_000);
    tgt.faults.add({ op: "write", errno: "EIO", choose: "flaky.img write fails" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "disk.img" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "flaky.img" });
    yield* qmp("blockdev-backup", { "job-id": "backup0", device: "src", target: "tgt", sync: "full", "on-target-error": "stop", speed: 8 * MiB });
    // The first 1 MiB chunk overshoots the 8 MiB/s quota: the copy sleeps ~125 ms, and a failed write is
    // acted on (stop) when that sleep ends — as QEMU's block-copy does. The cancel comes after.
    yield sleep(200 * ms);
    yield* qmp("block-job-cancel", { device: "backup0", force: true });
    yield* untilGone(q, 2e9);
  },
});

export const SET_SPEED_ZERO_NO_KICK = qemuRace({
  name: "set-speed-zero-no-kick",
  title: "set-speed 0 arrives while a throttled stream sleeps; the job sleeps out its old delay and misses its deadline",
  buggyProfile: "set-speed-zero-no-kick",
  fixedProfile: "current",
  invariant: "jobs-conclude",
  fixedBy: "qemu d4fce18844 (2018-03-10, 'blockjobs: fix set-speed kick')",
  maxTimeNs: 3e9,
  *build(q, qmp) {
    yield* throttledStream(q, qmp);
    // The operator lifts the limit at a chosen moment: while the first chunk is being copied, or once the job sleeps.
    const atNs = ((yield choose("set-speed at (250 us)", 8)) as number) * 250_000;
    yield sleep(atNs);
    yield* qmp("block-job-set-speed", { device: "stream0", speed: 0 });
    yield* untilGone(q, 10e9);
  },
});

export const MIRROR_SOFT_CANCEL_PRE_READY = qemuRace({
  name: "mirror-soft-cancel-pre-ready",
  title: "a soft block-job-cancel reaches a mirror before READY; the mirror runs on and completes instead of cancelling",
  buggyProfile: "mirror-soft-cancel-pre-ready",
  fixedProfile: "current",
  invariant: "cancel-honoured",
  fixedBy: "qemu eb36639f7b (2018-05-02, 'block/mirror: Make cancel always cancel pre-READY')",
  *build(q, qmp) {
    disk(q, "disk.img", 8 * MiB, 500_000);
    disk(q, "copy.img", 8 * MiB, 1 * ms);
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "disk.img" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "copy.img" });
    yield* qmp("blockdev-mirror", { "job-id": "mirror0", device: "src", target: "tgt", sync: "full" });
    // The user cancels (without force) at a chosen moment: before the mirror is in sync, or after READY.
    const atNs = ((yield choose("cancel at (1 ms)", 8)) as number) * ms;
    yield sleep(atNs);
    yield* qmp("block-job-cancel", { device: "mirror0" });
    yield* untilGone(q, 2e9);
  },
});

export const CANCEL_SLEEPING_JOB = qemuRace({
  name: "cancel-sleeping-job",
  title: "a cancel reaches a throttled stream while it sleeps; the job is not woken and the cancel takes seconds",
  buggyProfile: "enter-skips-sleeping-job",
  fixedProfile: "current",
  invariant: "jobs-conclude",
  fixedBy: "qemu fc24908e7d (2017-11-29, 'blockjob: reimplement block_job_sleep_ns to allow cancellation')",
  maxTimeNs: 3e9,
  *build(q, qmp) {
    yield* throttledStream(q, qmp);
    const atNs = ((yield choose("cancel at (250 us)", 8)) as number) * 250_000;
    yield sleep(atNs);
    yield* qmp("block-job-cancel", { device: "stream0" });
    yield* untilGone(q, 10e9);
  },
});

export const FINALIZE_CONCLUDED_JOB = qemuRace({
  name: "finalize-concluded-job",
  title: "two management clients each finalize their member of a grouped transaction; the second finalize reaches a job the first already concluded, and QEMU aborts",
  buggyProfile: "finalize-asserts-txn",
  fixedProfile: "current",
  invariant: "no-crash",
  fixedBy: "qemu 37aa19b63c (2018-05-08, 'blockjob: Fix assertion in block_job_finalize()')",
  *build(q, qmp) {
    for (const d of ["a.img", "b.img", "ta.img", "tb.img"]) disk(q, d, 4 * MiB, 300_000);
    for (const [n, f] of [["a", "a.img"], ["b", "b.img"], ["ta", "ta.img"], ["tb", "tb.img"]]) yield* qmp("blockdev-add", { driver: "raw", "node-name": n, file: f });
    const common = { sync: "full", "auto-finalize": false, "auto-dismiss": false };
    yield* qmp("transaction", {
      actions: [
        { type: "blockdev-backup", data: { "job-id": "ja", device: "a", target: "ta", ...common } },
        { type: "blockdev-backup", data: { "job-id": "jb", device: "b", target: "tb", ...common } },
      ],
      properties: { "completion-mode": "grouped" },
    });
    // Each client polls its own job every 2 ms (from a chosen phase) and, one round trip (100 us) after seeing
    // it pending, finalizes it; once concluded, dismisses it. A finalize of one member finalizes the whole group.
    const client = (id: string, phase: number) => (function* (): Process {
      yield sleep(phase * 250_000);
      for (let i = 0; i < 2000; i++) {
        const r = yield* qmp("query-jobs");
        const me = "return" in r ? (r.return as { id: string; status: string }[]).find((j) => j.id === id) : undefined;
        if (!me) return;
        yield sleep(100_000); // the client's round trip before its next command
        if (me.status === "pending") yield* qmp("job-finalize", { id });
        else if (me.status === "concluded") yield* qmp("job-dismiss", { id });
        yield sleep(2 * ms);
      }
    })();
    const pa = (yield choose("client A phase (250 us)", 8)) as number;
    const pb = (yield choose("client B phase (250 us)", 8)) as number;
    yield spawn("client A", client("ja", pa));
    yield* client("jb", pb);
    yield* untilGone(q, 2e9);
  },
});

/** The seed races of seed-races.ts, as catalog entries. */
const SEEDS: CatalogRace[] = SEED_RACES.map((r) => ({
  name: r.name,
  title: r.name === "txn-start-before-commit" ? "a transaction's first backup finishes before the transaction commits (seed 001)" : "a job paused before its first start does I/O (seed 000)",
  buggyProfile: r.buggyProfile,
  fixedProfile: "current",
  invariant: r.rule,
  fixedBy: r.fixedBy,
  run(profile, seed, strategy) {
    const x = r.run(profile, seed, strategy);
    return { hash: x.hash, choices: parseChoiceLog(x.choices), violations: x.violations.filter((v) => v.rule === r.rule).map((v) => ({ invariant: v.rule, detail: v.detail, timeNs: v.timeNs })) };
  },
}));

/**
 * The seed-001 world one step further back: a dead job left in the
 * transaction's list is touched when the second member completes.
 */
export const TXN_DEAD_POINTER: CatalogRace = {
  name: "txn-dead-pointer",
  title: "a transaction's first backup finishes and is freed during the transaction, but stays in its list; the second member's completion touches it",
  buggyProfile: "txn-dead-pointer",
  fixedProfile: "txn-start-on-create",
  invariant: "no-use-after-free",
  fixedBy: "qemu 1e93b9fba2 (2016-11-08, 'blockjob: fix dead pointer in txn list')",
  run(profile, seed, strategy) {
    const x = TXN_START_RACE.run(profile, seed, strategy);
    const uaf = /use after free/.test(x.outcome);
    return { hash: x.hash, choices: parseChoiceLog(x.choices), violations: uaf ? [{ invariant: "no-use-after-free", detail: x.outcome.replace(/^failure: /, "") }] : [] };
  },
  replayFile: packageUrl("scenarios", "races", "txn-dead-pointer.replay.json"),
};

/** Seed 004 (management layer), as catalog entries. */
const SEED_004: CatalogRace[] = SEED_004_RACES.map((r) => ({
  name: r.name,
  title: r.name === "seed-004-sync-abort" ? "a synchronous block job abort starves the status poller (seed 004)" : "a storage migration starves the status poller (seed 004)",
  buggyProfile: r.buggyProfile,
  fixedProfile: r.fixedProfile,
  invariant: r.rule,
  fixedBy: r.fixedBy,
  run(profile, seed, strategy) {
    const x = r.run(profile, seed, strategy);
    return { hash: x.hash, choices: parseChoiceLog(x.choices), violations: x.violations.filter((v) => v.rule === r.rule).map((v) => ({ invariant: v.rule, detail: v.detail, timeNs: v.timeNs })) };
  },
}));

/** Every catalogued race, seeds first. */
export const CATALOG: readonly CatalogRace[] = [
  ...SEEDS, ...SEED_004, TXN_DEAD_POINTER, CANCEL_SLEEPING_JOB, DRAIN_DURING_JOB_IO, ERROR_STOP_STACKS_PAUSES, CANCEL_ERROR_STOPPED_JOB, SET_SPEED_ZERO_NO_KICK, MIRROR_SOFT_CANCEL_PRE_READY, FINALIZE_CONCLUDED_JOB,
];

/** The race with this name, or a clear error listing the known ones. */
export function catalogRace(name: string): CatalogRace {
  const r = CATALOG.find((x) => x.name === name);
  if (!r) throw new Error(`unknown race '${name}'; known races: ${CATALOG.map((x) => x.name).join(", ")}`);
  return r;
}

/** The race as an exploration subject under one profile. */
export const subjectOf = (race: CatalogRace, profile: string): Subject => (strategy, seed) => race.run(profile, seed, strategy);

export interface RaceHunt {
  race: CatalogRace;
  strategy: ExploreStrategy;
  found?: Found;
  runs: number;
  /** Shrunk failing schedule: picks (entries) and its run. */
  shrunk?: { picks: number[]; result: SubjectRun };
  /** Under the fixed profile, with the same budget: runs and whether anything was found. */
  fixed: { runs: number; found: boolean };
}

/** Hunts one race: explore under the buggy profile, shrink what it finds, then the same budget under the fixed profile. */
export function hunt(race: CatalogRace, opts: { strategy?: ExploreStrategy; budget?: number; seed?: number; shrink?: boolean } = {}): RaceHunt {
  const strategy = opts.strategy ?? "random", budget = opts.budget ?? 100;
  const buggy = exploreSchedules(subjectOf(race, race.buggyProfile), { strategy, budget, seed: opts.seed });
  const found = buggy.found[0];
  let shrunk: RaceHunt["shrunk"];
  if (found && opts.shrink !== false) {
    const s = shrinkPicks(subjectOf(race, race.buggyProfile), picksOf(found.result.choices), (r) => r.violations.length > 0, { seed: found.seed, maxRuns: 200 });
    shrunk = { picks: s.picks, result: s.result };
  }
  const fixed = exploreSchedules(subjectOf(race, race.fixedProfile), { strategy, budget, seed: opts.seed });
  return { race, strategy, ...(found ? { found } : {}), runs: buggy.runs, ...(shrunk ? { shrunk } : {}), fixed: { runs: fixed.runs, found: fixed.found.length > 0 } };
}

/** The replay file (subject: the race by name) of a hunt's shrunk (or found) schedule. */
export function replayOf(h: RaceHunt): ReplayFile | undefined {
  const f = h.found;
  if (!f) return undefined;
  const result = h.shrunk?.result ?? f.result;
  return makeReplayRecord({ race: h.race.name }, {
    profile: h.race.buggyProfile, seed: f.seed, strategy: h.shrunk ? "picks" : h.strategy, choices: result.choices, hash: result.hash,
    ok: result.violations.length === 0, violations: result.violations, foundBy: `sim/races/catalog.ts: ${h.strategy} exploration under ${h.race.buggyProfile}${h.shrunk ? ", shrunk" : ""}`,
  });
}

/** Re-runs a race replay file exactly (its subject must be a race). */
export function replayRace(file: ReplayFile): SubjectRun {
  if (!("race" in file.subject)) throw new Error("replayRace: the replay file's subject is not a race");
  return catalogRace(file.subject.race).run(file.profile, Number(file.seed), new ReplayStrategy(parseChoiceLog(String(file.choices))));
}

export { PickListStrategy };

if (import.meta.url === `file://${process.argv[1]}`) {
  const write = process.argv.includes("--write");
  for (const race of CATALOG) {
    const h = hunt(race, { budget: 100 });
    const first = h.found?.result.violations[0];
    console.log(`${race.name} (fixed by ${race.fixedBy}): under ${race.buggyProfile} ${h.found ? `found at run ${h.found.run}: ${first?.detail}` : `NOT found in ${h.runs} runs`}; under ${race.fixedProfile} ${h.fixed.found ? "FOUND (unexpected)" : `none in ${h.fixed.runs} runs`}`);
    const rep = replayOf(h);
    if (write && rep && race.replayFile) {
      writeFileSync(race.replayFile, replayText(rep));
      console.log(`  wrote ${race.replayFile.pathname}`);
    }
  }
}
