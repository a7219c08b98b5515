/**
 * Fuzz campaign benchmark, whole processes as a user runs them:
 * `blocksim fuzz --runs N` from a cold start with one worker and with two,
 * spawned in turn in this process. Prints fuzz runs per CPU-second of the
 * one-worker process (user + system of the child, from /proc/self/stat's
 * cutime and cstime) and runs per wall-second of each, with the two-worker /
 * one-worker throughput ratio. Two workers are measured twice: as shipped
 * (a campaign this short runs both units in the main thread, warm: cli/fuzz.ts)
 * and with the worker thread started at once (BLOCKSIM_FUZZ_WORKERS_AFTER_MS=0),
 * which pays a second isolate's start and warm-up. Prints the load average
 * seen, since on a shared machine it moves every figure.
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

type Sample = { wall: number; cpu: number };
const { BLOCKSIM_FUZZ_WORKERS_AFTER_MS: _knob, ...withoutKnob } = process.env;

/** One campaign; throws when it stopped at a violation (its runs and shrinks are then no throughput figure). */
function campaign(workers: number, seed: number, env: Record<string, string> = {}): { wall: number; cpu: number } {
  const out = mkdtempSync(join(tmpdir(), "blocksim-bench-"));
  const cpu0 = childrenCpu()!, t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "blocksim.js"), "fuzz", "--runs", String(RUNS), "--seed", String(seed), "--workers", String(workers), "--out", out], { cwd: ROOT, encoding: "utf8", env: { ...withoutKnob, ...env } });
  const wall = (performance.now() - t0) / 1000, cpu = childrenCpu()! - cpu0;
  rmSync(out, { recursive: true, force: true });
  if (r.status !== 0 && r.status !== 1) throw new Error(`blocksim fuzz exited ${r.status}: ${r.stderr}`);
  if (!r.stdout.includes(`no violation in ${RUNS} runs`)) {
    throw new Error(`blocksim fuzz --seed ${seed} --workers ${workers} did not run ${RUNS} clean runs, so it gives no throughput figure:\n${r.stdout.split("\n").slice(0, 3).join("\n")}`);
  }
  return { wall, cpu };
}

if (childrenCpu() === undefined) throw new Error("bench/campaign.ts reads child CPU time from /proc (Linux)");
console.log(`blocksim fuzz --runs ${RUNS}, cold start, 1 and 2 workers in turn, ${ROUNDS} rounds, ${availableParallelism()} cores`);
const one: Sample[] = [], two: Sample[] = [], twoAtOnce: Sample[] = [], loads: number[] = [];
for (let i = 0; i < ROUNDS; i++) {
  loads.push(loadavg()[0]);
  one.push(campaign(1, 1000 + i));
  two.push(campaign(2, 1000 + i));
  twoAtOnce.push(campaign(2, 1000 + i, { BLOCKSIM_FUZZ_WORKERS_AFTER_MS: "0" }));
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
console.log(`2 workers, the worker thread started at once: ${perCpu(twoAtOnce).toFixed(0)} runs per CPU-second, ${perWall(twoAtOnce).toFixed(0)} runs per wall-second; ${(perWall(twoAtOnce) / w1).toFixed(2)}x (${spread(twoAtOnce)})`);
