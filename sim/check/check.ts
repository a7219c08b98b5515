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
import { FACT_KINDS, RunFacts } from "./facts.js";
import { JOB_IO, JOB_LABEL, type CheckContext, type CheckViolation, type Invariant, type Monitor, type World } from "./types.js";

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
  const library = isLibrary(chosen);
  let plan = library ? LIBRARY_PLAN : planFor(chosen, NONE);
  const violations: CheckViolation[] = [];
  const facts = plan.facts ? new RunFacts(world) : undefined;
  /** The invariants (by index) whose demandKinds are on. */
  let demanding: ReadonlySet<number> = NONE;
  const setDemand = (i: number, on: boolean) => {
    if (demanding.has(i) === on) return;
    const next = new Set(demanding);
    if (on) next.add(i);
    else next.delete(i);
    demanding = next;
    plan = library ? libraryPlan(demanding) : planFor(chosen, demanding);
  };
  const monitors: Monitor[] = chosen.map((inv, i) => {
    const m = inv.attach(new MonitorContext(world, inv, i, violations, facts, setDemand));
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
  const wantsRecords = plan.anyRecords;
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
      const route = kind === "io" ? (issuedByJob(data) ? plan.jobIo : plan.io) : (plan.byKind.get(kind) ?? plan.everyKind);
      if (route.empty || !active) return;
      const r: TraceRecord = data === undefined ? { t: sim.now, src, kind } : { t: sim.now, src, kind, data };
      if (route.facts) facts!.onRecord(r);
      for (const i of route.monitors) monitors[i].onRecord?.(r, cause);
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

/** One invariant's CheckContext in one run. */
class MonitorContext implements CheckContext {
  constructor(
    readonly world: World,
    private readonly inv: Invariant,
    private readonly index: number,
    private readonly violations: CheckViolation[],
    private readonly runFacts: RunFacts | undefined,
    private readonly setDemand: (index: number, on: boolean) => void,
  ) {}
  get facts(): RunFacts {
    if (this.inv.facts !== true || this.runFacts === undefined) throw new Error(`invariant '${this.inv.name}' reads ctx.facts but does not declare facts: true`);
    return this.runFacts;
  }
  report(v: Omit<CheckViolation, "invariant" | "timeNs"> & { timeNs?: number }): void {
    this.violations.push({ invariant: this.inv.name, timeNs: v.timeNs ?? this.world.sim.now, ...(v.job !== undefined ? { job: v.job } : {}), detail: v.detail, ...(v.state ? { state: v.state } : {}) });
  }
  demand(on: boolean): void {
    if (this.inv.demandKinds === undefined) throw new Error(`invariant '${this.inv.name}' asks for its demandKinds but declares none`);
    if (this.inv.kinds !== undefined) this.setDemand(this.index, on); // without kinds it gets every record anyway
  }
}

/** Who gets one record kind: the facts first (when they are derived from it), then these monitors, by index. */
interface Route {
  readonly facts: boolean;
  readonly monitors: readonly number[];
  /** Neither: the record is not even built. */
  readonly empty: boolean;
}

/**
 * Which of a selection's invariants (by index) get each record kind and each
 * block event type, in selection order (so violations keep their order).
 * Made from the invariants' declarations alone: a record of a kind none of
 * them names costs one lookup, and builds no TraceRecord.
 */
interface Plan {
  readonly byKind: ReadonlyMap<string, Route>;
  /** For a kind no invariant names: the invariants that name no kinds (they get every kind). */
  readonly everyKind: Route;
  /** For an `io` record no job issued. */
  readonly io: Route;
  /** For an `io` record a job issued: the invariants that name `io` or `job-io`. */
  readonly jobIo: Route;
  /** Whether any record reaches anyone. */
  readonly anyRecords: boolean;
  /** Whether the facts are derived (an invariant declares `facts`). */
  readonly facts: boolean;
  readonly byBlockEvent: ReadonlyMap<string, readonly number[]>;
  /** Whether the block event types named are all of drained sections (none of requests). */
  readonly sectionsOnly: boolean;
}

/** The block events of drained sections (and drain-all), each made just after its trace record of the same kind. */
const SECTION_EVENTS: ReadonlySet<string> = new Set(["drained-begin", "drained", "drained-end", "drain-all-begin", "drain-all", "drain-all-end"]);

const NONE: ReadonlySet<number> = new Set();

/** Whether an `io` record's issuer names a job (`job:<id>`, maybe behind a filter's prefix): a `job-io` record. */
function issuedByJob(data: Record<string, unknown> | undefined): boolean {
  return String(data?.issuer ?? "").includes(JOB_LABEL);
}

function route(facts: boolean, monitors: readonly number[]): Route {
  return { facts, monitors, empty: !facts && monitors.length === 0 };
}

/** The plan of `invariants`, those in `demanding` with their demandKinds on. */
function planFor(invariants: readonly Invariant[], demanding: ReadonlySet<number>): Plan {
  const kindsOf = (inv: Invariant, i: number) => (inv.kinds !== undefined && demanding.has(i) ? [...inv.kinds, ...(inv.demandKinds ?? [])] : inv.kinds);
  const facts = invariants.some((inv) => inv.facts === true);
  const byKind = new Map<string, number[]>(), everyKind: number[] = [], byBlockEvent = new Map<string, number[]>();
  if (facts) for (const k of FACT_KINDS) byKind.set(k, []);
  invariants.forEach((inv, i) => {
    for (const k of kindsOf(inv, i) ?? []) byKind.set(k, []);
    for (const t of inv.blockEvents ?? []) byBlockEvent.set(t, []);
  });
  invariants.forEach((inv, i) => {
    const kinds = kindsOf(inv, i);
    if (kinds === undefined) {
      everyKind.push(i);
      for (const list of byKind.values()) list.push(i);
    } else for (const k of new Set(kinds)) byKind.get(k)!.push(i);
    for (const t of new Set(inv.blockEvents)) byBlockEvent.get(t)!.push(i);
  });
  const io = byKind.get("io") ?? everyKind, onlyJobs = byKind.get(JOB_IO) ?? [];
  const jobIo = [...new Set([...io, ...onlyJobs])].sort((a, b) => a - b);
  const sectionsOnly = [...byBlockEvent.keys()].every((t) => SECTION_EVENTS.has(t));
  const routes = new Map([...byKind].map(([k, list]) => [k, route(facts && FACT_KINDS.includes(k), list)]));
  const anyRecords = [...routes.values()].some((r) => !r.empty) || everyKind.length > 0 || invariants.some((inv) => (inv.demandKinds?.length ?? 0) > 0);
  return { byKind: routes, everyKind: route(false, everyKind), io: routes.get("io") ?? route(false, everyKind), jobIo: route(false, jobIo), anyRecords, facts, byBlockEvent, sectionsOnly };
}

/** The library's plan, made once: INVARIANTS and their declarations are frozen. */
const LIBRARY_PLAN = planFor(INVARIANTS, NONE);
const libraryPlans = new Map<string, Plan>();

/** The library's plan with the demandKinds of `demanding` on (made once for each such set). */
function libraryPlan(demanding: ReadonlySet<number>): Plan {
  if (demanding.size === 0) return LIBRARY_PLAN;
  const key = [...demanding].sort((a, b) => a - b).join(",");
  let p = libraryPlans.get(key);
  if (p === undefined) libraryPlans.set(key, (p = planFor(INVARIANTS, demanding)));
  return p;
}

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
