/**
 * Random mutations of good scenario files (fast-check, fixed seed): whatever
 * the mutation, loading gives either a scenario or an InputError with at
 * least one located problem, and running a scenario that loads ends with a
 * report — no crash, no hang.
 */
import { readdirSync, readFileSync } from "node:fs";
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { InputError } from "../../sim/scenario/errors.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

const dir = new URL("../../scenarios/", import.meta.url);
const goods = readdirSync(dir).filter((f) => f.endsWith(".yaml")).sort().map((f) => ({ f, doc: parse(readFileSync(new URL(f, dir), "utf8")) as unknown }));

type Json = unknown;
const JUNK: Json[] = [null, true, 0, -1, 1.5, "", "64XB", "1TiB", "ms", [], {}, [1, 2], { x: 1 }, "null", 2 ** 60, "query-jobs", "running"];

/** All paths to values in a document. */
function paths(v: Json, p: (string | number)[] = [], out: (string | number)[][] = []): (string | number)[][] {
  out.push(p);
  if (Array.isArray(v)) v.forEach((x, i) => paths(x, [...p, i], out));
  else if (v && typeof v === "object") for (const [k, x] of Object.entries(v)) paths(x, [...p, k], out);
  return out;
}

function get(v: Json, p: (string | number)[]): Json {
  return p.reduce<Json>((a, k) => (a as Record<string | number, Json>)[k], v);
}

type Mutation = { kind: "delete" | "junk" | "typo" | "extra" | "dup"; at: number; pick: number };

function mutate(doc: Json, ms: Mutation[]): Json {
  let d = structuredClone(doc);
  for (const m of ms) {
    const ps = paths(d);
    const p = ps[m.at % ps.length];
    if (p.length === 0) {
      if (m.kind === "junk") d = JUNK[m.pick % JUNK.length];
      continue;
    }
    const parent = get(d, p.slice(0, -1)) as Record<string | number, Json> | Json[];
    const key = p[p.length - 1];
    switch (m.kind) {
      case "delete":
        if (Array.isArray(parent)) parent.splice(key as number, 1);
        else delete (parent as Record<string, Json>)[key];
        break;
      case "junk":
        (parent as Record<string | number, Json>)[key] = JUNK[m.pick % JUNK.length];
        break;
      case "typo":
        if (!Array.isArray(parent) && typeof key === "string" && key.length > 1) {
          const i = m.pick % key.length;
          const typo = key.slice(0, i) + key.slice(i + 1);
          (parent as Record<string, Json>)[typo] = (parent as Record<string, Json>)[key];
          delete (parent as Record<string, Json>)[key];
        }
        break;
      case "extra":
        if (!Array.isArray(parent) && parent && typeof parent === "object") (parent as Record<string, Json>)[`extra${m.pick % 3}`] = 1;
        break;
      case "dup":
        if (Array.isArray(parent)) parent.push(structuredClone(parent[key as number]));
        break;
    }
  }
  return d;
}

const mutation = fc.record({ kind: fc.constantFrom("delete", "junk", "typo", "extra", "dup"), at: fc.nat(10_000), pick: fc.nat(1000) }) as fc.Arbitrary<Mutation>;

describe("random mutations of the shipped scenarios", () => {
  it("never crash or hang: a clear error or a report", () => {
    let rejected = 0, ran = 0;
    fc.assert(
      fc.property(fc.nat(goods.length - 1), fc.array(mutation, { minLength: 1, maxLength: 4 }), fc.option(fc.nat(), { freq: 4 }), (gi, ms, cut) => {
        let text = stringify(mutate(goods[gi].doc, ms));
        if (cut !== null) text = text.slice(0, cut % (text.length + 1)); // also cut the text short: syntax errors, half documents
        let loaded;
        try {
          loaded = loadScenarioText(text, `mutant-of-${goods[gi].f}`, dir.pathname);
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          expect(e.problems.length).toBeGreaterThan(0);
          for (const p of e.problems) expect(p.message.length).toBeGreaterThan(5);
          rejected++;
          return;
        }
        loaded.scenario.limits = { ...loaded.scenario.limits, time: Math.min(loaded.scenario.limits.time, 2e9), steps: 300_000 };
        const started = Date.now();
        const r = runScenario(loaded);
        expect(typeof r.hash).toBe("string");
        expect(Date.now() - started).toBeLessThan(20_000);
        ran++;
      }),
      { seed: 20261123, numRuns: 500 },
    );
    expect(rejected).toBeGreaterThan(50);
    expect(ran).toBeGreaterThan(10);
  }, 240_000);
});
