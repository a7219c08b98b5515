/**
 * Text renderings of a run: the readable event log (virtual time, source,
 * what happened), QMP JSON lines, and the verdict with a diff of expected
 * versus observed for each failed expectation.
 */
import { formatTime, type TraceRecord } from "../scheduler/index.js";
import { describeOutcome } from "../harness/run.js";
import type { LogEntry, RunProgress, RunReport } from "../scenario/runner.js";
import { formatSize } from "../scenario/units.js";
import { timestamp } from "../qmp/types.js";

/** Folded lines are at most this wide (the event log is also read from files and CI logs, so it does not depend on a terminal). */
export const LOG_WIDTH = 120;

/** A moment in the time column: the one time format, counted from the end of setup, right-aligned. */
export function timeColumn(ns: number): string {
  return formatTime(ns).padStart(15);
}

/**
 * `head` then `text`, folded to LOG_WIDTH: continuation lines are indented
 * under the start of `text`, and break after a comma or a space where one is
 * near, else inside a long token. Nothing is cut.
 */
export function fold(head: string, text: string, width = LOG_WIDTH): string[] {
  const indent = Math.min(head.length + 2, width - 40);
  const out: string[] = [];
  let rest = text, first = true;
  for (;;) {
    const room = width - (first ? head.length : indent);
    if (rest.length <= room) break;
    let cut = -1;
    for (let k = room; k > room / 2; k--) if (rest[k - 1] === "," || rest[k - 1] === " ") { cut = k; break; }
    if (cut < 0) cut = room;
    out.push((first ? head : " ".repeat(indent)) + rest.slice(0, cut).trimEnd());
    rest = rest.slice(cut).trimStart();
    first = false;
  }
  out.push((first ? head : " ".repeat(indent)) + rest);
  return out;
}

/** The line marking the end of setup; times count from it. */
export function setupLine(setupEndNs: number): string {
  return `${timeColumn(0)}  ── setup ended after ${formatTime(setupEndNs)} (devices filled, nodes added); times count from here`;
}

/** One log entry as readable lines (long ones folded); a reply names the step and the command it answers (`answers`). */
export function logLines(e: LogEntry, t0: number, answers?: string): string[] {
  const head = (who: string) => `${timeColumn(e.t - t0)}  ${who.padEnd(8)} `;
  switch (e.kind) {
    case "cmd": return fold(`${head(e.client)}> steps[${e.step}] `, `${e.execute}${e.arguments ? ` ${JSON.stringify(e.arguments)}` : ""}`);
    case "reply": {
      return fold(`${head(e.client)}< steps[${e.step}] `, `${answers ?? "reply"}: ${"error" in e.response ? `error ${e.response.error.class}: ${e.response.error.desc}` : `return ${JSON.stringify(e.response.return)}`}`);
    }
    case "event": return fold(`${head("event")}  `, `${e.event} ${JSON.stringify(e.data)}`);
    case "drain": case "undrain": return fold(`${head(e.client)}  steps[${e.step}] `, `${e.kind === "drain" ? "drained section begins on" : "drained section ends on"} ${e.node}`);
    case "fault": return fold(`${head(e.client)}  steps[${e.step}] `, `fault rule added on ${e.device}`);
    case "heal": return fold(`${head(e.client)}  steps[${e.step}] `, `faults cleared on ${e.device}`);
  }
}

/** The whole event log: entries in order, the end of setup marked where it came. */
export function eventLog(r: RunReport): string[] {
  const out: string[] = [];
  const asked = new Map<string, string>(); // the command each step's client last sent, for its reply
  r.log.forEach((e, i) => {
    if (i === r.setupLogIndex) out.push(setupLine(r.setupEndNs));
    if (e.kind === "cmd") asked.set(`${e.client} ${e.step}`, e.execute);
    out.push(...logLines(e, r.setupEndNs, e.kind === "reply" ? asked.get(`${e.client} ${e.step}`) : undefined));
  });
  if (r.log.length <= r.setupLogIndex) out.push(setupLine(r.setupEndNs));
  return out;
}

/** QMP wire lines (what a QMP client would have seen), one JSON object each; management-layer calls are not QMP and are left out. */
export function qmpJsonLines(r: RunReport): string[] {
  const out: string[] = [];
  for (const e of r.log) {
    if ((e.kind === "cmd" || e.kind === "reply") && e.mgmt) continue;
    if (e.kind === "cmd") out.push(JSON.stringify(e.arguments ? { execute: e.execute, arguments: e.arguments } : { execute: e.execute }));
    else if (e.kind === "reply") out.push(JSON.stringify(e.response));
    else if (e.kind === "event") out.push(JSON.stringify({ event: e.event, data: e.data, timestamp: timestamp(e.t) }));
  }
  return out;
}

/** A kernel trace record as lines (long ones folded), its time counted from the end of setup. */
export function traceLines(r: TraceRecord, t0: number): string[] {
  return fold(`${timeColumn(r.t - t0)}  ${r.src.padEnd(12)} `, `${r.kind}${r.data ? ` ${JSON.stringify(r.data)}` : ""}`);
}

/** The whole kernel trace, the end of setup marked where it came. */
export function kernelTrace(r: RunReport): string[] {
  const out: string[] = [];
  const trace = r.trace ?? [];
  const at = r.setupTraceIndex ?? trace.length;
  trace.forEach((t, i) => {
    if (i === at) out.push(setupLine(r.setupEndNs));
    out.push(...traceLines(t, r.setupEndNs));
  });
  if (trace.length <= at) out.push(setupLine(r.setupEndNs));
  return out;
}

/** A long run's progress line (the CLI shows it on a terminal): virtual time since setup, events, each job's offset of len. */
export function progressLine(p: RunProgress): string {
  if (!p.setupDone) return `setting up: ${formatTime(p.sinceSetupNs)} virtual, ${p.kernelSteps} kernel steps`;
  const jobs = p.jobs.map((j) => `job ${j.id} (${j.type}) ${j.status} ${formatSize(j.offset)} of ${formatSize(j.len)}${j.len > 0 ? ` (${Math.floor((100 * j.offset) / j.len)}%)` : ""}`);
  return `${formatTime(p.sinceSetupNs)} virtual, ${p.events} event${p.events === 1 ? "" : "s"}, ${p.kernelSteps} kernel steps${jobs.length ? `; ${jobs.join("; ")}` : "; no job"}`;
}

/** The header: what ran, with every parameter needed to run it again. */
export function header(r: RunReport): string {
  return `scenario ${r.name} (${r.file})\nprofile ${r.profile} · seed ${r.seed} · strategy ${r.strategy}`;
}

/** Where a run stood when a budget ended it: each job's status and progress, each step still waiting and for what. */
export function endSummary(r: RunReport): string[] {
  const jobs = r.jobsAtEnd.filter((j) => j.status !== "null" && j.status !== "concluded")
    .map((j) => `job ${j.id} (${j.type}) ${j.status}, ${formatSize(j.offset)} of ${formatSize(j.len)}`);
  const steps = r.steps.filter((s) => s.state !== "done")
    .map((s) => `steps[${s.index}] ${s.label} ${s.state === "running" ? `still running${s.waitingFor ? `, waiting for ${s.waitingFor}` : ""}` : `waits for ${s.waitingFor ?? "its time"}`}`);
  const parts = [...jobs, ...steps];
  return [`  when it ended: ${parts.length ? parts.join("; ") : "no job active, no step waiting"}`];
}

/** The verdict and, on failure, every failed expectation with its diff and the report's rerun command, if it has one. */
export function verdict(r: RunReport): string {
  const events = r.log.filter((e) => e.kind === "event").length;
  const summary = `${r.steps.length} step${r.steps.length === 1 ? "" : "s"}, ${events} events, ended at ${formatTime(r.endTimeNs - r.setupEndNs)} (${describeOutcome(r.outcome, r.setupEndNs)}), ${r.choices.length} choices, trace hash ${r.hash}`;
  // A deadlock a scenario expects (QEMU hanging on a command) says where it stands, as a failed run does.
  if (r.ok) return `PASS ${r.name}: ${summary}${r.violations.length ? `\n  expected violations reproduced: ${[...new Set(r.violations.map((v) => v.invariant))].join(", ")}` : ""}${r.outcome.kind === "deadlock" ? `\n${endSummary(r).join("\n")}` : ""}`;
  const lines = [`FAIL ${r.name}: ${r.failures.length} expectation${r.failures.length === 1 ? "" : "s"} failed; ${summary}`];
  for (const f of r.failures) {
    lines.push(`  ✗ ${f.message}`);
    if (f.expected) lines.push("      expected:", ...f.expected.map((l) => `        ${l}`));
    if (f.observed) lines.push("      observed:", ...f.observed.map((l) => `        ${l}`));
  }
  if (r.outcome.kind === "step-budget" || r.outcome.kind === "time-budget" || r.outcome.kind === "zeno" || r.outcome.kind === "deadlock") lines.push(...endSummary(r));
  if (r.outcome.kind === "failure") lines.push(`  (the simulator failed inside ${r.outcome.process}; this is a bug in blocksim or a behaviour it does not model)`);
  if (r.rerun !== undefined) lines.push(`  rerun: ${r.rerun}`);
  return lines.join("\n");
}
