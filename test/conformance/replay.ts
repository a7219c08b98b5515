/**
 * Replays a ../shared/conformance recording through a simulated QEMU and
 * returns both transcripts, normalised the way the recorder normalised
 * (query-named-block-nodes as {node: backing file name}).
 */
import { readFileSync } from "node:fs";
import { Scheduler, sleep, Signal, wait, type Process } from "../../sim/scheduler/index.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import type { TranscriptEntry } from "../../sim/qmp/types.js";

export const CONFORMANCE_DIR = new URL("../../../shared/conformance/", import.meta.url);

export interface Recording {
  scenario: string;
  description: string;
  commands: { cmd: string; args?: Record<string, unknown> }[];
  sequence: (TranscriptEntry | { note: string })[];
}

/** When to send command i: after a pause, and/or once an event (optionally for a status) has been seen. */
export interface Wait {
  afterMs?: number;
  untilEvent?: string;
  status?: string;
  /** How many such events must have been seen (default 1). */
  count?: number;
}

export const MiB = 1 << 20;

export function load(name: string): Recording {
  return JSON.parse(readFileSync(new URL(`${name}.json`, CONFORMANCE_DIR), "utf8")) as Recording;
}

/** Files the recordings name ($TMP/x.qcow2): a 4 MiB qcow2 chain, 1 MiB written per layer at its own offset. */
const CHAIN: Record<string, number> = { "$TMP/base.qcow2": 0, "$TMP/mid.qcow2": 1, "$TMP/top.qcow2": 2 };

export function replay(rec: Recording, waits: Record<number, Wait> = {}): { expected: TranscriptEntry[]; observed: TranscriptEntry[] } {
  const sim = new Scheduler({ maxSteps: 20_000_000, maxTimeNs: 3600e9 });
  const qemu = createQemu(sim);
  const seen: { event: string; status?: unknown }[] = [];
  const newEvent = new Signal<void>("event");
  qemu.monitor.onEvent((e) => {
    seen.push({ event: e.event, status: e.data.status });
    sim.notify(newEvent);
  });
  sim.spawn("client", (function* (): Process {
    for (const [file, layer] of Object.entries(CHAIN)) {
      const dev = qemu.addDevice({ name: file, sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 32 });
      yield dev.io({ op: "write", offset: layer * MiB, bytes: MiB, issuer: "qemu-img" });
    }
    for (let i = 0; i < rec.commands.length; i++) {
      const w = waits[i] ?? {};
      if (w.afterMs) yield sleep(w.afterMs * 1e6);
      if (w.untilEvent) {
        const hit = () => seen.filter((e) => e.event === w.untilEvent && (w.status === undefined || e.status === w.status)).length >= (w.count ?? 1);
        while (!hit()) yield wait(newEvent);
      }
      const c = rec.commands[i];
      yield* qemu.monitor.execute(c.args === undefined ? { execute: c.cmd } : { execute: c.cmd, arguments: c.args });
    }
    // let the last jobs finish, as the recorder did before closing
    while (qemu.jm.jobs.some((j) => !j.userPaused)) yield sleep(1e6);
  })());
  const result = sim.run();
  if (result.outcome.kind !== "ok") throw new Error(`simulation of ${rec.scenario} ended with ${JSON.stringify(result.outcome)}`);
  const observed = qemu.monitor.transcript.map((t, i, all) => normalise(t, all[i - 1]));
  const expected = rec.sequence.filter((e): e is TranscriptEntry => !("note" in e));
  return { expected, observed };
}

function normalise(t: TranscriptEntry, prev: TranscriptEntry | undefined): TranscriptEntry {
  if ("return" in t && prev && "cmd" in prev && prev.cmd === "query-named-block-nodes") {
    const nodes = t.return as { "node-name": string; backing_file?: string }[];
    return { return: Object.fromEntries(nodes.filter((n) => !n["node-name"].startsWith("#")).map((n) => [n["node-name"], n.backing_file ? `${n.backing_file}.qcow2` : null])) };
  }
  return t;
}

/** Progress fields, which the recordings' README says to compare as ranges: mid-run values depend on timing. */
const PROGRESS: Record<string, string> = { offset: "len", "current-progress": "total-progress" };

/**
 * Whether `got` matches `want`: a recorded "<varies>" matches anything, and a
 * progress value strictly between 0 and its total matches any value in that
 * open range (0 and the total themselves must match exactly).
 */
export function matches(want: unknown, got: unknown): boolean {
  if (want === "<varies>") return true;
  if (Array.isArray(want)) return Array.isArray(got) && got.length === want.length && want.every((w, i) => matches(w, got[i]));
  if (want && typeof want === "object") {
    if (!got || typeof got !== "object" || Array.isArray(got)) return false;
    const w = want as Record<string, unknown>, g = got as Record<string, unknown>;
    const wk = Object.keys(w).sort(), gk = Object.keys(g).sort();
    return wk.length === gk.length && wk.every((k, i) => k === gk[i] && (matches(w[k], g[k]) || inRange(k, w, g)));
  }
  return want === got;
}

function inRange(key: string, w: Record<string, unknown>, g: Record<string, unknown>): boolean {
  const total = PROGRESS[key];
  if (!total || typeof w[key] !== "number" || typeof g[key] !== "number" || w[total] !== g[total]) return false;
  const t = w[total] as number, wv = w[key] as number, gv = g[key] as number;
  return wv > 0 && wv < t && gv > 0 && gv < t;
}

/** One line per entry, for readable diffs. */
export function line(t: TranscriptEntry): string {
  if ("cmd" in t) return `> ${t.cmd}`;
  if ("event" in t) return `E ${t.event} ${JSON.stringify(t.data)}`;
  if ("error" in t) return `! ${t.error.class}: ${t.error.desc}`;
  return `< ${JSON.stringify(t.return)}`;
}
