/**
 * Random mutations of good scenario files (fast-check, fixed seed): whatever
 * the mutation, loading gives either a scenario or an InputError with at
 * least one located problem, and running a scenario that loads ends with a
 * report — no crash, no hang.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import fc from "fast-check";
import { afterAll, describe, expect, it } from "vitest";
import { parse, stringify } from "yaml";
import { InputError } from "../../sim/scenario/errors.js";
import { LIMITS } from "../../sim/scenario/limits.js";
import { loadScenarioFile, loadScenarioText } from "../../sim/scenario/loader.js";
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

describe("JSON read by JSON.parse and by the YAML parser", () => {
  it("give the same scenario, or the same problems, for mutants written as JSON (with repeated keys spliced in)", () => {
    const result = (text: string) => {
      try {
        return { scenario: loadScenarioText(text, "m.json", dir.pathname).scenario };
      } catch (e) {
        if (!(e instanceof InputError)) throw e;
        return { problems: e.problems.map((p) => `${p.path}: ${p.message.replace(/line \d+/g, "line N")}`) }; // the comment shifts lines by one
      }
    };
    fc.assert(
      fc.property(fc.nat(goods.length - 1), fc.array(mutation, { maxLength: 3 }), fc.nat(), fc.boolean(), (gi, ms, at, repeat) => {
        let text = JSON.stringify(mutate(goods[gi].doc, ms));
        // A repeated key after some "{": JSON.parse would keep the last silently; both paths must refuse it.
        const brace = [...text.matchAll(/\{"([^"]+)":/g)];
        if (repeat && brace.length > 0) {
          const m = brace[at % brace.length];
          text = text.slice(0, m.index + 1) + `"${m[1]}": 0, ` + text.slice(m.index + 1);
        }
        // A leading comment is not JSON: the same document, through the YAML parser.
        expect(result(text), text.slice(0, 200)).toEqual(result(`# through YAML\n${text}`));
      }),
      { seed: 20261130, numRuns: 150 },
    );
  }, 120_000);
});

/**
 * The loader against hostile file trees (issue 19): a scenario importing a
 * random graph of files — fragments, diamonds, cycles, FIFOs, device files,
 * symlinks out of the folder, files that are not fragments, oversized files,
 * huge counts. Whatever the tree, loading ends at once with a scenario or an
 * InputError, and never prints the content of a file that is not a scenario.
 */
describe("the loader against hostile import trees", () => {
  const SECRET = "TOPSECRET-4242";
  type Target = "fragment" | "diamond" | "cycle" | "fifo" | "dev-zero" | "dev-null" | "symlink-out" | "not-fragment" | "not-yaml" | "huge" | "big-count" | "deep"
    | "repeated-key" | "json-fragment" | "json-repeated-key" | "many-clusters" | "many-problems";
  const targets: Target[] = ["fragment", "diamond", "cycle", "fifo", "dev-zero", "dev-null", "symlink-out", "not-fragment", "not-yaml", "huge", "big-count", "deep",
    "repeated-key", "json-fragment", "json-repeated-key", "many-clusters", "many-problems"];
  const base = mkdtempSync(join(tmpdir(), "blocksim-hostile-"));
  afterAll(() => rmSync(base, { recursive: true, force: true }));
  let n = 0;

  function build(kinds: Target[]): string {
    const dir = join(base, `c${n++}`);
    mkdirSync(dir);
    const imports: string[] = [];
    kinds.forEach((k, i) => {
      const f = `f${i}.yaml`;
      const path = join(dir, f);
      switch (k) {
        case "fragment": writeFileSync(path, `devices: [{ name: d${i}, size: 1MiB }]\n`); break;
        case "diamond": writeFileSync(path, "import: [shared.yaml, shared.yaml]\n"); writeFileSync(join(dir, "shared.yaml"), "devices: [{ name: shared, size: 1MiB }]\n"); break;
        case "cycle": writeFileSync(path, `import: [${f}]\n`); break;
        case "fifo": execFileSync("mkfifo", [path]); break;
        case "dev-zero": symlinkSync("/dev/zero", path); break;
        case "dev-null": symlinkSync("/dev/null", path); break;
        case "symlink-out": symlinkSync("/etc/hostname", path); break;
        case "not-fragment": writeFileSync(path, `user: ${SECRET}\npassword: ${SECRET}\n`); break;
        case "not-yaml": writeFileSync(path, `${SECRET}: a: b: [\n`); break;
        case "huge": writeFileSync(path, `description: "${"x".repeat(LIMITS.fileBytes + 1)}"\n`); break;
        case "big-count": writeFileSync(path, `guests: [{ node: n, iodepth: 100000000 }]\ndevices: [{ name: big${i}, size: 1MiB, queue-depth: 1000000000 }]\n`); break;
        case "deep": writeFileSync(path, `devices: ${"[".repeat(500)}${"]".repeat(500)}\n`); break;
        case "repeated-key": writeFileSync(path, `${SECRET}: 1\n${SECRET}: 2\n`); break;
        case "json-fragment": writeFileSync(path, JSON.stringify({ devices: [{ name: `j${i}`, size: 1 << 20 }] })); break;
        case "json-repeated-key": writeFileSync(path, `{"devices": [], "${SECRET}": 1, "${SECRET}": 2}`); break;
        case "many-clusters": writeFileSync(path, JSON.stringify({ devices: Array.from({ length: 20 }, (_, k) => ({ name: `c${i}-${k}`, size: 2 ** 38, "cluster-size": 65536 })) })); break;
        case "many-problems": writeFileSync(path, JSON.stringify({ devices: Array.from({ length: 5000 }, (_, k) => ({ name: `p${i}-${k}`, size: -1, [SECRET]: 1 })) })); break;
      }
      imports.push(f);
    });
    writeFileSync(join(dir, "s.yaml"), `name: hostile\nimport: [${imports.join(", ")}]\n`);
    return dir;
  }

  it("ends at once with a scenario or a clean error, never echoing a non-scenario file", () => {
    let rejected = 0, loaded = 0;
    fc.assert(
      fc.property(fc.array(fc.constantFrom(...targets), { minLength: 1, maxLength: 4 }), fc.boolean(), (kinds, allowDev) => {
        const dir = build(kinds);
        const started = Date.now();
        try {
          loadScenarioFile(join(dir, "s.yaml"), "s.yaml", allowDev ? { allowImport: ["/dev", "/etc"] } : {});
          loaded++;
        } catch (e) {
          if (!(e instanceof InputError)) throw e;
          expect(e.problems.length).toBeGreaterThan(0);
          expect(e.message).not.toContain(SECRET);
          rejected++;
        }
        expect(Date.now() - started).toBeLessThan(5_000);
      }),
      { seed: 20261130, numRuns: 80 },
    );
    expect(rejected).toBeGreaterThan(50);
    expect(loaded).toBeGreaterThan(0);
  }, 60_000);
});
