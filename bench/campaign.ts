/**
 * Fuzz campaign benchmark, whole processes as a user runs them:
 * `blocksim fuzz --runs N` from a cold start with one worker and with two,
 * spawned in turn in this process. All three make the same runs (a
 * campaign's units do not depend on --workers; the bench checks that their
 * outputs are the same), so the figures compare the same work. Prints fuzz
 * runs per CPU-second of the one-worker process (user + system of the
 * child, from /proc/self/stat's cutime and cstime) and runs per
 * wall-second of each, with the two-worker / one-worker throughput ratio.
 * Two workers are measured twice: as shipped (the worker thread starts only
 * when a core stood idle and the runs left outlast its warm-up:
 * cli/fuzz.ts) and with the worker thread started at once
 * (BLOCKSIM_FUZZ_WORKERS_AT_ONCE=1), which pays a second isolate's start and
 * warm-up whatever the load. The order of the three turns from round to
 * round. Prints the load average seen, since on a shared machine it moves
 * every figure.
 *
 * Bars (issue 17): >= 2,000 runs per CPU-second with one worker; the ratio
 * > 1.0 on 2 cores. A measurement, not a test.
 *
 * Usage: npx tsx bench/campaign.ts [--runs N] [--rounds R]   (default 2,000 runs, 3 rounds)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { availableParallelism, loadavg, tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { childrenCpu } from "./child-cpu.js";
import { median } from "./reference-kernel.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const arg = (name: string, dflt: number) => {
  const at = process.argv.indexOf(name);
  return at > 0 ? Number(process.argv[at + 1]) : dflt;
};
const RUNS = arg("--runs", 2000), ROUNDS = arg("--rounds", 3);

type Sample = { wall: number; cpu: number; out: string };
const { BLOCKSIM_FUZZ_WORKERS_AT_ONCE: _knob, ...withoutKnob } = process.env;

/** One campaign; throws when it stopped at a violation (its runs and shrinks are then no throughput figure). */
function campaign(workers: number, seed: number, env: Record<string, string> = {}): Sample {
  const out = mkdtempSync(join(tmpdir(), "blocksim-bench-"));
  const cpu0 = childrenCpu()!, t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "blocksim.js"), "fuzz", "--runs", String(RUNS), "--seed", String(seed), "--workers", String(workers), "--out", join(out, "f.replay.json")], { cwd: ROOT, encoding: "utf8", env: { ...withoutKnob, ...env } });
  const wall = (performance.now() - t0) / 1000, cpu = childrenCpu()! - cpu0;
  rmSync(out, { recursive: true, force: true });
  if (r.status !== 0 && r.status !== 1) throw new Error(`blocksim fuzz exited ${r.status}: ${r.stderr}`);
  if (!r.stdout.includes(`no violation in ${RUNS} runs`)) {
    throw new Error(`blocksim fuzz --seed ${seed} --workers ${workers} did not run ${RUNS} clean runs, so it gives no throughput figure:\n${r.stdout.split("\n").slice(0, 3).join("\n")}`);
  }
  return { wall, cpu, out: r.stdout };
}

if (childrenCpu() === undefined) throw new Error("bench/campaign.ts reads child CPU time from /proc (Linux)");
console.log(`blocksim fuzz --runs ${RUNS}, cold start, 1 and 2 workers in turn (the same runs), ${ROUNDS} rounds, ${availableParallelism()} cores`);
const one: Sample[] = [], two: Sample[] = [], twoAtOnce: Sample[] = [], loads: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  loads.push(loadavg()[0]);
  const kinds = [() => one.push(campaign(1, 1000 + i)), () => two.push(campaign(2, 1000 + i)), () => twoAtOnce.push(campaign(2, 1000 + i, { BLOCKSIM_FUZZ_WORKERS_AT_ONCE: "1" }))];
  for (let k = 0; k < kinds.length; k++) kinds[(i + k) % kinds.length]();
  if (two[i].out !== one[i].out || twoAtOnce[i].out !== one[i].out) throw new Error(`seed ${1000 + i}: 1 and 2 workers printed different results:\n${one[i].out}\n${two[i].out}\n${twoAtOnce[i].out}`);
}
loads.push(loadavg()[0]);
const perCpu = (rs: Sample[]) => median(rs.map((r) => RUNS / r.cpu)), perWall = (rs: Sample[]) => median(rs.map((r) => RUNS / r.wall));
const w1 = perWall(one);
console.log(`load average (1 min) ${Math.min(...loads).toFixed(1)}-${Math.max(...loads).toFixed(1)}`);
console.log(`1 worker: ${perCpu(one).toFixed(0)} runs per CPU-second (bar >= 2,000), ${w1.toFixed(0)} runs per wall-second`);
// Each round's own ratio too: under load a single campaign's wall time moves by a third.
const spread = (rs: Sample[]) => {
  const r = rs.map((x, i) => one[i].wall / x.wall);
  return `rounds ${Math.min(...r).toFixed(2)}-${Math.max(...r).toFixed(2)}`;
};
console.log(`2 workers: ${perCpu(two).toFixed(0)} runs per CPU-second, ${perWall(two).toFixed(0)} runs per wall-second; 2-worker / 1-worker throughput ${(perWall(two) / w1).toFixed(2)}x (bar > 1.0; ${spread(two)})`);
// A worker thread that started shows as ~1 CPU-s more than one worker of the same round.
console.log(`CPU-s per campaign, rounds in order: 1 worker ${one.map((r) => r.cpu.toFixed(2)).join(" ")}; 2 workers ${two.map((r) => r.cpu.toFixed(2)).join(" ")}; at once ${twoAtOnce.map((r) => r.cpu.toFixed(2)).join(" ")}`);
console.log(`2 workers, the worker thread started at once: ${perCpu(twoAtOnce).toFixed(0)} runs per CPU-second, ${perWall(twoAtOnce).toFixed(0)} runs per wall-second; ${(perWall(twoAtOnce) / w1).toFixed(2)}x (${spread(twoAtOnce)})`);
