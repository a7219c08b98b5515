import { describe, expect, it } from "vitest";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { explore, readReplay, replay, SEED_RACES } from "../../sim/races/seed-races.js";

const BUDGET = 10;

describe.each(SEED_RACES.map((r) => [r.name, r] as const))("seed race %s", (_name, race) => {
  it(`is found under ${race.buggyProfile} by random exploration`, () => {
    const found = explore(race, race.buggyProfile, BUDGET);
    if (!found) expect.fail(`${race.rule} not broken in ${BUDGET} seeds under ${race.buggyProfile}`);
    expect(found.run.violations.map((v) => v.rule)).toContain(race.rule);
  });

  it("is gone under the fixed (current) profile with the same budget", () => {
    const found = explore(race, "current", BUDGET);
    expect(found, found ? `seed ${found.seed}: ${JSON.stringify(found.run.violations)}` : "").toBeUndefined();
  });

  it("its replay file fails the same way, with the same trace hash", () => {
    const file = readReplay(race);
    const run = replay(race, file);
    expect(run.hash).toBe(file.hash);
    expect(file.subject).toEqual({ race: race.name });
    expect(run.violations.map((v) => v.rule)).toContain(race.rule);
    expect(file.violations.map((v) => v.invariant)).toContain(race.rule);
  });

  it("runs identically twice from the same seed", () => {
    const a = race.run(race.buggyProfile, 7, new RandomStrategy(7));
    const b = race.run(race.buggyProfile, 7, new RandomStrategy(7));
    expect(b.hash).toBe(a.hash);
    expect(b.choices).toBe(a.choices);
  });
});
