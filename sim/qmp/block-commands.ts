/**
 * Block graph commands: blockdev-add, blockdev-del, query-named-block-nodes
 * and the simple dirty-bitmap commands.
 *
 * blockdev-add drivers: null-co (size, latency-ns, read-zeroes), raw and
 * qcow2 on a simulated device (`file`: the device's name, or
 * {"driver": "file", "filename": <device name>}), qcow2 with `backing`
 * (a node name, null, or an inline qcow2 node's options), and blkdebug over an inline image with
 * `inject-error` rules on writes (event "pwritev"; errno 5 = EIO, 28 = ENOSPC;
 * `once`) — the shapes the ../shared/conformance recordings use.
 */
import { IoError, type Device, type Errno } from "../disk/index.js";
import { openQcow2FromMainLoop, type BlockNode } from "../block/index.js";
import { genericError, QmpError } from "../jobs/errors.js";
import { aioCoScheduleSelf, type Process } from "../scheduler/index.js";
import type { ArgSpec } from "./args.js";
import { QemuCrash } from "./process.js";
import { dirtyBitmapsInfo } from "./bitmap-commands.js";
import { nodeByName, type QemuContext } from "./context.js";
import type { Command } from "./monitor.js";

const ERRNO_BY_NUMBER: Record<number, Errno> = { 1: "EPERM", 5: "EIO", 22: "EINVAL", 28: "ENOSPC", 123: "ENOMEDIUM", 125: "ECANCELED" };

const FILE_REF = { type: "any" as const };

/** null-co's size when blockdev-add gives none (QEMU 7.2 null_file_open: 1 GiB). */
const NULL_CO_DEFAULT_SIZE = 1 << 30;

const BLOCKDEV_ADD: ArgSpec = {
  driver: { type: { enum: ["null-co", "raw", "qcow2", "blkdebug"] } },
  "node-name": { type: "str", optional: true },
  size: { type: "int", optional: true },
  "latency-ns": { type: "uint64", optional: true },
  "read-zeroes": { type: "bool", optional: true },
  file: { ...FILE_REF, optional: true },
  backing: { type: "any", optional: true },
  image: { type: "any", optional: true },
  "inject-error": { type: "any", optional: true },
  "cache": { type: "any", optional: true },
  "read-only": { type: "bool", optional: true },
  "discard": { type: "str", optional: true },
};

function deviceOf(ctx: QemuContext, file: unknown, who: string): Device {
  const name = typeof file === "string" ? file : (file as { filename?: unknown } | null)?.filename;
  const dev = typeof name === "string" ? ctx.devices.get(name) : undefined;
  if (!dev) {
    const known = [...ctx.devices.keys()].join(", ") || "none declared";
    throw genericError(`${who}: 'file' must name a simulated device (known devices: ${known}), got ${JSON.stringify(file)}`);
  }
  return dev;
}

/** Creates the node a blockdev-add (or an inline `image`, or drive_add) describes; `name` undefined: an implicit node. */
export function addNode(ctx: QemuContext, a: Record<string, unknown>, name: string | undefined): BlockNode {
  const make = (cfg: Parameters<typeof ctx.graph.createNode>[0]) => {
    const node = name === undefined ? ctx.graph.createImplicitNode(cfg) : ctx.graph.createNode(cfg);
    node.openOptions = { ...a };
    node.readOnly = a["read-only"] === true;
    return node;
  };
  const nodeName = name ?? "";
  try {
    switch (a.driver) {
      case "null-co": {
        // QEMU 7.2 null_file_open: the size goes through QemuOpts, where a negative one trips error_abort;
        // latency-ns is read back as an int64, so a negative (or >= 2^63) one is refused.
        const size = (a.size as number | undefined) ?? NULL_CO_DEFAULT_SIZE;
        if (size < 0) throw new QemuCrash("SIGABRT", "blockdev-add of null-co with a negative size: parse_option_size: Parameter 'size' expects a non-negative number below 2^64 (error_abort)");
        const latency = a["latency-ns"] as number | undefined;
        if (latency !== undefined && (latency < 0 || latency >= 2 ** 63)) throw genericError("latency-ns is invalid");
        return make({ name: nodeName, driver: "null-co", sizeBytes: size, latencyNs: latency, readZeroes: a["read-zeroes"] as boolean | undefined });
      }
      case "raw":
        return make({ name: nodeName, driver: "raw", device: deviceOf(ctx, a.file, "raw") });
      case "qcow2": {
        const device = deviceOf(ctx, a.file, "qcow2");
        ctx.graph.checkOpen(name, device);
        // QEMU 7.2 qcow2_open reads the image's header and tables in a nested poll of the main loop, where
        // running jobs go on; then bdrv_open_backing_file opens an inline backing (or looks up a named one).
        openQcow2FromMainLoop(ctx.sim, device, name ?? device.name);
        const inline = typeof a.backing === "object" && a.backing !== null;
        const backing = inline ? addNode(ctx, a.backing as Record<string, unknown>, backingName(a.backing as Record<string, unknown>))
          : a.backing === undefined || a.backing === null ? null : nodeByName(ctx, a.backing);
        try {
          return make({ name: nodeName, driver: "qcow2", device, backing });
        } catch (e) {
          if (inline && backing) ctx.graph.releaseNode(backing);
          throw e;
        }
      }
      case "blkdebug": {
        const image = a.image;
        if (image === undefined || image === null) throw genericError("Parameter 'image' is missing");
        // A BlockdevRef: the options of a node opened for it, or the name of a node that already exists
        // (which then has the filter as a parent: blockdev-del of it is "in use" until the filter goes).
        const inner = typeof image === "string" ? nodeByName(ctx, image) : addNode(ctx, image as Record<string, unknown>, undefined);
        const node = make({ name: nodeName, driver: "filter", file: inner, filterDriver: "blkdebug" });
        for (const rule of (a["inject-error"] as Record<string, unknown>[] | undefined) ?? []) addInjectedError(node, rule);
        return node;
      }
    }
  } catch (e) {
    throw e instanceof QmpError || e instanceof QemuCrash || !(e instanceof Error) ? e : genericError(e.message);
  }
  throw genericError(`Parameter 'driver' does not accept value '${String(a.driver)}'`);
}

/** An inline node's own node-name, if it has one (only the root of blockdev-add must be named). */
function backingName(opts: Record<string, unknown>): string | undefined {
  const n = opts["node-name"];
  return n === undefined ? undefined : String(n);
}

const IOTYPES = ["read", "write", "write-zeroes", "discard", "flush", "block-status"] as const;

/**
 * blkdebug inject-error: fail matching requests with errno (once, or every
 * time). A rule is armed by its event: `pwritev` at the first write through
 * the node, `none` at creation (QEMU fires it when the node opens). Then it
 * fails requests of its `iotype` (default: every type), after one trip
 * through the main loop unless `immediately`.
 */
function addInjectedError(node: BlockNode, rule: Record<string, unknown>): void {
  const event = rule.event;
  if (event !== "pwritev" && event !== "none") throw genericError(`blkdebug: inject-error on event '${String(event)}' is not simulated (use 'pwritev' or 'none')`);
  const errno = ERRNO_BY_NUMBER[(rule.errno as number | undefined) ?? 5];
  if (!errno) throw genericError(`blkdebug: errno ${String(rule.errno)} is not simulated (use 5 for EIO or 28 for ENOSPC)`);
  const iotype = rule.iotype as string | undefined;
  if (iotype !== undefined && !(IOTYPES as readonly string[]).includes(iotype)) throw genericError(`Parameter 'iotype' does not accept value '${String(iotype)}'`);
  const once = rule.once === true, immediately = rule.immediately === true;
  let armed = event === "none", fired = false;
  // sector: only requests covering that 512-byte sector fail
  const sector = rule.sector as number | undefined;
  const matches = (op: string, offset: number, bytes: number) =>
    (iotype === undefined || iotype === op) && (sector === undefined || (sector * 512 < offset + bytes && offset < sector * 512 + 512));
  const hook = function* (req: { op: string; offset: number; bytes: number }): Process<void> {
    if (event === "pwritev" && req.op === "write") armed = true;
    if (!armed || (once && fired) || !matches(req.op, req.offset, req.bytes)) return;
    fired = true;
    node.graph.sim.record(node.name, "fault", { op: req.op, offset: req.offset, bytes: req.bytes, errno });
    // QEMU 7.2 rule_check: the request's coroutine aio_co_schedule's itself into its own context and yields,
    // so the error comes back from a bottom half, before the reply to the command that issued the request.
    if (!immediately) yield* aioCoScheduleSelf(node.graph.sim, `the bottom half that re-enters a request blkdebug ${node.name} fails`);
    throw new IoError(errno, node.name, req.op as "read", req.offset, req.bytes);
  };
  node.addBeforeWriteHook(hook);
  node.addBeforeReadHook(hook);
  node.addBeforeFlushHook(hook);
}

function nodeInfo(n: BlockNode): Record<string, unknown> {
  const drv = n.formatName;
  const bitmaps = dirtyBitmapsInfo(n);
  // QEMU reports the backing file the image names, so a job's filter between it and its backing does not show.
  const backing = n.backing?.skipFilters();
  return {
    "node-name": n.name,
    drv,
    file: n.file?.name ?? n.name,
    ...(backing ? { backing_file: backing.name, backing_file_depth: n.chain().filter((x) => x.driver !== "filter").length - 1 } : {}),
    ro: n.readOnly,
    encrypted: false,
    image: { "virtual-size": n.sizeBytes, format: drv },
    ...(bitmaps ? { "dirty-bitmaps": bitmaps } : {}),
  };
}

export const BLOCK_COMMANDS: Record<string, Command<QemuContext>> = {
  "blockdev-add": {
    args: BLOCKDEV_ADD,
    run: (ctx, a) => {
      // qmp_blockdev_add: after the schema's checks, a top-level node must be named
      if (a["node-name"] === undefined) throw genericError("'node-name' must be specified for the root node");
      const node = addNode(ctx, a, a["node-name"] as string);
      node.monitorOwned = true;
    },
  },
  "blockdev-del": {
    args: { "node-name": { type: "str" } },
    run: (ctx, a) => blockdevDel(ctx, a["node-name"] as string),
  },
  "query-named-block-nodes": {
    args: { flat: { type: "bool", optional: true } },
    run: (ctx) => ctx.graph.nodes().map(nodeInfo),
  },
};

/**
 * QMP blockdev-del, with QEMU 7.2's checks in its order: a BlockBackend on
 * the node (a device's, or a job's own), an op blocker (a job's), a node
 * the monitor does not own (a job's filter, a drive_add node), any other
 * reference (a parent node). The node then closes, and so do children only
 * it held.
 */
export function blockdevDel(ctx: QemuContext, name: string): void {
  const node = ctx.graph.findNode(name);
  if (!node) throw genericError(`Failed to find node with node-name='${name}'`);
  if (ctx.graph.hasBlk(node)) throw genericError(`Node ${name} is in use`);
  const blocked = node.opBlocker("DRIVE_DEL");
  if (blocked) throw genericError(blocked.message);
  if (!node.monitorOwned) throw genericError(`Node ${name} is not owned by the monitor`);
  if (node.parents().length > 0) throw genericError(`Block device ${node.deviceOrNodeName()} is in use`);
  node.monitorOwned = false;
  ctx.graph.releaseNode(node);
}
