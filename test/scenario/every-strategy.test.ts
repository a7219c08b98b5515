/**
 * Random and PCT exploration may only reach orders QEMU can produce (a job
 * entered from the main loop runs at once; a nested poll has no choice
 * points QEMU lacks), so every shipped scenario passes under both, seed
 * after seed, as it does under FIFO.
 */
import { readdirSync } from "node:fs";
import { strategyByName } from "../../sim/harness/strategy.js";
import { describe, expect, it } from "vitest";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";
import { verdict } from "../../sim/report/text.js";

const dir = new URL("../../scenarios/", import.meta.url);
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f) && !f.endsWith(".replay.json")).sort();
const SEEDS = Array.from({ length: 20 }, (_, i) => i + 1);

describe("every shipped scenario passes under random and PCT, seeds 1..20", () => {
  for (const f of files) {
    it(f, () => {
      const loaded = loadScenarioFile(new URL(f, dir).pathname, `scenarios/${f}`);
      for (const strategy of ["random", "pct"] as const) {
        for (const seed of SEEDS) {
          const r = runScenario(loaded, { strategy: strategyByName(strategy, seed), seed });
          expect(r.ok, `blocksim run scenarios/${f} --strategy ${strategy} --seed ${seed}\n${verdict(r)}`).toBe(true);
        }
      }
    });
  }
});
