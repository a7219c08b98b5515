/**
 * Replays a ../shared/conformance recording, or a golden recorded by
 * live/record.ts (test/conformance/goldens/), through a simulated QEMU and
 * returns both transcripts, normalised the way the recorder normalised
 * (query-named-block-nodes as {node: backing file name}). The world is the
 * harness's (createWorld): the recording's images are its devices, written
 * at setup; the recorded commands are the safety phase.
 */
import { readFileSync } from "node:fs";
import { sleep, Signal, wait, type Process, type Strategy } from "../sim/scheduler/index.js";
import { describeOutcome, runWorld } from "../sim/harness/run.js";
import { createWorld, type DeviceSpec } from "../sim/harness/world.js";
import { packageUrl } from "../sim/scenario/package-root.js";
import type { TranscriptEntry } from "../sim/qmp/types.js";
import type { Image, Nondeterminism, Wait } from "./golden.js";
import { implicitNames, SETTLED_JOB_STATUSES as SETTLED } from "./golden.js";

export type { Wait } from "./golden.js";

export const CONFORMANCE_DIR = new URL("../shared/conformance/", packageUrl() + "/");

export interface Recording {
  scenario: string;
  description: string;
  commands: { cmd: string; args?: Record<string, unknown> }[];
  sequence: (TranscriptEntry | { note: string })[];
  /** Image files the commands name as $TMP/<file> (goldens); without it, the shared recordings' qcow2 chain. */
  images?: Image[];
  nondeterministic?: Nondeterminism[];
}

export const MiB = 1 << 20;

/** When each recording sent its commands (from its description), by command index. */
export const SHARED_WAITS: Record<string, Record<number, Wait>> = {
  backup_full: {},
  backup_cancel: { 3: { afterMs: 350 }, 5: { untilEvent: "JOB_STATUS_CHANGE", status: "null" } },
  backup_manual_finalize: { 9: { untilEvent: "BLOCK_JOB_PENDING" } },
  txn_grouped: { 5: { untilEvent: "JOB_STATUS_CHANGE", status: "null", count: 2 } },
  mirror_complete: { 5: { untilEvent: "BLOCK_JOB_READY" }, 7: { untilEvent: "JOB_STATUS_CHANGE", status: "null" } },
  pause_midrun: { 3: { afterMs: 350 }, 5: { untilEvent: "JOB_STATUS_CHANGE", status: "paused", count: 2 } },
  set_speed: { 5: { afterMs: 500 } },
  target_error_stop: { 3: { untilEvent: "JOB_STATUS_CHANGE", status: "paused", count: 2 } },
  stream: { 5: { untilEvent: "JOB_STATUS_CHANGE", status: "null" } },
  commit_active: { 5: { untilEvent: "BLOCK_JOB_READY" }, 7: { untilEvent: "JOB_STATUS_CHANGE", status: "null" } },
  id_and_blockers: { 18: { untilEvent: "JOB_STATUS_CHANGE", status: "null", count: 2 } },
};

export function load(name: string): Recording {
  return JSON.parse(readFileSync(new URL(`${name}.json`, CONFORMANCE_DIR), "utf8")) as Recording;
}

/** Files the shared recordings name ($TMP/x.qcow2): a 4 MiB qcow2 chain, 1 MiB written per layer at its own offset. */
export const CHAIN: Image[] = ["base", "mid", "top"].map((name, layer, all) => ({
  file: `${name}.qcow2`, format: "qcow2", sizeBytes: 4 * MiB, writes: [[layer * MiB, MiB]], ...(layer > 0 ? { backing: `${all[layer - 1]}.qcow2` } : {}),
}));


/**
 * The result of a replay. `stuck` says why the simulation stopped early: the
 * client waited for an event the simulator never produced (observed then
 * falls short of expected, and the comparison shows where), or for a reply
 * that never came (observed then ends in `{"hang": …}`, as a recording of
 * QEMU hanging on that command does).
 */
export interface Replayed {
  expected: TranscriptEntry[];
  observed: TranscriptEntry[];
  stuck?: string;
}

/** A recording's image files as the world's devices ($TMP/<file>), with what was written into them before the run. */
export function imageDevices(images: Image[], timing: ReplayTiming = REPLAY_TIMING): DeviceSpec[] {
  return images.map((img) => ({
    name: `$TMP/${img.file}`, sizeBytes: img.sizeBytes,
    readLatencyNs: timing.imageReadNs, writeLatencyNs: timing.imageWriteNs, bandwidthBytesPerSec: timing.imageBytesPerSec, transferPerRequest: true, flushBytesPerSec: timing.imageFlushBytesPerSec,
    coldMetadataCaches: timing.coldMetadataCaches,
    ...(img.backing !== undefined ? { backingFile: img.backing } : {}),
    sparse: true, // image files: qemu-img create makes them sparse (goldens/raw_sparse_block_status)
    data: (img.writes ?? []).map(([offset, length]) => ({ offset, length })),
  }));
}

/**
 * How long things take in the replay (README "Image timing"). Each image file is a device whose requests
 * take a latency plus their bytes at IMAGE_BYTES_PER_SEC, each on its own (QEMU's thread pool copies from the
 * host's cache in parallel), and whose qcow2 node opens with cold metadata caches: its first block status
 * reads a refcount block and its L2 table, one cluster each, its first lookup the L2 table.
 */
export interface ReplayTiming {
  /** How long the client takes from a reply to its next command's arrival (see CLIENT_ROUND_TRIP_NS). */
  clientRoundTripNs: number;
  /** An image-file read's latency, and a write's (write-zeroes, discard and flush too), besides its transfer. */
  imageReadNs: number;
  imageWriteNs: number;
  /** Each request on an image file moves its bytes this fast, on its own (0: no transfer time). */
  imageBytesPerSec: number;
  /** A flush of an image file also syncs the bytes written since the last one at this rate (0: none). */
  imageFlushBytesPerSec: number;
  /** qcow2 images open with empty metadata caches (sim/disk DeviceConfig.coldMetadataCaches). */
  coldMetadataCaches: boolean;
}

/** Under FIFO unless `strategy` says otherwise (exploration may reach only orders QEMU can produce: test/conformance/random-orders.test.ts). */
export function replay(rec: Recording, waits: Record<number, Wait> = {}, strategy?: Strategy, timing: ReplayTiming = REPLAY_TIMING): Replayed {
  // No invariants: a recording is compared, not checked.
  const world = createWorld({ limits: { steps: 20_000_000, timeNs: 3600e9 }, devices: imageDevices(rec.images ?? CHAIN, timing), invariants: [], ...(strategy ? { strategy } : {}) });
  const { sim, qemu } = world;
  const seen: { event: string; status?: unknown }[] = [];
  const newEvent = new Signal<void>("event");
  qemu.monitor.onEvent((e) => {
    seen.push({ event: e.event, status: e.data.status });
    sim.notify(newEvent);
  });
  let clientDone = false;
  /** The command the client is waiting for the reply to, if any, and the monitor's transcript length when it was sent. */
  let sent: Recording["commands"][number] | undefined;
  let sentFrom = 0;
  const settled = () => qemu.jm.jobs.every((j) => j.userPaused || SETTLED.has(j.status));
  const run = runWorld(world, { name: "client", *safety(): Process<void> {
    for (let i = 0; i < rec.commands.length; i++) {
      const w = waits[i] ?? {};
      if (w.afterMs) yield sleep(w.afterMs * 1e6);
      if (w.untilEvent) {
        const hit = () => seen.filter((e) => e.event === w.untilEvent && (w.status === undefined || e.status === w.status)).length >= (w.count ?? 1);
        while (!hit()) yield wait(newEvent);
      }
      const c = rec.commands[i];
      if (i > 0) yield sleep(timing.clientRoundTripNs);
      sentFrom = qemu.monitor.transcript.length;
      sent = c;
      yield* qemu.monitor.execute(c.args === undefined ? { execute: c.cmd } : { execute: c.cmd, arguments: c.args });
      sent = undefined;
    }
    // let the last jobs run until none moves on by itself, as the recorder did before closing
    while (!settled()) yield sleep(1e6);
    clientDone = true;
  } });
  if (run.setupFailures.length > 0) throw new Error(`simulation of ${rec.scenario}: its images could not be set up: ${run.setupFailures.join("; ")}`);
  const out = run.outcome;
  // Jobs left parked (paused, ready, ...) once the client is done are a quiet end, as when the recorder closed QEMU.
  // A QEMU that quit or crashed answers nothing more: the client waits for ever, as the recorder saw the socket close
  // (the harness's outcome is then ok or qemu-crash).
  // So is a run that reaches its time limit once the client is done with every job settled: a READY mirror idles
  // one slice after another for ever, where the recorder closed QEMU. And so is any deadlock once the client is
  // done, the main loop's too: the recorder, its commands answered and every job settled, sees a hung QEMU only
  // as a quiet socket (gen_iothread_156: QEMU 7.2 hangs in a job's exit in 9 of 10 runs after the last reply).
  const quietEnd = out.kind === "qemu-crash" || (clientDone && (out.kind === "deadlock" || (out.kind === "time-budget" && settled())));
  // A run that ends with the client waiting for a reply (nothing left to run, or only a READY mirror idling to
  // the time limit) is QEMU hanging on that command, as the recorder records a reply that never came: a hang.
  const hung = !clientDone && sent !== undefined && (out.kind === "deadlock" || out.kind === "time-budget") ? sent : undefined;
  // Moments count from the end of setup (the images written), as a run's report counts them.
  const stuck = (out.kind === "deadlock" && !clientDone) || hung !== undefined ? `the simulation stopped with ${describeOutcome(out, world.t0)}` : undefined;
  if (out.kind !== "ok" && !quietEnd && !stuck) throw new Error(`simulation of ${rec.scenario} ended with ${describeOutcome(out, world.t0)}`);
  const observed = qemu.monitor.transcript.map((t, i, all) => normalise(t, all[i - 1]));
  if (hung !== undefined) {
    // A command the client sent while the main loop was stuck in a nested poll waits in the simulated monitor
    // before it is logged; QEMU's QMP monitor thread reads it all the same, and the recorder logs it as sent.
    if (!qemu.monitor.transcript.slice(sentFrom).some((t) => "cmd" in t)) {
      observed.push(normalise(hung.args === undefined ? { cmd: hung.cmd } : { cmd: hung.cmd, args: hung.args }, observed[observed.length - 1]));
    }
    observed.push({ hang: { cmd: hung.cmd } });
  }
  const expected = rec.sequence.filter((e): e is TranscriptEntry => !("note" in e));
  return { expected, observed, ...(stuck ? { stuck } : {}) };
}

/**
 * The recorder's client sends a command once it has read the previous reply
 * (or the event its wait is for), and the command reaches QEMU's dispatcher
 * a socket round trip later. Meanwhile QEMU's main loop runs what is ready:
 * a job's exit bottom half that the last command caused runs before the
 * next command, however fast the client (`blocksim record --generate`
 * found it: query-jobs right after job-complete of a READY mirror sees it
 * concluded). The replay's client waits this long before each command but
 * the first. Measured on the recording machine, the recorder's own client
 * timing each command from its send to its reply (untraced, 20 runs of the
 * generated chain seeds 7250 and 7207, device 137 and all-worlds 271): the
 * job verbs and refused commands sent while jobs run, answered at once,
 * median 0.45 ms (quartiles 0.37-0.56 ms, 75 commands), against 0.24 ms for
 * query-jobs once every job had settled; the client itself sends 0.02 ms
 * after it reads a reply. A bare loop of 200 query-jobs on an idle QEMU gave
 * 0.33-0.40 ms (0.22-0.34 ms in an earlier session's), and the replay took
 * 0.3 ms until the chain seed 7250's stream, concluded at the fifth command
 * after its start in 40 of 41 QEMU runs, was at 1.5 MiB of 4 there. QEMU's
 * own trace (monitor_qmp_respond to the next handle_qmp_command) 0.4-1.2 ms
 * while a stream of the chain runs. 0.4 ms, at the low end of that spread:
 * the goldens replay the same from 0.36 to 0.41 ms (above, gen_snapshot_83's
 * stream ends between two qcow2 opens, which take 0.55 ms in the replay and
 * 2.3-3.0 ms in QEMU while a job copies: the image figures were measured on
 * a quieter machine).
 */
export const CLIENT_ROUND_TRIP_NS = 400_000;

/**
 * An image-file request in the replay: latency plus bytes at IMAGE_BYTES_PER_SEC. From QEMU 7.2's trace
 * (thread_pool_submit to thread_pool_complete on the recording machine): 64 KiB reads (qcow2 metadata) median
 * 102 us (117 reads), 512 KiB reads median 324 us, 1 MiB reads alone about 0.6 ms (four one after another
 * 3.0-3.9 ms with the metadata); 512 KiB writes 122-446 us, allocating 1 MiB writes into a fresh qcow2 1-4 ms.
 * So 70 us + 2 GiB/s for a read (64 KiB 100 us, 512 KiB 314 us, 1 MiB 558 us), twice the latency for a write.
 */
export const IMAGE_READ_NS = 70_000;
export const IMAGE_WRITE_NS = 140_000;
export const IMAGE_BYTES_PER_SEC = 2 * 1024 ** 3;

/**
 * A flush of an image file syncs what was written since the last one: its latency plus those bytes at this rate
 * (fdatasync writing the host's cache back). From QEMU 7.2's trace, an active commit's flush of base before READY,
 * after 2 MiB of allocating writes: the refcount block written (36-172 us), an fdatasync of 2.1-3.2 ms, the L2
 * table written (31-38 us), an fdatasync of 146-244 us; 2.5-3.5 ms in all (3 runs). So 800 MiB/s, and the dirty
 * qcow2 tables written back with a sync of their own first (sim/block/node.ts): about 2.9 ms for that flush.
 */
export const IMAGE_FLUSH_BYTES_PER_SEC = 800 * 1024 ** 2;

/** The replay's timing: what the measurements above give. */
export const REPLAY_TIMING: ReplayTiming = Object.freeze({
  clientRoundTripNs: CLIENT_ROUND_TRIP_NS, imageReadNs: IMAGE_READ_NS, imageWriteNs: IMAGE_WRITE_NS, imageBytesPerSec: IMAGE_BYTES_PER_SEC, imageFlushBytesPerSec: IMAGE_FLUSH_BYTES_PER_SEC, coldMetadataCaches: true,
});

export function normalise(t: TranscriptEntry, prev: TranscriptEntry | undefined): TranscriptEntry {
  if ("return" in t && prev && "cmd" in prev && prev.cmd === "query-named-block-nodes") {
    const nodes = t.return as { "node-name": string; backing_file?: string; "dirty-bitmaps"?: unknown[] }[];
    return { return: Object.fromEntries(nodes.filter((n) => !n["node-name"].startsWith("#")).map((n) => {
      const backing = n.backing_file ? `${n.backing_file}.qcow2` : null;
      return [n["node-name"], n["dirty-bitmaps"] ? { backing, "dirty-bitmaps": n["dirty-bitmaps"] } : backing];
    })) };
  }
  return implicitNames(t);
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

/** An entry a recording saw in only some runs, allowed right after expected[after] (-1: before the first). */
export interface OptionalEntry {
  after: number;
  entry: TranscriptEntry;
}

/** The recording's only_in_some_runs entries, placed by index into `expected` (its sequence without notes). */
export function optionalEntries(rec: Recording): OptionalEntry[] {
  const expectedIndex: number[] = [];
  let n = -1;
  for (const e of rec.sequence) expectedIndex.push("note" in e ? n : ++n);
  // An entry one run saw k times at one place may appear k times there (a job that blips twice).
  const out: OptionalEntry[] = [];
  const counts = new Map<string, { after: number; entry: TranscriptEntry; runs: Map<number, number> }>();
  for (const d of rec.nondeterministic ?? []) {
    if (!("only_in_some_runs" in d)) continue;
    const { after_sequence_index: at, entry, run } = d.only_in_some_runs;
    const after = at < 0 ? -1 : expectedIndex[at];
    const key = `${after} ${JSON.stringify(entry)}`;
    let c = counts.get(key);
    if (c === undefined) counts.set(key, (c = { after, entry, runs: new Map() }));
    c.runs.set(run, (c.runs.get(run) ?? 0) + 1);
  }
  for (const c of counts.values()) {
    const times = Math.max(...c.runs.values());
    for (let k = 0; k < times; k++) out.push({ after: c.after, entry: c.entry });
  }
  return out;
}

/**
 * Where `observed` first departs from `expected`: the index into expected (its
 * length when observed has extra entries at the end), and the index into
 * observed; undefined when they match. An optional entry may appear (once)
 * right after the expected entry it follows in the recording.
 */
export function firstDifference(expected: TranscriptEntry[], observed: TranscriptEntry[], optional: OptionalEntry[] = []): { at: number; observedAt: number } | undefined {
  const d = firstLoggedDifference(expected, observed, optional);
  if (!d) return undefined;
  // Not a difference if it is only where a command was logged among the events of its round trip.
  const e = besideReplies(expected), o = besideReplies(observed);
  // An optional entry a run saw right after a command (before its reply) may as well come before the command: the
  // normalised order puts a command after the events of its round trip, so it goes before the command there.
  const moved = optional.map((x) => ({ ...x, after: x.after < 0 ? x.after : e.position[x.after] - ("cmd" in expected[x.after] ? 1 : 0) }));
  return firstLoggedDifference(e.entries, o.entries, moved) ? d : undefined;
}

/**
 * Each command moved past the events logged between it and its reply. A
 * client logs a command when it sends it, so events QEMU sends while the
 * command crosses the socket fall after it or before it as the client's own
 * speed has it (the recorder reads a reply, then its events, then sends): a
 * command's place among the events of its round trip says nothing about
 * QEMU. `position[i]`: where entry i went.
 */
function besideReplies(entries: readonly TranscriptEntry[]): { entries: TranscriptEntry[]; position: number[] } {
  const order: number[] = [];
  let held = -1;
  entries.forEach((t, i) => {
    if ("event" in t) {
      order.push(i);
      return;
    }
    if (held >= 0) order.push(held);
    held = -1;
    if ("cmd" in t) held = i;
    else order.push(i);
  });
  if (held >= 0) order.push(held);
  const position: number[] = [];
  order.forEach((i, k) => (position[i] = k));
  return { entries: order.map((i) => entries[i]), position };
}

function firstLoggedDifference(expected: TranscriptEntry[], observed: TranscriptEntry[], optional: OptionalEntry[]): { at: number; observedAt: number } | undefined {
  const used = new Set<OptionalEntry>();
  let j = 0;
  const skipOptional = (after: number) => {
    for (;;) {
      const o = j < observed.length ? optional.find((x) => !used.has(x) && x.after === after && matches(x.entry, observed[j])) : undefined;
      if (!o) return;
      used.add(o);
      j++;
    }
  };
  for (let i = 0; i < expected.length; i++) {
    if (j < observed.length && matches(expected[i], observed[j])) {
      j++;
      continue;
    }
    skipOptional(i - 1);
    if (j < observed.length && matches(expected[i], observed[j])) j++;
    else return { at: i, observedAt: j };
  }
  skipOptional(expected.length - 1);
  return j < observed.length ? { at: expected.length, observedAt: j } : undefined;
}

/** A readable diff around a departure: a few entries either side, the departing ones marked. */
export function showDifference(expected: TranscriptEntry[], observed: TranscriptEntry[], d: { at: number; observedAt: number }): string {
  const show = (xs: TranscriptEntry[], at: number) =>
    xs.slice(Math.max(0, at - 3), at + 4).map((x, k) => `${k + Math.max(0, at - 3) === at ? "=>" : "  "} ${line(x)}`).join("\n") || "   (nothing)";
  return `--- recorded (entry ${d.at})\n${show(expected, d.at)}\n--- simulated (entry ${d.observedAt})\n${show(observed, d.observedAt)}`;
}

/** One line per entry, for readable diffs. */
export function line(t: TranscriptEntry): string {
  if ("cmd" in t) return `> ${t.cmd}`;
  if ("event" in t) return `E ${t.event} ${JSON.stringify(t.data)}`;
  if ("error" in t) return `! ${t.error.class}: ${t.error.desc}`;
  if ("exit" in t) return `X exit ${JSON.stringify(t.exit)}`;
  if ("hang" in t) return `H no reply to ${t.hang.cmd}: QEMU hangs`;
  return `< ${JSON.stringify(t.return)}`;
}
