/**
 * A text timeline of the domain's jobs, one lane per client, one character
 * per time bin: who held a job, who waited for one. It is the picture of
 * seed 004: under the old profile the poller's lane is a long run of `w`
 * beside the aborter's run of `M`.
 *
 *   M  holding a MODIFY job        q  holding a QUERY job
 *   A  holding an async job        n  holding a nested job (inside A)
 *   o  holding another normal job  w  waiting to acquire a job
 *   X  a wait that failed (timeout, max_queued) ends in this bin
 *   .  none of those
 * When several apply in one bin, the first in the order X w M o q A n wins.
 */
import type { Domain, JobHold, JobWait } from "./domain.js";
import { formatNs } from "./histogram.js";

export interface TimelineOptions {
  fromNs: number;
  toNs: number;
  binNs: number;
  /** Lanes in this order (default: clients in order of first appearance). */
  clients?: readonly string[];
}

const RANK = "XwMoqAn.";

function holdChar(h: JobHold): string {
  if (h.kind.startsWith("async:")) return "A";
  if (h.kind === "modify") return "M";
  if (h.kind === "query") return "q";
  if (h.kind === "async-nested") return "n";
  return "o";
}

/** The timeline as lines of text: a header with times, then one lane per client. */
export function renderTimeline(dom: Domain, o: TimelineOptions): string {
  const bins = Math.max(1, Math.ceil((o.toNs - o.fromNs) / o.binNs));
  const order: string[] = [...(o.clients ?? [])];
  const lanes = new Map<string, string[]>();
  const lane = (c: string) => {
    let l = lanes.get(c);
    if (!l) {
      lanes.set(c, (l = new Array<string>(bins).fill(".")));
      if (!order.includes(c)) order.push(c);
    }
    return l;
  };
  const paint = (c: string, fromNs: number, toNs: number, ch: string) => {
    const l = lane(c);
    const a = Math.max(0, Math.floor((fromNs - o.fromNs) / o.binNs));
    // An interval ending exactly on a bin edge does not reach into the next bin; an instant still paints its bin.
    const b = Math.min(bins - 1, Math.max(a, Math.ceil((toNs - o.fromNs) / o.binNs) - 1));
    if (toNs < o.fromNs || fromNs >= o.toNs) return;
    for (let i = a; i <= b; i++) if (RANK.indexOf(ch) < RANK.indexOf(l[i]!)) l[i] = ch;
  };
  const waits: JobWait[] = dom.jobWaits;
  for (const c of o.clients ?? []) lane(c);
  for (const h of dom.holds) paint(h.call.client, h.fromNs, h.toNs, holdChar(h));
  for (const h of dom.holders) paint(h.call.client, h.sinceNs, o.toNs, holdChar({ call: h.call, kind: h.kind, fromNs: h.sinceNs, toNs: o.toNs }));
  for (const w of waits) {
    if (w.waitedNs > 0) paint(w.call.client, w.requestNs, w.endNs, "w");
    if (!w.ok) paint(w.call.client, w.endNs, w.endNs, "X");
  }
  const width = Math.max(...order.map((c) => c.length), 4);
  const tickEvery = Math.max(1, Math.round(bins / 8));
  let header = "".padEnd(width + 1);
  for (let i = 0; i < bins; i += tickEvery) header += `|${formatNs(o.fromNs + i * o.binNs)}`.padEnd(tickEvery);
  const lines = [header.trimEnd()];
  for (const c of order) lines.push(`${c.padEnd(width)} ${lanes.get(c)!.join("")}`);
  lines.push(`${"".padEnd(width)} (one character = ${formatNs(o.binNs)})`);
  return lines.join("\n");
}
