/**
 * The checker hands an invariant only the record kinds and block event types
 * it declares (Invariant.kinds, blockEvents). Every kind its code compares a
 * record's kind with (and every type it compares a block event's with) must
 * be declared, or those records would silently never reach it. The code is
 * read from the invariant's attach function, plus the helper classes it
 * builds (their KINDS must be declared too).
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { INVARIANTS } from "../../sim/check/invariants.js";
import { JOB_IO } from "../../sim/check/types.js";

const SOURCE = readFileSync(new URL("../../sim/check/invariants.ts", import.meta.url), "utf8");

/** The string literals `code` compares `r.kind` (a record's, as invariants.ts names records) or `ev.type` (a block event's) with. */
function compared(code: string, field: "r.kind" | "ev.type"): Set<string> {
  const out = new Set<string>();
  for (const m of code.matchAll(new RegExp(`\\b${field.replace(".", "\\.")}\\s*[!=]==\\s*"([^"]+)"`, "g"))) out.add(m[1]);
  return out;
}

/** The helper classes of invariants.ts that read records for an invariant: name, body, declared KINDS. */
const helpers = [...SOURCE.matchAll(/^class (\w+) \{\n  static readonly KINDS = \[([^\]]*)\];\n([\s\S]*?)\n\}\n/gm)].map((m) => ({
  name: m[1],
  kinds: [...m[2].matchAll(/"([^"]+)"/g)].map((k) => k[1]),
  body: m[3],
}));

describe("declared kinds", () => {
  it("the helper classes that read records are found, and read only the kinds they declare", () => {
    expect(helpers.map((h) => h.name).sort()).toEqual(["QmpAsks", "StatusTable"]);
    for (const h of helpers) expect([...compared(h.body, "r.kind")].filter((k) => !h.kinds.includes(k)), h.name).toEqual([]);
  });

  it.each(INVARIANTS.map((inv) => [inv.name, inv] as const))("%s declares every kind and block event type its code looks at", (_name, inv) => {
    const code = inv.attach.toString();
    const reads = compared(code, "r.kind");
    for (const h of helpers) if (code.includes(`new ${h.name}(`)) for (const k of h.kinds) reads.add(k);
    const declared = new Set(inv.kinds ?? reads);
    if (declared.has(JOB_IO)) declared.add("io"); // the io records a job issued: the code returns early on the others
    expect([...reads].filter((k) => !declared.has(k)), "record kinds read but not declared").toEqual([]);
    const types = compared(code, "ev.type");
    expect([...types].filter((t) => !(inv.blockEvents ?? []).includes(t as never)), "block event types read but not declared").toEqual([]);
  });
});
