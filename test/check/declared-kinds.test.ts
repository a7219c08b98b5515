/**
 * The checker hands an invariant only the record kinds and block event types
 * it declares (Invariant.kinds, blockEvents). Every kind its code compares a
 * record's kind with (and every type it compares a block event's with) must
 * be declared, or those records would silently never reach it. The code is
 * read from the invariant's attach function. The run's facts (facts.ts),
 * which the checker derives for every invariant that declares `facts`, read
 * only the kinds they declare (FACT_KINDS), and the checker routes those to
 * them whether an invariant names them or not.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { FACT_KINDS } from "../../sim/check/facts.js";
import { INVARIANTS } from "../../sim/check/invariants.js";
import { JOB_IO } from "../../sim/check/types.js";

const FACTS = readFileSync(new URL("../../sim/check/facts.ts", import.meta.url), "utf8");

/** The string literals `code` compares `r.kind` (a record's, as invariants.ts names records) or `ev.type` (a block event's) with. */
function compared(code: string, field: "r.kind" | "ev.type"): Set<string> {
  const out = new Set<string>();
  for (const m of code.matchAll(new RegExp(`\\b${field.replace(".", "\\.")}\\s*[!=]==\\s*"([^"]+)"`, "g"))) out.add(m[1]);
  return out;
}

/** The helper classes of facts.ts that read records: name, body, declared KINDS. */
const helpers = [...FACTS.matchAll(/^class (\w+) \{\n  static readonly KINDS = \[([^\]]*)\];\n([\s\S]*?)\n\}\n/gm)].map((m) => ({
  name: m[1],
  kinds: [...m[2].matchAll(/"([^"]+)"/g)].map((k) => k[1]),
  body: m[3],
}));

describe("declared kinds", () => {
  it("the facts' classes that read records are found, read only the kinds they declare, and FACT_KINDS holds them all", () => {
    expect(helpers.map((h) => h.name).sort()).toEqual(["QmpAsks", "SectionNodes", "StatusTable"]);
    for (const h of helpers) expect([...compared(h.body, "r.kind")].filter((k) => !h.kinds.includes(k)), h.name).toEqual([]);
    expect([...FACT_KINDS].sort()).toEqual([...new Set(helpers.flatMap((h) => h.kinds))].sort());
  });

  it.each(INVARIANTS.map((inv) => [inv.name, inv] as const))("%s declares every kind and block event type its code looks at", (_name, inv) => {
    const code = inv.attach.toString();
    const reads = compared(code, "r.kind");
    const declared = new Set(inv.kinds === undefined ? reads : [...inv.kinds, ...(inv.demandKinds ?? [])]);
    if (declared.has(JOB_IO)) declared.add("io"); // the io records a job issued: the code returns early on the others
    expect([...reads].filter((k) => !declared.has(k)), "record kinds read but not declared").toEqual([]);
    const types = compared(code, "ev.type");
    expect([...types].filter((t) => !(inv.blockEvents ?? []).includes(t as never)), "block event types read but not declared").toEqual([]);
  });
});
