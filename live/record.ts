/**
 * Records a conformance spec against a real QEMU: starts
 * `qemu-system-x86_64 -machine none` with a QMP socket, makes the spec's
 * images, sends its commands with its waits, repeats N runs, normalises
 * (timestamps dropped, the temporary directory as $TMP, implicit node
 * names as #block<id>, query-named-block-nodes as {node: backing file}), merges the runs (values
 * that differ become "<varies>" and are listed; entries seen in only some
 * runs are listed as only_in_some_runs) and writes a golden.
 *
 *   npx tsx live/record.ts SPEC.json... [--runs N] [--out DIR] [--qemu BINARY]
 *
 * Default: 3 runs, goldens in test/conformance/goldens/.
 */
import { execFileSync, spawn, type ChildProcess } from "node:child_process";
import { mkdirSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { basename, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TranscriptEntry } from "../sim/qmp/types.js";
import { UsageError, wholeNumberOption } from "../sim/scenario/limits.js";
import { checkOutputPath, describeErrno, onKernelFileSystem, OutputError } from "../sim/scenario/output-file.js";
import { implicitNames, loadSpec, SETTLED_JOB_STATUSES as SETTLED, waitsOf, writeGolden, type Golden, type Nondeterminism, type SequenceEntry, type Spec } from "./golden.js";
import { QmpClient, QmpTimeoutError, sleepMs, withTimeout } from "./qmp-client.js";
import { checkGenerated } from "./record-generated.js";
import { CLASSIC_WORLDS, generatedName, WORLDS, type WorldName } from "./spec-gen.js";

export interface RecordOptions {
  runs?: number;
  /** The QEMU binary (default qemu-system-x86_64 on PATH). */
  qemu?: string;
  /** Time-out for every single wait (connect, reply, event), in ms. */
  timeoutMs?: number;
  /** How long without events counts as settled at the end of a run, in ms. */
  quietMs?: number;
  log?: (line: string) => void;
}


export interface LiveQemu {
  client: QmpClient;
  dir: string;
  version: string;
  /** How the process ended, once it has: its exit code, or the signal that killed it. */
  exitStatus(): { code: number } | { signal: string } | undefined;
  /** Waits up to `ms` for the process to end; resolves with exitStatus(). */
  waitExit(ms: number): Promise<{ code: number } | { signal: string } | undefined>;
  stop(): Promise<void>;
  /** Kills the process (SIGKILL) and waits for it to end: a QEMU that hangs answers no `quit`. */
  kill(): Promise<void>;
}

/**
 * What to undo if blocksim is told to stop (SIGINT, SIGTERM, SIGHUP) while
 * it drives a real QEMU: without it a kill left each QEMU running, adopted
 * by init, and its folder in /tmp. The handlers are installed only while
 * there is something to undo; after undoing, the signal is raised again
 * with no handler, so blocksim ends as killed by it (status 128 + its number).
 */
const undoOnStop = new Set<() => void>();
const STOP_SIGNALS = ["SIGINT", "SIGTERM", "SIGHUP"] as const;

function onStopSignal(signal: NodeJS.Signals): void {
  for (const undo of undoOnStop) {
    try {
      undo();
    } catch { /* the rest still gets undone */ }
  }
  undoOnStop.clear();
  for (const s of STOP_SIGNALS) process.removeListener(s, onStopSignal);
  process.kill(process.pid, signal);
}

/** Runs `undo` if a stop signal comes before the returned function is called. */
function untilStopped(undo: () => void): () => void {
  if (undoOnStop.size === 0) for (const s of STOP_SIGNALS) process.on(s, onStopSignal);
  undoOnStop.add(undo);
  return () => {
    undoOnStop.delete(undo);
    if (undoOnStop.size === 0) for (const s of STOP_SIGNALS) process.removeListener(s, onStopSignal);
  };
}

/** Starts a QEMU with no machine and no guest, and connects to its QMP socket. */
export async function startQemu(opts: { qemu?: string; dir?: string; timeoutMs?: number; machine?: "none" | "pc" } = {}): Promise<LiveQemu> {
  const dir = opts.dir ?? mkdtempSync(join(tmpdir(), "blocksim-live-"));
  const sock = join(dir, "qmp.sock");
  const bin = opts.qemu ?? "qemu-system-x86_64";
  // -machine pc (stopped: -S) gives device_add a PCI bus for guest disks; none has no bus at all.
  const machine = opts.machine === "pc" ? ["-machine", "pc", "-S"] : ["-machine", "none"];
  const child: ChildProcess = spawn(bin, [...machine, "-accel", "tcg", "-nodefaults", "-display", "none", "-qmp", `unix:${sock},server=on,wait=off`], { stdio: ["ignore", "ignore", "pipe"] });
  const forget = untilStopped(() => child.kill("SIGKILL"));
  child.once("exit", forget);
  child.once("error", forget);
  let stderr = "";
  child.stderr?.setEncoding("utf8").on("data", (d: string) => (stderr += d));
  let status: { code: number } | { signal: string } | undefined;
  const exited = new Promise<number | null>((r) => child.once("exit", (code, signal) => {
    status = signal ? { signal } : { code: code ?? 0 };
    r(code);
  }));
  const spawnFailed = new Promise<never>((_, reject) => child.once("error", (e) => reject(new Error(`could not start ${bin}: ${e.message}`))));
  let client: QmpClient;
  try {
    client = await Promise.race([QmpClient.connect(sock, { timeoutMs: opts.timeoutMs }), spawnFailed,
      exited.then((code) => { throw new Error(`${bin} exited with ${code} before QMP was up: ${stderr.trim()}`); })]);
  } catch (e) {
    child.kill("SIGKILL");
    throw e;
  }
  const v = client.greeting!.QMP.version;
  return {
    client, dir,
    version: `${v.qemu.major}.${v.qemu.minor}.${v.qemu.micro} ${v.package.trim()}`.trim(),
    exitStatus: () => status,
    async waitExit(ms) {
      try {
        await withTimeout(exited, ms, `${bin} to exit`);
      } catch { /* still running */ }
      return status;
    },
    async kill() {
      client.close();
      if (status) return;
      child.kill("SIGKILL");
      await withTimeout(exited, 5000, `${bin} to die of SIGKILL`);
    },
    async stop() {
      if (status) return client.close();
      try {
        await client.execute("quit", undefined, { record: false, timeoutMs: 5000 });
      } catch { /* it may close the socket before replying */ }
      client.close();
      try {
        await withTimeout(exited, 5000, `${bin} to exit`);
      } catch {
        child.kill("SIGKILL");
      }
    },
  };
}

/** Replaces $TMP in every string of a value. */
function withDir<T>(v: T, from: string, to: string): T {
  return JSON.parse(JSON.stringify(v).split(from).join(to)) as T;
}

/** Makes the spec's images in `dir` with qemu-img and qemu-io (backing files first, as listed). */
function makeImages(spec: Spec, dir: string): void {
  for (const img of spec.images ?? []) {
    const path = join(dir, img.file);
    const backing = img.backing ? ["-b", join(dir, img.backing), "-F", "qcow2"] : [];
    execFileSync("qemu-img", ["create", "-q", "-f", img.format, ...backing, path, String(img.sizeBytes)]);
    for (const [off, len] of img.writes ?? []) execFileSync("qemu-io", ["-f", img.format, "-c", `write -P 0x5a ${off} ${len}`, path], { stdio: "ignore" });
  }
}

/**
 * query-named-block-nodes, as the recordings show it: {node-name: basename of
 * its backing file or null}, auto-named nodes left out; a node with dirty
 * bitmaps shows {backing, dirty-bitmaps} instead.
 */
export function normaliseNodes(ret: unknown): unknown {
  if (!Array.isArray(ret)) return ret;
  const named = (ret as { "node-name": string; backing_file?: string; "dirty-bitmaps"?: unknown[] }[]).filter((n) => !n["node-name"].startsWith("#"));
  return Object.fromEntries(named.map((n) => {
    const backing = n.backing_file ? basename(plainFilename(n.backing_file)) : null;
    return [n["node-name"], n["dirty-bitmaps"] ? { backing, "dirty-bitmaps": n["dirty-bitmaps"] } : backing];
  }));
}

/** A json: pseudo-filename (a backing node QEMU cannot name by a path alone) reduced to its innermost file name. */
function plainFilename(name: string): string {
  if (!name.startsWith("json:")) return name;
  let found = name;
  const walk = (v: unknown): void => {
    if (!v || typeof v !== "object") return;
    for (const [k, x] of Object.entries(v)) {
      if (k === "filename" && typeof x === "string") found = x;
      else walk(x);
    }
  };
  try {
    walk(JSON.parse(name.slice(5)));
  } catch { /* not JSON after all: keep it whole */ }
  return found;
}

/** One run of a spec against a fresh QEMU: its normalised transcript. */
export async function recordRun(spec: Spec, opts: RecordOptions = {}): Promise<{ transcript: TranscriptEntry[]; version: string }> {
  const timeoutMs = opts.timeoutMs ?? 30_000;
  const dir = mkdtempSync(join(tmpdir(), "blocksim-live-"));
  const forget = untilStopped(() => rmSync(dir, { recursive: true, force: true }));
  try {
    makeImages(spec, dir);
    const q = await startQemu({ qemu: opts.qemu, dir, timeoutMs, machine: spec.machine });
    try {
      const { client } = q;
      const waits = waitsOf(spec);
      // QEMU may end on a command (quit, or a crash): the transcript then ends with how it exited.
      const gone = async () => client.isClosed() && (await q.waitExit(5000)) !== undefined;
      let ended = false, hung = false;
      const replyTimeoutMs = spec.replyTimeoutMs ?? timeoutMs;
      for (const [i, c] of spec.commands.entries()) {
        const w = waits[i] ?? {};
        if (w.afterMs) await sleepMs(w.afterMs);
        if (w.untilEvent) {
          const hit = () => client.events.filter((e) => e.event === w.untilEvent && (w.status === undefined || e.data.status === w.status)).length >= (w.count ?? 1);
          await client.waitFor(hit, `command ${i} (${c.cmd})'s wait ${JSON.stringify(w)}`, timeoutMs);
        }
        try {
          await client.execute(c.cmd, c.args === undefined ? undefined : withDir(c.args, "$TMP", dir), { timeoutMs: replyTimeoutMs });
        } catch (e) {
          if (e instanceof QmpTimeoutError && !client.isClosed() && q.exitStatus() === undefined) {
            // No reply within the time-out, QEMU still running: it hangs (a nested poll that never ends). The
            // run ends here; nothing after it would be answered.
            client.transcript.push({ hang: { cmd: c.cmd } });
            ended = hung = true;
            break;
          }
          if (!(await gone())) throw e;
        }
        if (c.cmd === "quit" || client.isClosed()) await client.waitClosed(timeoutMs);
        if (await gone()) {
          ended = true;
          break;
        }
      }
      if (ended && !hung) {
        client.transcript.push({ exit: q.exitStatus()! });
      }
      // Let the jobs run until none moves on by itself and the socket has been quiet a while.
      const status = () => {
        const last = new Map<unknown, unknown>();
        for (const e of client.events) if (e.event === "JOB_STATUS_CHANGE") last.set(e.data.id, e.data.status);
        return [...last.values()];
      };
      const deadline = Date.now() + timeoutMs;
      for (; !ended;) {
        await client.waitFor(() => status().every((s) => SETTLED.has(String(s))), "every job to settle", Math.max(1, deadline - Date.now()));
        await client.quiet(opts.quietMs ?? 300, timeoutMs);
        if (status().every((s) => SETTLED.has(String(s)))) break;
      }
      const transcript = client.transcript.map((t, k, all) => {
        const prev = all[k - 1];
        const entry = "return" in t && prev && "cmd" in prev && prev.cmd === "query-named-block-nodes" ? { return: normaliseNodes(t.return) } : t;
        return implicitNames(withDir(entry, dir, "$TMP"));
      });
      if (hung) await q.kill();
      return { transcript, version: q.version };
    } finally {
      await q.stop();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
    forget();
  }
}

/** What must be equal for two runs' entries to be the same entry: everything but numbers. */
function key(e: TranscriptEntry): string {
  return JSON.stringify(e, (_k, v: unknown) => (typeof v === "number" ? "#" : v));
}

/** Longest common subsequence of two key lists: the matched index pairs, in order. */
function lcs(a: string[], b: string[]): [number, number][] {
  const n = a.length, m = b.length;
  const t: number[][] = Array.from({ length: n + 1 }, () => new Array<number>(m + 1).fill(0));
  for (let i = n - 1; i >= 0; i--) for (let j = m - 1; j >= 0; j--) t[i][j] = a[i] === b[j] ? t[i + 1][j + 1] + 1 : Math.max(t[i + 1][j], t[i][j + 1]);
  const out: [number, number][] = [];
  for (let i = 0, j = 0; i < n && j < m;) {
    if (a[i] === b[j]) out.push([i++, j++]);
    else if (t[i + 1][j] >= t[i][j + 1]) i++;
    else j++;
  }
  return out;
}

/** Merges a value seen in every run: equal values stay, differing ones become "<varies>" and are listed. */
function mergeValue(vals: unknown[], path: string, out: Nondeterminism[]): unknown {
  const first = vals[0];
  if (vals.every((v) => JSON.stringify(v) === JSON.stringify(first))) return first;
  if (first && typeof first === "object" && !Array.isArray(first)) {
    return Object.fromEntries(Object.keys(first).map((k) => [k, mergeValue(vals.map((v) => (v as Record<string, unknown>)[k]), `${path}.${k}`, out)]));
  }
  if (Array.isArray(first) && vals.every((v) => Array.isArray(v) && v.length === first.length)) {
    return first.map((_, i) => mergeValue(vals.map((v) => (v as unknown[])[i]), `${path}[${i}]`, out));
  }
  out.push({ path, values: vals });
  return "<varies>";
}

/**
 * Merges the normalised transcripts of several runs: the sequence is what
 * every run shows in the same order (entries equal but for numbers), numbers
 * that differ are "<varies>", and an entry not in that common order is listed
 * as only_in_some_runs after the index of the common entry before it.
 */
export function mergeRuns(runs: TranscriptEntry[][], note?: string, warnings: string[] = []): Pick<Golden, "sequence" | "deterministic" | "nondeterministic"> {
  const keys = runs.map((r) => r.map(key));
  let common = keys[0];
  for (const k of keys.slice(1)) common = lcs(common, k).map(([i]) => common[i]);
  const maps = keys.map((k) => lcs(common, k));
  const offset = note === undefined ? 0 : 1;
  const nondeterministic: Nondeterminism[] = [];
  const sequence: SequenceEntry[] = note === undefined ? [] : [{ note }];
  for (let c = 0; c < common.length; c++) {
    sequence.push(mergeValue(runs.map((r, ri) => r[maps[ri][c][1]]), `sequence[${c + offset}]`, nondeterministic) as TranscriptEntry);
  }
  const extras: Nondeterminism[] = [];
  runs.forEach((r, ri) => {
    const matched = new Map(maps[ri].map(([c, j]) => [j, c]));
    let before = -1;
    r.forEach((entry, j) => {
      const c = matched.get(j);
      if (c !== undefined) before = c;
      else extras.push({ only_in_some_runs: { run: ri, after_sequence_index: before + offset, entry } });
    });
  });
  nondeterministic.push(...extras);
  const moved = extras.filter((x) => "only_in_some_runs" in x && "cmd" in x.only_in_some_runs.entry).map((x) => "only_in_some_runs" in x && "cmd" in x.only_in_some_runs.entry ? x.only_in_some_runs.entry.cmd : "");
  if (moved.length > 0) warnings.push(`commands ${[...new Set(moved)].join(", ")} did not come at the same point of the events in every run: the spec races, give them a wait`);
  return { sequence, deterministic: nondeterministic.length === 0, nondeterministic };
}

function imagesNote(spec: Spec): string | undefined {
  if (!spec.images?.length) return undefined;
  return "images: " + spec.images.map((i) => `${i.file} (${i.format}, ${i.sizeBytes} bytes${i.backing ? `, backing ${i.backing}` : ""}${i.writes?.length ? `, written ${i.writes.map(([o, l]) => `${l}@${o}`).join(" ")}` : ""})`).join("; ");
}

/** Records a spec `runs` times and merges the runs into a golden. */
export async function recordGolden(spec: Spec, opts: RecordOptions = {}): Promise<Golden> {
  const runs: TranscriptEntry[][] = [];
  let version = "";
  for (let r = 0; r < (opts.runs ?? 3); r++) {
    opts.log?.(`${spec.scenario}: run ${r + 1} of ${opts.runs ?? 3}`);
    const run = await recordRun(spec, opts);
    runs.push(run.transcript);
    version = run.version;
  }
  const warnings: string[] = [];
  const merged = mergeRuns(runs, imagesNote(spec), warnings);
  for (const w of warnings) opts.log?.(`${spec.scenario}: warning: ${w}`);
  return {
    scenario: spec.scenario,
    description: spec.description,
    qemu: version,
    runs: runs.length,
    ...(spec.machine ? { machine: spec.machine } : {}),
    ...(spec.images ? { images: spec.images } : {}),
    commands: spec.commands,
    ...(spec.waits ? { waits: spec.waits } : {}),
    ...(spec.replyTimeoutMs ? { replyTimeoutMs: spec.replyTimeoutMs } : {}),
    ...merged,
  };
}

const RECORD_USAGE = `Usage: blocksim record SPEC.json… [--runs N] [--out DIR] [--qemu BINARY]
       blocksim record --generate N [--seed S] [--worlds W,…] [--runs N] [--out DIR] [--qemu BINARY]

Records each conformance spec against a real QEMU 7.2 (qemu-system-x86_64 on
PATH, or --qemu) N times (default 3), normalises and merges the runs, and
writes the golden SCENARIO.json into DIR (default: the current folder; the
project's goldens live in test/conformance/goldens). A command QEMU does not
answer within the spec's replyTimeoutMs (default 30 s; 15 s with --generate) ends the run as a
hang, {"hang": {"cmd": …}}, and QEMU is killed.

With --generate N it records N generated specs instead (seeds S, S+1, …;
default S = 1): random QMP conversations about block jobs (live/spec-gen.ts),
each drawn in one of the worlds --worlds names (default null,chain; the
worlds: null (backups and mirrors of null-co nodes, blkdebug errors), chain
(stream, commit, backup and mirror of a qcow2 chain), iothread (the null
world with nodes in IOThreads, and x-blockdev-set-iothread while jobs run),
bitmap (incremental and bitmap backups, bitmap commands while they run),
lifecycle (the null world with blockdev-reopen and blockdev-add among the
verbs), mirror (mirrors with copy-mode, granularity, buf-size, sync none or
top, and more guest writes), device (a pc machine with guest disks on the
nodes, guest I/O through them), snapshot (the chain world with two empty
qcow2 overlays, blockdev-snapshot alone or in a transaction with a bitmap
add, and block_resize to a node's own size)). A
spec drawn in other worlds than the default is named gen_WORLD_…_SEED; the
default worlds draw every seed as they always did. Each is replayed through the simulator as
conform does; one line per spec says whether it matches, and the golden of
each spec where the simulator departs is written into DIR (blocksim conform
DIR shows the difference again). A departure where QEMU's own runs disagree
is listed as QEMU's nondeterminism, not counted.

Exit codes: 0 recorded (with --generate: no departure), 1 QEMU failed (with
--generate: the simulator departs from QEMU on some spec), 2 bad arguments or
a bad spec file.

Examples:
  blocksim record test/conformance/specs/txn_individual.json --runs 5 --out test/conformance/goldens
  blocksim record --generate 50 --seed 1000 --out /tmp/departures
  blocksim record --generate 40 --seed 1 --worlds iothread,bitmap --out /tmp/departures
`;

const VALUED = ["--runs", "--out", "--qemu", "--generate", "--seed", "--worlds"];

/** Output for the command form (the CLI passes its own). */
export interface CommandIo {
  out(text: string): void;
  err(text: string): void;
}

const stdio: CommandIo = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) };

/**
 * `blocksim record SPEC… [--runs N] [--out DIR] [--qemu BINARY]`: records each
 * spec against a real QEMU and writes its golden. Exit 0, 1 when QEMU fails,
 * 2 for bad arguments.
 */
export async function recordCommand(argv: string[], io: CommandIo = stdio): Promise<number> {
  try {
    return await record(argv, io);
  } catch (e) {
    io.err(`record: ${e instanceof Error ? e.message : String(e)}\n`);
    return 1;
  }
}

async function record(argv: string[], io: CommandIo): Promise<number> {
  const files: string[] = [];
  const opts: RecordOptions = { log: (l) => io.err(l + "\n") };
  // Never into the source tree by default: the current folder, unless --out says where.
  let out = ".";
  let runs: string | undefined, generate: string | undefined, seed: string | undefined, worldsArg: string | undefined;
  // --runs=3 is --runs 3, as for every other command
  argv = argv.flatMap((a) => {
    const eq = a.indexOf("=");
    return eq > 0 && VALUED.includes(a.slice(0, eq)) ? [a.slice(0, eq), a.slice(eq + 1)] : [a];
  });
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "--help" || a === "-h") {
      io.out(RECORD_USAGE);
      return 0;
    }
    if (VALUED.includes(a) && (argv[i + 1] === undefined || (argv[i + 1].startsWith("-") && !/^-\d/.test(argv[i + 1])))) {
      io.err(`record: ${a} needs a value; see: blocksim record --help\n`);
      return 2;
    }
    if (a === "--runs") runs = argv[++i];
    else if (a === "--out") out = argv[++i];
    else if (a === "--qemu") opts.qemu = argv[++i];
    else if (a === "--generate") generate = argv[++i];
    else if (a === "--seed") seed = argv[++i];
    else if (a === "--worlds") worldsArg = argv[++i];
    else if (a.startsWith("-")) {
      io.err(`record: unknown option ${a} (use --runs N, --out DIR, --qemu BINARY, --generate N, --seed S, --worlds W,…)\n`);
      return 2;
    } else files.push(a);
  }
  if ((seed !== undefined || worldsArg !== undefined) && generate === undefined) {
    io.err(`record: ${seed !== undefined ? "--seed chooses the first generated spec" : "--worlds chooses where specs are drawn"}; it needs --generate N; see: blocksim record --help\n`);
    return 2;
  }
  let worlds: readonly WorldName[] = CLASSIC_WORLDS;
  if (worldsArg !== undefined) {
    const names = worldsArg.split(",");
    const unknown = names.find((w) => !(WORLDS as readonly string[]).includes(w));
    if (unknown !== undefined || new Set(names).size !== names.length) {
      io.err(`record: --worlds ${JSON.stringify(worldsArg)}: expected distinct names among ${WORLDS.join(", ")}, separated by commas${unknown !== undefined ? `; ${JSON.stringify(unknown)} is none of them` : ""}\n`);
      return 2;
    }
    worlds = names as WorldName[];
  }
  if ((files.length === 0) === (generate === undefined)) {
    io.err(generate === undefined ? RECORD_USAGE : `record: --generate makes its own specs; give it no SPEC files; see: blocksim record --help\n`);
    return 2;
  }
  let count = 0, first = 1;
  try {
    opts.runs = wholeNumberOption("record --runs", runs, 3);
    count = wholeNumberOption("record --generate", generate, 0);
    first = wholeNumberOption("record --seed", seed, 1);
  } catch (e) {
    if (!(e instanceof UsageError)) throw e;
    io.err(`record: ${e.message}\n`);
    return 2;
  }
  const specs: Spec[] = [];
  for (const f of files) {
    try {
      specs.push(loadSpec(resolve(f)));
    } catch (e) {
      io.err(`record: ${f}: ${e instanceof Error ? e.message : String(e)}\n`);
      return 2;
    }
  }
  try {
    // Before minutes of recording, not after: a folder that cannot take the goldens.
    if (onKernelFileSystem(out)) throw new OutputError(`cannot write the golden in ${out}: not a place for files (a kernel or device file system)`);
    mkdirSync(out, { recursive: true });
    for (const spec of specs) checkOutputPath(join(out, `${spec.scenario}.json`), "the golden");
  } catch (e) {
    const why = (e as NodeJS.ErrnoException).code === "EEXIST" || (e as NodeJS.ErrnoException).code === "ENOTDIR" ? "it, or a folder on its path, is a file" : describeErrno(e);
    io.err(`record: ${e instanceof OutputError ? e.message : `cannot make the folder ${out}: ${why}`}\n`);
    return 2;
  }
  if (count > 0) return recordGenerated(count, first, worlds, out, opts, io);
  for (const spec of specs) {
    const golden = await recordGolden(spec, opts);
    const path = join(out, `${spec.scenario}.json`);
    writeGolden(path, golden);
    const varies = golden.nondeterministic.length;
    io.out(`${path}: ${golden.sequence.length} entries from ${golden.runs} runs of QEMU ${golden.qemu}${varies ? `, ${varies} nondeterministic` : ", deterministic"}\n`);
  }
  return 0;
}

/** `record --generate N`: one line per generated spec, the departing goldens into `out`; exit 1 when one departs. */
async function recordGenerated(count: number, first: number, worlds: readonly WorldName[], out: string, opts: RecordOptions, io: CommandIo): Promise<number> {
  const qemu = opts.qemu ?? "qemu-system-x86_64";
  try {
    execFileSync(qemu, ["--version"], { stdio: "ignore" });
  } catch (e) {
    io.err(`record: cannot run ${qemu} (${describeErrno(e)}); install QEMU (README "Checking against a real QEMU") or name it with --qemu\n`);
    return 1;
  }
  // A generated spec's jobs copy at most 16 MiB at 4 MiB/s or more: a wait that takes 15 s will not be met.
  const quiet = { ...opts, log: undefined, timeoutMs: opts.timeoutMs ?? 15_000 };
  const tally = { match: 0, departs: 0, "qemu-varies": 0, skipped: 0 };
  for (let seed = first; seed < first + count; seed++) {
    const v = await checkGenerated(seed, out, (spec) => recordGolden(spec, quiet), worlds);
    tally[v.kind]++;
    const name = generatedName(seed, worlds);
    if (v.kind === "match") io.out(`ok      ${name} (${v.entries} entries)\n`);
    else if (v.kind === "qemu-varies") io.out(`varies  ${name}: QEMU's own runs disagree up to entry ${v.at}, where the simulator departs; not counted\n`);
    else if (v.kind === "skipped") io.out(`skipped ${name}: ${v.why}\n`);
    else io.out(`DEPARTS ${name}${v.at >= 0 ? ` at entry ${v.at}` : ""}: ${v.file}\n${v.diff.replace(/^/gm, "        ")}\n`);
  }
  io.out(`${count} generated spec${count === 1 ? "" : "s"} (seeds ${first}-${first + count - 1}): ${tally.match} match, ${tally.departs} depart${tally.departs ? ` (goldens in ${out})` : ""}, ${tally["qemu-varies"]} where QEMU varies, ${tally.skipped} skipped\n`);
  return tally.departs > 0 ? 1 : 0;
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  recordCommand(process.argv.slice(2)).then((code) => process.exit(code));
}
