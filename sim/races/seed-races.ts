/**
 * The two seed races, as code-built scenarios on the simulated QEMU, with a
 * small explorer that tries seeds under the random strategy until a run
 * breaks the race's invariant, and replay files that reproduce it.
 *
 *   npx tsx sim/races/seed-races.ts            explore both, print what was found
 *   npx tsx sim/races/seed-races.ts --write    also (re)write the *.replay.json files here
 *
 * - txn-start-on-create (seed 001, fixed by 111049a4ec): a grouped
 *   transaction of two backups; the first has nothing to copy. Started in
 *   prepare, it can finish while the second action's prepare waits for the
 *   guest's in-flight I/O to drain — before the transaction commits.
 * - no-start-shim (seed 000, fixed by e3796a245a): a backup created inside
 *   the transaction's drained section is started in commit and resumed when
 *   the drain ends; without the shim its first entry comes from that resume
 *   with the job still marked paused, and it does I/O "while paused".
 */
import { readFileSync, writeFileSync } from "node:fs";
import { guestDevicePerms, startGuest } from "../block/index.js";
import { packageUrl } from "../scenario/package-root.js";
import { makeReplayRecord, replayText, type ReplayFile } from "../scenario/replay.js";
import type { Violation } from "../jobs/job.js";
import { profileBehaviour } from "../qmp/profiles.js";
import { createQemu } from "../qmp/qemu.js";
import { formatChoiceLog, parseChoiceLog, RandomStrategy, ReplayStrategy, Scheduler, sleep, type Process, type Strategy } from "../scheduler/index.js";

const MiB = 1 << 20;

export interface RaceRun {
  hash: string;
  choices: string;
  violations: Violation[];
  outcome: string;
}

export interface Race {
  name: string;
  /** The profile that restores the bug, and the invariant it breaks. */
  buggyProfile: string;
  rule: string;
  fixedBy: string;
  run(profile: string, seed: number, strategy: Strategy): RaceRun;
}

function finish(sim: Scheduler, violations: Violation[]): RaceRun {
  const r = sim.run();
  const outcome = r.outcome.kind === "failure" ? `failure: ${r.outcome.error}` : r.outcome.kind;
  return { hash: r.hash, choices: formatChoiceLog(r.choices), violations, outcome };
}

/** A simulated QEMU under `profile`, a device maker, and the client's QMP call. */
function world(profile: string, seed: number, strategy: Strategy) {
  const sim = new Scheduler({ seed, strategy, maxTimeNs: 10e9 });
  const q = createQemu(sim, profileBehaviour(profile));
  const disk = (name: string, sizeBytes: number, latencyNs: number) =>
    q.addDevice({ name, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: latencyNs, writeLatencyNs: latencyNs, bandwidthBytesPerSec: 0, queueDepth: 8 });
  const qmp = (execute: string, args: Record<string, unknown>) => q.monitor.execute({ execute, arguments: args });
  /** A guest writing 64 KiB blocks at random to `node`, `iodepth` deep, up to `maxGapNs` apart. */
  const guest = (node: string, iodepth: number, maxGapNs: number) =>
    startGuest(sim, {
      name: "guest", backend: q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node(node), queueWhenDrained: true, perms: guestDevicePerms() }),
      pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth, intervalNs: { minNs: 0, maxNs: maxGapNs },
    });
  return { sim, q, disk, qmp, guest };
}

export const TXN_START_RACE: Race = {
  name: "txn-start-before-commit",
  buggyProfile: "txn-start-on-create",
  rule: "txn-member-completes-before-commit",
  fixedBy: "qemu 111049a4ec (2016-11)",
  run(profile, seed, strategy) {
    const { sim, q, disk, qmp, guest } = world(profile, seed, strategy);
    disk("empty.qcow2", 4 * MiB, 100_000);
    disk("t1.img", 4 * MiB, 100_000);
    disk("disk.img", 64 * MiB, 1_000_000);
    disk("t2.img", 64 * MiB, 100_000);
    sim.spawn("client", (function* (): Process {
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "src1", file: "empty.qcow2" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "t1", file: "t1.img" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "src2", file: "disk.img" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "t2", file: "t2.img" });
      guest("src2", 1, 4_000_000);
      yield sleep(50_000_000);
      yield* qmp("transaction", {
        actions: [
          { type: "blockdev-backup", data: { "job-id": "j1", device: "src1", target: "t1", sync: "top" } },
          { type: "blockdev-backup", data: { "job-id": "j2", device: "src2", target: "t2", sync: "full" } },
        ],
        properties: { "completion-mode": "grouped" },
      });
      while (q.jm.jobs.length > 0) yield sleep(10_000_000);
    })());
    return finish(sim, q.jm.violations);
  },
};

export const START_SHIM_RACE: Race = {
  name: "pause-before-first-start",
  buggyProfile: "no-start-shim",
  rule: "no-io-while-paused",
  fixedBy: "qemu e3796a245a (2017-03)",
  run(profile, seed, strategy) {
    const { sim, q, disk, qmp, guest } = world(profile, seed, strategy);
    disk("disk.img", 16 * MiB, 500_000);
    disk("backup.img", 16 * MiB, 500_000);
    sim.spawn("client", (function* (): Process {
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "disk.img" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "backup.img" });
      guest("src", 2, 2_000_000);
      yield sleep(10_000_000);
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "src", target: "tgt", sync: "full" });
      while (q.jm.jobs.length > 0) yield sleep(10_000_000);
    })());
    return finish(sim, q.jm.violations);
  },
};

export const SEED_RACES: readonly Race[] = [TXN_START_RACE, START_SHIM_RACE];

/** What the explorer and the replay files need of a race built in code. */
export interface CodeRace<R extends { violations: readonly { rule: string }[] }> {
  name: string;
  rule: string;
  run(profile: string, seed: number, strategy: Strategy): R;
}

/** Tries seeds 1..budget under the random strategy; the first run breaking the race's rule, if any. */
export function explore<R extends { violations: readonly { rule: string }[] }>(race: CodeRace<R>, profile: string, budget: number): { seed: number; run: R; tried: number } | undefined {
  for (let seed = 1; seed <= budget; seed++) {
    const run = race.run(profile, seed, new RandomStrategy(seed));
    if (run.violations.some((v) => v.rule === race.rule)) return { seed, run, tried: seed };
  }
  return undefined;
}

/** Re-runs a replay file's schedule exactly. */
export function replay<R extends { violations: readonly { rule: string }[] }>(race: CodeRace<R>, file: ReplayFile): R {
  return race.run(file.profile, Number(file.seed), new ReplayStrategy(parseChoiceLog(String(file.choices))));
}

/** The replay file of a run that broke the race's rule (subject: the race by name). */
export function raceReplayFile(race: { name: string; rule: string; buggyProfile: string }, seed: number, run: { hash: string; choices: string; violations: readonly { rule: string; detail: string; timeNs?: number }[] }): ReplayFile {
  const broken = run.violations.filter((v) => v.rule === race.rule);
  return makeReplayRecord({ race: race.name }, {
    profile: race.buggyProfile, seed, strategy: "random", choices: run.choices, hash: run.hash, ok: broken.length === 0,
    violations: broken.map((v) => ({ invariant: v.rule, detail: v.detail, ...(v.timeNs !== undefined ? { timeNs: v.timeNs } : {}) })),
    foundBy: `random exploration under ${race.buggyProfile}, seed ${seed}`,
  });
}

/** Where a race's replay file lives: beside these scripts, named after the race. */
export const replayPath = (race: { name: string }) => packageUrl("scenarios", "races", `${race.name}.replay.json`);

export function readReplay(race: { name: string }): ReplayFile {
  return JSON.parse(readFileSync(replayPath(race), "utf8")) as ReplayFile;
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const write = process.argv.includes("--write");
  for (const race of SEED_RACES) {
    const found = explore(race, race.buggyProfile, 50);
    const clean = explore(race, "current", 50);
    console.log(`${race.name} (fixed by ${race.fixedBy}): under ${race.buggyProfile} ${found ? `found at seed ${found.seed}: ${found.run.violations.find((v) => v.rule === race.rule)!.detail}` : "NOT found in 50 seeds"}; under current ${clean ? "FOUND (unexpected)" : "none in 50 seeds"}`);
    if (found && write) {
      writeFileSync(replayPath(race), replayText(raceReplayFile(race, found.seed, found.run)));
      console.log(`  wrote ${replayPath(race).pathname}`);
    }
  }
}
