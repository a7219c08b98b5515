/**
 * The goldens recorded from a real QEMU 7.2 by live/record.ts (one per spec in
 * specs/), replayed through the simulator with each golden's own waits. No
 * QEMU is needed: the goldens are committed.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { conform, formatResults } from "../../live/conform.js";
import { describe, expect, it } from "vitest";
import { loadGolden, loadSpec, waitsOf } from "../../live/golden.js";
import { expectConformance } from "./expect-conformance.js";
import { KNOWN_GOLDEN_DIFFERENCES } from "../../live/known-differences.js";
import { CONFORMANCE_DIR } from "../../live/spec-driver.js";
import { GOLDENS_DIR } from "./paths.js";

const SPECS_DIR = new URL("./specs/", import.meta.url);
const names = (dir: URL) => readdirSync(dir).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();

describe("the goldens recorded from a real QEMU 7.2 (test/conformance/goldens)", () => {
  it("exist for every spec, and were recorded from the spec as it is now", () => {
    expect(names(GOLDENS_DIR)).toEqual(names(SPECS_DIR));
    for (const name of names(SPECS_DIR)) {
      const spec = loadSpec(new URL(`${name}.json`, SPECS_DIR));
      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      expect({ scenario: golden.scenario, commands: golden.commands, waits: golden.waits, images: golden.images, machine: golden.machine }, `${name}: re-record it (npx tsx live/record.ts test/conformance/specs/${name}.json)`)
        .toEqual({ scenario: spec.scenario, commands: spec.commands, waits: spec.waits, images: spec.images, machine: spec.machine });
      expect(golden.qemu).toMatch(/^7\.2\./);
      expect(golden.runs).toBeGreaterThanOrEqual(3);
    }
  });

  for (const name of names(GOLDENS_DIR)) {
    it(`${name}: the simulator produces the recorded sequence`, () => {
      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      expectConformance(name, golden, waitsOf(golden), KNOWN_GOLDEN_DIFFERENCES[name], "KNOWN_GOLDEN_DIFFERENCES");
    });
  }
});

describe("conform (live/conform.ts): goldens against the simulator, as `blocksim conform` will run it", () => {
  it("passes the committed goldens and the shared recordings but for the known differences", () => {
    const results = conform([fileURLToPath(GOLDENS_DIR), fileURLToPath(CONFORMANCE_DIR)]);
    expect(results.length).toBe(names(GOLDENS_DIR).length + names(CONFORMANCE_DIR).length);
    const known = Object.entries(KNOWN_GOLDEN_DIFFERENCES).map(([name, k]) => [name, k.from]);
    expect(results.filter((r) => !r.ok).map((r) => [r.scenario, r.at]).sort()).toEqual(known.sort());
  });

  it("names the scenario and the entry where a golden departs, with both sides", () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-conform-"));
    try {
      const text = readFileSync(new URL("target_error_ignore.json", GOLDENS_DIR), "utf8");
      writeFileSync(join(dir, "edited.json"), text.replace('"action": "ignore"', '"action": "stop"'));
      const [r] = conform([dir]);
      expect(r.ok).toBe(false);
      expect(r.at).toBe(10);
      const out = formatResults([r]);
      expect(out).toContain("DIFF  target_error_ignore: departs at entry 10");
      expect(out).toContain('=> E BLOCK_JOB_ERROR {"device":"j0","operation":"write","action":"stop"}');
      expect(out).toContain('=> E BLOCK_JOB_ERROR {"device":"j0","operation":"write","action":"ignore"}');
      expect(out).toContain("0 of 1 match the simulator");
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});
