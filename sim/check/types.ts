/**
 * The shapes of the invariant library: what it watches (a World), what an
 * invariant is (a name, a one-line description, a monitor), and what a broken
 * invariant reports (the state that broke it).
 */
import type { BlockEvent, BlockGraph } from "../block/index.js";
import type { RunFacts } from "./facts.js";
import type { JobManager } from "../jobs/manager.js";
import type { Violation } from "../jobs/violation.js";
import type { TranscriptEntry } from "../qmp/types.js";
import type { RunResult, Scheduler, TraceRecord, UnhashedRunResult } from "../scheduler/index.js";

/** The trace source (and I/O issuer) label of a job: `job:<id>` (sim/jobs names its jobs so). */
export { JOB_LABEL } from "../jobs/job.js";

/**
 * A kind an invariant can name instead of `io`: only the `io` records whose
 * issuer names a job (JOB_LABEL anywhere in it: a job's own request, or one a
 * job's filter issued for it). Most device I/O comes from guests.
 */
export const JOB_IO = "job-io";

/** What the checker observes: one simulated QEMU (a `Qemu` from sim/qmp is one). */
export interface World {
  sim: Scheduler;
  graph: BlockGraph;
  jm: JobManager;
  /** Its QMP monitor, when it has one: invariants about commands read their arguments from the transcript. */
  monitor?: { readonly transcript: readonly TranscriptEntry[] };
}

/** One broken invariant, with the state that broke it: the one Violation type (sim/jobs/violation.ts). */
export type CheckViolation = Violation;

/** Where a monitor sends what it finds. */
export interface CheckContext {
  readonly world: World;
  /** The run's job statuses and QMP asks, derived once for every invariant (only for an invariant that declares `facts`). */
  readonly facts: RunFacts;
  report(v: Omit<CheckViolation, "invariant" | "timeNs"> & { timeNs?: number }): void;
  /** From now on, whether the monitor gets the records of its invariant's `demandKinds` as well (at first it does not; an invariant without `kinds` gets every record anyway). */
  demand(on: boolean): void;
}

/**
 * The callbacks of one invariant for one run. Step callbacks run inside the
 * simulation (after each trace record or block event) and must not change it;
 * `end` runs once after the run.
 */
export interface Monitor {
  /**
   * Gets the records of the kinds its invariant names, as they are made; with
   * a `failure` record, `cause`: the value the process threw (its class says
   * what kind of abort it is; the record's text is only for people).
   */
  onRecord?(r: TraceRecord, cause?: unknown): void;
  /** Gets the block events of the types its invariant names. */
  onBlock?(ev: BlockEvent): void;
  end?(result: RunResult | UnhashedRunResult): void;
}

export interface Invariant {
  /** Kebab-case name that scenarios and the CLI use. */
  readonly name: string;
  /** One line. */
  readonly description: string;
  /** "step": checked as the run goes; "end": a property of the finished run. */
  readonly when: "step" | "end";
  /** Where the rule comes from (QEMU source or commit), if anywhere. */
  readonly source?: string;
  /**
   * The record kinds its monitor's `onRecord` looks at (every kind when
   * absent). A record of a kind no chosen invariant names costs the checker
   * one lookup. `job-io` (JOB_IO) names the `io` records a job issued only.
   */
  readonly kinds?: readonly string[];
  /**
   * Kinds its monitor needs only at times (while it watches something), got
   * between `ctx.demand(true)` and `ctx.demand(false)`: until then a record
   * of these kinds costs it nothing. Only with `kinds`.
   */
  readonly demandKinds?: readonly string[];
  /**
   * Whether its monitor reads `ctx.facts`, which the checker then derives
   * (from the record kinds facts.ts names, whether the invariant names them
   * or not) before any monitor sees a record.
   */
  readonly facts?: boolean;
  /** The block event types its monitor's `onBlock` looks at (none when absent). */
  readonly blockEvents?: readonly BlockEvent["type"][];
  /** Makes this invariant's monitor for one run. */
  attach(ctx: CheckContext): Monitor;
}
