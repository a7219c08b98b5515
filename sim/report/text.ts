/**
 * Text renderings of a run: the readable event log (virtual time, source,
 * what happened), QMP JSON lines, and the verdict with a diff of expected
 * versus observed for each failed expectation.
 */
import type { TraceRecord } from "../scheduler/index.js";
import { describeOutcome, type LogEntry, type RunProgress, type RunReport } from "../scenario/runner.js";
import { formatDuration, formatSize, formatTime } from "../scenario/units.js";
import { timestamp } from "../qmp/types.js";

/** Virtual time as fixed-width milliseconds: `   12.345678ms`. */
export function timeColumn(ns: number): string {
  return `${(ns / 1e6).toFixed(6)}ms`.padStart(16);
}

function clip(s: string, max = 160): string {
  return s.length > max ? `${s.slice(0, max - 1)}…` : s;
}

/** One readable line per log entry. */
export function logLine(e: LogEntry): string {
  switch (e.kind) {
    case "cmd": return `${timeColumn(e.t)}  ${e.client.padEnd(8)} > ${e.execute}${e.arguments ? ` ${clip(JSON.stringify(e.arguments))}` : ""}`;
    case "reply": return `${timeColumn(e.t)}  ${e.client.padEnd(8)} < ${"error" in e.response ? `error ${e.response.error.class}: ${e.response.error.desc}` : clip(JSON.stringify(e.response.return))}`;
    case "event": return `${timeColumn(e.t)}  ${"event".padEnd(8)}   ${e.event} ${clip(JSON.stringify(e.data))}`;
    case "drain": case "undrain": return `${timeColumn(e.t)}  ${e.client.padEnd(8)} ${e.kind === "drain" ? "drained section begins on" : "drained section ends on"} ${e.node}`;
    case "fault": return `${timeColumn(e.t)}  ${e.client.padEnd(8)} fault rule added on ${e.device}`;
    case "heal": return `${timeColumn(e.t)}  ${e.client.padEnd(8)} faults cleared on ${e.device}`;
  }
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

/** A kernel trace record as a line. */
export function traceLine(r: TraceRecord): string {
  return `${timeColumn(r.t)}  ${r.src.padEnd(12)} ${r.kind}${r.data ? ` ${clip(JSON.stringify(r.data), 200)}` : ""}`;
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

/** The verdict and, on failure, every failed expectation with its diff. */
/** Where a run stood when a budget ended it: each job's status and progress, each step still waiting and for what. */
export function endSummary(r: RunReport): string[] {
  const jobs = r.jobsAtEnd.filter((j) => j.status !== "null" && j.status !== "concluded")
    .map((j) => `job ${j.id} (${j.type}) ${j.status}, ${formatSize(j.offset)} of ${formatSize(j.len)}`);
  const steps = r.steps.filter((s) => s.state !== "done")
    .map((s) => `steps[${s.index}] ${s.label} ${s.state === "running" ? "still running" : `waits for ${s.waitingFor ?? "its time"}`}`);
  const parts = [...jobs, ...steps];
  return [`  when it ended: ${parts.length ? parts.join("; ") : "no job active, no step waiting"}`];
}

export function verdict(r: RunReport): string {
  const events = r.log.filter((e) => e.kind === "event").length;
  const summary = `${r.steps.length} step${r.steps.length === 1 ? "" : "s"}, ${events} events, ended at ${formatDuration(r.endTimeNs)} (${describeOutcome(r.outcome)}), ${r.choices.length} choices, trace hash ${r.hash}`;
  if (r.ok) return `PASS ${r.name}: ${summary}${r.violations.length ? `\n  expected violations reproduced: ${[...new Set(r.violations.map((v) => v.invariant))].join(", ")}` : ""}`;
  const lines = [`FAIL ${r.name}: ${r.failures.length} expectation${r.failures.length === 1 ? "" : "s"} failed; ${summary}`];
  for (const f of r.failures) {
    lines.push(`  ✗ ${f.message}`);
    if (f.expected) lines.push("      expected:", ...f.expected.map((l) => `        ${l}`));
    if (f.observed) lines.push("      observed:", ...f.observed.map((l) => `        ${l}`));
  }
  if (r.outcome.kind === "step-budget" || r.outcome.kind === "time-budget" || r.outcome.kind === "zeno") lines.push(...endSummary(r));
  if (r.outcome.kind === "failure") lines.push(`  (the simulator failed inside ${r.outcome.process}; this is a bug in blocksim or a behaviour it does not model)`);
  if (r.strategy !== "replay") lines.push(`  rerun: blocksim run ${r.file} --seed ${r.seed} --profile ${r.profile} --strategy ${r.strategy}`);
  return lines.join("\n");
}
