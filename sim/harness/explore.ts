/**
 * Exploring the schedules of one scenario: random walks, PCT walks, and
 * bounded exhaustive enumeration, plus greedy shrinking of a failing
 * schedule. Everything here is generic over a `Subject`: a function that runs
 * the scenario once under a given strategy and says what broke.
 *
 * Schedules are plain pick lists (`number[]`): entry i answers the i-th
 * choice point (`pick % n`), and choice points past the end take 0, the FIFO
 * answer. So a shorter list, or smaller entries, is a simpler schedule — the
 * order fast-check's shrinker and `shrinkPicks` both move in.
 */
import { PctStrategy, RandomStrategy, type ChoiceLog, type Strategy } from "../scheduler/index.js";
import { PickListStrategy, picksOf } from "./strategy.js";

export { PickListStrategy, picksOf } from "./strategy.js";

/** What one run of a subject reports. */
export interface SubjectRun {
  /** Names (and details) of broken invariants; empty = clean. */
  violations: readonly { invariant: string; detail: string; timeNs?: number }[];
  hash: string;
  choices: ChoiceLog;
}

/** Runs the scenario once under `strategy`; `seed` also seeds the run's own PRNG streams. */
export type Subject = (strategy: Strategy, seed: number) => SubjectRun;

/** The explorers, by the names `explore` and `races` take. */
export const EXPLORE_STRATEGIES = ["random", "pct", "exhaustive"] as const;
export type ExploreStrategy = (typeof EXPLORE_STRATEGIES)[number];

export interface ExploreOptions {
  strategy: ExploreStrategy;
  /** Most runs (default 1000). */
  budget?: number;
  /** PCT bug depth d (default 3). */
  depth?: number;
  /** Exhaustive: branch only at the first this-many choice points (default 12). */
  maxChoicePoints?: number;
  /** Exhaustive: at most this many non-FIFO picks per schedule (default 2). */
  maxPreemptions?: number;
  /** Keep going after the first violation (default: stop there). */
  all?: boolean;
  /** First seed of random and PCT walks (default 1); run i uses seed + i. */
  seed?: number;
  /** Called after every run (progress lines). */
  onRun?: (done: number, run: SubjectRun) => void;
}

export interface Found {
  /** Which run found it (1-based). */
  run: number;
  seed: number;
  result: SubjectRun;
}

export interface ExploreResult {
  strategy: ExploreStrategy;
  runs: number;
  /** Distinct trace hashes seen: distinct schedules as far as the trace can tell. */
  distinct: number;
  /** Exhaustive only: every schedule within the bounds was run. */
  complete: boolean;
  found: Found[];
}

const broken = (r: SubjectRun) => r.violations.length > 0;

/** Explores schedules of `subject`; stops at the first violation unless `all`. */
export function explore(subject: Subject, opts: ExploreOptions): ExploreResult {
  const budget = opts.budget ?? 1000;
  const hashes = new Set<string>();
  const found: Found[] = [];
  let runs = 0;
  const record = (seed: number, r: SubjectRun): boolean => {
    runs++;
    hashes.add(r.hash);
    opts.onRun?.(runs, r);
    if (broken(r)) found.push({ run: runs, seed, result: r });
    return broken(r) && !opts.all;
  };
  if (opts.strategy === "exhaustive") {
    const maxCp = opts.maxChoicePoints ?? 12, maxPre = opts.maxPreemptions ?? 2;
    let prefix: number[] | undefined = [];
    while (prefix && runs < budget) {
      const s = new PickListStrategy(prefix);
      const r = subject(s, 0);
      if (record(0, r)) return { strategy: "exhaustive", runs, distinct: hashes.size, complete: false, found };
      prefix = nextPrefix(picksOf(r.choices), s.widths, maxCp, maxPre);
    }
    return { strategy: "exhaustive", runs, distinct: hashes.size, complete: prefix === undefined, found };
  }
  const first = opts.seed ?? 1;
  let expected = 0;
  if (opts.strategy === "pct") expected = Math.max(1, subject(new PickListStrategy([]), first).choices.length);
  for (let i = 0; i < budget; i++) {
    const seed = first + i;
    const s = opts.strategy === "pct" ? new PctStrategy(seed, { depth: opts.depth ?? 3, expectedChoices: expected }) : new RandomStrategy(seed);
    if (record(seed, subject(s, seed))) break;
  }
  return { strategy: opts.strategy, runs, distinct: hashes.size, complete: false, found };
}

/**
 * The next schedule in depth-first order after the one that took `picks`
 * over choice points of `widths`: bump the deepest branchable pick, drop
 * what follows. undefined when the bounded tree is done.
 */
export function nextPrefix(picks: readonly number[], widths: readonly number[], maxChoicePoints: number, maxPreemptions: number): number[] | undefined {
  for (let i = Math.min(picks.length, maxChoicePoints) - 1; i >= 0; i--) {
    if (picks[i] + 1 >= widths[i]) continue;
    const head = picks.slice(0, i);
    const used = head.filter((p) => p !== 0).length;
    if (used + 1 > maxPreemptions) continue;
    return [...head, picks[i] + 1];
  }
  return undefined;
}

/**
 * Greedy shrinking of a failing schedule: drop the tail, set picks to 0 one
 * at a time (last first), then lower each pick left (binary search), keeping
 * each change under which `stillFails`.
 * `seed` must be the seed of the failing run (it seeds the run's own streams).
 * Returns the smallest failing pick list found and its run.
 */
export function shrinkPicks(subject: Subject, picks: readonly number[], stillFails: (r: SubjectRun) => boolean, opts: { seed?: number; maxRuns?: number } = {}): { picks: number[]; result: SubjectRun; runs: number } {
  const seed = opts.seed ?? 0, maxRuns = opts.maxRuns ?? 500;
  let best = [...picks];
  let result = subject(new PickListStrategy(best), seed);
  let runs = 1;
  if (!stillFails(result)) return { picks: best, result, runs };
  const attempt = (cand: number[]): boolean => {
    if (runs >= maxRuns) return false;
    runs++;
    const r = subject(new PickListStrategy(cand), seed);
    if (!stillFails(r)) return false;
    best = cand;
    result = r;
    return true;
  };
  // the shortest prefix that still fails (binary search on length, then linear polish)
  let lo = 0, hi = best.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (attempt(best.slice(0, mid))) hi = best.length;
    else lo = mid + 1;
  }
  for (let i = best.length - 1; i >= 0; i--) {
    if (best[i] === 0) continue;
    const cand = [...best];
    cand[i] = 0;
    attempt(cand);
  }
  // A pick left non-zero is lowered as far as it still fails (a chosen moment moves towards its `from`).
  for (let i = best.length - 1; i >= 0; i--) {
    let lo = 1, hi = best[i] - 1;
    while (lo <= hi) {
      const mid = (lo + hi) >> 1;
      const cand = [...best];
      cand[i] = mid;
      if (attempt(cand)) hi = mid - 1;
      else lo = mid + 1;
    }
  }
  while (best.length > 0 && best[best.length - 1] === 0) best = best.slice(0, -1);
  return { picks: best, result, runs };
}
