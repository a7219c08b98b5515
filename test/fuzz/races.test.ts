/**
 * The race catalog, scenarios/races: every file with a `race:` header is
 * found under its buggy profile, clean under its fixed profile (and under
 * current) with the same budget, and its replay file reproduces the
 * violation with the same trace hash.
 */
import { existsSync, readdirSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { explore } from "../../sim/harness/explore.js";
import { ALL_PROFILES } from "../../sim/mgmt/profiles.js";
import { expectationsSubject, huntRace, loadRaces, RACES_DIR } from "../../sim/races/catalog.js";
import { InputError } from "../../sim/scenario/errors.js";
import { loadReplayScenario, readReplayFile } from "../../sim/scenario/replay.js";
import { runScenario } from "../../sim/scenario/runner.js";
import { ReplayStrategy } from "../../sim/scheduler/index.js";

const BUDGET = 10;
const races = loadRaces();

/** Races that current does not remove, with the reason (their header's note says so too). */
const PERSIST_UNDER_CURRENT: Record<string, string> = {
  "seed-004-sync-abort": "libvirt cefe0ba3d does not remove it; only the counterfactual query-beside-modify does (libvirt 9.0 shows the same wait)",
};

describe("the race catalog (scenarios/races)", () => {
  it("is every scenario file of the folder, each a race once, with a fixing commit and known profiles", () => {
    const files = readdirSync(RACES_DIR).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith(".replay.json"));
    expect(races.map((r) => r.file).sort()).toEqual(files.map((f) => join(RACES_DIR, f)).sort());
    expect(races.length).toBeGreaterThanOrEqual(18);
    const profiles = ALL_PROFILES.map((p) => p.name);
    for (const r of races) {
      expect(r.header["fixed-by"].commit).toMatch(/^[0-9a-f]{9,}$/);
      expect(profiles).toContain(r.header["buggy-profile"]);
      expect(profiles).toContain(r.header["fixed-profile"]);
    }
  });

  it("refuses a file without a race header, naming it", () => {
    expect(() => loadRaces([new URL("../../scenarios/backup.yaml", import.meta.url).pathname])).toThrow(InputError);
    expect(() => loadRaces([new URL("../../scenarios/backup.yaml", import.meta.url).pathname])).toThrow(/backup\.yaml.*no `race:` header/s);
  });
});

describe.each(races.map((r) => [r.name, r] as const))("race %s", (_name, race) => {
  const h = huntRace(race, { budget: BUDGET, shrinkRuns: 30 });

  it(`is found under ${race.header["buggy-profile"]} by random exploration, and its schedule shrinks`, () => {
    if (!h.found) expect.fail(`${race.header.breaks.join(", ")} not broken in ${BUDGET} runs under ${race.header["buggy-profile"]}`);
    expect(race.header.breaks).toContain(h.found.result.violations[0]!.invariant);
    expect(h.shrunk!.result.violations.length).toBeGreaterThan(0);
    expect(h.shrunk!.picks.filter((p) => p !== 0).length).toBeLessThanOrEqual(h.found.result.choices.filter((c) => c[1] !== 0).length);
  });

  it(`holds every expectation under ${race.header["fixed-profile"]} with the same budget`, () => {
    expect(h.fixed, h.fixed.failure?.detail).toEqual({ runs: BUDGET, clean: true });
  });

  const persists = PERSIST_UNDER_CURRENT[race.name];
  it(persists ? `still breaks ${race.header.breaks.join(", ")} under current: ${persists}` : "holds every expectation under current", () => {
    const cur = explore(expectationsSubject(race, "current"), { strategy: "random", budget: persists ? 1 : BUDGET });
    if (persists) {
      expect(race.header.note).toBeDefined();
      expect(cur.found[0]?.result.violations.map((v) => v.detail).join("\n")).toMatch(new RegExp(race.header.breaks.join("|")));
    } else expect(cur.found.map((f) => f.result.violations[0]!.detail)).toEqual([]);
  });

  it("its replay file reproduces the violation with the same trace hash", () => {
    const file = join(RACES_DIR, `${race.name}.replay.json`);
    expect(existsSync(file), file).toBe(true);
    const rp = readReplayFile(file);
    expect(rp.replay.subject).toEqual({ scenario: `${race.name}.yaml`, sha256: race.loaded.contentHash });
    const { loaded, staleScenario } = loadReplayScenario(rp);
    expect(staleScenario).toBeUndefined();
    expect(rp.replay.profile).toBe(race.header["buggy-profile"]);
    const r = runScenario(loaded, { seed: rp.replay.seed, profile: rp.replay.profile, strategy: new ReplayStrategy(rp.choices) });
    expect(r.hash).toBe(rp.replay.hash);
    expect(rp.replay.ok).toBe(false);
    expect(r.violations.map((v) => v.invariant).filter((n) => race.header.breaks.includes(n)).length).toBeGreaterThan(0);
  });
});
