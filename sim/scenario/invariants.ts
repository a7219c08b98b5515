/**
 * The invariants a scenario can ask for, by name. The job core reports some
 * of them itself as it runs (jm.violations); the others are checked here
 * over the run's trace and final state. A fuller library belongs in
 * sim/check/ (issue 8); this is the set the scenario runner knows today.
 */
import type { Job } from "../jobs/job.js";
import type { Violation } from "../jobs/job.js";
import { isLegalTransition, type JobStatus } from "../jobs/status.js";
import type { TraceRecord } from "../scheduler/index.js";

/** What an invariant sees of a finished run. */
export interface RunObservation {
  trace: readonly TraceRecord[];
  /** Rules the job core reported while running. */
  coreViolations: readonly Violation[];
  /** Every job seen during the run, in order of first sight. */
  jobs: readonly Job[];
}

/** One broken invariant. */
export interface InvariantViolation {
  invariant: string;
  timeNs: number;
  job?: string;
  detail: string;
}

export interface Invariant {
  name: string;
  description: string;
  /** Where the behaviour comes from (QEMU commit or source), if anywhere. */
  source?: string;
  check(obs: RunObservation): InvariantViolation[];
}

function fromCore(name: string, description: string, source?: string): Invariant {
  return {
    name,
    description,
    source,
    check: (obs) => obs.coreViolations.filter((v) => v.rule === name).map((v) => ({ invariant: name, timeNs: v.timeNs, job: v.job, detail: v.detail })),
  };
}

/** Every invariant the runner checks, in report order. */
export const INVARIANTS: readonly Invariant[] = [
  fromCore("no-io-while-paused", "a job issues no I/O while it is paused (seed 000: a job paused before its first start stays quiet until resumed)", "qemu e3796a245a"),
  fromCore("no-io-after-conclude", "a job issues no I/O once it has concluded or been freed"),
  fromCore("pause-count-non-negative", "a job's pause count never goes below zero"),
  fromCore("coroutine-reentered", "a job coroutine is entered only while parked at a yield point"),
  {
    name: "legal-transitions",
    description: "every job status change is one QEMU's JobSTT allows",
    source: "qemu job.c JobSTT",
    check(obs) {
      const out: InvariantViolation[] = [];
      for (const r of obs.trace) {
        if (r.kind !== "status" || !r.src.startsWith("job:")) continue;
        const from = r.data?.from as JobStatus, to = r.data?.to as JobStatus;
        if (!isLegalTransition(from, to)) out.push({ invariant: "legal-transitions", timeNs: r.t, job: r.src.slice(4), detail: `${from} -> ${to}` });
      }
      return out;
    },
  },
  {
    name: "txn-no-complete-before-commit",
    description: "no job created by a transaction completes (BLOCK_JOB_COMPLETED) before that transaction has committed (seed 001)",
    source: "qemu 111049a4ec",
    check(obs) {
      const out: InvariantViolation[] = [];
      let open: { members: Set<string>; committed: boolean } | undefined;
      const pending = new Map<string, { timeNs: number }>(); // members not yet committed
      for (const r of obs.trace) {
        if (r.src === "qmp" && r.kind === "command") {
          const ex = r.data?.execute;
          open = ex === "transaction" || ex === "blockdev-backup" || ex === "drive-backup" ? { members: new Set(), committed: false } : undefined;
        } else if (r.src === "qmp" && (r.kind === "return" || r.kind === "error")) {
          if (open && !open.committed) for (const m of open.members) pending.delete(m);
          open = undefined;
        } else if (r.src === "qmp" && r.kind === "transaction-commit" && open) {
          open.committed = true;
          for (const m of open.members) pending.delete(m);
        } else if (r.src === "event" && r.kind === "JOB_STATUS_CHANGE" && r.data?.status === "created" && open && !open.committed) {
          open.members.add(String(r.data.id));
          pending.set(String(r.data.id), { timeNs: r.t });
        } else if (r.src === "event" && r.kind === "BLOCK_JOB_COMPLETED") {
          const id = String(r.data?.device);
          if (pending.has(id)) {
            out.push({ invariant: "txn-no-complete-before-commit", timeNs: r.t, job: id, detail: `job '${id}' completed before its transaction committed` });
            pending.delete(id);
          }
        }
      }
      return out;
    },
  },
  {
    name: "jobs-conclude",
    description: "liveness: at the end of the run every job has concluded or been dismissed, unless the user paused it or it waits for the user (ready, pending with auto-finalize off)",
    check(obs) {
      const out: InvariantViolation[] = [];
      const end = obs.trace.length > 0 ? obs.trace[obs.trace.length - 1].t : 0;
      for (const j of obs.jobs) {
        if (j.id === null || j.freed) continue;
        const s = j.status;
        if (s === "concluded" || s === "null" || j.userPaused || s === "ready" || s === "standby" || (s === "pending" && !j.autoFinalize)) continue;
        out.push({ invariant: "jobs-conclude", timeNs: end, job: j.id, detail: `job '${j.id}' is still ${s}${j.pauseCount > 0 ? ` (pause count ${j.pauseCount})` : ""} at the end of the run` });
      }
      return out;
    },
  },
];

/** Looks an invariant up by name. */
export function invariant(name: string): Invariant | undefined {
  return INVARIANTS.find((i) => i.name === name);
}
