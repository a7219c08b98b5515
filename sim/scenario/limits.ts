/**
 * Bounds on every dimension of a scenario or replay file, chosen so that no
 * accepted input can exhaust memory or run for hours by accident: files
 * come from bug reports and pull requests, so they are untrusted. The
 * README's "Running untrusted scenarios" lists them (a test keeps it true).
 */
export const LIMITS = {
  /** Bytes in one scenario or fragment file. */
  fileBytes: 4 * 1024 * 1024,
  /** Bytes in one replay file (its event log and choice log make it larger). */
  replayBytes: 64 * 1024 * 1024,
  /** Files a scenario may import, directly or through fragments (each counted once). */
  imports: 64,
  /** Nesting of imports. */
  importDepth: 32,
  /** Nesting of mappings and lists in a document. */
  depth: 64,
  devices: 1_000,
  nodes: 1_000,
  guests: 1_000,
  /** A guest's requests in flight. */
  iodepth: 1_024,
  /** A device's requests in flight. */
  queueDepth: 4_096,
  /** Byte ranges and fault rules on one device. */
  deviceRanges: 10_000,
  steps: 100_000,
  /** Entries in expect.events, expect.never and expect.data, each. */
  expectations: 100_000,
  /** Options of one chosen moment (`at: { choose: … }`). */
  chooseOptions: 10_000,
  /** Job ids in expect.jobs (each job needs a step that starts it). */
  expectJobs: 10_000,
  /** Names in expect.invariants and expect.violations, each (blocksim has a few dozen invariants). */
  invariantNames: 1_000,
  /** Entries in a replay's choice log. */
  choices: 50_000_000,
  /** Clusters of all devices together (blocksim keeps a version per cluster: about 9 bytes each). */
  clusters: 64 * 1024 * 1024,
  /** A scenario's `limits.steps` (kernel steps; a few minutes of CPU). */
  kernelSteps: 200_000_000,
} as const;

/**
 * The whole-number options of the command line and the range each takes
 * (a mistyped 1e12, a negative count or a seed past exactness is refused by
 * name, never rounded or run for days). Seeds stay exact: run's seeds name
 * PRNG streams by their decimal text, so any safe integer; fast-check keeps
 * only 32 bits of its seed, so fuzz's seeds (each unit's too) stay below 2^32.
 */
export const OPTION_LIMITS = {
  "--seed": { min: 0, max: Number.MAX_SAFE_INTEGER },
  "check-determinism --runs": { min: 2, max: 1_000 },
  "fuzz --seed": { min: 0, max: 2 ** 32 - 1 },
  "fuzz --runs": { min: 1, max: 10_000_000 },
  "fuzz --workers": { min: 1, max: 64 },
  "fuzz --shard": { min: 1, max: 10_000 },
  "explore --seed": { min: 0, max: Number.MAX_SAFE_INTEGER },
  "explore --budget": { min: 1, max: 1_000_000 },
  "explore --depth": { min: 1, max: 100 },
  "explore --max-choice-points": { min: 0, max: 1_000 },
  "explore --max-preemptions": { min: 0, max: 100 },
  "races --budget": { min: 1, max: 1_000_000 },
  "record --runs": { min: 1, max: 100 },
  "record --generate": { min: 1, max: 100_000 },
  "record --seed": { min: 0, max: Number.MAX_SAFE_INTEGER },
  "serve --grace": { min: 1, max: 10_000 },
  "serve --max-message": { min: 64, max: 64 << 20 },
} as const;

/** `fuzz --time` and other wall-clock durations: at most a day. */
export const MAX_WALL_MS = 24 * 3_600_000;

/** A command line that cannot be run as given (exit 2, one line, never a stack). */
export class UsageError extends Error {
  override name = "UsageError";
}

/**
 * The value of a whole-number option: decimal digits only (no 1e3, 0x10,
 * -1 or 2.5), within OPTION_LIMITS; `fallback` when it is not given.
 */
export function wholeNumberOption(option: keyof typeof OPTION_LIMITS, text: string | undefined, fallback: number): number {
  if (text === undefined) return fallback;
  const { min, max } = OPTION_LIMITS[option];
  const flag = option.slice(option.indexOf("--"));
  const n = /^\d{1,20}$/.test(text) ? Number(text) : NaN;
  if (!(n >= min && n <= max)) {
    throw new UsageError(`${flag} expects a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}, got ${JSON.stringify(text.length > 40 ? `${text.slice(0, 40)}…` : text)}`);
  }
  return n;
}
