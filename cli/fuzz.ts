/**
 * `blocksim fuzz`: property-based fuzzing.
 *
 *   blocksim fuzz [--runs N] [--seed S] [--profile P] [--workers N] [--shard i/n] [--time 30s] [--out FILE]
 *       fuzz generated scenarios (the QMP vocabulary on random topologies) with every invariant
 *   blocksim fuzz FILE [--runs N] [--seed S] [--profile P] [--shard i/n] [--time 30s] [--out FILE]
 *       run a scenario file under the random strategy, seed after seed, until an expectation fails
 *   blocksim fuzz --replay FILE
 *       the same as `blocksim replay FILE`
 *
 * Exit codes: 0 nothing broke, 1 a violation (replay written), 2 bad input.
 * Wall-clock time is read here (progress, --time), never inside the simulation.
 */
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import type { FuzzFailure } from "../sim/fuzz/index.js";
import { profileOption, replaySpelling, UsageError } from "./args.js";
import { MAX_WALL_MS, OPTION_LIMITS, wholeNumberOption } from "../sim/scenario/limits.js";
import { InputError, formatProblems } from "../sim/scenario/errors.js";
import { packagePath } from "../sim/scenario/package-root.js";
import { OldReplayFormatError } from "../sim/scenario/replay.js";
import { newShared, NEXT_UNIT, RUNS, runClaimedUnits, VIOLATIONS, type WorkerJob } from "./fuzz-units.js";

/** Where output goes (the CLI's Io has the same shape). */
export interface CliIo {
  out(text: string): void;
  err(text: string): void;
  tty: boolean;
}

export const defaultIo: CliIo = {
  out: (t) => void process.stdout.write(t),
  err: (t) => void process.stderr.write(t),
  tty: process.stderr.isTTY === true,
};

export const FUZZ_HELP = `Usage: blocksim fuzz [FILE] [options]
       blocksim fuzz --replay FILE

Without FILE: generates scenarios from the QMP vocabulary (job creations,
transactions, pauses, resumes, cancels, completes, set-speeds, drains, guest
bursts, device faults on random topologies) and a schedule for each, checks
every invariant, and on a failure shrinks both the command list and the
schedule, writes one replay file (for 'blocksim replay' and 'blocksim
timeline') and prints the commands that replay and draw it.
With FILE (a scenario file): runs it under the random strategy, one seed
after another, until an expectation fails; writes a replay file for
'blocksim replay' and 'blocksim timeline'.

Options:
  --runs N        runs in all (default 200)
  --seed S        first seed (default 1); the same seed gives the same runs
  --profile P     profile (default: current, or the scenario's)
  --workers N     threads for generated scenarios (default 1): the N units
                  run in this thread until it has used 3 CPU-seconds, then
                  units left go to worker threads (each warms up anew)
  --shard i/n     run only shard i of n of the seed space (deterministic)
  --time T        stop after this wall time (e.g. 30s, 2m)
  --out FILE      where the replay file goes
  --replay FILE   the same as 'blocksim replay FILE', with replay's options (--json, --quiet, --trace)

Examples:
  blocksim fuzz --runs 500 --seed 7
  blocksim fuzz --profile no-start-shim --runs 100
  blocksim fuzz scenarios/transaction-of-backups.yaml --runs 50
  blocksim fuzz --replay blocksim-fuzz-7.replay.json`;

class Usage extends Error {}

/** "30s", "2m", "1500ms" → ms. */
export function parseWallTime(text: string): number {
  const m = /^(\d{1,12}(?:\.\d{1,9})?)(ms|s|m|h)$/.exec(text.trim());
  if (!m) throw new Usage(`--time expects a duration like 30s, 2m or 500ms, got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`);
  const ms = Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[m[2] as "ms" | "s" | "m" | "h"];
  if (ms < 1 || ms > MAX_WALL_MS) throw new Usage(`--time expects a duration from 1ms to ${MAX_WALL_MS / 3_600_000}h, got "${text}"`);
  return ms;
}

/** "2/4" → { index: 2, count: 4 } (1-based). */
export function parseShard(text: string): { index: number; count: number } {
  const m = /^(\d{1,20})\/(\d{1,20})$/.exec(text.trim());
  const index = m ? Number(m[1]) : NaN, count = m ? Number(m[2]) : NaN;
  const { max } = OPTION_LIMITS["fuzz --shard"];
  if (!m || count < 1 || index < 1 || index > count) throw new Usage(`--shard expects i/n with 1 <= i <= n, got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`);
  if (count > max) throw new Usage(`--shard expects at most ${max.toLocaleString("en-US")} shards, got "${text}"`);
  return { index, count };
}


/**
 * The units of work of a fuzz campaign: `units` fast-check seeds (seed,
 * seed+1, …), each for an equal share of the runs. Shard i of n takes every
 * n-th unit starting at i-1, so shards never overlap and together cover all.
 */
export function shardUnits(seed: number, runs: number, units: number, shard: { index: number; count: number }): { seed: number; runs: number }[] {
  const per = Math.ceil(runs / units);
  const out: { seed: number; runs: number }[] = [];
  for (let u = shard.index - 1; u < units; u += shard.count) out.push({ seed: seed + u, runs: per });
  return out;
}

class Progress {
  private readonly t0 = performance.now();
  private last = 0;
  runs = 0;
  violations = 0;
  constructor(private readonly io: CliIo) {}
  tick(force = false): void {
    if (!this.io.tty) return;
    const now = performance.now();
    if (!force && now - this.last < 250) return;
    this.last = now;
    const s = (now - this.t0) / 1000;
    this.io.err(`\r${this.runs} runs, ${(this.runs / Math.max(s, 1e-3)).toFixed(0)} runs/s, ${this.violations} violations, ${s.toFixed(1)} s   `);
  }
  done(): void {
    if (this.io.tty) this.io.err("\n");
  }
}

/** `blocksim fuzz …`; returns the exit code. */
export async function fuzzCommand(argv: string[], io: CliIo = defaultIo): Promise<number> {
  // The same command as `blocksim replay FILE`, options and errors too: one code path, one output.
  const spelled = replaySpelling(argv);
  if (spelled) return (await import("./replay.js")).cmdReplay(spelled, io);
  try {
    const { values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        runs: { type: "string" }, seed: { type: "string" }, profile: { type: "string" }, workers: { type: "string" },
        shard: { type: "string" }, time: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    });
    if (values.help) {
      io.out(FUZZ_HELP + "\n");
      return 0;
    }
    if (positionals.length > 1) throw new Usage(`fuzz takes at most one scenario file, got ${positionals.length}`);
    const runs = wholeNumberOption("fuzz --runs", values.runs, 200);
    const seed = wholeNumberOption("fuzz --seed", values.seed, 1);
    const workers = wholeNumberOption("fuzz --workers", values.workers, 1);
    const shard = values.shard !== undefined ? parseShard(values.shard) : { index: 1, count: 1 };
    // Each unit (or, for a file, each run) takes the next seed: the last must still be exact.
    const seeds = positionals.length === 1 ? runs * shard.count : shard.count * workers;
    if (seed + seeds - 1 > OPTION_LIMITS["fuzz --seed"].max) {
      throw new Usage(`--seed ${seed} would use seeds up to ${seed + seeds - 1} (one per ${positionals.length === 1 ? "run of every shard" : "unit: shards × workers"}), past ${OPTION_LIMITS["fuzz --seed"].max}, the largest fuzz seed (fast-check keeps 32 bits of a seed)`);
    }
    const timeMs = values.time !== undefined ? parseWallTime(values.time) : undefined;
    if (values.profile !== undefined) profileOption(values.profile); // the one catalog: every profile `blocksim profiles` lists
    if (positionals.length === 1) return await fuzzScenarioFile(positionals[0], { runs, seed, shard, timeMs, profile: values.profile, out: values.out }, io);
    return await fuzzGenerated({ runs, seed, workers, shard, timeMs, profile: values.profile ?? "current", out: values.out }, io);
  } catch (e) {
    // A shared option's error (--profile, a number's range: cli/args.ts) reads as in every command; fuzz's own name fuzz.
    if (e instanceof UsageError) {
      io.err(`blocksim: ${e.message}\n`);
      return 2;
    }
    if (e instanceof Usage || (e instanceof Error && (e as { code?: string }).code?.startsWith("ERR_PARSE_ARGS"))) {
      io.err(`blocksim fuzz: ${e.message}\n`);
      return 2;
    }
    if (e instanceof InputError) {
      io.err(`blocksim: bad input — ${formatProblems(e.problems)}\n`);
      return 2;
    }
    if (e instanceof OldReplayFormatError) {
      io.err(`blocksim: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

interface GeneratedOptions {
  runs: number;
  seed: number;
  workers: number;
  shard: { index: number; count: number };
  timeMs?: number;
  profile: string;
  out?: string;
}

/**
 * Process CPU a campaign spends before its worker threads start, in ms
 * (BLOCKSIM_FUZZ_WORKERS_AFTER_MS overrides it; 0 starts them at once). A
 * worker thread is an isolate of its own that loads blocksim and warms up
 * V8's compilers again, about 1-1.5 CPU-s, and a single thread already keeps
 * ~1.6 cores busy while it warms up (V8's background compiler and GC). So a
 * short campaign runs its units one after another in the main thread, warm,
 * and only a campaign that is still going after this much CPU, with units
 * left unclaimed, hands them to workers (bench/campaign.ts; README
 * "Campaign benchmark").
 */
const WORKERS_AFTER_CPU_MS = 3000;

function workersAfterMs(): number {
  const text = process.env.BLOCKSIM_FUZZ_WORKERS_AFTER_MS;
  if (text === undefined) return WORKERS_AFTER_CPU_MS;
  if (!/^\d{1,9}$/.test(text)) throw new Usage(`BLOCKSIM_FUZZ_WORKERS_AFTER_MS expects a whole number of CPU milliseconds, got ${JSON.stringify(text.slice(0, 40))}`);
  return Number(text);
}

async function fuzzGenerated(o: GeneratedOptions, io: CliIo): Promise<number> {
  const units = shardUnits(o.seed, o.runs, o.shard.count * o.workers, o.shard);
  const afterMs = workersAfterMs();
  io.out(`blocksim fuzz: profile ${o.profile}, ${units.length} unit(s) of ${units[0]?.runs ?? 0} runs (fast-check seeds ${units.map((u) => u.seed).join(", ")})${o.shard.count > 1 ? `, shard ${o.shard.index}/${o.shard.count}` : ""}\n`);
  const progress = new Progress(io);
  // One file per unit when several may fail: --out x.replay.json becomes x-<seed>.replay.json.
  const replayFile = (s: number) =>
    o.out === undefined ? `blocksim-fuzz-${s}.replay.json` : units.length > 1 ? o.out.replace(/(\.replay\.json|\.json)?$/, (m) => `-${s}${m}`) : o.out;
  const job: WorkerJob = {
    units: units.map((u) => ({ seed: u.seed, numRuns: u.runs, profile: o.profile, replayFile: replayFile(u.seed) })),
    shared: newShared(),
    ...(o.timeMs !== undefined ? { deadline: performance.timeOrigin + performance.now() + o.timeMs } : {}),
  };
  const cells = new Int32Array(job.shared);
  const results: (FuzzFailure | undefined)[] = [];
  const workers: Promise<void>[] = [];
  const cpu0 = process.cpuUsage();
  // Called from this thread's own runs, so nothing claims a unit meanwhile: one thread per unclaimed unit at most.
  const startWorkers = () => {
    const n = Math.min(o.workers - 1, units.length - Atomics.load(cells, NEXT_UNIT));
    for (let k = 0; k < n; k++) workers.push(runWorker(job, (i, f) => { results[i] = f; }));
  };
  if (o.workers > 1 && afterMs === 0) startWorkers();
  // The main thread is a worker too; it loads the simulator only now.
  const { fuzzCheck } = await import("../sim/fuzz/index.js");
  let checks = 0;
  runClaimedUnits(fuzzCheck, job, (i, f) => { results[i] = f; }, () => {
    progress.runs = Atomics.load(cells, RUNS);
    progress.violations = Atomics.load(cells, VIOLATIONS);
    progress.tick();
    if (o.workers > 1 && workers.length === 0 && ++checks % 16 === 0) {
      const used = process.cpuUsage(cpu0);
      if ((used.user + used.system) / 1000 >= afterMs) startWorkers();
    }
  });
  // Workers report their units by message, which this thread reads only now.
  const ticker = io.tty && workers.length > 0 ? setInterval(() => {
    progress.runs = Atomics.load(cells, RUNS);
    progress.violations = Atomics.load(cells, VIOLATIONS);
    progress.tick();
  }, 250) : undefined;
  await Promise.all(workers).finally(() => clearInterval(ticker));
  progress.runs = Atomics.load(cells, RUNS);
  progress.violations = Atomics.load(cells, VIOLATIONS);
  progress.tick(true);
  progress.done();
  const failures = results.filter((r): r is FuzzFailure => r !== undefined);
  if (failures.length === 0) {
    io.out(`blocksim fuzz: no violation in ${progress.runs} runs\n`);
    return 0;
  }
  if (failures.length > 1) io.out(`blocksim fuzz: ${failures.length} units failed\n`);
  for (const failure of failures) io.out(failure.message + "\n");
  return 1;
}

/** A worker thread that claims units until none is left (tsx loads the TypeScript there too). */
function runWorker(job: WorkerJob, onUnit: (index: number, failure: FuzzFailure | undefined) => void): Promise<void> {
  return new Promise((resolve, reject) => {
    // From the bundle (dist/) the worker is bin/blocksim.js again, which
    // loads the bundle with the code cache made for campaigns (cli/entry.ts
    // then runs fuzz-worker.ts); from the sources it is TypeScript, so the
    // worker loads tsx first.
    const workerData = { fuzzJob: job };
    const w = import.meta.url.endsWith(".ts")
      ? new Worker(`import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(new URL("./fuzz-worker.ts", import.meta.url).href)}); });`, { eval: true, workerData })
      : new Worker(packagePath("bin", "blocksim.js"), { workerData });
    w.on("message", (m: { index: number; failure?: FuzzFailure }) => onUnit(m.index, m.failure));
    w.on("error", reject);
    w.on("exit", (code) => (code === 0 ? resolve() : reject(new Error(`fuzz worker exited with code ${code}`))));
  });
}

async function fuzzScenarioFile(file: string, o: { runs: number; seed: number; shard: { index: number; count: number }; timeMs?: number; profile?: string; out?: string }, io: CliIo): Promise<number> {
  const [{ loadScenarioFile }, { makeReplay, writeReplayFile }, { runScenario }, { RandomStrategy }] = await Promise.all([
    import("../sim/scenario/loader.js"), import("../sim/scenario/replay.js"), import("../sim/scenario/runner.js"), import("../sim/scheduler/index.js"),
  ]);
  const loaded = loadScenarioFile(file);
  const progress = new Progress(io);
  const t0 = performance.now();
  for (let k = 0; k < o.runs; k++) {
    const seed = o.seed + (o.shard.index - 1) + k * o.shard.count;
    const report = runScenario(loaded, { seed, strategy: new RandomStrategy(seed), ...(o.profile ? { profile: o.profile } : {}) });
    progress.runs++;
    if (!report.ok) {
      progress.violations++;
      progress.tick(true);
      progress.done();
      // Default: the working folder, never beside the scenario (which may be in the source tree).
      const out = o.out ?? basename(file).replace(/\.(ya?ml|json)$/, "") + `.seed-${seed}.replay.json`;
      writeReplayFile(out, makeReplay(report, loaded, out, file, `blocksim fuzz ${file}: random strategy, seed ${seed} (run ${k + 1})`));
      io.out(`blocksim fuzz: ${file} failed at seed ${seed} (run ${k + 1}, random strategy, profile ${report.profile})\n`);
      for (const f of report.failures.slice(0, 5)) io.out(`  ${f.kind}: ${f.message}\n`);
      io.out(`replay file: ${out}\nreplay: npx blocksim replay ${out}\ntimeline: npx blocksim timeline ${out} -o ${out.replace(/(\.replay)?\.json$/, "")}.html\n`);
      return 1;
    }
    progress.tick();
    if (o.timeMs !== undefined && performance.now() - t0 > o.timeMs) break;
  }
  progress.tick(true);
  progress.done();
  io.out(`blocksim fuzz: ${file}: every expectation held in ${progress.runs} runs (random strategy, seeds from ${o.seed})\n`);
  return 0;
}
