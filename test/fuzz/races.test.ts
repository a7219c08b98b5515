import { describe, expect, it } from "vitest";
import { ALL_PROFILES } from "../../sim/mgmt/profiles.js";
import { CATALOG, catalogRace, hunt, replayRace } from "../../sim/races/catalog.js";
import { readReplayFile } from "../../sim/scenario/replay.js";

const BUDGET = 20;
const NEW = CATALOG.filter((r) => r.replayFile);

describe("the race catalog", () => {
  it("names every race once, with a fixing commit, and only profiles that exist", () => {
    const names = CATALOG.map((r) => r.name);
    expect(new Set(names).size).toBe(names.length);
    expect(CATALOG.length).toBeGreaterThanOrEqual(7);
    for (const r of CATALOG) {
      expect(r.fixedBy).toMatch(/^(qemu|libvirt) [0-9a-f]{9,}/);
      for (const p of [r.buggyProfile, r.fixedProfile]) expect(ALL_PROFILES.map((x) => x.name), `${r.name}: ${p}`).toContain(p);
    }
    expect(() => catalogRace("nope")).toThrow(/unknown race 'nope'; known races: txn-start-before-commit, /);
  });
});

describe.each(NEW.map((r) => [r.name, r] as const))("race %s", (_name, race) => {
  const h = hunt(race, { budget: BUDGET });

  it(`is found under ${race.buggyProfile} by random exploration, and shrunk`, () => {
    if (!h.found) expect.fail(`${race.invariant} not broken in ${BUDGET} runs under ${race.buggyProfile}`);
    expect(h.found.result.violations.map((v) => v.invariant)).toContain(race.invariant);
    expect(h.shrunk!.result.violations.length).toBeGreaterThan(0);
    expect(h.shrunk!.picks.filter((p) => p !== 0).length).toBeLessThanOrEqual(h.found.result.choices.filter((c) => c[1] !== 0).length);
  });

  it(`is gone under ${race.fixedProfile} with the same budget`, () => {
    expect(h.fixed).toEqual({ runs: BUDGET, found: false });
  });

  it("its replay file fails the same way, with the same trace hash", () => {
    const file = readReplayFile(race.replayFile!.pathname).replay;
    expect(file.subject).toEqual({ race: race.name });
    const run = replayRace(file);
    expect(run.hash).toBe(file.hash);
    expect(run.violations.map((v) => v.invariant)).toContain(race.invariant);
    expect(file.violations.map((v) => v.invariant)).toContain(race.invariant);
  });
});
