/**
 * The determinism guard (DESIGN.md, "The one rule"): nothing under sim/
 * may read the wall clock (the command line, which talks to the real world,
 * lives outside it in cli/),
 * use Math.random or schedule real timers. Uses the TypeScript parser, so a
 * mention in a comment or a string is fine and any real use is caught,
 * however it is spelled (`Math.random()`, `Math["random"]`, `globalThis.setTimeout`,
 * a bare `setImmediate`).
 */
import { readdirSync, readFileSync } from "node:fs";
import { join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import ts from "typescript";
import { describe, expect, it } from "vitest";

const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const SIM = join(ROOT, "sim");

/** Property accesses that read the wall clock or an unseeded random source. */
const FORBIDDEN_MEMBERS: Record<string, string[]> = { Math: ["random"], Date: ["now"], performance: ["now"] };
/** Real timers, as bare names or as members of anything (globalThis.setTimeout). */
const FORBIDDEN_NAMES = new Set(["setTimeout", "setInterval", "setImmediate"]);

interface Finding { line: number; what: string }

/** Every forbidden use in one source text. */
function scanSource(fileName: string, text: string): Finding[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const out: Finding[] = [];
  const at = (node: ts.Node, what: string) => out.push({ line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1, what });
  const visit = (node: ts.Node): void => {
    if (ts.isPropertyAccessExpression(node) || ts.isElementAccessExpression(node)) {
      const obj = node.expression;
      const member = ts.isPropertyAccessExpression(node)
        ? node.name.text
        : ts.isStringLiteralLike(node.argumentExpression) ? node.argumentExpression.text : undefined;
      if (member !== undefined && ts.isIdentifier(obj) && FORBIDDEN_MEMBERS[obj.text]?.includes(member)) at(node, `${obj.text}.${member}`);
      if (member !== undefined && FORBIDDEN_NAMES.has(member)) at(node, member);
    } else if (ts.isIdentifier(node) && FORBIDDEN_NAMES.has(node.text)) {
      const p = node.parent;
      // `x.setTimeout` is handled above; a key or member declared with that name is not a use.
      const isName = (ts.isPropertyAccessExpression(p) || ts.isPropertyAssignment(p) || ts.isPropertyDeclaration(p) ||
        ts.isMethodDeclaration(p) || ts.isPropertySignature(p) || ts.isMethodSignature(p)) && p.name === node;
      if (!isName) at(node, node.text);
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}

function tsFiles(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => {
    const p = join(dir, e.name);
    if (e.isDirectory()) return tsFiles(p);
    return e.isFile() && e.name.endsWith(".ts") ? [p] : [];
  }).sort();
}

describe("determinism guard", () => {
  it("finds each forbidden use, however spelled, and nothing in comments or strings", () => {
    const src = [
      `// Math.random and Date.now in a comment are fine`,
      `const s = "setTimeout(performance.now())"; /* Math.random() */`,
      `const a = Math.random();`,
      `const b = Date.now();`,
      `const c = performance.now();`,
      `setTimeout(() => {}, 1);`,
      `const d = globalThis.setInterval;`,
      `queueMicrotask(() => setImmediate(f));`,
      `const e = Math["random"];`,
      `const ok = { setTimeout: 1, now: Date }; interface I { setInterval(): void } Math.floor(2) + sim.now + clock.now();`,
    ].join("\n");
    expect(scanSource("x.ts", src)).toEqual([
      { line: 3, what: "Math.random" },
      { line: 4, what: "Date.now" },
      { line: 5, what: "performance.now" },
      { line: 6, what: "setTimeout" },
      { line: 7, what: "setInterval" },
      { line: 8, what: "setImmediate" },
      { line: 9, what: "Math.random" },
    ]);
  });

  it("no file under sim/ reads the wall clock, Math.random or real timers", () => {
    const files = tsFiles(SIM);
    expect(files.some((f) => f.endsWith(join("scheduler", "scheduler.ts")))).toBe(true);
    const findings = files.flatMap((f) => scanSource(f, readFileSync(f, "utf8")).map((x) => `${relative(ROOT, f)}:${x.line}: ${x.what}`));
    expect(findings, `nondeterminism in sim/:\n${findings.join("\n")}`).toEqual([]);
  });
});
