/** Every race file runs green as it is (`blocksim run FILE`: its own profile, seed and strategy). */
import { describe, expect, it } from "vitest";
import { loadRaces } from "../../sim/races/catalog.js";
import { verdict } from "../../sim/report/text.js";
import { runScenario } from "../../sim/scenario/runner.js";

describe.each(loadRaces().map((r) => [r.name, r] as const))("scenarios/races/%s", (_name, race) => {
  it("holds every expectation when run as it is", () => {
    const r = runScenario(race.loaded);
    expect(r.ok, verdict(r)).toBe(true);
  });
});
