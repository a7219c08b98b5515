/**
 * Checks a scenario's QMP vocabulary against QEMU 7.2's tables (sim/qmp):
 * event names and event data members in `on-event`, `expect.events` and
 * `expect.never`, and `{ return: … }` expectations against what each
 * command answers. A typo there would otherwise make an expectation that
 * cannot fail — `never: [BLOCK_JOB_CANCELED]` passes whatever happens.
 */
import { describeMemberType, MODELLED_EVENTS, QEMU_EVENTS, qemuEvent } from "../qmp/events.js";
import { unmodelledArgs } from "../qmp/args.js";
import { COMMANDS } from "../qmp/qemu.js";
import { checkExpectedReturn } from "../qmp/replies.js";
import { didYouMean } from "./errors.js";
import type { Scenario } from "./schema.js";

type Path = (string | number)[];
export type Report = (path: Path, message: string) => void;

const ALL_NAMES = QEMU_EVENTS.map((e) => e.name);

/** Checks one event pattern: `name`, and `data` when given. `role` says where it is, for the unmodelled message. */
export function checkEventPattern(name: string, data: Record<string, unknown> | undefined, at: Path, nameAt: Path, role: "trigger" | "expected" | "never", report: Report): void {
  const spec = qemuEvent(name);
  if (!spec) {
    const hint = didYouMean(name, ALL_NAMES) || didYouMean(name.toUpperCase(), ALL_NAMES);
    report(nameAt, `unknown event "${name}"${hint}: QEMU 7.2 has no such event; run \`blocksim events\` for the list`);
    return;
  }
  if (!spec.modelled) {
    const why = role === "never" ? "so this check cannot fail" : role === "trigger" ? "so this step would never run" : "so this expectation cannot hold";
    report(nameAt, `valid in QEMU 7.2, not modelled by blocksim: event ${name} is never sent by the simulator, ${why}; blocksim sends ${MODELLED_EVENTS.join(", ")}`);
    return;
  }
  if (!data) return;
  const members = Object.keys(spec.members);
  for (const [k, v] of Object.entries(data)) {
    const m = Object.hasOwn(spec.members, k) ? spec.members[k] : undefined;
    if (!m) {
      report([...at, "data", k], `${name} has no data member "${k}"${didYouMean(k, members)}; its members: ${members.join(", ") || "none"}`);
      continue;
    }
    const t = m.type;
    if (typeof t === "object") {
      if (typeof v !== "string" || !t.enum.includes(v)) {
        report([...at, "data", k], `${name}'s ${k} is one of ${t.enum.join(", ")}; got ${JSON.stringify(v)}${typeof v === "string" ? didYouMean(v, t.enum as string[]) : ""}`);
      }
    } else if ((t === "str" && typeof v !== "string") || (t === "int" && typeof v !== "number") || (t === "bool" && typeof v !== "boolean")) {
      report([...at, "data", k], `${name}'s ${k} is ${t === "str" ? "a string" : t === "int" ? "an integer" : "a boolean"} (${describeMemberType(t)}); got ${JSON.stringify(v)}`);
    }
  }
}

/** Every event pattern and `return` expectation of a scenario. */
export function checkVocabulary(s: Scenario, report: Report): void {
  s.steps.forEach((st, i) => {
    const oe = st["on-event"];
    if (oe) checkEventPattern(oe.event, oe.data, ["steps", i, "on-event"], ["steps", i, "on-event", "event"], "trigger", report);
    if ("execute" in st && Object.hasOwn(COMMANDS, st.execute)) {
      for (const what of unmodelledArgs(COMMANDS[st.execute].args, st.arguments)) {
        report(["steps", i, "arguments"], `valid in QEMU 7.2, not modelled by blocksim: ${st.execute}'s ${what}`);
      }
    }
    if ("execute" in st && typeof st.expect === "object") {
      const ex = st.expect;
      const alternatives = "any" in ex ? ex.any.map((x, j) => [x, ["any", j]] as const) : [[ex, []] as const];
      for (const [x, at] of alternatives) {
        if (typeof x !== "object" || !("return" in x)) continue;
        for (const p of checkExpectedReturn(st.execute, x.return, didYouMean)) report(["steps", i, "expect", ...at, "return", ...p.path], p.message);
      }
    }
  });
  const ev = s.expect.events;
  if (ev) {
    const list = Array.isArray(ev) ? ev : ev.sequence;
    const base: Path = Array.isArray(ev) ? ["expect", "events"] : ["expect", "events", "sequence"];
    list.forEach((e, j) => pattern(e, [...base, j], "expected", report));
  }
  s.expect.never?.forEach((e, j) => pattern(e, ["expect", "never", j], "never", report));
}

function pattern(e: string | { event: string; data?: Record<string, unknown> }, at: Path, role: "expected" | "never", report: Report): void {
  if (typeof e === "string") checkEventPattern(e, undefined, at, at, role, report);
  else checkEventPattern(e.event, e.data, at, [...at, "event"], role, report);
}
