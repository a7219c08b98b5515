/**
 * What several invariants derive from the same records, derived once per run
 * by the checker (checkRun) instead of once per invariant: every job's
 * status, what the QMP client asked of each job, and the node of each
 * drained section being established. The checker hands a
 * record of these kinds to the facts before any monitor sees it, so a
 * monitor reads them already updated with the record it is looking at.
 */
import type { BlockGraph, BlockNode } from "../block/index.js";
import type { JobStatus } from "../jobs/status.js";
import type { TranscriptEntry } from "../qmp/types.js";
import type { TraceRecord } from "../scheduler/index.js";
import { JOB_LABEL, type World } from "./types.js";

/** The job named by a `job:<name>` trace source or issuer, else undefined. */
export function jobOf(label: string): string | undefined {
  return label.startsWith(JOB_LABEL) ? label.slice(JOB_LABEL.length) : undefined;
}

/** Status of every job seen, from its `status` trace records (and `freed`). */
class StatusTable {
  static readonly KINDS = ["status", "freed"];
  /** A job's last status, or "freed"; in the order the jobs were first seen. */
  readonly status = new Map<string, JobStatus | "freed">();
  /** A job's last status as its last `status` record gave it (a freed job keeps it). */
  readonly lastTo = new Map<string, string>();
  onRecord(r: TraceRecord, job: string): void {
    if (r.kind === "status") {
      this.status.set(job, r.data?.to as JobStatus);
      this.lastTo.set(job, String(r.data?.to));
    } else if (r.kind === "freed") this.status.set(job, "freed");
  }
}

/**
 * What the QMP client asked of each job, from the monitor's transcript:
 * completes, and hard cancels (job-cancel, block-job-cancel with force,
 * quit). A block-job-cancel without force is hard too unless the job is
 * READY or STANDBY when it arrives: only a mirror or active commit there
 * takes a soft cancel (QEMU 7.2 mirror_cancel, commit_active_cancel: any
 * other status, PENDING after an accepted complete included, forces it;
 * other jobs have no soft cancel). Both count from the command itself, since either can end the job
 * before the reply; a complete refused with an error is struck off again.
 * A job can also end while a complete QEMU refuses is still waiting for its
 * reply (a soft-cancelled READY mirror's exit runs in the reply's round), so
 * a job ending under a complete in flight is judged at that reply (`judge`).
 * A job id's history starts again when it is reused.
 */
class QmpAsks {
  static readonly KINDS = ["command", "error", "return", "status"];
  readonly completed = new Set<string>();
  readonly hardCancelled = new Set<string>();
  quit = false;
  /** The job a complete in progress added to `completed` (struck off if the command fails). */
  private completing: string | undefined;
  constructor(
    private readonly transcript: readonly TranscriptEntry[] | undefined,
    /** A job's status now (at a command's record: before the command runs). */
    private readonly statusOf: (id: string) => string | undefined,
  ) {}
  /**
   * Runs `check` now, or keeps it in `due` when a complete of `job` is in
   * flight (accepted or not is known at its reply): the invariant runs `due`
   * at the reply's record (`runDue`), in its own turn among the monitors.
   * Whether it was kept.
   */
  judge(due: (() => void)[], job: string, check: () => void): boolean {
    if (this.completing === job) {
      due.push(check);
      return true;
    }
    check();
    return false;
  }
  onRecord(r: TraceRecord, job: string | undefined): void {
    if (r.src === "qmp") {
      if (r.kind === "return" || r.kind === "error") {
        if (r.kind === "error" && this.completing !== undefined) this.completed.delete(this.completing);
        this.completing = undefined;
        return;
      }
      if (r.kind === "command") {
        const last = this.transcript?.at(-1);
        const c = last !== undefined && "cmd" in last ? last : undefined;
        const a = c?.args ?? {};
        this.completing = undefined;
        if (c?.cmd === "job-cancel") this.hardCancelled.add(String(a.id));
        else if (c?.cmd === "block-job-cancel" && (a.force === true || !["ready", "standby"].includes(this.statusOf(String(a.device)) ?? ""))) {
          this.hardCancelled.add(String(a.device));
        }
        else if (c?.cmd === "quit") this.quit = true;
        else if (c?.cmd === "job-complete" || c?.cmd === "block-job-complete") {
          const id = String(c.cmd === "job-complete" ? a.id : a.device);
          if (!this.completed.has(id)) this.completed.add((this.completing = id));
        }
      }
      return;
    }
    if (job !== undefined && r.kind === "status" && r.data?.to === "created") {
      this.completed.delete(job);
      this.hardCancelled.delete(job);
    }
  }
}

/** At a QMP reply's record (`return` or `error` from qmp): runs the checks QmpAsks.judge kept for it; whether there were any. */
export function runDue(r: TraceRecord, due: (() => void)[]): boolean {
  if (due.length === 0 || r.src !== "qmp" || (r.kind !== "return" && r.kind !== "error")) return false;
  const now = due.splice(0);
  for (const check of now) check();
  return true;
}

/**
 * The node of each drained section, by name, from its `drained-begin`
 * record (the block layer records a section's begin, end and the moment it
 * is established, each just before the block event of the same kind, so
 * invariants can follow sections from records without observing the graph,
 * whose request events then need not be built). A section's begin and end
 * run on a node of the graph (BlockGraph.own), so the graph names it then;
 * the node is taken at the begin for the moment it is established, when a
 * nested poll may have removed it meanwhile.
 */
class SectionNodes {
  static readonly KINDS = ["drained-begin"];
  private readonly begun = new Map<string, BlockNode>();
  constructor(private readonly graph: BlockGraph) {}
  onRecord(r: TraceRecord): void {
    if (r.kind !== "drained-begin") return;
    const name = String(r.data?.node), node = this.graph.findNode(name);
    if (node !== undefined) this.begun.set(name, node);
  }
  /** The node of a section whose `drained` record names `name`. */
  established(name: string): BlockNode | undefined {
    return this.begun.get(name);
  }
  /** The node of a section whose `drained-end` record names `name`. */
  ending(name: string): BlockNode | undefined {
    return this.graph.findNode(name);
  }
}

/** The record kinds the facts are derived from. */
export const FACT_KINDS: readonly string[] = Object.freeze([...new Set([...StatusTable.KINDS, ...QmpAsks.KINDS, ...SectionNodes.KINDS])]);

/** The facts of one run. */
export class RunFacts {
  private readonly table = new StatusTable();
  readonly asks: QmpAsks;
  readonly sections: SectionNodes;
  constructor(world: World) {
    this.asks = new QmpAsks(world.monitor?.transcript, (id) => world.jm.get(id)?.status);
    this.sections = new SectionNodes(world.graph);
  }
  /** Every job's last status ("freed" once freed), in the order the jobs were first seen. */
  get status(): ReadonlyMap<string, JobStatus | "freed"> {
    return this.table.status;
  }
  /** A job's last status as its last `status` record gave it (a freed job keeps it). */
  get lastTo(): ReadonlyMap<string, string> {
    return this.table.lastTo;
  }
  /** Takes in a record of one of FACT_KINDS (the checker calls it before the monitors see the record). */
  onRecord(r: TraceRecord): void {
    if (r.kind === "drained-begin") {
      this.sections.onRecord(r);
      return;
    }
    const job = jobOf(r.src);
    if (job !== undefined) this.table.onRecord(r, job);
    if (r.kind !== "freed") this.asks.onRecord(r, job);
  }
}
