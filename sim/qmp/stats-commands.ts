/**
 * query-blockstats (QEMU 7.2 block/qapi.c qmp_query_blockstats), what
 * libvirt's `virsh domblkstat`, `domblkinfo` and `domstats --block` read.
 *
 * Without `query-nodes`: one entry per BlockBackend that has a name (a
 * drive_add'ed drive) or a guest device (its QOM path as `qdev`), in
 * creation order; a job's BlockBackend has neither. Its `stats` are the
 * device's accounting (sim/block/accounting.ts) and its node's highest
 * write; `node-name`, `parent` (the node's file child) and `backing` (the
 * COW backing, or a filter's filtered child) describe the node below it,
 * skipping the implicit filters of mirror, commit and stream. With
 * `query-nodes: true`: one entry per node, in the order QEMU made them,
 * with only the highest write and `parent`.
 *
 * blocksim's raw and qcow2 nodes sit on a simulated device, not on a
 * protocol node: their `parent` is the file node QEMU opens for
 * `file: {driver: file, …}`, named `#block…` (or the name a caller gives
 * with nameFileNode, as the libvirt stand-in does for libvirt's storage
 * nodes), its highest write a raw node's, or where a qcow2's data lies in
 * its file (sim/block/qcow2-layout.ts). Its discard counters
 * (driver-specific) stay 0: a discard reaches the file only with
 * discard=unmap on every node above it, which blocksim does not model.
 */
import { deviceAttached, type AcctCounters, type BlockAcctStats, type BlockBackend, type BlockNode } from "../block/index.js";
import type { Device } from "../disk/index.js";
import type { QemuContext } from "./context.js";
import { diskQomPath } from "./device-commands.js";
import type { Command } from "./monitor.js";

/** Names the file node of the format nodes on `device` (default: `#block` and a number). */
export function nameFileNode(ctx: QemuContext, device: Device, name: string): void {
  ctx.fileNodeNames.set(device, name);
}

/** An implicit-looking number apart from the graph's own #blockN (whatever the number, goldens read #block<id>). */
const FILE_NODE_BASE = 100000;

function fileNodeName(ctx: QemuContext, device: Device): string {
  const m = ctx.fileNodeNames;
  let name = m.get(device);
  if (name === undefined) m.set(device, (name = `#block${FILE_NODE_BASE + m.size}`));
  return name;
}

/** The implicit filters a BlockBackend-level entry looks through (QEMU's bs->implicit: a job's filter without filter-node-name). */
const IMPLICIT_FILTERS = new Set(["mirror_top", "commit_top", "copy-on-read"]);

function isImplicit(n: BlockNode): boolean {
  return n.driver === "filter" && n.name.startsWith("#block") && IMPLICIT_FILTERS.has(n.filterDriver ?? "");
}

const ZERO: AcctCounters = { bytes: 0, operations: 0, failed: 0, invalid: 0, merged: 0, totalTimeNs: 0 };

/** BlockDeviceStats in QAPI's member order; `acct` undefined for a node-level entry (all zero, accounting off). */
function deviceStats(wrHighestOffset: number, acct: BlockAcctStats | undefined, nowNs: number): Record<string, unknown> {
  const rd = acct?.rd ?? ZERO, wr = acct?.wr ?? ZERO, fl = acct?.flush ?? ZERO, un = acct?.unmap ?? ZERO;
  return {
    rd_bytes: rd.bytes, wr_bytes: wr.bytes, unmap_bytes: un.bytes,
    rd_operations: rd.operations, wr_operations: wr.operations, flush_operations: fl.operations, unmap_operations: un.operations,
    rd_total_time_ns: rd.totalTimeNs, wr_total_time_ns: wr.totalTimeNs, flush_total_time_ns: fl.totalTimeNs, unmap_total_time_ns: un.totalTimeNs,
    wr_highest_offset: wrHighestOffset,
    rd_merged: rd.merged, wr_merged: wr.merged, unmap_merged: un.merged,
    ...(acct?.lastAccessNs !== undefined ? { idle_time_ns: nowNs - acct.lastAccessNs } : {}),
    failed_rd_operations: rd.failed, failed_wr_operations: wr.failed, failed_flush_operations: fl.failed, failed_unmap_operations: un.failed,
    invalid_rd_operations: rd.invalid, invalid_wr_operations: wr.invalid, invalid_flush_operations: fl.invalid, invalid_unmap_operations: un.invalid,
    account_invalid: acct?.accountInvalid ?? false, account_failed: acct?.accountFailed ?? false,
    timed_stats: [],
  };
}

/** The entry of the file node below a raw or qcow2 node (file-posix: driver-specific discard counters). */
function fileEntry(ctx: QemuContext, n: BlockNode): Record<string, unknown> {
  return {
    "node-name": fileNodeName(ctx, n.device!),
    stats: deviceStats(n.driver === "qcow2" ? n.fileWrHighestOffset : n.wrHighestOffset, undefined, 0),
    "driver-specific": { driver: "file", "discard-nb-ok": 0, "discard-nb-failed": 0, "discard-bytes-ok": 0 },
  };
}

/**
 * QEMU bdrv_query_bds_stats: a node's entry. `parent` is its primary child
 * (a format node's file, a filter's filtered child, mirror_top's too);
 * `blkLevel` adds `backing` (bdrv_filter_or_cow_bs: a qcow2's backing, a
 * filter's filtered child; none for raw) and skips implicit filters.
 */
function nodeEntry(ctx: QemuContext, node: BlockNode, blkLevel: boolean): Record<string, unknown> {
  let n = node;
  while (blkLevel && isImplicit(n) && n.file) n = n.file;
  const out: Record<string, unknown> = { "node-name": n.name, stats: deviceStats(n.wrHighestOffset, undefined, 0) };
  if (n.device) out.parent = fileEntry(ctx, n);
  else if (n.driver === "filter" && n.file) out.parent = nodeEntry(ctx, n.file, blkLevel);
  const below = n.driver === "filter" ? n.file : n.backing;
  if (blkLevel && below) out.backing = nodeEntry(ctx, below, blkLevel);
  return out;
}

/** A BlockBackend's entry: its node's, with the device's accounting. */
function backendEntry(ctx: QemuContext, blk: BlockBackend): Record<string, unknown> {
  const root = blk.root;
  const base = root ? nodeEntry(ctx, root, true) : {};
  const qdev = diskQomPath(ctx, blk);
  const inner = root ? (base.stats as Record<string, unknown>).wr_highest_offset as number : 0;
  return {
    device: blk.name,
    ...(qdev !== undefined ? { qdev } : {}),
    ...base,
    stats: deviceStats(inner, blk.acct, ctx.sim.now),
  };
}

/**
 * Every node in the order QEMU names them (graph_bdrv_states): a format
 * node's file before it (bdrv_open_inherit opens `file` first), a blkdebug's
 * inline image after it (the driver opens its image once the filter has its name).
 */
function nodeOrder(ctx: QemuContext): { node: BlockNode; file: boolean }[] {
  const nodes = ctx.graph.nodes();
  const inlineImage = new Set(nodes.filter((n) => n.filterDriver === "blkdebug" && n.file?.name.startsWith("#block")).map((n) => n.file!));
  const out: { node: BlockNode; file: boolean }[] = [];
  for (const n of nodes) {
    if (inlineImage.has(n)) continue;
    if (n.device) out.push({ node: n, file: true });
    out.push({ node: n, file: false });
    if (n.filterDriver === "blkdebug" && n.file && inlineImage.has(n.file)) out.push({ node: n.file, file: false });
  }
  return out;
}

export const STATS_COMMANDS: Record<string, Command<QemuContext>> = {
  "query-blockstats": {
    args: { "query-nodes": { type: "bool", optional: true } },
    run: (ctx, a) => {
      if (a["query-nodes"] === true) return nodeOrder(ctx).map(({ node, file }) => (file ? fileEntry(ctx, node) : nodeEntry(ctx, node, false)));
      return ctx.graph.backends().filter((b) => b.name !== "" || deviceAttached(b)).map((b) => backendEntry(ctx, b));
    },
  },
};
