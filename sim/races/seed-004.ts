/**
 * Seed 004 (libvirt cefe0ba3d, "blockjob: split out block info driver
 * handling", v1.2.9): status polling starved behind other domain jobs. Two
 * scenarios on the simulated QEMU with the management layer (sim/mgmt), an
 * explorer under the random strategy, and replay files.
 *
 *   npx tsx sim/races/seed-004.ts            explore both, print latencies per profile
 *   npx tsx sim/races/seed-004.ts --write    also (re)write seed-004-*.replay.json here
 *   npx tsx sim/races/seed-004.ts --timeline also draw each race's jobs per client (sim/mgmt/timeline.ts)
 *
 * - seed-004-sync-abort (the seed message's case): a block copy (drive-mirror)
 *   of a 64 MiB disk to a slow target (4 MiB/s); at 2 s a client calls a
 *   synchronous virDomainBlockJobAbort. QEMU's cancel must wait for the
 *   mirror's in-flight copy operations (16 × 1 MiB queued on the slow
 *   target): seconds. A poller calls virDomainGetBlockJobInfo every 50 ms
 *   (its phase, 0..49 ms, is a logged choice). The abort holds its MODIFY
 *   job through its whole 50 ms polling loop, so the poller waits as long
 *   as the abort — under `info-modify-job` AND under `libvirt-1.2.9`:
 *   libvirt's BeginJob admits no job while any normal job is held, QUERY
 *   included. Only the counterfactual `query-beside-modify` removes it.
 * - seed-004-async-job (where the fix shows): a storage migration
 *   (MIGRATION_OUT async job, drive-mirror to a 2 MiB/s destination, then a
 *   3 s memory phase; about 35 s in all) with the same poller. Before the
 *   fix the poller's MODIFY job is not in the async job's mask: its first
 *   call fails after 30 s with "cannot acquire state change lock", the next
 *   waits for the migration to end. After it, QUERY is in the mask and a
 *   call waits at most for one nested monitor call (1 ms).
 */
import { writeFileSync } from "node:fs";
import { guestDevicePerms, startGuest } from "../block/index.js";
import {
  aborter, blockCopy, Domain, formatHistograms, renderTimeline, latencyByApi, migrateWithStorage, mgmtBehaviour, poller, qemuBehaviour, starter, watchQueryWait,
  type AborterResult, type CallRecord, type JobWait, type MgmtViolation, type PollSample,
} from "../mgmt/index.js";
import { createQemu } from "../qmp/qemu.js";
import { explore, raceReplayFile, replayPath } from "./seed-races.js";
import { replayText } from "../scenario/replay.js";
import { choose, formatChoiceLog, RandomStrategy, Scheduler, type Process, type Strategy, type TraceRecord } from "../scheduler/index.js";

const MiB = 1 << 20;
const ms = 1_000_000;

/** The bound of the invariant: a status query should get its job within 100 ms. */
export const QUERY_WAIT_BOUND_NS = 100 * ms;

export interface Seed004Run {
  hash: string;
  choices: string;
  outcome: string;
  violations: MgmtViolation[];
  calls: CallRecord[];
  jobWaits: JobWait[];
  polls: PollSample[];
  abort?: AborterResult;
  modelErrors: string[];
  /** The longest a virDomainGetBlockJobInfo call waited for its job, ns. */
  worstQueryWaitNs: number;
  /** The longest virDomainGetBlockJobInfo call, call to return, ns. */
  worstQueryLatencyNs: number;
  histograms: string;
  /** The trace records, when asked for. */
  trace?: TraceRecord[];
  /** The domain after the run (jobs held and waited for: renderTimeline draws them). */
  domain: Domain;
}

export interface Seed004Race {
  name: string;
  /** One line: what happens. */
  title: string;
  /** The profile with the bug, and the profile whose rules remove it. */
  buggyProfile: string;
  fixedProfile: string;
  /** Profiles under which the wait persists although they include the fix (shown, not hidden). */
  persistsUnder: readonly string[];
  rule: string;
  fixedBy: string;
  run(profile: string, seed: number, strategy: Strategy, opts?: { trace?: boolean }): Seed004Run;
}

function setUp(profile: string, seed: number, strategy: Strategy, trace: boolean, targetBandwidthBytesPerSec: number) {
  const sim = new Scheduler({ seed, strategy, trace, maxTimeNs: 120e9 });
  const q = createQemu(sim, qemuBehaviour(profile));
  const dev = (name: string, bw: number, latencyNs: number) =>
    q.addDevice({ name, sizeBytes: 64 * MiB, clusterSizeBytes: 65536, readLatencyNs: latencyNs, writeLatencyNs: latencyNs, bandwidthBytesPerSec: bw, queueDepth: 8 });
  dev("disk.img", 0, 100_000);
  dev("slow.img", targetBandwidthBytesPerSec, 1_000_000);
  const dom = new Domain(q, { behaviour: mgmtBehaviour(profile), disks: [{ target: "vda", device: "drive0" }] });
  const violations = watchQueryWait(dom, QUERY_WAIT_BOUND_NS);
  return { sim, q, dom, violations };
}

/** The guest: 64 KiB random writes every 0–200 ms through backend drive0 (guest/<name> stream of the seed). */
function* boot(q: ReturnType<typeof createQemu>): Process<void> {
  const r = yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "raw", "node-name": "disk0", file: "disk.img" } });
  if ("error" in r) throw new Error(r.error.desc);
  startGuest(q.sim, {
    name: "guest", backend: q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node("disk0"), queueWhenDrained: true, perms: guestDevicePerms() }),
    pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 1, intervalNs: { minNs: 0, maxNs: 200 * ms },
  });
}

function finish(sim: Scheduler, dom: Domain, violations: MgmtViolation[], polls: PollSample[], abort?: AborterResult): Seed004Run {
  const r = sim.run();
  const outcome = r.outcome.kind === "failure" ? `failure: ${r.outcome.error}` : r.outcome.kind;
  const info = dom.calls.filter((c) => c.call.api === "virDomainGetBlockJobInfo");
  return {
    hash: r.hash, choices: formatChoiceLog(r.choices), outcome, violations, domain: dom, calls: dom.calls, jobWaits: dom.jobWaits, polls, modelErrors: dom.modelErrors,
    worstQueryWaitNs: Math.max(0, ...info.map((c) => c.jobWaitNs)),
    worstQueryLatencyNs: Math.max(0, ...info.map((c) => c.latencyNs)),
    histograms: formatHistograms(latencyByApi(dom.calls)),
    ...(abort ? { abort } : {}),
    ...(r.trace ? { trace: r.trace } : {}),
  };
}

export const SYNC_ABORT_RACE: Seed004Race = {
  name: "seed-004-sync-abort",
  title: "a synchronous block job abort starves the status poller for as long as the cancel takes (seed 004; not removed by the seed's fix)",
  buggyProfile: "info-modify-job",
  fixedProfile: "query-beside-modify",
  persistsUnder: ["libvirt-1.2.9", "libvirt-1.2.17"],
  rule: "query-wait-bound",
  fixedBy: "libvirt cefe0ba3d (2014-08, v1.2.9) — which does NOT remove this case; only the counterfactual query-beside-modify does",
  run(profile, seed, strategy, opts = {}) {
    const { sim, q, dom, violations } = setUp(profile, seed, strategy, opts.trace ?? false, 4 * MiB);
    let polls: PollSample[] = [];
    let abort: AborterResult | undefined;
    sim.spawn("boot", (function* (): Process {
      yield* boot(q);
      yield* starter(dom, "app", [{ atNs: 100 * ms, op: (d, c) => blockCopy(d, c, "vda", { dest: "slow.img", reuseExt: true }) }]);
    })());
    sim.spawn("poller", (function* (): Process {
      const phaseMs = (yield choose("poller phase (ms)", 50)) as number;
      polls = yield* poller(dom, "poller", { disk: "vda", intervalNs: 50 * ms, startNs: 200 * ms + phaseMs * ms, stopWhenGone: true, untilNs: 60e9 });
    })());
    sim.spawn("aborter", (function* (): Process {
      abort = yield* aborter(dom, "aborter", { disk: "vda", atNs: 2000 * ms });
    })());
    const r = finish(sim, dom, violations, [], undefined);
    return { ...r, polls, ...(abort ? { abort } : {}) };
  },
};

export const ASYNC_JOB_RACE: Seed004Race = {
  name: "seed-004-async-job",
  title: "a storage migration starves the status poller until it ends or 30 s pass (seed 004; removed by the seed's fix)",
  buggyProfile: "info-modify-job",
  fixedProfile: "libvirt-1.2.9",
  persistsUnder: [],
  rule: "query-wait-bound",
  fixedBy: "libvirt cefe0ba3d (2014-08, v1.2.9)",
  run(profile, seed, strategy, opts = {}) {
    const { sim, q, dom, violations } = setUp(profile, seed, strategy, opts.trace ?? false, 2 * MiB);
    let polls: PollSample[] = [];
    let migrationEndNs = 0;
    sim.spawn("boot", (function* (): Process {
      yield* boot(q);
      yield* starter(dom, "migrator", [{ atNs: 100 * ms, op: (d, c) => migrateWithStorage(d, c, { dests: { vda: "slow.img" }, memoryPhaseNs: 3000 * ms }) }]);
      migrationEndNs = sim.now;
    })());
    sim.spawn("poller", (function* (): Process {
      const phaseMs = (yield choose("poller phase (ms)", 50)) as number;
      polls = yield* poller(dom, "poller", { disk: "vda", intervalNs: 50 * ms, startNs: 200 * ms + phaseMs * ms, untilNs: 60e9 });
    })());
    const r = finish(sim, dom, violations, [], undefined);
    void migrationEndNs;
    return { ...r, polls };
  },
};

export const SEED_004_RACES: readonly Seed004Race[] = [SYNC_ABORT_RACE, ASYNC_JOB_RACE];

// The explorer and the replay files are seed-races.ts's, shared by every race built in code.
export { explore, readReplay, replay, replayPath } from "./seed-races.js";

const fmt = (ns: number) => (ns >= 1e9 ? `${(ns / 1e9).toFixed(3)} s` : `${(ns / 1e6).toFixed(1)} ms`);

if (import.meta.url === `file://${process.argv[1]}`) {
  const write = process.argv.includes("--write");
  for (const race of SEED_004_RACES) {
    console.log(`\n== ${race.name} (${race.fixedBy})`);
    for (const profile of [race.buggyProfile, ...race.persistsUnder, race.fixedProfile]) {
      const r = race.run(profile, 1, new RandomStrategy(1));
      console.log(`-- ${profile}: outcome ${r.outcome}; worst GetBlockJobInfo job wait ${fmt(r.worstQueryWaitNs)}, worst latency ${fmt(r.worstQueryLatencyNs)}${r.abort ? `; abort ${fmt(r.abort.returnNs - r.abort.callNs)}` : ""}; violations ${r.violations.length}`);
      console.log(r.histograms.replace(/^/gm, "   "));
    }
    if (process.argv.includes("--timeline")) {
      for (const profile of [race.buggyProfile, race.fixedProfile]) {
        const r = race.run(profile, 1, new RandomStrategy(1));
        const around = race === SYNC_ABORT_RACE
          ? { fromNs: 1500 * ms, toNs: 5500 * ms, binNs: 50 * ms, clients: ["aborter", "poller"] }
          : { fromNs: 0, toNs: 48_000 * ms, binNs: 500 * ms, clients: ["migrator", "poller"] };
        console.log(`\n   timeline under ${profile} (seed 1):`);
        console.log(renderTimeline(r.domain, around).replace(/^/gm, "   "));
      }
    }
    const found = explore(race, race.buggyProfile, 20);
    const clean = explore(race, race.fixedProfile, 20);
    console.log(`under ${race.buggyProfile}: ${found ? `found at seed ${found.seed}: ${found.run.violations[0]!.detail}` : "NOT found in 20 seeds"}; under ${race.fixedProfile}: ${clean ? "FOUND (unexpected)" : "none in 20 seeds"}`);
    if (found && write) {
      writeFileSync(replayPath(race), replayText(raceReplayFile(race, found.seed, found.run)));
      console.log(`  wrote ${replayPath(race).pathname}`);
    }
  }
}
