/**
 * Fuzz benchmark.
 *
 * 1. Fuzz runs per second on the shipped transaction-of-backups scenario
 *    (scenarios/transaction-of-backups.yaml, random strategy, a seed per
 *    run; every run checks its invariants and expectations), with one
 *    worker, then two (worker_threads, the seed space split in halves).
 * 2. For each race of the catalog, over 20 exploration seeds: the median
 *    runs and wall time to its first violation under its buggy profile, with
 *    the random and with the PCT strategy. The bar: median under 1 s of wall
 *    time by at least one strategy.
 *
 * A measurement, not a test. Usage: npx tsx bench/fuzz.ts [--runs N]
 */
import { Worker } from "node:worker_threads";
import { explore, type ExploreStrategy } from "../sim/harness/explore.js";
import { loadScenarioFile } from "../sim/scenario/loader.js";
import { runScenario } from "../sim/scenario/runner.js";
import { RandomStrategy } from "../sim/scheduler/index.js";
import { breaksSubject, loadRaces } from "../sim/races/catalog.js";

const SCENARIO = new URL("../scenarios/transaction-of-backups.yaml", import.meta.url).pathname;
const argRuns = process.argv.indexOf("--runs");
const RUNS = argRuns > 0 ? Number(process.argv[argRuns + 1]) : 200;
const SEEDS = 20;
const BUDGET = 500;

/** Runs seeds [from, from+count) of the scenario; returns how many failed. */
export function fuzzSlice(from: number, count: number): number {
  const loaded = loadScenarioFile(SCENARIO);
  let failed = 0;
  for (let s = from; s < from + count; s++) if (!runScenario(loaded, { seed: s, strategy: new RandomStrategy(s) }).ok) failed++;
  return failed;
}

/** Warms up, then runs seeds [from, from+count); returns the failures and the wall time of the slice alone. */
export function timedSlice(from: number, count: number): { failed: number; ms: number } {
  fuzzSlice(1_000_000 + from, 5);
  const t = performance.now();
  const failed = fuzzSlice(from, count);
  return { failed, ms: performance.now() - t };
}

function inWorker(from: number, count: number): Promise<{ failed: number; ms: number }> {
  const tsx = import.meta.resolve("tsx/esm/api"), self = import.meta.url;
  const boot = `const { parentPort, workerData } = require("node:worker_threads");
import(${JSON.stringify(tsx)}).then((m) => { m.register(); return import(${JSON.stringify(self)}); })
  .then((b) => parentPort.postMessage(b.timedSlice(workerData.from, workerData.count)));`;
  return new Promise((resolve, reject) => {
    const w = new Worker(boot, { eval: true, workerData: { from, count }, env: { ...process.env, BLOCKSIM_BENCH_WORKER: "1" } });
    w.on("message", resolve);
    w.on("error", reject);
  });
}

const median = (xs: number[]) => {
  const s = [...xs].sort((a, b) => a - b);
  return s.length % 2 ? s[(s.length - 1) / 2] : (s[s.length / 2 - 1] + s[s.length / 2]) / 2;
};

async function main(): Promise<void> {
  // 1. runs per second
  fuzzSlice(1_000_000, 5); // warm up
  let t0 = performance.now();
  const failed1 = fuzzSlice(1, RUNS);
  const one = RUNS / ((performance.now() - t0) / 1000);
  t0 = performance.now();
  const half = Math.ceil(RUNS / 2);
  const parts = await Promise.all([inWorker(1, half), inWorker(1 + half, RUNS - half)]);
  const withStart = RUNS / ((performance.now() - t0) / 1000);
  const failed2 = parts.reduce((a, b) => a + b.failed, 0);
  const two = RUNS / (Math.max(...parts.map((p) => p.ms)) / 1000);
  console.log(`transaction-of-backups.yaml, ${RUNS} runs (random strategy, seeds 1..${RUNS}):`);
  console.log(`  1 worker : ${one.toFixed(0)} runs/s (${failed1} failing runs)`);
  console.log(`  2 workers: ${two.toFixed(0)} runs/s once started, ${(two / one).toFixed(2)}x (${withStart.toFixed(0)} runs/s counting worker start-up; ${failed2} failing runs)`);

  // 2. time to find each race
  console.log(`\nruns and wall time to the first violation, median over ${SEEDS} exploration seeds (budget ${BUDGET} runs):`);
  console.log("| race | random: runs | random: wall | PCT: runs | PCT: wall | under 1 s |");
  console.log("|---|---|---|---|---|---|");
  for (const race of loadRaces()) {
    const cells: string[] = [];
    let best = Infinity;
    for (const strategy of ["random", "pct"] as ExploreStrategy[]) {
      const runs: number[] = [], wall: number[] = [];
      let missed = 0;
      for (let k = 0; k < SEEDS; k++) {
        const t = performance.now();
        const r = explore(breaksSubject(race, race.header["buggy-profile"]), { strategy, budget: BUDGET, seed: 1 + k * BUDGET });
        wall.push(performance.now() - t);
        if (r.found.length > 0) runs.push(r.found[0].run);
        else missed++;
      }
      const mw = median(wall);
      best = Math.min(best, mw);
      cells.push(runs.length ? `${median(runs)}${missed ? ` (${missed} missed)` : ""}` : "not found", `${mw.toFixed(0)} ms`);
    }
    console.log(`| ${race.name} | ${cells.join(" | ")} | ${best < 1000 ? "yes" : "NO"} |`);
  }
}

if (!process.env.BLOCKSIM_BENCH_WORKER) await main();
