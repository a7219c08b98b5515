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
import { cpus } from "node:os";
import { basename } from "node:path";
import { parseArgs } from "node:util";
import { Worker } from "node:worker_threads";
import { profileOption, replaySpelling, UsageError } from "./args.js";
import { MAX_WALL_MS, OPTION_LIMITS, wholeNumberOption } from "../sim/scenario/limits.js";
import { InputError, formatProblems } from "../sim/scenario/errors.js";
import { packagePath } from "../sim/scenario/package-root.js";
import { OldReplayFormatError } from "../sim/scenario/replay.js";
import { campaignOf, firstFailure, newShared, NEXT_UNIT, RUNS, runClaimedUnits, UNIT_RUNS, VIOLATIONS, type WorkerJob } from "./fuzz-units.js";

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

/** When --workers starts a worker thread: see startAnotherWorker. */
export const WORKER_WARMUP_MS = 1500, WINDOW_MS = 250, FIRST_WINDOW_MS = 100, EARLY_WORKER_RUNS = 4000, IDLE_CORE = 0.5, SETTLE_MS = 1000;

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
  --workers N     at most N threads for generated scenarios (default 1); the
                  runs, output and replay file are those of one thread. This
                  thread starts a worker only when a core stands idle and the
                  worker can earn its warm-up back: in its first tenth of a
                  second if ${EARLY_WORKER_RUNS.toLocaleString("en-US")} runs or more are left, after its first
                  second if the runs left would take it longer than ~${WORKER_WARMUP_MS / 1000} s;
                  one at a time (each warms V8 up anew)
  --shard i/n     run only shard i of n (fast-check seed S+i-1, runs/n runs)
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
 * The campaign of one shard: shard i of n is fast-check seed seed+i-1 with
 * a share of the runs, so shards never overlap and together cover all (one
 * shard: the seed itself, every run).
 */
export function shardCampaign(seed: number, runs: number, shard: { index: number; count: number }): { seed: number; runs: number } {
  return { seed: seed + shard.index - 1, runs: Math.ceil(runs / shard.count) };
}

class Progress {
  private readonly t0 = performance.now();
  private last = 0;
  runs = 0;
  violations = 0;
  /** Threads running the campaign (shown when more than one: whether --workers started any). */
  threads = 1;
  constructor(private readonly io: CliIo) {}
  tick(force = false): void {
    if (!this.io.tty) return;
    const now = performance.now();
    if (!force && now - this.last < 250) return;
    this.last = now;
    const s = (now - this.t0) / 1000;
    this.io.err(`\r${this.runs} runs, ${(this.runs / Math.max(s, 1e-3)).toFixed(0)} runs/s, ${this.violations} violations, ${s.toFixed(1)} s${this.threads > 1 ? `, ${this.threads} threads` : ""}   `);
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
    // Each shard (or, for a file, each run) takes the next seed: the last must still be exact.
    const seeds = positionals.length === 1 ? runs * shard.count : shard.count;
    if (seed + seeds - 1 > OPTION_LIMITS["fuzz --seed"].max) {
      throw new Usage(`--seed ${seed} would use seeds up to ${seed + seeds - 1} (one per ${positionals.length === 1 ? "run of every shard" : "shard"}), past ${OPTION_LIMITS["fuzz --seed"].max}, the largest fuzz seed (fast-check keeps 32 bits of a seed)`);
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
 * When a worker thread starts. A worker is an isolate of its own that loads
 * blocksim and warms V8's compilers up again, ~0.6-1 CPU-s before it runs
 * at full speed, and a single warming thread already keeps ~1.3 cores busy
 * (V8's background compiler and GC). So a worker pays only on a core that
 * would otherwise stay idle (on a loaded machine a second thread gets no
 * more of the cores, only more warm-up to do: README "Benchmarks"),
 * and only if it has enough runs left to earn its warm-up back. This thread
 * decides from what it measures in windows: its own wall time per run and
 * the machine's idle cores (os.cpus); each worker started opens a new
 * window, so they start one at a time and stop when no core is left idle.
 * The first window is short (FIRST_WINDOW_MS): a worker that starts there
 * warms up beside this thread, which is what pays, so it starts if
 * EARLY_WORKER_RUNS or more runs are unclaimed (on two quiet cores a worker
 * started at once made a 2,000-run campaign ~1.06-1.11x as fast when a run
 * cost ~0.5 ms; at ~0.35 ms, since the checker and the copy paths got
 * cheaper, it made it 0.85x and a 4,000-run one 1.0-1.09x; it costs ~0.6-1
 * CPU-s more). After that a cold thread's rate overstates the time the
 * runs left will take, so later windows decide nothing until SETTLE_MS of
 * running, and then start a worker when the runs unclaimed would keep this
 * thread busy longer than a worker's warm-up (WORKER_WARMUP_MS).
 * BLOCKSIM_FUZZ_WORKERS_AT_ONCE=1 starts them all at once instead (the
 * tests and the campaign benchmark use it).
 */

/** Whether one more worker thread should start, from the last window's measurements and this thread's time running runs. */
export function startAnotherWorker(m: { runsUnclaimed: number; msPerRun: number; idleCores: number; runningMs: number; firstWindow: boolean }): boolean {
  if (m.idleCores < IDLE_CORE) return false;
  if (m.firstWindow) return m.runsUnclaimed >= EARLY_WORKER_RUNS;
  return m.runningMs >= SETTLE_MS && m.runsUnclaimed * m.msPerRun > WORKER_WARMUP_MS;
}

function workersAtOnce(): boolean {
  const text = process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE;
  if (text === undefined || text === "" || text === "0") return false;
  if (text === "1") return true;
  throw new Usage(`BLOCKSIM_FUZZ_WORKERS_AT_ONCE expects 1 (start the worker threads at once) or 0, got ${JSON.stringify(text.slice(0, 40))}`);
}

/** Idle time of all cores so far, ms (os.cpus: since boot). */
const idleMs = () => cpus().reduce((sum, c) => sum + c.times.idle, 0);

/** Measures this thread's runs and the machine's idle cores over windows: the first FIRST_WINDOW_MS long, the others WINDOW_MS. */
class Window {
  private readonly start = performance.now();
  private t0 = this.start;
  private idle0 = idleMs();
  private runs0 = 0;
  private closed = 0;
  /** The window's figures once it is long enough (and a new one opens), else undefined. */
  close(runs: number): { msPerRun: number; idleCores: number; runningMs: number; firstWindow: boolean } | undefined {
    const now = performance.now(), ms = now - this.t0;
    if (ms < (this.closed === 0 ? FIRST_WINDOW_MS : WINDOW_MS) || runs === this.runs0) return undefined;
    const idle = idleMs(), m = { msPerRun: ms / (runs - this.runs0), idleCores: (idle - this.idle0) / ms, runningMs: now - this.start, firstWindow: this.closed === 0 };
    this.t0 = now;
    this.idle0 = idle;
    this.runs0 = runs;
    this.closed++;
    return m;
  }
}

async function fuzzGenerated(o: GeneratedOptions, io: CliIo): Promise<number> {
  const { seed, runs } = shardCampaign(o.seed, o.runs, o.shard);
  const atOnce = workersAtOnce();
  io.out(`blocksim fuzz: profile ${o.profile}, ${runs} runs of fast-check seed ${seed}${o.shard.count > 1 ? `, shard ${o.shard.index}/${o.shard.count}` : ""}\n`);
  const progress = new Progress(io);
  const job: WorkerJob = {
    seed, runs, profile: o.profile, shared: newShared(runs),
    ...(o.timeMs !== undefined ? { deadline: performance.timeOrigin + performance.now() + o.timeMs } : {}),
  };
  const cells = new Int32Array(job.shared);
  const workers: Promise<void>[] = [];
  const startWorker = () => {
    workers.push(runWorker(job));
    progress.threads = 1 + workers.length;
  };
  const unclaimed = () => Math.max(0, runs - Atomics.load(cells, NEXT_UNIT) * UNIT_RUNS);
  if (o.workers > 1 && atOnce) for (let k = 1; k < Math.min(o.workers, Math.ceil(runs / UNIT_RUNS)); k++) startWorker();
  // The main thread runs units too; it loads the simulator only now.
  const { FuzzCampaign } = await import("../sim/fuzz/index.js");
  let mine = 0;
  const window = o.workers > 1 && !atOnce ? new Window() : undefined;
  const campaign = campaignOf(FuzzCampaign, job, {
    replayFile: o.out ?? `blocksim-fuzz-${seed}.replay.json`,
    onRun: () => {
      progress.runs = Atomics.load(cells, RUNS);
      progress.violations = Atomics.load(cells, VIOLATIONS);
      progress.tick();
      // Called between this thread's own runs, so no unit is claimed meanwhile.
      if (window && ++mine % 8 === 0 && workers.length < o.workers - 1) {
        const m = window.close(mine);
        if (m && startAnotherWorker({ runsUnclaimed: unclaimed(), ...m })) startWorker();
      }
    },
  });
  runClaimedUnits(campaign, job);
  const ticker = io.tty && workers.length > 0 ? setInterval(() => {
    progress.runs = Atomics.load(cells, RUNS);
    progress.violations = Atomics.load(cells, VIOLATIONS);
    progress.tick();
  }, 250) : undefined;
  await Promise.all(workers).finally(() => clearInterval(ticker));
  // Every thread is done: the first failing run is the campaign's, shrunk here (its runs counted as runs).
  const k = firstFailure(job);
  const failure = k === undefined ? undefined : campaign.failure(k, job.deadline === undefined ? undefined : job.deadline - (performance.timeOrigin + performance.now()));
  progress.runs = Atomics.load(cells, RUNS);
  progress.violations = Atomics.load(cells, VIOLATIONS);
  progress.tick(true);
  progress.done();
  if (!failure) {
    io.out(`blocksim fuzz: no violation in ${progress.runs} runs\n`);
    return 0;
  }
  io.out(failure.message + "\n");
  return 1;
}

/** A worker thread that claims units until none is left (tsx loads the TypeScript there too). */
function runWorker(job: WorkerJob): Promise<void> {
  return new Promise((resolve, reject) => {
    // From the bundle (dist/) the worker is bin/blocksim.js again, which
    // loads the bundle with the code cache made for campaigns (cli/entry.ts
    // then runs fuzz-worker.ts); from the sources it is TypeScript, so the
    // worker loads tsx first.
    const workerData = { fuzzJob: job };
    const w = import.meta.url.endsWith(".ts")
      ? new Worker(`import(${JSON.stringify(import.meta.resolve("tsx/esm/api"))}).then((m) => { m.register(); return import(${JSON.stringify(new URL("./fuzz-worker.ts", import.meta.url).href)}); });`, { eval: true, workerData })
      : new Worker(packagePath("bin", "blocksim.js"), { workerData });
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
