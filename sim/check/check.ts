/**
 * checkRun: attaches a chosen set of invariants to a World before its run,
 * and gives back what they found after it.
 *
 * Step invariants see, as they are made, the trace records of the kinds
 * they name (the checker wraps this scheduler's `record`; hashing and
 * tracing are unchanged, so a checked run has the same trace hash as an
 * unchecked one) and the block events of the types they name
 * (graph.observe). Observers never change the simulation.
 */
import type { RunResult, TraceRecord, UnhashedRunResult } from "../scheduler/index.js";
import { INVARIANTS, invariantByName } from "./invariants.js";
import { formatTime } from "../scheduler/time.js";
import { JOB_IO, JOB_LABEL, type CheckViolation, type Invariant, type Monitor, type World } from "./types.js";

export interface RunCheck {
  /** What step invariants found so far, in order. */
  readonly violations: readonly CheckViolation[];
  /** Runs the end-of-run properties, detaches, and returns every violation (step ones first, then end ones). */
  finish(result: RunResult | UnhashedRunResult): CheckViolation[];
}

/** Names or invariant objects; default: all of INVARIANTS. */
export type InvariantSelection = readonly (string | Invariant)[];

/**
 * Attaches `invariants` (all by default) to `world`; call before `sim.run()`,
 * then `finish(result)`. Unknown names throw, listing the known ones.
 */
export function checkRun(world: World, invariants: InvariantSelection = INVARIANTS): RunCheck {
  const chosen = invariants.map((i) => (typeof i === "string" ? invariantByName(i) : i));
  const plan = isLibrary(chosen) ? LIBRARY_PLAN : planFor(chosen);
  const violations: CheckViolation[] = [];
  const monitors: Monitor[] = chosen.map((inv) => {
    const m = inv.attach({
      world,
      report(v) {
        violations.push({ invariant: inv.name, timeNs: v.timeNs ?? world.sim.now, ...(v.job !== undefined ? { job: v.job } : {}), detail: v.detail, ...(v.state ? { state: v.state } : {}) });
      },
    });
    if (m.onBlock !== undefined && inv.blockEvents === undefined) throw new Error(`invariant '${inv.name}': its monitor has onBlock, but the invariant names no blockEvents`);
    return m;
  });
  const sim = world.sim;
  const original = sim.record;
  let active = true;
  // Monitors that look only at drained sections need the graph observed only while one is open, and unobserved
  // the block layer builds no request events (submit/complete, ~115 a run). A section's begin is recorded just
  // before its begin event, so observing from that record on misses none of its events; the end event of the
  // last open section stops observing. (Not when a section was open before this attach: its end would miscount.)
  const wantsRecords = plan.byKind.size > 0 || plan.everyKind.length > 0;
  const watchSections = plan.byBlockEvent.size > 0 && plan.sectionsOnly && wantsRecords && world.graph.drainAllCount === 0 && world.graph.nodes().every((n) => n.quiesceCount === 0);
  let unobserve: (() => void) | undefined;
  let openSections = 0;
  const observe = () => {
    unobserve = world.graph.observe((ev) => {
      const list = plan.byBlockEvent.get(ev.type);
      if (list !== undefined && active) for (const i of list) monitors[i].onBlock?.(ev);
      if (!watchSections) return;
      if (ev.type === "drained-begin" || ev.type === "drain-all-begin") openSections++;
      else if ((ev.type === "drained-end" || ev.type === "drain-all-end") && --openSections === 0) {
        unobserve!();
        unobserve = undefined;
      }
    });
  };
  if (wantsRecords) {
    // Through a local: a function literal stored straight into a property is allocated in V8's old
    // generation, and its context (the monitors, the whole world) then outlived the run (sim/qmp/qemu.ts).
    const record = function (this: typeof sim, src: string, kind: string, data?: Record<string, unknown>, cause?: unknown): void {
      original.call(this, src, kind, data);
      if (watchSections && unobserve === undefined && active && (kind === "drained-begin" || kind === "drain-all-begin")) observe();
      const list = kind === "io" && issuedByJob(data) ? plan.jobIo : (plan.byKind.get(kind) ?? plan.everyKind);
      if (list.length === 0 || !active) return;
      const r: TraceRecord = data === undefined ? { t: sim.now, src, kind } : { t: sim.now, src, kind, data };
      for (const i of list) monitors[i].onRecord?.(r, cause);
    };
    sim.record = record;
  }
  if (plan.byBlockEvent.size > 0 && !watchSections) observe();
  return {
    violations,
    finish(result) {
      if (!active) throw new Error("checkRun: finish() called twice");
      active = false;
      unobserve?.();
      for (const m of monitors) m.end?.(result);
      return violations;
    },
  };
}

/**
 * Which of a selection's invariants (by index) get each record kind and each
 * block event type, in selection order (so violations keep their order).
 * Made from the invariants' declarations alone: a record of a kind none of
 * them names costs one lookup, and builds no TraceRecord.
 */
interface Plan {
  readonly byKind: ReadonlyMap<string, readonly number[]>;
  /** For a kind no invariant names: the invariants that name no kinds (they get every kind). */
  readonly everyKind: readonly number[];
  /** For an `io` record a job issued: the invariants that name `io` or `job-io`. */
  readonly jobIo: readonly number[];
  readonly byBlockEvent: ReadonlyMap<string, readonly number[]>;
  /** Whether the block event types named are all of drained sections (none of requests). */
  readonly sectionsOnly: boolean;
}

/** The block events of drained sections (and drain-all), each made just after its trace record of the same kind. */
const SECTION_EVENTS: ReadonlySet<string> = new Set(["drained-begin", "drained", "drained-end", "drain-all-begin", "drain-all", "drain-all-end"]);

/** Whether an `io` record's issuer names a job (`job:<id>`, maybe behind a filter's prefix): a `job-io` record. */
function issuedByJob(data: Record<string, unknown> | undefined): boolean {
  return String(data?.issuer ?? "").includes(JOB_LABEL);
}

function planFor(invariants: readonly Invariant[]): Plan {
  const byKind = new Map<string, number[]>(), everyKind: number[] = [], byBlockEvent = new Map<string, number[]>();
  for (const inv of invariants) {
    for (const k of inv.kinds ?? []) byKind.set(k, []);
    for (const t of inv.blockEvents ?? []) byBlockEvent.set(t, []);
  }
  invariants.forEach((inv, i) => {
    if (inv.kinds === undefined) {
      everyKind.push(i);
      for (const list of byKind.values()) list.push(i);
    } else for (const k of new Set(inv.kinds)) byKind.get(k)!.push(i);
    for (const t of new Set(inv.blockEvents)) byBlockEvent.get(t)!.push(i);
  });
  const io = byKind.get("io") ?? everyKind, onlyJobs = byKind.get(JOB_IO) ?? [];
  const jobIo = [...new Set([...io, ...onlyJobs])].sort((a, b) => a - b);
  const sectionsOnly = [...byBlockEvent.keys()].every((t) => SECTION_EVENTS.has(t));
  return { byKind, everyKind, jobIo, byBlockEvent, sectionsOnly };
}

/** The library's plan, made once: INVARIANTS and their declarations are frozen. */
const LIBRARY_PLAN = planFor(INVARIANTS);

/** Whether `chosen` is the whole library in its order (what fuzz runs check). */
function isLibrary(chosen: readonly Invariant[]): boolean {
  if (chosen.length !== INVARIANTS.length) return false;
  for (let i = 0; i < chosen.length; i++) if (chosen[i] !== INVARIANTS[i]) return false;
  return true;
}

/** One line per violation, for reports and failure messages; its moment counts from the start of the run. */
export function formatViolation(v: CheckViolation): string {
  return `[${formatTime(v.timeNs)}] ${v.invariant}${v.job !== undefined ? ` (job ${v.job})` : ""}: ${v.detail}${v.state ? ` ${JSON.stringify(v.state)}` : ""}`;
}

/** The catalog for `blocksim invariants`-style listings: name, when, description, source. */
export function listInvariants(): { name: string; when: "step" | "end"; description: string; source?: string }[] {
  return INVARIANTS.map((i) => ({ name: i.name, when: i.when, description: i.description, ...(i.source ? { source: i.source } : {}) }));
}
