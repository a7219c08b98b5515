import { expect } from "vitest";
import type { Wait } from "../../live/golden.js";
import { firstDifference, optionalEntries, replay, showDifference, type Recording } from "../../live/spec-driver.js";

import type { KnownDifference } from "../../live/known-differences.js";
export type { KnownDifference };

/**
 * Replays `rec` through the simulator and asserts it produces the recorded
 * sequence — or, for a known difference, that the match holds exactly up to
 * where it says, so any change either way is flagged (`table` names where to update it).
 */
export function expectConformance(name: string, rec: Recording, waits: Record<number, Wait>, known: KnownDifference | undefined, table: string): void {
  const { expected, observed } = replay(rec, waits);
  const diff = firstDifference(expected, observed, optionalEntries(rec));
  if (known) {
    expect(diff?.at, `${name} was known to depart at entry ${known.from} (${known.why}); it now departs at ${diff?.at ?? "no entry"}: update ${table}`).toBe(known.from);
    return;
  }
  if (diff) expect.fail(`${name} departs at entry ${diff.at}:\n${showDifference(expected, observed, diff)}`);
}
