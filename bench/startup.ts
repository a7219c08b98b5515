/**
 * Start-up benchmark: the whole `blocksim run scenarios/backup.yaml` process
 * (bin/blocksim.js, so the built bundle when `npm run build` is fresh) as a
 * ratio to `node -e 0`, the two spawned in turn in this process so machine
 * load hits both alike. Prints the median wall time of each and the ratio
 * of the medians, and the CPU time (user + system) of all the children of
 * each kind, read from /proc/self/stat's cutime and cstime (Linux; 10 ms
 * ticks, so summed over every run).
 *
 * Bar (issue 17): <= 3x `node -e 0`. A measurement, not a test.
 *
 * Usage: npx tsx bench/startup.ts [--runs N]   (default 15 of each)
 */
import { spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { childrenCpu } from "./child-cpu.js";
import { median } from "./reference-kernel.js";

const ROOT = fileURLToPath(new URL("..", import.meta.url));
const at = process.argv.indexOf("--runs");
const RUNS = at > 0 ? Number(process.argv[at + 1]) : 15;
interface Measured { wall: number[]; cpu: number }

function measure(cmd: string[], into: Measured): void {
  const cpu0 = childrenCpu();
  const t0 = performance.now();
  const r = spawnSync(cmd[0], cmd.slice(1), { cwd: ROOT, stdio: ["ignore", "ignore", "pipe"] });
  into.wall.push((performance.now() - t0) / 1000);
  if (r.status !== 0) throw new Error(`${cmd.join(" ")} exited ${r.status}: ${r.stderr}`);
  const cpu1 = childrenCpu();
  if (cpu0 !== undefined && cpu1 !== undefined) into.cpu += cpu1 - cpu0;
}

const blocksim = [process.execPath, join(ROOT, "bin", "blocksim.js"), "run", "scenarios/backup.yaml", "--quiet"];
const bare = [process.execPath, "-e", "0"];
const built = existsSync(join(ROOT, "dist", "BUILT"));
console.log(`start-up of ${blocksim.slice(1).join(" ").replace(ROOT, "")} (${process.env.BLOCKSIM_FROM_SOURCE === "1" ? "the sources through tsx: BLOCKSIM_FROM_SOURCE=1" : built ? "the built bundle, if fresh" : "no build: the sources through tsx"}) vs node -e 0, ${RUNS} runs each`);

const a: Measured = { wall: [], cpu: 0 }, b: Measured = { wall: [], cpu: 0 };
measure(blocksim, { wall: [], cpu: 0 }); // warm the file cache
measure(bare, { wall: [], cpu: 0 });
for (let i = 0; i < RUNS; i++) {
  measure(blocksim, a);
  measure(bare, b);
}
const f = (s: number) => `${(s * 1000).toFixed(0)} ms`;
console.log(`wall, median: blocksim ${f(median(a.wall))}, node -e 0 ${f(median(b.wall))}, ratio ${(median(a.wall) / median(b.wall)).toFixed(2)}x (bar <= 3x)`);
if (childrenCpu() !== undefined) console.log(`cpu, per run: blocksim ${f(a.cpu / RUNS)}, node -e 0 ${f(b.cpu / RUNS)}, ratio ${(a.cpu / b.cpu).toFixed(2)}x`);
