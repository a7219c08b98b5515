/**
 * The HTML timeline of a run: one self-contained page (nothing fetched from
 * anywhere; its data and its script are inline) that draws a lane per QMP
 * client, job, drained node and device — job states as coloured spans,
 * commands as bars, events as labelled markers, the first violation or
 * failure as a red line with its full caption — and lets the reader zoom and
 * pan (keys, wheel, drag, buttons) or jump to the window around the
 * violation. Its x axis can mix virtual time with the order of the event
 * log, so events at one virtual instant (where most races here happen) get
 * distinct places in log order. Below: the verdict and the event log as text.
 *
 * This file builds the page's data (the model, tested without a browser);
 * timeline-script.ts draws it in the browser.
 */
import { formatTime, type TraceRecord } from "../scheduler/index.js";
import { describeOutcome } from "../harness/run.js";
import type { RunReport } from "../scenario/runner.js";
import { eventLog } from "./text.js";
import { TIMELINE_SCRIPT, TIMELINE_STYLE } from "./timeline-script.js";

/** Colours of job states (QEMU JobStatus). */
export const STATUS_COLOURS: Readonly<Record<string, string>> = {
  created: "#b0bec5", running: "#43a047", paused: "#fbc02d", ready: "#1e88e5", standby: "#90caf9",
  waiting: "#8e24aa", pending: "#ba68c8", aborting: "#e53935", concluded: "#6d4c41", null: "#eeeeee", undefined: "#eeeeee",
};

/** At most this many I/O points per device go into the page (more are binned), so a long run's page stays small. */
export const MAX_IO_POINTS = 20_000;

/**
 * A moment on the page: absolute virtual time `t` and `n`, its place in the
 * event log (an entry's index; something between entries, such as a drained
 * section QEMU began or a violation, gets the half-place before the first
 * entry at or after its time).
 */
export interface Moment { t: number; n: number }

export type TimelineItem =
  /** A command from send to reply. */
  | { kind: "cmd"; from: Moment; to: Moment; label: string; tip: string; error: boolean }
  /** A job status held from one moment to the next. */
  | { kind: "status"; from: Moment; to: Moment; status: string; colour: string; tip: string }
  /** A QMP event on its job's lane. */
  | { kind: "event"; at: Moment; label: string; tip: string }
  | { kind: "drain"; from: Moment; to: Moment; tip: string }
  | { kind: "fault"; at: Moment; tip: string };

export interface TimelineLane {
  label: string;
  kind: "client" | "job" | "drain" | "device";
  items: TimelineItem[];
  /** Devices: I/O completions as [time, count], ordered by time. */
  io?: [number, number][];
}

export interface TimelineModel {
  name: string;
  meta: string;
  /** Absolute virtual times: setup's end (the page's time origin) and the run's end. */
  setupEndNs: number;
  endNs: number;
  /** The absolute time of every event-log entry, in log order (sequence places). */
  times: number[];
  lanes: TimelineLane[];
  /** The first violation (or failure with a moment, or outcome), drawn as a red line with its full text. */
  mark?: { at: Moment; text: string };
  statusColours: Readonly<Record<string, string>>;
}

/** The place of a moment that is not a log entry: just before the first entry at or after `t`. */
function placeOf(times: readonly number[], t: number): number {
  let lo = 0, hi = times.length;
  while (lo < hi) {
    const mid = (lo + hi) >> 1;
    if (times[mid] < t) lo = mid + 1;
    else hi = mid;
  }
  return lo - 0.5;
}

/** A QMP event's short label on the page: the status for JOB_STATUS_CHANGE, else the event's name. */
function eventLabel(event: string, data: Record<string, unknown>): string {
  return event === "JOB_STATUS_CHANGE" ? String(data.status) : event;
}

/** The page's data. `r` should carry its trace (run with keepTrace) for device lanes. */
export function timelineModel(r: RunReport): TimelineModel {
  const t0 = r.setupEndNs;
  const at = (ns: number) => formatTime(ns - t0);
  const times = r.log.map((e) => e.t);
  const end: Moment = { t: Math.max(r.endTimeNs, 1), n: times.length - 0.5 };
  const moment = (t: number): Moment => ({ t, n: placeOf(times, t) });
  const lanes: TimelineLane[] = [];
  const lane = (label: string, kind: TimelineLane["kind"]): TimelineLane => {
    let l = lanes.find((a) => a.label === label && a.kind === kind);
    if (!l) lanes.push((l = { label, kind, items: [] }));
    return l;
  };

  // QMP clients: a bar per command from send to reply (an unanswered one to the end).
  const clientLane = (client: string) => lane(client === "client" ? "QMP client" : `QMP client ${client}`, "client");
  for (const s of r.steps) clientLane(s.client);
  const open = new Map<string, { n: number; t: number; execute: string; args?: Record<string, unknown> }>();
  const cmdItem = (client: string, step: number, c: { n: number; t: number; execute: string; args?: Record<string, unknown> }, to: Moment, reply: string, error: boolean) => {
    const args = c.args ? `\n${JSON.stringify(c.args)}` : "";
    clientLane(client).items.push({ kind: "cmd", from: { t: c.t, n: c.n }, to, label: c.execute, error, tip: `${at(c.t)} – ${at(to.t)} steps[${step}] ${c.execute}${args}${reply ? `\n${reply}` : ""}` });
  };
  r.log.forEach((e, n) => {
    if (e.kind === "cmd") open.set(`${e.client} ${e.step}`, { n, t: e.t, execute: e.execute, ...(e.arguments ? { args: e.arguments } : {}) });
    else if (e.kind === "reply") {
      const key = `${e.client} ${e.step}`, c = open.get(key);
      if (!c) return;
      open.delete(key);
      const error = "error" in e.response;
      cmdItem(e.client, e.step, c, { t: e.t, n }, "error" in e.response ? `error ${e.response.error.class}: ${e.response.error.desc}` : `return ${JSON.stringify(e.response.return)}`, error);
    }
  });
  for (const [key, c] of open) {
    const [client, step] = key.split(" ");
    cmdItem(client, Number(step), c, end, "no reply when the run ended", false);
  }

  // Jobs: status spans from their JOB_STATUS_CHANGE events, event markers with labels.
  const jobLanes = r.jobs.map((j) => lane(`job ${j.job} (${j.type})`, "job"));
  const spanOf = new Map<string, number>(); // job id -> index into r.jobs of its current span
  const statusAt: { lane: TimelineLane; id: string; from: Moment; status: string }[][] = r.jobs.map(() => []);
  const nextSpan = new Map<string, number>();
  r.log.forEach((e, n) => {
    if (e.kind !== "event") return;
    const id = String(e.data.id ?? e.data.device ?? "");
    if (e.event === "JOB_STATUS_CHANGE") {
      let k = spanOf.get(id);
      if (k === undefined || e.data.status === "created") {
        const from = nextSpan.get(id) ?? 0;
        k = r.jobs.findIndex((j, i) => i >= from && j.job === id);
        if (k < 0) return;
        spanOf.set(id, k);
        nextSpan.set(id, k + 1);
      }
      statusAt[k].push({ lane: jobLanes[k], id, from: { t: e.t, n }, status: String(e.data.status) });
    }
    const k = spanOf.get(id);
    if (k === undefined) return;
    jobLanes[k].items.push({ kind: "event", at: { t: e.t, n }, label: eventLabel(e.event, e.data), tip: `${at(e.t)} ${e.event} ${JSON.stringify(e.data)}` });
  });
  for (const list of statusAt) {
    list.forEach((s, i) => {
      if (s.status === "null") return;
      const to = i + 1 < list.length ? list[i + 1].from : end;
      s.lane.items.push({ kind: "status", from: s.from, to, status: s.status, colour: STATUS_COLOURS[s.status] ?? "#ccc", tip: `${s.id}: ${s.status} from ${at(s.from.t)}${i + 1 < list.length ? ` to ${at(to.t)}` : " to the end of the run"}` });
    });
  }

  // Drained sections (begun by steps or by QEMU itself).
  for (const d of r.drains) {
    lane(`drained ${d.node}`, "drain").items.push({ kind: "drain", from: moment(d.beginNs), to: d.endNs === undefined ? end : moment(d.endNs),
      tip: `drained section on ${d.node}: ${at(d.beginNs)} – ${d.endNs === undefined ? "end of run" : at(d.endNs)}` });
  }

  // Devices: I/O completions (binned when there are very many) and injected faults.
  const trace: readonly TraceRecord[] = r.trace ?? [];
  for (const dev of r.devices) {
    const l = lane(`device ${dev.name} — ${dev.completed} I/Os${dev.faulted ? `, ${dev.faulted} faulted` : ""}`, "device");
    const io: [number, number][] = [];
    for (const t of trace) {
      if (t.src !== dev.name) continue;
      if (t.kind === "io") {
        if (io.length > 0 && io[io.length - 1][0] === t.t) io[io.length - 1][1]++;
        else io.push([t.t, 1]);
      } else if (t.kind === "fault") l.items.push({ kind: "fault", at: moment(t.t), tip: `${at(t.t)} fault injected: ${JSON.stringify(t.data)}` });
    }
    l.io = binned(io, end.t);
  }

  const order: TimelineLane["kind"][] = ["client", "job", "drain", "device"];
  lanes.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));

  // The first violation; else the first failed expectation that has a moment; else a kernel outcome other than ok.
  const v = r.violations[0];
  const timed = r.failures.filter((f) => f.timeNs !== undefined).sort((a, b) => a.timeNs! - b.timeNs!)[0];
  const failT = v?.timeNs ?? timed?.timeNs ?? (r.outcome.kind !== "ok" && "timeNs" in r.outcome ? r.outcome.timeNs : undefined);
  const failText = v ? `${v.invariant}${v.job ? ` (job ${v.job})` : ""}: ${v.detail}` : timed ? timed.message : r.outcome.kind !== "ok" ? describeOutcome(r.outcome, t0) : "";

  return {
    name: r.name,
    meta: `${r.file} · profile ${r.profile} · seed ${String(r.seed)} · strategy ${r.strategy} · setup ended after ${formatTime(t0)} · ended at ${at(r.endTimeNs)} (${describeOutcome(r.outcome, t0)}) · trace hash ${r.hash}`,
    setupEndNs: t0,
    endNs: end.t,
    times,
    lanes,
    ...(failT !== undefined ? { mark: { at: moment(failT), text: `${at(failT)} ${failText}` } } : {}),
    statusColours: STATUS_COLOURS,
  };
}

/** At most MAX_IO_POINTS points: equal time bins, each at the time of its first point. */
function binned(io: [number, number][], endNs: number): [number, number][] {
  if (io.length <= MAX_IO_POINTS) return io;
  const out: [number, number][] = [];
  const width = endNs / MAX_IO_POINTS;
  for (const [t, c] of io) {
    const bin = Math.floor(t / width);
    const last = out[out.length - 1];
    if (last && Math.floor(last[0] / width) === bin) last[1] += c;
    else out.push([t, c]);
  }
  return out;
}

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

/** JSON inside a <script> element: nothing in it can close the element or start a comment. */
function scriptJson(value: unknown): string {
  return JSON.stringify(value).replace(/</g, "\\u003c").replace(/\u2028/g, "\\u2028").replace(/\u2029/g, "\\u2029");
}

/** Renders the page. `r` should carry its trace (run with keepTrace) for device lanes. */
export function renderTimeline(r: RunReport): string {
  const model = timelineModel(r);
  const legend = Object.entries(STATUS_COLOURS).filter(([s]) => s !== "undefined").map(([s, c]) => `<span class="key"><i style="background:${c}"></i>${s}</span>`).join(" ");
  const failures = r.failures.length === 0 ? "<p class=\"pass\">PASS: every expectation held.</p>" :
    `<p class="fail">FAIL: ${r.failures.length} expectation${r.failures.length === 1 ? "" : "s"} failed.</p><ul>${r.failures.map((f) => `<li>${esc(f.message)}${f.expected ? `<pre>expected:\n${esc(f.expected.join("\n"))}\nobserved:\n${esc((f.observed ?? []).join("\n"))}</pre>` : ""}</li>`).join("")}</ul>`;
  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><meta name="viewport" content="width=device-width"><title>blocksim timeline — ${esc(r.name)}</title>
<style>${TIMELINE_STYLE}</style></head>
<body>
<h1>${esc(r.name)}</h1>
<div class="meta">${esc(model.meta)}</div>
<div class="legend">${legend} <span class="key"><i style="background:#546e7a"></i>command</span> <span class="key"><i style="background:#ff9800"></i>drained</span> <span class="key"><i style="background:#26a69a"></i>I/O</span> <span class="key"><i style="background:#e0e0e0"></i>setup</span></div>
${model.mark ? `<div id="caption" class="caption">${esc(model.mark.text)}</div>` : ""}
<div id="controls"><button id="zoom-in" title="zoom in (+)">+</button><button id="zoom-out" title="zoom out (−)">−</button><button id="reset" title="whole run (0)">whole run</button>${model.mark ? "<button id=\"focus\" title=\"the window around the violation (v)\">around the violation</button>" : ""}
<label>x axis <select id="mode" title="x axis (m)"><option value="time">virtual time</option><option value="mixed" selected>time + log order</option><option value="order">log order</option></select></label>
<span id="range"></span></div>
<div id="chart" tabindex="0" aria-label="timeline: + and − zoom, arrows pan, 0 whole run, v violation, m x axis; wheel zooms, drag pans"><noscript>The drawing needs JavaScript; the verdict and the event log are below.</noscript></div>
<p class="help">Keys (click the drawing first): <b>+</b>/<b>−</b> zoom, <b>←</b>/<b>→</b> pan, <b>0</b> whole run, <b>v</b> around the violation, <b>m</b> x axis. Mouse: wheel zooms at the pointer, drag pans. Hover anything for its full text. With “time + log order” or “log order”, events at one virtual instant stand apart in the order of the event log. Times count from the end of setup.</p>
${failures}
<h2>Event log</h2>
<div id="log">${esc(eventLog(r).join("\n"))}</div>
<script type="application/json" id="timeline-data">${scriptJson(model)}</script>
<script>${TIMELINE_SCRIPT}</script>
</body></html>
`;
}
