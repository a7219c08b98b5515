/**
 * A monitor's `kinds` only spares the checker records nobody looks at: with
 * every kind delivered to every monitor, generated runs (under profiles that
 * break invariants, so there is something to find) report exactly the same
 * violations, in the same order.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { INVARIANTS } from "../../sim/check/invariants.js";
import type { Invariant } from "../../sim/check/types.js";
import { runModel, scenario } from "../../sim/fuzz/index.js";
import { RandomStrategy } from "../../sim/scheduler/index.js";

/** The same invariant with its monitor's kinds removed, so it sees every record. */
const everyKind = (inv: Invariant): Invariant => ({
  ...inv,
  attach(ctx) {
    const { kinds: _ignored, ...monitor } = inv.attach(ctx);
    return monitor;
  },
});

describe("monitor kinds", () => {
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
});
