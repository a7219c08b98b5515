/**
 * CaseDrawer draws a campaign's cases without fast-check's arbitraries:
 * these tests hold it to fast-check's own generate, value for value (key
 * order, members left undefined and null prototypes included) and draw for
 * draw (the random state after a case), for every scenario option.
 */
import fc from "fast-check";
import { xorshift128plus } from "pure-rand/generator/xorshift128plus";
import { afterEach, describe, expect, it } from "vitest";
import { CampaignCases, FuzzCampaign, runModel, scenario, schedule, type FuzzScenario, type ScenarioOptions } from "../../sim/fuzz/index.js";
import { PickListStrategy } from "../../sim/harness/strategy.js";
import { biasForRun, CaseDrawer, defaultSizes } from "../../sim/fuzz/draw.js";

/** A value as text that tells apart what JSON does not: undefined members, key order, null prototypes. */
function exact(v: unknown): string {
  if (v === undefined) return "undefined";
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(exact).join(",")}]`;
  const proto = Object.getPrototypeOf(v) === null ? "null-proto" : "";
  return `${proto}{${Object.keys(v).map((k) => `${JSON.stringify(k)}:${exact((v as Record<string, unknown>)[k])}`).join(",")}}`;
}

const OPTIONS: ScenarioOptions[] = [
  {}, { activeMirror: true }, { groupedTransactions: false }, { bitmaps: false }, { chains: false }, { variableLatency: false },
  { faults: false }, { maxSources: 1, maxTargets: 1 }, { maxSources: 5, maxTargets: 2, maxActions: 20, maxTimeNs: 1e9 }, { maxActions: 1, maxTimeNs: 50_000 },
];

const property = (opts: ScenarioOptions) => fc.property(scenario(opts), schedule(), (_sc: FuzzScenario, _picks: number[]) => true);

describe("CaseDrawer", () => {
  afterEach(() => fc.resetConfigureGlobal());

  it.each(OPTIONS.map((o) => [JSON.stringify(o), o] as const))("draws what fast-check generates, with the same draws (options %s)", (_name, opts) => {
    const p = property(opts), drawer = new CaseDrawer(opts);
    for (const seed of [1, 1001, 2 ** 31 + 7]) {
      // As CampaignCases does: run k draws from a copy of a generator jumped k + 1 times.
      const rng = xorshift128plus(seed | 0);
      let jumped = 0;
      // Runs around 1,000 and 10,000, where the bias factor steps up.
      for (const k of [...Array(200).keys(), 999, 1000, 9_999, 10_000]) {
        for (; jumped <= k; jumped++) rng.jump();
        const a = new fc.Random(rng), b = new fc.Random(rng);
        const want = p.generate(a, k).value_, got = drawer.draw(b, biasForRun(k));
        expect(exact(got), `seed ${seed}, run ${k}`).toBe(exact(want));
        expect(b.nextInt(0, 2 ** 30), `seed ${seed}, run ${k}: random state after the case`).toBe(a.nextInt(0, 2 ** 30));
      }
    }
  });

  it("makes a campaign's cases those fc.check hands its predicate", () => {
    const seen: string[] = [];
    fc.check(fc.property(scenario(), schedule(), (sc, picks) => void seen.push(exact([sc, picks]))), { seed: 1001, numRuns: 300 });
    const cases = new CampaignCases(property({}), 1001, new CaseDrawer());
    for (let k = 0; k < seen.length; k++) expect(exact(cases.at(k)), `run ${k}`).toBe(seen[k]);
  });

  it("is left out under a global fast-check size, which it does not model: a campaign's cases are fast-check's then", () => {
    expect(defaultSizes()).toBe(true);
    fc.configureGlobal({ baseSize: "medium" });
    expect(defaultSizes()).toBe(false);
    const seen: [FuzzScenario, number[]][] = [];
    fc.check(fc.property(scenario(), schedule(), (sc, picks) => void seen.push([sc, picks])), { seed: 3, numRuns: 30 });
    // Under "medium" a schedule draws up to 100 picks, not 10: the drawer's cases would be others.
    const drawn = new CampaignCases(property({}), 3, new CaseDrawer());
    expect(seen.filter((c, k) => exact(drawn.at(k)) !== exact(c)).length).toBeGreaterThan(0);
    // The campaign's runs are those of fc.check's cases: the same scenarios, the same choices taken.
    const ran: string[] = [];
    expect(new FuzzCampaign({ seed: 3, property: (r, sc) => void ran.push(exact([sc, r.choices])) }).run(0, seen.length)).toBeUndefined();
    expect(ran).toEqual(seen.map(([sc, picks]) => exact([sc, runModel(sc, { strategy: new PickListStrategy(picks), hash: false }).choices])));
  });
});
