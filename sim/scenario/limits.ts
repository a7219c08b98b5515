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
} as const;
