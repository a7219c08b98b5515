/**
 * One place builds a world (sim/harness/world.ts, createWorld): shipped code
 * elsewhere — sim/, live/, serve/, cli/, bin/ and the library examples in
 * scenarios/examples/ — never makes a world's parts itself: a scheduler, a
 * simulated QEMU, a device, a management layer, the invariant checker, a
 * guest workload. Reads every `new X(…)` and call with the TypeScript parser
 * (through import aliases and namespaces), so a comment or a string is no
 * construction. Unit tests under test/ build parts freely, and bench/
 * measures parts on their own, so neither is scanned.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import ts from "typescript";
import { describe, expect, it } from "vitest";
import { ROOT, sourceFiles } from "../source-files.js";


/** What makes a world's part, by the name constructed (`new`) or called. */
const PARTS: Record<string, { kind: "new" | "call"; part: string }> = {
  Scheduler: { kind: "new", part: "scheduler" },
  createQemu: { kind: "call", part: "simulated QEMU" },
  BlockGraph: { kind: "new", part: "simulated QEMU" },
  JobManager: { kind: "new", part: "simulated QEMU" },
  Device: { kind: "new", part: "device" },
  addDevice: { kind: "call", part: "device" },
  Domain: { kind: "new", part: "management layer" },
  checkRun: { kind: "call", part: "invariants" },
  startGuest: { kind: "call", part: "guest" },
};

/**
 * The exceptions, each a part of QEMU's own behaviour or of a run's actions,
 * not of building a world. A file and the name it may construct or call.
 */
const ALLOWED: Record<string, { names: string[]; why: string }> = {
  "sim/qmp/qemu.ts": {
    names: ["BlockGraph", "JobManager", "Device"],
    why: "createQemu is the simulated QEMU itself: it makes its own block graph and job manager, and its addDevice the device it declares",
  },
  "sim/qmp/transaction.ts": {
    names: ["Device"],
    why: "drive-backup and drive-mirror create their target image file while the world runs, as QEMU does (mode absolute-paths)",
  },
  "scenarios/examples/kernel-race.ts": {
    names: ["Scheduler"],
    why: "the kernel's own example: two processes on a bare scheduler, no QEMU and no world",
  },
  "scenarios/examples/drain-guest.ts": {
    names: ["Scheduler", "BlockGraph", "Device", "startGuest"],
    why: "the block layer's own example: a drained section under a guest on a graph without a QEMU, so no world",
  },
  "sim/fuzz/model.ts": {
    names: ["startGuest"],
    why: "a fuzz case's guest bursts are actions of its safety phase, started at their moment on the guest's disk, not the world's guests",
  },
};

/** `name` at `line` for each part a source makes (`new X`, `X()`, `a.X()`, `ns.X`), with import aliases resolved. */
export function partsMade(fileName: string, text: string): { name: string; line: number }[] {
  const sf = ts.createSourceFile(fileName, text, ts.ScriptTarget.Latest, true, ts.ScriptKind.TS);
  const alias = new Map<string, string>();
  for (const st of sf.statements) {
    const named = ts.isImportDeclaration(st) ? st.importClause?.namedBindings : undefined;
    if (named && ts.isNamedImports(named)) for (const el of named.elements) alias.set(el.name.text, (el.propertyName ?? el.name).text);
  }
  const nameOf = (e: ts.Expression): string | undefined =>
    ts.isIdentifier(e) ? alias.get(e.text) ?? e.text : ts.isPropertyAccessExpression(e) ? e.name.text : undefined;
  const out: { name: string; line: number }[] = [];
  const visit = (node: ts.Node): void => {
    const kind = ts.isNewExpression(node) ? "new" : ts.isCallExpression(node) ? "call" : undefined;
    if (kind) {
      const name = nameOf((node as ts.NewExpression | ts.CallExpression).expression);
      if (name !== undefined && Object.hasOwn(PARTS, name) && PARTS[name].kind === kind) {
        out.push({ name, line: sf.getLineAndCharacterOfPosition(node.getStart(sf)).line + 1 });
      }
    }
    ts.forEachChild(node, visit);
  };
  visit(sf);
  return out;
}


describe("one world builder", () => {
  it("finds parts made directly, through an alias or a namespace, and ignores comments, strings and declarations", () => {
    const text = [
      `import { Scheduler as S } from "../sim/scheduler/index.js";`,
      `import * as q from "../sim/qmp/qemu.js";`,
      `// const sim = new Scheduler();`,
      `const s = "createQemu(sim)";`,
      `const sim = new S({ seed: 1 });`,
      `const qemu = q.createQemu(sim);`,
      `qemu.addDevice({ name: "d" });`,
      `export function startGuest() {}`,
      `const w = createWorld({}); w.declareDevice({ name: "e", sizeBytes: 1 });`,
    ].join("\n");
    expect(partsMade("x.ts", text)).toEqual([{ name: "Scheduler", line: 5 }, { name: "createQemu", line: 6 }, { name: "addDevice", line: 7 }]);
  });

  it("shipped code outside sim/harness makes no part of a world but the allowed ones, and each allowance is still needed", () => {
    const files = ["sim", "live", "serve", "cli", "bin", "scenarios/examples"].flatMap(sourceFiles).filter((f) => !f.startsWith("sim/harness/"));
    expect(files).toContain("live/spec-driver.ts");
    expect(files).toContain("serve/world.ts");
    expect(files).toContain("scenarios/examples/drivers.ts");
    const problems: string[] = [];
    const used = new Set<string>();
    for (const f of files) {
      for (const { name, line } of partsMade(f, readFileSync(join(ROOT, f), "utf8"))) {
        if (ALLOWED[f]?.names.includes(name)) used.add(`${f} ${name}`);
        else problems.push(`${f}:${line}: makes a ${PARTS[name].part} (${name}); build the world with createWorld (sim/harness/world.ts) instead`);
      }
    }
    for (const [f, { names }] of Object.entries(ALLOWED)) {
      for (const n of names) if (!used.has(`${f} ${n}`)) problems.push(`${f} no longer makes ${n}: drop it from the allowed list`);
    }
    expect(problems, problems.join("\n")).toEqual([]);
  });
});
