/**
 * checkRun: attaches a chosen set of invariants to a World before its run,
 * and gives back what they found after it.
 *
 * Step invariants see every trace record as it is made (the checker wraps
 * this scheduler's `record`; hashing and tracing are unchanged, so a checked
 * run has the same trace hash as an unchecked one) and every block event
 * (graph.observe). Observers never change the simulation.
 */
import type { RunResult, TraceRecord, UnhashedRunResult } from "../scheduler/index.js";
import { INVARIANTS, invariantByName } from "./invariants.js";
import { formatTime } from "../scheduler/time.js";
import type { CheckViolation, Invariant, Monitor, World } from "./types.js";

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
  const violations: CheckViolation[] = [];
  const monitors: Monitor[] = chosen.map((inv) =>
    inv.attach({
      world,
      report(v) {
        violations.push({ invariant: inv.name, timeNs: v.timeNs ?? world.sim.now, ...(v.job !== undefined ? { job: v.job } : {}), detail: v.detail, ...(v.state ? { state: v.state } : {}) });
      },
    }),
  );
  const onRecord = monitors.filter((m) => m.onRecord);
  const onBlock = monitors.filter((m) => m.onBlock);
  const sim = world.sim;
  const original = sim.record;
  let active = true;
  if (onRecord.length > 0) {
    // Per kind, the monitors that want it, in attach order (so violations keep their order).
    const byKind = new Map<string, Monitor[]>();
    // Through a local: a function literal stored straight into a property is allocated in V8's old
    // generation, and its context (the monitors, the whole world) then outlived the run (sim/qmp/qemu.ts).
    const record = function (this: typeof sim, src: string, kind: string, data?: Record<string, unknown>): void {
      original.call(this, src, kind, data);
      if (!active) return;
      let list = byKind.get(kind);
      if (list === undefined) byKind.set(kind, (list = onRecord.filter((m) => m.kinds === undefined || m.kinds.includes(kind))));
      if (list.length === 0) return;
      const r: TraceRecord = data === undefined ? { t: sim.now, src, kind } : { t: sim.now, src, kind, data };
      for (const m of list) m.onRecord!(r);
    };
    sim.record = record;
  }
  const unobserve = onBlock.length > 0 ? world.graph.observe((ev) => { if (active) for (const m of onBlock) m.onBlock!(ev); }) : () => {};
  return {
    violations,
    finish(result) {
      if (!active) throw new Error("checkRun: finish() called twice");
      active = false;
      unobserve();
      for (const m of monitors) m.end?.(result);
      return violations;
    },
  };
}

/** One line per violation, for reports and failure messages; its moment counts from the start of the run. */
export function formatViolation(v: CheckViolation): string {
  return `[${formatTime(v.timeNs)}] ${v.invariant}${v.job !== undefined ? ` (job ${v.job})` : ""}: ${v.detail}${v.state ? ` ${JSON.stringify(v.state)}` : ""}`;
}

/** The catalog for `blocksim invariants`-style listings: name, when, description, source. */
export function listInvariants(): { name: string; when: "step" | "end"; description: string; source?: string }[] {
  return INVARIANTS.map((i) => ({ name: i.name, when: i.when, description: i.description, ...(i.source ? { source: i.source } : {}) }));
}
