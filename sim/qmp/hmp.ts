/**
 * The human monitor over QMP (`human-monitor-command`, QEMU hmp.c and
 * monitor/hmp.c): a command line in, the text HMP would print out (lines
 * end in "\r\n"; errors are printed, the QMP command itself succeeds).
 *
 * HMP commands live in HMP_HANDLERS, one entry each. Simulated:
 *  - `qemu-io DEVICE "COMMAND"`, with qemu-io's `read` and `write` (-P
 *    pattern, -q, -z for write-zeroes), `aio_read`, `aio_write` and
 *    `flush`, as iotest 124 uses them (`qemu-io drive0 "write -P 0x5 0
 *    64k"`). The request goes through the named BlockBackend, or a
 *    temporary one QEMU attaches to a named node, so it queues while the
 *    node is drained; read, write and flush return once it has finished
 *    (goldens/mirror_pending_qemu_io_hang: never, while a completed mirror
 *    holds the node drained), aio_* at once
 *    (goldens/mirror_pending_aio_write_queued). aio_read and aio_write are
 *    accounted on the BlockBackend (query-blockstats), read and write not
 *    (goldens/blockstats_guest_io). Its reply is "" whatever
 *    the command did: QEMU 7.2's qemu-io prints its report on QEMU's standard
 *    output, not to the monitor (goldens/incremental_bitmap_errors.json);
 *    blocksim puts it in the trace (source "qemu-io"). A DEVICE that is
 *    neither a BlockBackend nor a node is answered on the monitor, with the
 *    lookup's error (goldens/hmp_qemu_io_errors.json). Patterns: a written
 *    cluster remembers the pattern of the last qemu-io write to it (the
 *    simulated disks keep versions, not bytes), so `read -P` verifies per
 *    cluster. A write first asks its BlockBackend for write permission; a
 *    permission conflict (e.g. on a backup's source, whose copy-before-write
 *    filter shares no write) is printed on the monitor too, and nothing is
 *    written (goldens/perm_cbw_source_write).
 *  - `drive_add ADDR OPTS` with if=none: a named BlockBackend (id=) on a new
 *    node — driver=null-co (size, latency-ns, read-zeroes), or
 *    format=raw|qcow2 with file= naming a simulated device; node-name and
 *    read-only as -drive takes them. The node is the backend's alone (not
 *    the monitor's): it closes when the backend lets go of it.
 *  - `drive_del ID` (hmp_drive_del): refused while a job blocks DRIVE_DEL on
 *    the backend's node; else the medium is removed as `eject` does and the
 *    backend is forgotten (its guest gets ENOMEDIUM). ID naming a node, not a
 *    backend, is blockdev-del of it, its error printed.
 */
import { backendContext, changeLinkPerms, DRIVE_PERMS, linkPermsOf, PERM_ALL, PERM_WRITE, PermissionDenied, type BlockBackend, type BlockNode } from "../block/index.js";
import { IoError, strerror, type ClusterVersion, type Content } from "../disk/index.js";
import { genericError, QmpError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { addNode, blockdevDel } from "./block-commands.js";
import { deviceNode, namedBackend, type QemuContext } from "./context.js";
import { diskByQomPath } from "./device-commands.js";
import { removeMedium } from "./lifecycle-commands.js";
import type { Command } from "./monitor.js";

/** qemu-io's cvtnum: a byte count with an optional binary suffix (k, M, G, T); NaN if malformed. */
export function qemuIoNumber(s: string): number {
  const m = /^(\d+)([kKmMgGtT]?)$/.exec(s);
  if (!m) return NaN;
  const shift = { "": 0, k: 10, m: 20, g: 30, t: 40 }[m[2].toLowerCase() as "" | "k" | "m" | "g" | "t"];
  return Number(m[1]) * 2 ** shift;
}

/** Splits an HMP command line into words; double quotes group. */
function words(line: string): string[] {
  const out: string[] = [];
  const re = /"([^"]*)"|(\S+)/g;
  for (let m = re.exec(line); m; m = re.exec(line)) out.push(m[1] ?? m[2]);
  return out;
}

/** Patterns of the last qemu-io write per device cluster, per QEMU process. */
const patterns = new WeakMap<QemuContext, Map<string, number>>();

function patternKey(v: ClusterVersion): string {
  return `${v.writeId}:${v.writer}`;
}

/** A qemu-io read or write, parsed: what to do, or the text qemu-io prints for a bad command line. */
type QemuIoRequest = { op: "read" | "write"; offset: number; bytes: number; pattern: number | undefined; quiet: boolean; zeroes: boolean };

function parseRequest(op: "read" | "write", argv: string[]): QemuIoRequest | string {
  let pattern: number | undefined, quiet = false, zeroes = false;
  const pos: string[] = [];
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === "-q") quiet = true;
    else if (a === "-z" && op === "write") zeroes = true;
    else if (a.startsWith("-P")) pattern = Number(a.length > 2 ? a.slice(2) : argv[++i]);
    else if (a.startsWith("-")) return `${op}: invalid option -- '${a.slice(1)}'\n`;
    else pos.push(a);
  }
  if (pos.length !== 2) return `bad argument count ${pos.length} to ${op}, expected 2 arguments\n`;
  const offset = qemuIoNumber(pos[0]), bytes = qemuIoNumber(pos[1]);
  if (Number.isNaN(offset)) return `non-numeric offset argument -- ${pos[0]}\n`;
  if (Number.isNaN(bytes)) return `non-numeric length argument -- ${pos[1]}\n`;
  if (pattern !== undefined && !Number.isInteger(pattern)) return `non-numeric pattern argument\n`;
  return { op, offset, bytes, pattern, quiet, zeroes };
}

/**
 * Runs one qemu-io read or write through its BlockBackend (QEMU's qemu-io
 * calls blk_pread/blk_pwrite, blk_aio_* for aio_*): while the backend's node
 * is in a drained section the request queues in the backend
 * (blk_wait_while_drained) until the section ends. Returns what qemu-io
 * would print.
 */
function* qemuIoRequest(ctx: QemuContext, blk: BlockBackend, r: QemuIoRequest): Process<string> {
  const { op, offset, bytes, pattern } = r;
  const node = blk.root!;
  if (offset + bytes > node.sizeBytes || bytes < 1) return `${op} failed: Input/output error\n`;
  const seen = patterns.get(ctx) ?? new Map<string, number>();
  patterns.set(ctx, seen);
  try {
    if (op === "write") {
      yield* blk.io({ op: r.zeroes ? "write-zeroes" : "write", offset, bytes, issuer: "qemu-io" });
      // the backend's node when the write ended (a queued write may have gone to a mirror's target after its pivot)
      const wrote = blk.root;
      if (!r.zeroes && wrote) for (const v of wrote.content(offset, bytes).versions) seen.set(patternKey(v), pattern ?? 0xcd);
    } else {
      const got = (yield* blk.io({ op: "read", offset, bytes, issuer: "qemu-io" })) as Content;
      if (pattern !== undefined) {
        for (const [i, v] of got.versions.entries()) {
          const p = v.writeId === 0 ? 0 : seen.get(patternKey(v));
          if (p !== pattern) return `Pattern verification failed at offset ${Math.max(offset, got.offset + i * got.clusterSizeBytes)}, ${bytes} bytes\n`;
        }
      }
    }
  } catch (e) {
    if (!(e instanceof IoError)) throw e;
    return `${op} failed: ${strerror(e.errno)}\n`;
  }
  return r.quiet ? "" : `${op === "write" ? "wrote" : "read"} ${bytes}/${bytes} bytes at offset ${offset}\n`;
}

/**
 * Runs one qemu-io command on `blk`; returns what qemu-io would print. read,
 * write and flush are synchronous: QEMU waits for the request in a nested
 * poll of the main loop, so the monitor answers nothing until it ends — and
 * nothing, ever, if it waits for a drained section only a later QMP command
 * could end (a completed mirror's, until job-finalize: QEMU 7.2 hangs).
 * aio_read and aio_write start the request and return at once (`device`
 * names it in the trace when it ends); on a temporary BlockBackend (a node
 * name) blocksim refuses them, as QEMU lets go of that backend with the
 * request still on it.
 */
function* qemuIo(ctx: QemuContext, blk: BlockBackend, command: string, temporary: boolean, device: string): Process<string> {
  const argv = words(command);
  const op = argv.shift();
  if (op === "flush") {
    yield* blk.io({ op: "flush", issuer: "qemu-io" });
    return "";
  }
  const aio = op === "aio_read" || op === "aio_write";
  if (op !== "read" && op !== "write" && !aio) return `command "${op ?? ""}" not found (only read, write, aio_read, aio_write and flush are simulated)\n`;
  const r = parseRequest(aio ? (op.slice(4) as "read" | "write") : op, argv);
  if (typeof r === "string") return r;
  if (!aio) return yield* qemuIoRequest(ctx, blk, r);
  if (temporary) return `blocksim simulates ${op} on a BlockBackend only (a drive's id, or -d and a guest device), not on a node name\n`;
  // blk_aio_prwv: the request's coroutine is entered at once, up to its first yield (or its queue).
  const sim = ctx.sim;
  // qemu-io's aio commands account their request on the BlockBackend (query-blockstats); read and write do not
  const acct = blk.acct.start(r.op === "read" ? "rd" : "wr", r.bytes, sim.now);
  const proc = sim.spawn(`qemu-io ${op} ${r.offset}+${r.bytes} on ${device}`, (function* () {
    const out = yield* qemuIoRequest(ctx, blk, r);
    blk.acct.end(acct, out.startsWith(`${r.op} failed: `), sim.now); // a failed request's report (qemuIoRequest)
    sim.record("qemu-io", "output", { device, command, output: out });
  })(), { daemon: true, coroutine: true, context: backendContext(blk).id }); // blk_aio_prwv: in the backend's AioContext
  sim.enterNow(proc);
  return "";
}

/** One HMP command: `args` is the rest of the line after the name; returns the printed text. */
export interface HmpCommand {
  /** What HMP's argument parser wants first, for its "NAME: X expected" message (undefined: nothing). */
  expects?: string;
  run(ctx: QemuContext, args: string): string | Process<string>;
}

/** What HMP's argument parser prints for a missing argument. */
const missingArgument = (name: string, expects: string) => `${name}: ${expects} expected\r\nTry "help ${name}" for more information\r\n`;

/** An error HMP prints: its text, with the line end HMP adds. */
const printed = (e: unknown) => `${e instanceof QmpError ? e.desc : (e as Error).message}\r\n`;

/** key=value,key=value as QemuOpts parses it (no escaping of commas). */
function parseOpts(text: string): Map<string, string> {
  const out = new Map<string, string>();
  for (const part of text.split(",")) {
    if (part === "") continue;
    const eq = part.indexOf("=");
    out.set(eq < 0 ? part : part.slice(0, eq), eq < 0 ? "on" : part.slice(eq + 1));
  }
  return out;
}

function driveAdd(ctx: QemuContext, args: string): string {
  const words = args.trim().split(/\s+/);
  const optsText = words[0] === "-n" ? words[2] : words[1];
  if (optsText === undefined) return "drive_add: string expected\r\nTry \"help drive_add\" for more information\r\n";
  const opts = parseOpts(optsText);
  const iface = opts.get("if") ?? "ide";
  if (iface !== "none") return `blocksim simulates drive_add with if=none only, got if=${iface}\r\n`;
  const id = opts.get("id");
  if (id === undefined) return "blocksim simulates drive_add with an id= only\r\n";
  if (ctx.graph.backends().some((b) => b.name === id)) return `Duplicate ID '${id}' for drive\r\n`;
  const driver = opts.get("driver") ?? opts.get("format") ?? "raw";
  const a: Record<string, unknown> = { driver };
  if (driver === "null-co") {
    if (opts.has("size")) a.size = Number(opts.get("size"));
    if (opts.has("latency-ns")) a["latency-ns"] = Number(opts.get("latency-ns"));
    if (opts.has("read-zeroes")) a["read-zeroes"] = opts.get("read-zeroes") === "on";
  } else {
    a.file = opts.get("file");
  }
  if (opts.get("read-only") === "on") a["read-only"] = true;
  try {
    const node = addNode(ctx, a, opts.get("node-name"));
    ctx.graph.createBackend({ name: id, issuer: id, root: node, queueWhenDrained: true, perms: DRIVE_PERMS });
  } catch (e) {
    return printed(e);
  }
  return "OK\r\n";
}

function* driveDel(ctx: QemuContext, args: string): Process<string> {
  const id = args.trim();
  const blk = namedBackend(ctx, id);
  if (!blk) {
    if (!ctx.graph.findNode(id)) return `Device '${id}' not found\r\n`;
    try {
      blockdevDel(ctx, id);
    } catch (e) {
      return printed(e);
    }
    return "";
  }
  const root = blk.root;
  if (root) {
    const blocked = root.opBlocker("DRIVE_DEL");
    if (blocked) return printed(blocked);
    yield* removeMedium(ctx, blk);
  }
  ctx.graph.removeBackend(blk);
  return "";
}

/**
 * qemu-io's command(): a command that writes (write, given its two
 * arguments) first extends its BlockBackend's permissions by write
 * (blk_set_perm, sharing as before). A conflict is printed on the monitor
 * and the command does not run; an extension that succeeds stays, as QEMU's
 * hmp_qemu_io leaves it (a drive_add'ed backend keeps write). Returns the
 * printed text of a refusal.
 */
function askPermission(blk: BlockBackend, command: string): string | undefined {
  const argv = words(command);
  // qemu-io's write and aio_write both declare BLK_PERM_WRITE
  if ((argv[0] !== "write" && argv[0] !== "aio_write") || argv.length < 3) return undefined;
  const current = linkPermsOf(blk.link) ?? { perm: 0, shared: PERM_ALL, user: blk.name !== "" ? `block device '${blk.name}'` : "an unnamed block device", childName: "root" };
  if (current.perm & PERM_WRITE) return undefined;
  try {
    changeLinkPerms(blk.link, { ...current, perm: current.perm | PERM_WRITE });
  } catch (e) {
    if (e instanceof PermissionDenied) return printed(e);
    throw e;
  }
  return undefined;
}

/** qemu-io [-d] DEVICE "COMMAND" (its report goes to QEMU's standard output; a refused permission or an unknown DEVICE to the monitor: see the header). */
function* qemuIoCommand(ctx: QemuContext, args: string): Process<string> {
  const argv = words(args);
  const qdev = argv[0] === "-d";
  if (qdev) argv.shift();
  // HMP's parser ("-d:-d,device:B,command:s") names what it is missing: a device, then the command string.
  if (argv.length === 0) return missingArgument("qemu-io", "block device name");
  if (argv.length === 1) return missingArgument("qemu-io", "string");
  if (argv.length !== 2) throw genericError("qemu-io: expected DEVICE \"COMMAND\"");
  if (qdev) {
    // -d: a guest device by qdev id or QOM path; its disk's BlockBackend (sim/qmp/device-commands.ts)
    const blk = diskByQomPath(ctx, argv[0]);
    if (blk === undefined) return `Error: Device '${argv[0]}' not found\r\n`;
    if (blk === "no-backend" || !blk.root) return "Error: Device does not have a block device backend\r\n";
    const refused = askPermission(blk, argv[1]);
    if (refused !== undefined) return refused;
    const out = yield* qemuIo(ctx, blk, argv[1], false, argv[0]);
    recordOutput(ctx, argv[0], argv[1], out);
    return "";
  }
  let node: BlockNode;
  try {
    node = deviceNode(ctx, argv[0]);
  } catch {
    // QEMU 7.2's hmp_qemu_io looks the name up as a BlockBackend, then as a node name only, and prints
    // that lookup's error as the command's output (goldens/hmp_qemu_io_errors).
    return `Error: Cannot find device='' nor node-name='${argv[0]}'\r\n`;
  }
  // On a node name (no BlockBackend of that name) QEMU 7.2's hmp_qemu_io attaches a temporary
  // BlockBackend to the node for the command (taking nothing, sharing all; no drain; request queuing on,
  // as blk_new leaves it) and lets go of it after (blk_unref: two drained sections, so a job above the
  // node pauses and resumes twice, refused or not: goldens/cbw_read_error, goldens/perm_cbw_source_write).
  const named = ctx.graph.backends().find((b) => b.name === argv[0]);
  const temporary = named ? null : ctx.graph.createBackend({ issuer: "qemu-io", root: node, queueWhenDrained: true, perms: { perm: 0, shared: PERM_ALL } });
  let out: string;
  try {
    const refused = askPermission((named ?? temporary)!, argv[1]);
    if (refused !== undefined) return refused;
    out = yield* qemuIo(ctx, (named ?? temporary)!, argv[1], temporary !== null, argv[0]);
  } finally {
    temporary?.unref();
  }
  recordOutput(ctx, argv[0], argv[1], out);
  return "";
}

/** qemu-io's printed text as a trace record; an aio command that started quietly has none yet (its request records its output when it ends). */
function recordOutput(ctx: QemuContext, device: string, command: string, out: string): void {
  if (out !== "" || !/^aio_/.test(command)) ctx.sim.record("qemu-io", "output", { device, command, output: out });
}

export const HMP_HANDLERS: Record<string, HmpCommand> = {
  "qemu-io": { run: qemuIoCommand },
  drive_add: { expects: "string", run: driveAdd },
  drive_del: { expects: "block device name", run: driveDel },
};

export const HMP_COMMANDS: Record<string, Command<QemuContext>> = {
  "human-monitor-command": {
    args: { "command-line": { type: "str" }, "cpu-index": { type: "int", optional: true } },
    run: function* (ctx, a): Process<string> {
      const line = (a["command-line"] as string).trim();
      const space = line.search(/\s/);
      const name = space < 0 ? line : line.slice(0, space);
      const rest = space < 0 ? "" : line.slice(space + 1);
      if (line === "") return ""; // an empty line is no command
      const cmd = Object.hasOwn(HMP_HANDLERS, name) ? HMP_HANDLERS[name] : undefined;
      if (!cmd) return `unknown command: '${name}'\r\n`;
      if (cmd.expects && rest.trim() === "") return missingArgument(name, cmd.expects);
      const out = cmd.run(ctx, rest);
      return typeof out === "string" ? out : yield* out;
    },
  },
};
