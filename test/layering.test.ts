/**
 * Layering (DESIGN.md): layers import downward only, shipped code never
 * imports test/, and nothing shipped but scripts imports scenarios/ (data).
 * Shipped code imports only the packages package.json lists under
 * `dependencies` (what a user's install must hold), never a devDependency,
 * and every package listed there is imported by shipped code.
 * Reads every import — static, `export … from` and `import("…")` with a
 * literal — with the TypeScript parser, so a comment or a string is no import.
 */
import { readFileSync } from "node:fs";
import { dirname, join, relative, resolve, sep } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT, sourceFiles } from "./source-files.js";


/**
 * Rank of each layer, bottom up. Folders of one rank are peers: they may
 * import each other, but the folders must not import each other in a circle.
 */
const RANK: Record<string, number> = {
  "sim/scheduler": 0, "sim/disk": 1, "sim/block": 2, "sim/jobs": 3, "sim/qmp": 4, "sim/mgmt": 5, "sim/check": 6,
  "sim/harness": 7, "sim/scenario": 8, "sim/fuzz": 8, "sim/races": 8, "sim/report": 8, live: 9, serve: 9, cli: 10, bin: 11,
};

/** The layer a repository path belongs to ("sim/jobs" for sim/jobs/drivers/x.ts), or the top folder. */
export function layerOf(path: string): string {
  const parts = path.split("/");
  return parts[0] === "sim" ? `sim/${parts[1]}` : parts[0];
}

/** Module specifiers a source imports (static, re-exports, dynamic with a literal). */
export function importsOf(fileName: string, text: string): string[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: string[] = [];
  const visit = (node: ts.Node): void => {
    if ((ts.isImportDeclaration(node) || ts.isExportDeclaration(node)) && node.moduleSpecifier && ts.isStringLiteral(node.moduleSpecifier)) {
      out.push(node.moduleSpecifier.text);
    } else if (ts.isCallExpression(node) && node.expression.kind === ts.SyntaxKind.ImportKeyword && node.arguments[0] && ts.isStringLiteralLike(node.arguments[0])) {
      out.push(node.arguments[0].text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

/** What is wrong with one import from `from` (a repository path) of `spec`, if anything. */
export function importProblem(from: string, spec: string): string | undefined {
  if (!spec.startsWith(".")) return undefined; // a package
  const target = relative(ROOT, resolve(ROOT, dirname(from), spec)).split(sep).join("/");
  const a = layerOf(from), b = layerOf(target);
  if (b === "test" && a !== "test") return `${from} imports ${target}: shipped code never imports test/`;
  if (b === "scenarios" && a !== "scenarios" && a !== "test" && a !== "bench") return `${from} imports ${target}: scenarios/ is data, only scripts and tests import it`;
  const ra = RANK[a], rb = RANK[b];
  if (ra !== undefined && rb !== undefined && rb > ra) return `${from} (layer ${a}) imports ${target}, which is in the higher layer ${b}`;
  if (ra !== undefined && rb === undefined && b !== a) return `${from} (layer ${a}) imports ${target}, outside every layer`;
  return undefined;
}

/** The package an import names ("pure-rand" for "pure-rand/generator/x", "@scope/p" for "@scope/p/x"), or undefined for a relative or node: one. */
export function packageOf(spec: string): string | undefined {
  if (spec.startsWith(".") || spec.startsWith("node:")) return undefined;
  const parts = spec.split("/");
  return spec.startsWith("@") ? parts.slice(0, 2).join("/") : parts[0];
}

/** Circles among folders of one rank (peers), as "a -> b -> a". */
export function peerCircles(edges: [string, string][]): string[] {
  const next = new Map<string, Set<string>>();
  for (const [a, b] of edges) if (a !== b && RANK[a] !== undefined && RANK[a] === RANK[b]) (next.get(a) ?? next.set(a, new Set()).get(a)!).add(b);
  const out: string[] = [];
  for (const [a, bs] of [...next].sort()) for (const b of [...bs].sort()) if (a < b && next.get(b)?.has(a)) out.push(`${a} -> ${b} -> ${a}`);
  return out;
}


describe("layering", () => {
  it("flags an import up a layer, into test/ or scenarios/, and a circle between peers; allows the rest", () => {
    expect(importProblem("sim/jobs/drivers/backup.ts", "../../qmp/qemu.js")).toMatch(/layer sim\/jobs.*higher layer sim\/qmp/);
    expect(importProblem("sim/qmp/qemu.ts", "../jobs/job.js")).toBeUndefined();
    expect(importProblem("live/conform.ts", "../test/conformance/x.js")).toMatch(/never imports test/);
    expect(importProblem("cli/races.ts", "../scenarios/races/catalog.js")).toMatch(/scenarios\/ is data/);
    expect(importProblem("sim/scenario/runner.ts", "../harness/world.js")).toBeUndefined();
    expect(importProblem("sim/harness/world.ts", "../scenario/schema.js")).toMatch(/higher layer sim\/scenario/);
    expect(importProblem("cli/main.ts", "zod")).toBeUndefined();
    expect(importsOf("x.ts", `// import "../a.js"\nimport { a } from "./a.js";\nexport { b } from "./b.js";\nconst s = "import('./no.js')";\nawait import("./c.js");`)).toEqual(["./a.js", "./b.js", "./c.js"]);
    expect([packageOf("pure-rand/generator/xorshift128plus"), packageOf("@types/node/fs"), packageOf("node:fs"), packageOf("../a.js")]).toEqual(["pure-rand", "@types/node", undefined, undefined]);
    expect(peerCircles([["sim/fuzz", "sim/scenario"], ["sim/scenario", "sim/fuzz"], ["sim/report", "sim/scenario"]])).toEqual(["sim/fuzz -> sim/scenario -> sim/fuzz"]);
  });

  it("sim/, live/, serve/, cli/ and bin/ import downward only, never test/ or scenarios/", () => {
    const files = ["sim", "live", "serve", "cli", "bin"].flatMap(sourceFiles);
    expect(files).toContain("sim/scheduler/scheduler.ts");
    const problems: string[] = [];
    const edges: [string, string][] = [];
    for (const f of files) {
      for (const spec of importsOf(f, readFileSync(join(ROOT, f), "utf8"))) {
        const p = importProblem(f, spec);
        if (p) problems.push(p);
        if (spec.startsWith(".")) edges.push([layerOf(f), layerOf(relative(ROOT, resolve(ROOT, dirname(f), spec)).split(sep).join("/"))]);
      }
    }
    problems.push(...peerCircles(edges).map((c) => `peer folders import each other in a circle: ${c}`));
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("sim/, live/, serve/, cli/ and bin/ import only packages of `dependencies` (a devDependency is for tests, bench/ and the build)", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string>; devDependencies: Record<string, string> };
    const problems: string[] = [];
    for (const f of ["sim", "live", "serve", "cli", "bin"].flatMap(sourceFiles)) {
      for (const spec of importsOf(f, readFileSync(join(ROOT, f), "utf8"))) {
        const name = packageOf(spec);
        if (name !== undefined && !Object.hasOwn(pkg.dependencies, name)) {
          problems.push(`${f} imports ${spec}: ${Object.hasOwn(pkg.devDependencies, name) ? "a devDependency" : "a package package.json does not list"}`);
        }
      }
    }
    expect(problems, problems.join("\n")).toEqual([]);
  });

  it("every package of `dependencies` is imported by sim/, live/, serve/, cli/ or bin/ (one nothing ships only weighs on every install)", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { dependencies: Record<string, string> };
    const used = new Set(["sim", "live", "serve", "cli", "bin"].flatMap(sourceFiles).flatMap((f) => importsOf(f, readFileSync(join(ROOT, f), "utf8")).map(packageOf)));
    expect(Object.keys(pkg.dependencies).filter((name) => !used.has(name))).toEqual([]);
  });
});
