/**
 * human-monitor-command: the HMP commands iotests send over QMP. Only
 * `qemu-io DEVICE "COMMAND"` is simulated, with qemu-io's `read` and `write`
 * (-P pattern, -q, -z for write-zeroes) and `flush`, as iotest 124 uses them
 * (`qemu-io drive0 "write -P 0x5 0 64k"`). The request goes straight to the
 * named node (QEMU attaches a temporary BlockBackend to it) and the command
 * returns once it has finished. Its reply is "" whatever happened: QEMU 7.2's
 * qemu-io prints its report on QEMU's standard output, not to the monitor
 * (goldens/incremental_bitmap_errors.json); blocksim puts it in the trace
 * (source "qemu-io").
 *
 * Patterns: a written cluster remembers the pattern of the last qemu-io
 * write to it (the simulated disks keep versions, not bytes), so
 * `read -P` verifies per cluster.
 */
import type { BlockNode } from "../block/index.js";
import { IoError, strerror, type ClusterVersion } from "../disk/index.js";
import { genericError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { deviceNode, type QemuContext } from "./context.js";
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

/** Runs one qemu-io command; returns what qemu-io would print. */
function* qemuIo(ctx: QemuContext, node: BlockNode, command: string): Process<string> {
  const argv = words(command);
  const op = argv.shift();
  if (op === "flush") {
    yield* node.flush("qemu-io");
    return "";
  }
  if (op !== "read" && op !== "write") return `command "${op ?? ""}" not found (only read, write and flush are simulated)\n`;
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
  if (offset + bytes > node.sizeBytes || bytes < 1) return `${op} failed: Input/output error\n`;
  const seen = patterns.get(ctx) ?? new Map<string, number>();
  patterns.set(ctx, seen);
  try {
    if (op === "write") {
      if (zeroes) yield* node.writeZeroes(offset, bytes, "qemu-io");
      else yield* node.write(offset, bytes, "qemu-io");
      if (!zeroes) for (const v of node.content(offset, bytes).versions) seen.set(patternKey(v), pattern ?? 0xcd);
    } else {
      const got = yield* node.read(offset, bytes, "qemu-io");
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
  return quiet ? "" : `${op === "write" ? "wrote" : "read"} ${bytes}/${bytes} bytes at offset ${offset}\n`;
}

export const HMP_COMMANDS: Record<string, Command<QemuContext>> = {
  "human-monitor-command": {
    args: { "command-line": { type: "str" }, "cpu-index": { type: "int", optional: true } },
    run: (ctx, a) => (function* (): Process<string> {
      const argv = words(a["command-line"] as string);
      const cmd = argv.shift();
      if (cmd !== "qemu-io") return `unknown command: '${cmd ?? ""}'\r\n`;
      if (argv[0] === "-d") argv.shift();
      if (argv.length !== 2) throw genericError("qemu-io: expected DEVICE \"COMMAND\"");
      let node: BlockNode;
      try {
        node = deviceNode(ctx, argv[0]);
      } catch {
        ctx.sim.record("qemu-io", "output", { device: argv[0], output: `Device '${argv[0]}' not found` });
        return "";
      }
      // On a node name (no BlockBackend of that name) QEMU attaches a temporary BlockBackend to the node
      // for the command and drops it after; attaching and detaching each drain the node (a job above it
      // pauses and resumes twice, as QEMU 7.2 shows: goldens/cbw_read_error).
      const temporary = !ctx.graph.backends().some((b) => b.name === argv[0]);
      if (temporary) {
        yield* ctx.graph.drainedBegin(node);
        ctx.graph.drainedEnd(node);
      }
      const out = yield* qemuIo(ctx, node, argv[1]);
      if (temporary) {
        yield* ctx.graph.drainedBegin(node);
        ctx.graph.drainedEnd(node);
      }
      ctx.sim.record("qemu-io", "output", { device: argv[0], command: argv[1], output: out });
      return "";
    })(),
  },
};
