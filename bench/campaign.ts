/**
 * Fuzz campaign benchmark, whole processes as a user runs them:
 * `blocksim fuzz --runs N` from a cold start with one worker and with two,
 * spawned in turn in this process. Prints fuzz runs per CPU-second of the
 * one-worker process (user + system of the child, from /proc/self/stat's
 * cutime and cstime) and runs per wall-second of each, with the two-worker /
 * one-worker throughput ratio.
 *
 * Bars (issue 17): >= 2,000 runs per CPU-second with one worker; the ratio
 * > 1.0 on 2 cores. A measurement, not a test.
 *
 * Usage: npx tsx bench/campaign.ts [--runs N] [--rounds R]   (default 2,000 runs, 3 rounds)
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
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

/** One campaign; throws when it stopped at a violation (its runs and shrinks are then no throughput figure). */
function campaign(workers: number, seed: number): { wall: number; cpu: number } {
  const out = mkdtempSync(join(tmpdir(), "blocksim-bench-"));
  const cpu0 = childrenCpu()!, t0 = performance.now();
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "blocksim.js"), "fuzz", "--runs", String(RUNS), "--seed", String(seed), "--workers", String(workers), "--out", out], { cwd: ROOT, encoding: "utf8" });
  const wall = (performance.now() - t0) / 1000, cpu = childrenCpu()! - cpu0;
  rmSync(out, { recursive: true, force: true });
  if (r.status !== 0 && r.status !== 1) throw new Error(`blocksim fuzz exited ${r.status}: ${r.stderr}`);
  if (!r.stdout.includes(`no violation in ${RUNS} runs`)) {
    throw new Error(`blocksim fuzz --seed ${seed} --workers ${workers} did not run ${RUNS} clean runs, so it gives no throughput figure:\n${r.stdout.split("\n").slice(0, 3).join("\n")}`);
  }
  return { wall, cpu };
}

if (childrenCpu() === undefined) throw new Error("bench/campaign.ts reads child CPU time from /proc (Linux)");
console.log(`blocksim fuzz --runs ${RUNS}, cold start, 1 and 2 workers in turn, ${ROUNDS} rounds`);
const one: { wall: number; cpu: number }[] = [], two: { wall: number; cpu: number }[] = [];
for (let i = 0; i < ROUNDS; i++) {
  one.push(campaign(1, 1000 + i));
  two.push(campaign(2, 1000 + i));
}
const perCpu = median(one.map((r) => RUNS / r.cpu));
const w1 = median(one.map((r) => RUNS / r.wall)), w2 = median(two.map((r) => RUNS / r.wall));
console.log(`1 worker: ${perCpu.toFixed(0)} runs per CPU-second (bar >= 2,000), ${w1.toFixed(0)} runs per wall-second`);
console.log(`2 workers: ${w2.toFixed(0)} runs per wall-second; 2-worker / 1-worker throughput ${(w2 / w1).toFixed(2)}x (bar > 1.0)`);
