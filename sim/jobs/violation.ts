/**
 * A broken invariant: the one shape every layer reports — the job core and
 * the QMP layer as they run (JobManager.violation), the management layer,
 * the invariant library (sim/check) and everything above it.
 */
export interface Violation {
  /** The invariant's kebab-case name (`blocksim invariants` lists them). */
  invariant: string;
  /** Virtual time at which it broke, ns. */
  timeNs: number;
  /** The job concerned, if any. */
  job?: string;
  /** One line: what happened. */
  detail: string;
  /** The relevant state at that moment (plain JSON), for the report. */
  state?: Record<string, unknown>;
}
