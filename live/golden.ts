/**
 * Conformance specs and goldens: the file formats shared by the live
 * recorder (live/record.ts) and the simulator replay (live/spec-driver.ts).
 *
 * A spec says what to send and when; a golden is a spec plus what a real
 * QEMU answered, in the format of ../shared/conformance/*.json (see its
 * README) with the spec's `waits` and `images` kept so the simulator can
 * replay it with the same timing.
 */
import { mkdirSync } from "node:fs";
import { dirname } from "node:path";
import { fileURLToPath } from "node:url";
import type { TranscriptEntry } from "../sim/qmp/types.js";
import { InputError } from "../sim/scenario/errors.js";
import { readInputFile } from "../sim/scenario/loader.js";
import { writeFileAtomic } from "../sim/scenario/output-file.js";

/** When to send command i: after a pause, and/or once an event (optionally for a status) has been seen. */
export interface Wait {
  afterMs?: number;
  untilEvent?: string;
  status?: string;
  /** How many such events must have been seen since the run began (default 1). */
  count?: number;
}

/**
 * An image file made before the run (qemu-img create, then qemu-io writes), named
 * `$TMP/<file>` in commands. The simulator declares a device of that name and
 * writes the same ranges to it.
 */
export interface Image {
  file: string;
  format: "qcow2" | "raw";
  sizeBytes: number;
  /** Another image's `file`, as its backing file (qcow2 only). */
  backing?: string;
  /** Ranges written with qemu-io: [offset, bytes]. */
  writes?: [number, number][];
}

export interface Spec {
  scenario: string;
  description: string;
  images?: Image[];
  commands: { cmd: string; args?: Record<string, unknown> }[];
  /** By command index (JSON object keys are strings). */
  waits?: Record<string, Wait>;
  /**
   * The machine QEMU runs: "none" (the default: no guest at all) or "pc"
   * (started stopped, -S, so `device_add` can plug virtio-blk-pci disks).
   */
  machine?: "none" | "pc";
  /**
   * How long the recorder waits for each reply (default: its own time-out,
   * 30 s). A command still unanswered then is recorded as a hang
   * (`{"hang": {"cmd": …}}`) and the run ends there, QEMU killed.
   */
  replyTimeoutMs?: number;
}

/** The longest reply time-out a spec may ask for (10 min: a spec's runs must end). */
export const MAX_REPLY_TIMEOUT_MS = 600_000;

/**
 * Job statuses in which a job does not move on by itself: the recorder stops
 * waiting on them at the end of a run, and the replays (in process, and over
 * blocksim serve's socket) let jobs run until every one is in one. A job
 * waiting for the rest of its transaction counts: with every other job
 * settled too (one of them paused by the user), it waits for ever.
 */
export const SETTLED_JOB_STATUSES: ReadonlySet<string> = new Set(["null", "concluded", "pending", "ready", "paused", "standby", "waiting"]);

export type SequenceEntry = TranscriptEntry | { note: string };

export type Nondeterminism =
  | { path: string; values: unknown[] }
  | { only_in_some_runs: { run: number; after_sequence_index: number; entry: TranscriptEntry } };

export interface Golden extends Spec {
  qemu: string;
  runs: number;
  sequence: SequenceEntry[];
  deterministic: boolean;
  nondeterministic: Nondeterminism[];
}

export function readJson<T>(path: string | URL): T {
  // A regular file of bounded size (a FIFO would block, /dev/zero would never end); errors name the file, not its content.
  let text: string;
  try {
    text = readInputFile(path instanceof URL ? fileURLToPath(path) : path, String(path));
  } catch (e) {
    if (e instanceof InputError) throw new Error(e.message);
    throw e;
  }
  try {
    return JSON.parse(text) as T;
  } catch (e) {
    throw new Error(`${String(path)}: not valid JSON (${(e as Error).message})`);
  }
}

/** Reads a spec and checks its shape, with errors that name the file and the place. */
export function loadSpec(path: string | URL): Spec {
  const s = readJson<Partial<Spec>>(path);
  const where = String(path);
  if (typeof s.scenario !== "string" || !/^[a-z0-9_]+$/.test(s.scenario)) throw new Error(`${where}: 'scenario' must be a name of [a-z0-9_], got ${JSON.stringify(s.scenario)}`);
  if (typeof s.description !== "string") throw new Error(`${where}: 'description' must be a string`);
  if (!Array.isArray(s.commands) || s.commands.some((c) => typeof c?.cmd !== "string")) throw new Error(`${where}: 'commands' must be a list of {"cmd", "args"?}`);
  for (const [k, w] of Object.entries(s.waits ?? {})) {
    const i = Number(k);
    if (!Number.isInteger(i) || i < 0 || i >= s.commands.length) throw new Error(`${where}: waits.${k} names no command (there are ${s.commands.length})`);
    for (const key of Object.keys(w)) if (!["afterMs", "untilEvent", "status", "count"].includes(key)) throw new Error(`${where}: waits.${k}.${key} is not a wait (afterMs, untilEvent, status, count)`);
  }
  if (s.machine !== undefined && s.machine !== "none" && s.machine !== "pc") throw new Error(`${where}: 'machine' must be "none" or "pc", got ${JSON.stringify(s.machine)}`);
  if (s.replyTimeoutMs !== undefined && (!Number.isInteger(s.replyTimeoutMs) || s.replyTimeoutMs < 1 || s.replyTimeoutMs > MAX_REPLY_TIMEOUT_MS)) {
    throw new Error(`${where}: 'replyTimeoutMs' must be a whole number of milliseconds from 1 to ${MAX_REPLY_TIMEOUT_MS}, got ${JSON.stringify(s.replyTimeoutMs)}`);
  }
  for (const [i, img] of (s.images ?? []).entries()) {
    if (typeof img.file !== "string" || !/^[\w.-]+$/.test(img.file)) throw new Error(`${where}: images[${i}].file must be a plain file name`);
    if (img.format !== "qcow2" && img.format !== "raw") throw new Error(`${where}: images[${i}].format must be qcow2 or raw`);
    if (!Number.isInteger(img.sizeBytes) || img.sizeBytes <= 0) throw new Error(`${where}: images[${i}].sizeBytes must be a positive integer`);
  }
  return s as Spec;
}

export function loadGolden(path: string | URL): Golden {
  const g = readJson<Golden>(path);
  if (!Array.isArray(g.sequence)) throw new Error(`${String(path)}: not a golden (no 'sequence')`);
  return g;
}

export function writeGolden(path: string, g: Golden): void {
  mkdirSync(dirname(path), { recursive: true });
  writeFileAtomic(path, JSON.stringify(g, null, 1) + "\n", "the golden");
}

/** The waits of a spec or golden, by command index. */
export function waitsOf(s: Pick<Spec, "waits">): Record<number, Wait> {
  return Object.fromEntries(Object.entries(s.waits ?? {}).map(([k, w]) => [Number(k), w]));
}

/**
 * QEMU names the nodes it makes itself (a job's filter) "#block" and a
 * random number, different in every run; they become "#block<id>" so runs
 * line up (the simulator's replay normalises its own the same way).
 */
export function implicitNames<T>(v: T): T {
  return JSON.parse(JSON.stringify(v).replace(/#block\d+/g, "#block<id>")) as T;
}
