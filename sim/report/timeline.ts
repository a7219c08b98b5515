/**
 * The HTML timeline of a run: one self-contained page (no scripts or styles
 * fetched from anywhere) with an SVG drawing — a lane per QMP client, job,
 * drained node and device; job states as coloured spans; commands and
 * events as markers whose tooltips (SVG <title>) hold the full JSON; the
 * first violation or failure marked with a red line — followed by the
 * verdict and the event log as text.
 */
import type { TraceRecord } from "../scheduler/index.js";
import { describeOutcome, eventLine, type RunReport } from "../scenario/runner.js";
import { formatDuration } from "../scenario/units.js";
import { eventLog } from "./text.js";

/** Colours of job states (QEMU JobStatus). */
export const STATUS_COLOURS: Readonly<Record<string, string>> = {
  created: "#b0bec5", running: "#43a047", paused: "#fbc02d", ready: "#1e88e5", standby: "#90caf9",
  waiting: "#8e24aa", pending: "#ba68c8", aborting: "#e53935", concluded: "#6d4c41", null: "#eeeeee", undefined: "#eeeeee",
};

const W = 1200, LEFT = 190, RIGHT = 20, LANE = 26, TOP = 40;

function esc(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

interface Lane {
  label: string;
  kind: "client" | "job" | "drain" | "device";
  body: string[];
}

/** Renders the page. `r` should carry its trace (run with keepTrace) for device lanes. */
export function renderTimeline(r: RunReport): string {
  const end = Math.max(r.endTimeNs, 1);
  const x = (t: number) => LEFT + (t / end) * (W - LEFT - RIGHT);
  const lanes: Lane[] = [];
  const lane = (label: string, kind: Lane["kind"]): Lane => {
    let l = lanes.find((a) => a.label === label && a.kind === kind);
    if (!l) lanes.push((l = { label, kind, body: [] }));
    return l;
  };

  // QMP clients: a bar per command from send to reply.
  for (const s of r.steps) {
    const l = lane(s.client === "client" ? "QMP client" : `QMP client ${s.client}`, "client");
    if (s.startNs === undefined) continue;
    const reply = s.response ? ("error" in s.response ? `error ${s.response.error.class}: ${s.response.error.desc}` : `return ${JSON.stringify(s.response.return)}`) : "";
    const cmd = r.log.find((e) => e.kind === "cmd" && e.step === s.index);
    const tip = `${formatDuration(s.startNs)}–${formatDuration(s.endNs ?? s.startNs)} steps[${s.index}] ${s.label}${cmd && cmd.kind === "cmd" && cmd.arguments ? `\n${JSON.stringify(cmd.arguments)}` : ""}${reply ? `\n${reply}` : ""}`;
    const isErr = s.response !== undefined && "error" in s.response;
    const x0 = x(s.startNs), x1 = Math.max(x(s.endNs ?? s.startNs), x0 + 3);
    l.body.push(`<rect class="cmd${isErr ? " err" : ""}" x="${x0.toFixed(2)}" y="4" width="${(x1 - x0).toFixed(2)}" height="${LANE - 8}" rx="2"><title>${esc(tip)}</title></rect>`);
  }

  // Jobs: coloured spans per status, event markers on top.
  for (const j of r.jobs) {
    const l = lane(`job ${j.job} (${j.type})`, "job");
    j.statuses.forEach(([t, status], i) => {
      const tEnd = i + 1 < j.statuses.length ? j.statuses[i + 1][0] : status === "null" ? t : end;
      const x0 = x(t), w = Math.max(x(tEnd) - x0, status === "null" ? 0 : 2);
      if (w <= 0) return;
      l.body.push(`<rect class="st st-${status}" x="${x0.toFixed(2)}" y="4" width="${w.toFixed(2)}" height="${LANE - 8}" fill="${STATUS_COLOURS[status] ?? "#ccc"}"><title>${esc(`${j.job}: ${status} from ${formatDuration(t)}${i + 1 < j.statuses.length ? ` to ${formatDuration(tEnd)}` : ""}`)}</title></rect>`);
    });
  }
  for (const e of r.log) {
    if (e.kind !== "event") continue;
    const id = String(e.data.id ?? e.data.device ?? "");
    const l = lanes.find((a) => a.kind === "job" && a.label.startsWith(`job ${id} (`));
    if (!l) continue;
    const cx = x(e.t);
    l.body.push(`<path class="ev" d="M${cx.toFixed(2)},2 l4,5 l-4,5 l-4,-5 z"><title>${esc(`${formatDuration(e.t)} ${eventLine(e)}`)}</title></path>`);
  }

  // Drained sections.
  for (const d of r.drains) {
    const l = lane(`drained ${d.node}`, "drain");
    const x0 = x(d.beginNs), x1 = Math.max(x(d.endNs ?? end), x0 + 2);
    l.body.push(`<rect class="drain" x="${x0.toFixed(2)}" y="6" width="${(x1 - x0).toFixed(2)}" height="${LANE - 12}"><title>${esc(`drained section on ${d.node}: ${formatDuration(d.beginNs)} – ${d.endNs === undefined ? "end of run" : formatDuration(d.endNs)}`)}</title></rect>`);
  }

  // Devices: I/O completions per pixel column (from the trace), faults as red ticks.
  const trace: readonly TraceRecord[] = r.trace ?? [];
  for (const dev of r.devices) {
    const l = lane(`device ${dev.name}`, "device");
    const cols = new Map<number, number>();
    for (const t of trace) {
      if (t.src !== dev.name) continue;
      const cx = Math.round(x(t.t));
      if (t.kind === "io") cols.set(cx, (cols.get(cx) ?? 0) + 1);
      else if (t.kind === "fault") l.body.push(`<rect class="fault" x="${cx - 1}" y="2" width="3" height="${LANE - 4}"><title>${esc(`${formatDuration(t.t)} fault injected: ${JSON.stringify(t.data)}`)}</title></rect>`);
    }
    const max = Math.max(1, ...cols.values());
    for (const [cx, n] of [...cols.entries()].sort((a, b) => a[0] - b[0])) {
      const h = Math.max(1, Math.round(((LANE - 8) * n) / max));
      l.body.push(`<rect class="io" x="${cx}" y="${LANE - 4 - h}" width="1" height="${h}"><title>${n} I/O completion${n === 1 ? "" : "s"}</title></rect>`);
    }
    l.label += ` — ${dev.completed} I/Os${dev.faulted ? `, ${dev.faulted} faulted` : ""}`;
  }

  const order: Lane["kind"][] = ["client", "job", "drain", "device"];
  lanes.sort((a, b) => order.indexOf(a.kind) - order.indexOf(b.kind));
  const height = TOP + lanes.length * LANE + 30;

  // Time axis.
  const ticks: string[] = [];
  for (let i = 0; i <= 10; i++) {
    const t = (end * i) / 10;
    ticks.push(`<line class="tick" x1="${x(t).toFixed(2)}" y1="${TOP - 6}" x2="${x(t).toFixed(2)}" y2="${height - 24}"/><text class="axis" x="${x(t).toFixed(2)}" y="${TOP - 10}" text-anchor="${i === 10 ? "end" : "middle"}">${esc(formatDuration(Math.round(t)))}</text>`);
  }

  // The violation (or failure) to highlight.
  // The first violation; else the first failed expectation that has a moment; else a kernel outcome other than ok.
  const v = r.violations[0];
  const timed = r.failures.filter((f) => f.timeNs !== undefined).sort((a, b) => a.timeNs! - b.timeNs!)[0];
  const failT = v?.timeNs ?? timed?.timeNs ?? (r.outcome.kind !== "ok" && "timeNs" in r.outcome ? r.outcome.timeNs : undefined);
  const failText = v ? `${v.invariant}${v.job ? ` (job ${v.job})` : ""}: ${v.detail}` : timed ? timed.message : r.outcome.kind !== "ok" ? describeOutcome(r.outcome, r.setupEndNs) : "";
  const mark = failT === undefined ? "" :
    `<g class="violation"><line x1="${x(failT).toFixed(2)}" y1="${TOP - 4}" x2="${x(failT).toFixed(2)}" y2="${height - 24}"/><text x="${(x(failT) > W / 2 ? x(failT) - 4 : x(failT) + 4).toFixed(2)}" y="${height - 8}" text-anchor="${x(failT) > W / 2 ? "end" : "start"}">${esc(`${formatDuration(failT)} ${failText}`.slice(0, 90))}</text><title>${esc(failText)}</title></g>`;

  const rows = lanes.map((l, i) => `<g class="lane lane-${l.kind}" transform="translate(0,${TOP + i * LANE})"><rect class="bg" x="0" y="0" width="${W}" height="${LANE}"/><text class="label" x="6" y="${LANE / 2 + 4}">${esc(l.label.length > 30 ? `${l.label.slice(0, 29)}…` : l.label)}<title>${esc(l.label)}</title></text>${l.body.join("")}</g>`).join("\n");

  const legend = Object.entries(STATUS_COLOURS).filter(([s]) => s !== "undefined").map(([s, c]) => `<span class="key"><i style="background:${c}"></i>${s}</span>`).join(" ");
  const failures = r.failures.length === 0 ? "<p class=\"pass\">PASS: every expectation held.</p>" :
    `<p class="fail">FAIL: ${r.failures.length} expectation${r.failures.length === 1 ? "" : "s"} failed.</p><ul>${r.failures.map((f) => `<li>${esc(f.message)}${f.expected ? `<pre>expected:\n${esc(f.expected.join("\n"))}\nobserved:\n${esc((f.observed ?? []).join("\n"))}</pre>` : ""}</li>`).join("")}</ul>`;

  return `<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>blocksim timeline — ${esc(r.name)}</title>
<style>
body{font:13px/1.4 system-ui,sans-serif;margin:16px;color:#222}
h1{font-size:18px;margin:0 0 4px} .meta{color:#555;margin-bottom:8px}
svg{border:1px solid #ddd;background:#fff}
.bg{fill:#fafafa} .lane:nth-child(odd) .bg{fill:#f2f2f2}
.label{font-size:12px;fill:#333} .axis{font-size:10px;fill:#777} .tick{stroke:#e0e0e0}
.cmd{fill:#546e7a} .cmd.err{fill:#e53935} .ev{fill:#111;stroke:#fff;stroke-width:.5}
.drain{fill:#ff9800;opacity:.75} .io{fill:#26a69a} .fault{fill:#d50000}
.violation line{stroke:#d50000;stroke-width:2;stroke-dasharray:4 2} .violation text{fill:#d50000;font-weight:bold}
.key{margin-right:10px} .key i{display:inline-block;width:12px;height:12px;margin-right:3px;vertical-align:-2px;border:1px solid #999}
.pass{color:#2e7d32;font-weight:bold} .fail{color:#c62828;font-weight:bold}
pre{background:#f6f6f6;padding:6px;overflow-x:auto} #log{max-height:420px;overflow:auto;font:12px monospace;white-space:pre}
</style></head>
<body>
<h1>${esc(r.name)}</h1>
<div class="meta">${esc(r.file)} · profile ${esc(r.profile)} · seed ${esc(String(r.seed))} · strategy ${esc(r.strategy)} · ended at ${esc(formatDuration(r.endTimeNs))} (${esc(describeOutcome(r.outcome, r.setupEndNs))}) · trace hash ${esc(r.hash)}</div>
<div class="legend">${legend} <span class="key"><i style="background:#546e7a"></i>command</span> <span class="key"><i style="background:#ff9800"></i>drained</span> <span class="key"><i style="background:#26a69a"></i>I/O</span></div>
<svg id="timeline" xmlns="http://www.w3.org/2000/svg" width="${W}" height="${height}" viewBox="0 0 ${W} ${height}">
${ticks.join("")}
${rows}
${mark}
</svg>
${failures}
<h2>Event log</h2>
<div id="log">${esc(eventLog(r).join("\n"))}</div>
</body></html>
`;
}
