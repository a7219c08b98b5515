/**
 * An invariant's `kinds` only spares the checker records nobody looks at: with
 * every kind delivered to every monitor, generated runs (under profiles that
 * break invariants, so there is something to find) report exactly the same
 * violations, in the same order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { INVARIANTS } from "../../sim/check/invariants.js";
import type { Invariant } from "../../sim/check/types.js";
import { runModel, scenario, type FuzzScenario } from "../../sim/fuzz/index.js";
import { RandomStrategy } from "../../sim/scheduler/index.js";

/** The same invariant with its kinds removed, so it sees every record. */
const everyKind = (inv: Invariant): Invariant => {
  const { kinds: _ignored, ...rest } = inv;
  return rest;
};

const MiB = 1 << 20;

/**
 * Soft cancels of a mirror at moments around its READY, some after a pause
 * and resume, some under guest writes: the generated cases never
 * soft-cancel (block-job-cancel), so these give cancel-honoured something to
 * find under its buggy profile, and a cancel whose step takes the mirror to
 * READY (the first record after the cancel is its own status change).
 */
function softCancels(): FuzzScenario[] {
  const out: FuzzScenario[] = [];
  for (const atNs of [0, 1e6, 3e6, 5e6]) {
    for (const speed of [undefined, MiB]) {
      for (const [pause, guest] of [[false, false], [false, true], [true, true]]) {
        const actions: FuzzScenario["actions"] = [
          ...(guest ? [{ atNs: 0, guest: "s0", requests: 20, intervalNs: 0 }] : []),
          { atNs: 0, execute: "blockdev-mirror", arguments: { "job-id": "j0", device: "s0", target: "t0", sync: "full", ...(speed ? { speed } : {}) } },
          ...(pause ? [{ atNs: atNs / 2, execute: "job-pause", arguments: { id: "j0" } }, { atNs, execute: "job-resume", arguments: { id: "j0" } }] : []),
          { atNs, execute: "block-job-cancel", arguments: { device: "j0" } },
        ];
        out.push({
          devices: [{ name: "ds0", sizeBytes: 4 * MiB, latencyNs: 1e6, ...(guest ? { latencyMaxNs: 3e6 } : {}) }, { name: "dt0", sizeBytes: 4 * MiB, latencyNs: 1e6 }],
          nodes: [{ driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "t0", file: "dt0" }],
          actions, maxTimeNs: 30e9,
        });
      }
    }
  }
  return out;
}

/**
 * Watches block request events (and reports nothing): with it chosen, the
 * checker observes the graph for the whole run, as it must for request
 * events; without it, only while a drained section is open.
 */
const requestWatcher: Invariant = {
  name: "request-watcher", description: "test only: looks at block request events", when: "step",
  kinds: [], blockEvents: ["submit", "complete"],
  attach: () => ({ onBlock() {} }),
};

describe("monitor kinds", () => {
  it("observing the graph only while a drained section is open changes no violation", () => {
    const found = new Map<string, number>();
    const compare = (c: FuzzScenario, profile: string, i: number) => {
      const sectionsOnly = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: INVARIANTS });
      const always = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: [...INVARIANTS, requestWatcher] });
      expect(sectionsOnly.hash).toBe(always.hash);
      expect(sectionsOnly.violations, `profile ${profile}, case ${i}`).toEqual(always.violations);
      for (const v of sectionsOnly.violations) found.set(v.invariant, (found.get(v.invariant) ?? 0) + 1);
    };
    fc.sample(scenario(), { seed: 12, numRuns: 30 }).forEach((c, i) => compare(c, "current", i));
    // generated cases that break the drained-section invariants (found by sampling 300 cases of seeds 12-14)
    compare(fc.sample(scenario(), { seed: 13, numRuns: 79 })[78], "drain-ignores-jobs", 78);
    compare(fc.sample(scenario(), { seed: 12, numRuns: 249 })[248], "drain-skips-pending-exit", 248);
    expect(found.get("job-io-in-drained-section")).toBeGreaterThan(0);
    expect(found.get("job-exit-in-drained-section")).toBeGreaterThan(0);
  });

  it("change no violation", () => {
    let compared = 0, found = 0;
    for (const profile of ["current", "no-start-shim", "txn-start-on-create", "mirror-no-conflict-wait"]) {
      const cases = fc.sample(scenario(), { seed: 11, numRuns: 12 });
      cases.forEach((c, i) => {
        const filtered = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: INVARIANTS });
        const unfiltered = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: INVARIANTS.map(everyKind) });
        expect(filtered.hash).toBe(unfiltered.hash);
        expect(filtered.violations, `profile ${profile}, case ${i}`).toEqual(unfiltered.violations);
        compared++;
        found += filtered.violations.length;
      });
    }
    expect(compared).toBe(48);
    expect(found).toBeGreaterThan(0);
  });

  it("change no cancel-honoured violation (soft cancels of a mirror before, at and after READY)", () => {
    const found = new Map<string, number>();
    for (const profile of ["current", "mirror-soft-cancel-pre-ready"]) {
      softCancels().forEach((c, i) => {
        const filtered = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: INVARIANTS });
        const unfiltered = runModel(c, { profile, strategy: new RandomStrategy(i), invariants: INVARIANTS.map(everyKind) });
        expect(filtered.hash).toBe(unfiltered.hash);
        expect(filtered.violations, `profile ${profile}, case ${i}`).toEqual(unfiltered.violations);
        for (const v of filtered.violations) found.set(`${profile} ${v.invariant}`, (found.get(`${profile} ${v.invariant}`) ?? 0) + 1);
      });
    }
    expect(found.get("mirror-soft-cancel-pre-ready cancel-honoured")).toBeGreaterThan(0);
    expect(found.get("current cancel-honoured")).toBeUndefined();
  });
});
