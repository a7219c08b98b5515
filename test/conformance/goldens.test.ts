/**
 * The goldens recorded from a real QEMU 7.2 by live/record.ts (one per spec in
 * specs/), replayed through the simulator with each golden's own waits. No
 * QEMU is needed: the goldens are committed.
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadGolden, loadSpec, waitsOf } from "../../live/golden.js";
import { firstDifference, GOLDENS_DIR, optionalEntries, replay, showDifference } from "./replay.js";

const SPECS_DIR = new URL("./specs/", import.meta.url);
const names = (dir: URL) => readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();

/**
 * Where the simulator knowingly departs from a golden: the first entry that
 * differs, and why. The test checks the match holds exactly up to there.
 */
export const KNOWN_GOLDEN_DIFFERENCES: Record<string, { from: number; why: string }> = {};

describe("the goldens recorded from a real QEMU 7.2 (test/conformance/goldens)", () => {
  it("exist for every spec, and were recorded from the spec as it is now", () => {
    expect(names(GOLDENS_DIR)).toEqual(names(SPECS_DIR));
    for (const name of names(SPECS_DIR)) {
      const spec = loadSpec(new URL(`${name}.json`, SPECS_DIR));
      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      expect({ scenario: golden.scenario, commands: golden.commands, waits: golden.waits, images: golden.images }, `${name}: re-record it (npx tsx live/record.ts test/conformance/specs/${name}.json)`)
        .toEqual({ scenario: spec.scenario, commands: spec.commands, waits: spec.waits, images: spec.images });
      expect(golden.qemu).toMatch(/^7\.2\./);
      expect(golden.runs).toBeGreaterThanOrEqual(3);
    }
  });

  for (const name of names(GOLDENS_DIR)) {
    it(`${name}: the simulator produces the recorded sequence`, () => {
      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      const { expected, observed } = replay(golden, waitsOf(golden));
      const diff = firstDifference(expected, observed, optionalEntries(golden));
      const known = KNOWN_GOLDEN_DIFFERENCES[name];
      if (known) {
        expect(diff?.at, `${name} was known to depart at entry ${known.from} (${known.why}); it now departs at ${diff?.at ?? "no entry"}: update KNOWN_GOLDEN_DIFFERENCES`).toBe(known.from);
        return;
      }
      if (diff) expect.fail(`${name} departs at entry ${diff.at}:\n${showDifference(expected, observed, diff)}`);
    });
  }
});
