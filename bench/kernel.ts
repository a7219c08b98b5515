/**
 * Kernel benchmark: K processes each looping `sleep(random ns)`, run on
 * blocksim's Scheduler (FIFO strategy, hashing always on, trace off) and on a
 * minimal reference kernel written here (a plain object binary heap and bare
 * generators: no strategy, no choice log, no hash, no trace). Both kernels run
 * the very same generator bodies with the same delays, drawn up front from a
 * seeded stream. Prints events/s for both and their ratio (median of several
 * runs after a warm-up).
 *
 * Bar (issue 3): blocksim >= 0.5x the reference at K = 1,000 and >= 0.3x at
 * K = 100,000. This is a measurement, not a test: nothing here fails a build.
 *
 * Usage: npm run bench            (all sizes)
 *        npx tsx bench/kernel.ts 1000 100000   (chosen sizes)
 */
import seedrandom from "seedrandom";
import { Scheduler, sleep, type Process } from "../sim/scheduler/index.js";
import { median, runReference, type Sleeper } from "./reference-kernel.js";

/** Events (process resumptions) per measured run, whatever K. */
const EVENTS = 2_000_000;
/** Delays are uniform in [1, DELAY_MAX_NS] ns. */
const DELAY_MAX_NS = 1_000_000;
const RUNS = 5;
const TABLE = 1 << 20;

const delays = new Int32Array(TABLE);
{
  const rng = seedrandom.alea("bench/kernel");
  for (let i = 0; i < TABLE; i++) delays[i] = 1 + Math.floor(rng() * DELAY_MAX_NS);
}

/** The workload, shared by both kernels: `n` sleeps of table-drawn length. */
function* worker(i: number, n: number): Process {
  let at = (i * 7919) & (TABLE - 1);
  for (let j = 0; j < n; j++) {
    yield sleep(delays[at]);
    at = (at + 1) & (TABLE - 1);
  }
}

function runRef(k: number, perProc: number): { events: number; endTimeNs: number } {
  return runReference(Array.from({ length: k }, (_, i) => worker(i, perProc) as unknown as Sleeper));
}

function runBlocksim(k: number, perProc: number): { events: number; endTimeNs: number; choices: number } {
  const sim = new Scheduler({ seed: 1 });
  for (let i = 0; i < k; i++) sim.spawn("w", worker(i, perProc));
  const r = sim.run();
  if (r.outcome.kind !== "ok") throw new Error(`bench run ended with ${JSON.stringify(r.outcome)}`);
  return { events: r.steps, endTimeNs: r.endTimeNs, choices: r.choices.length };
}

function measure(k: number) {
  const perProc = Math.max(1, Math.round(EVENTS / k) - 1);
  const refRates: number[] = [], simRates: number[] = [];
  let ref = runRef(k, perProc); // warm-up
  let bs = runBlocksim(k, perProc);
  if (ref.events !== bs.events || ref.endTimeNs !== bs.endTimeNs) {
    throw new Error(`the kernels disagree: reference ${JSON.stringify(ref)}, blocksim ${JSON.stringify(bs)}`);
  }
  for (let i = 0; i < RUNS; i++) {
    // Alternate which kernel goes first so drift in machine load hits both.
    const order = i % 2 === 0 ? ["ref", "sim"] : ["sim", "ref"];
    for (const which of order) {
      (globalThis as { gc?: () => void }).gc?.();
      const t0 = process.hrtime.bigint();
      if (which === "ref") ref = runRef(k, perProc);
      else bs = runBlocksim(k, perProc);
      const s = Number(process.hrtime.bigint() - t0) / 1e9;
      (which === "ref" ? refRates : simRates).push((which === "ref" ? ref.events : bs.events) / s);
    }
  }
  const refEv = median(refRates), simEv = median(simRates);
  return { k, events: bs.events, choices: bs.choices, refEv, simEv, ratio: simEv / refEv };
}

const BAR: Record<number, number> = { 1000: 0.5, 100000: 0.3 };
const sizes = process.argv.slice(2).map(Number);
const ks = sizes.length > 0 ? sizes : [10, 1000, 100_000];

console.log(`kernel bench: K processes looping sleep(uniform 1..${DELAY_MAX_NS} ns), ~${EVENTS.toLocaleString("en-US")} events per run, median of ${RUNS} after a warm-up; node ${process.version}`);
console.log("");
console.log("| K | events | same-instant choice points | reference (events/s) | blocksim (events/s) | ratio | bar |");
console.log("|---:|---:|---:|---:|---:|---:|---|");
const fmt = (x: number) => `${(x / 1e6).toFixed(2)} M`;
for (const k of ks) {
  const m = measure(k);
  const bar = BAR[k];
  const verdict = bar === undefined ? "—" : `>= ${bar}x ${m.ratio >= bar ? "met" : "MISSED"}`;
  console.log(`| ${k.toLocaleString("en-US")} | ${m.events.toLocaleString("en-US")} | ${m.choices.toLocaleString("en-US")} | ${fmt(m.refEv)} | ${fmt(m.simEv)} | ${m.ratio.toFixed(2)}x | ${verdict} |`);
}
