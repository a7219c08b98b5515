/**
 * Dirty-bitmap commands (QEMU 7.2 block/monitor/bitmap-qmp-cmds.c) and their
 * transaction actions (blockdev.c), with QEMU's errors.
 *
 * Every command but add finds its bitmap as block_dirty_bitmap_lookup does
 * ("Node 'X' not found", "Dirty bitmap 'Y' not found") and refuses a busy
 * bitmap (one a backup has frozen, or a transaction is removing). As
 * transaction actions, add, clear, enable, disable and merge act in
 * prepare and are undone by abort; remove only marks the bitmap busy in
 * prepare and drops it in commit.
 */
import { busyError, DirtyBitmap, type BlockNode } from "../block/index.js";
import { genericError, QmpError } from "../jobs/errors.js";
import type { ArgSpec } from "./args.js";
import { namedBackend, type QemuContext } from "./context.js";
import type { Command } from "./monitor.js";
import { QemuCrash } from "./process.js";
import type { ActionState } from "./transaction.js";

/** Longest bitmap name QEMU accepts (BDRV_BITMAP_MAX_NAME_SIZE). */
const MAX_NAME = 1023;

const NODE_NAME: ArgSpec = { node: { type: "str" }, name: { type: "str" } };

export const BITMAP_ADD_ARGS: ArgSpec = {
  ...NODE_NAME,
  granularity: { type: "uint32", optional: true },
  persistent: { type: "bool", optional: true },
  disabled: { type: "bool", optional: true },
};

export const BITMAP_MERGE_ARGS: ArgSpec = {
  node: { type: "str" },
  target: { type: "str" },
  bitmaps: { type: { list: "any" } },
};

/** QEMU block_dirty_bitmap_lookup: the node (by node or device name) and its bitmap, or QEMU's refusal (returned: see Command). */
function findBitmap(ctx: QemuContext, node: unknown, name: unknown): { node: BlockNode; bitmap: DirtyBitmap } | QmpError {
  const blk = namedBackend(ctx, node);
  const n = blk?.root ?? (typeof node === "string" ? ctx.graph.findNode(node) : undefined);
  if (!n) return genericError(`Node '${String(node)}' not found`);
  const bitmap = n.bitmap(String(name));
  if (!bitmap) return genericError(`Dirty bitmap '${String(name)}' not found`);
  return { node: n, bitmap };
}

/** The same, throwing the refusal. */
export function lookupBitmap(ctx: QemuContext, node: unknown, name: unknown): { node: BlockNode; bitmap: DirtyBitmap } {
  const found = findBitmap(ctx, node, name);
  if (found instanceof QmpError) throw found;
  return found;
}

/** bdrv_dirty_bitmap_check: throws QEMU's error for a busy bitmap. */
function checkNotBusy(b: DirtyBitmap): void {
  const busy = busyError(b);
  if (busy) throw genericError(busy);
}

/** bdrv_get_default_bitmap_granularity: the image's cluster size within [4 KiB, 64 KiB]; 64 KiB where the driver has none. */
export function defaultGranularity(node: BlockNode): number {
  const n = node.skipFilters();
  return n.driver === "qcow2" ? Math.min(65536, Math.max(4096, n.clusterSizeBytes)) : 65536;
}

/** qmp_block_dirty_bitmap_add; returns the node and the new bitmap. */
function addBitmap(ctx: QemuContext, a: Record<string, unknown>): { node: BlockNode; bitmap: DirtyBitmap } {
  const name = a.name as string;
  if (name === "") throw genericError("Bitmap name cannot be empty");
  const node = typeof a.node === "string" ? ctx.graph.findNode(a.node) ?? namedBackend(ctx, a.node)?.root : undefined;
  if (!node) throw genericError(`Cannot find device='${String(a.node)}' nor node-name='${String(a.node)}'`);
  let granularity = defaultGranularity(node);
  if (a.granularity !== undefined) {
    const g = a.granularity as number;
    if (g < 512 || (g & (g - 1)) !== 0) throw genericError("Granularity must be power of 2 and at least 512");
    granularity = g;
  }
  if (a.persistent === true) {
    if (node.driver !== "qcow2") throw genericError(`Can't store persistent bitmaps to ${node.deviceOrNodeName()}: Operation not supported`);
    if (node.bitmap(name)) throw genericError(`Can't make bitmap '${name}' persistent in '${node.deviceOrNodeName()}': Bitmap with the same name is already stored`);
  }
  if (name.length > MAX_NAME) throw genericError(`Bitmap name too long: ${name}`);
  if (node.bitmap(name)) throw genericError(`Bitmap already exists: ${name}`);
  const bitmap = node.addBitmap(name, granularity);
  if (a.disabled === true) bitmap.disable();
  bitmap.persistent = a.persistent === true;
  return { node, bitmap };
}

/** What QEMU 7.2 hits when a merge names no source bitmap (hbitmap_free of a backup no merge made). */
const EMPTY_MERGE = "block-dirty-bitmap-merge with an empty bitmaps list: hbitmap_free(NULL) dereferences a null pointer";

/**
 * block_dirty_bitmap_merge: each source in turn into the target, which is
 * put back as it was when one fails. Per source, in QEMU 7.2's order (its
 * lookup, then bdrv_merge_dirty_bitmap): not found, the target busy, the
 * source busy (frozen by a backup until its job finalizes), the sizes. With
 * no source at all QEMU 7.2 frees a backup it never made and crashes: at once
 * as a command, at commit in a transaction (`inTransaction`: the action's commit).
 */
function mergeBitmaps(ctx: QemuContext, a: Record<string, unknown>, inTransaction = false): DirtyBitmap {
  const { node, bitmap: dst } = lookupBitmap(ctx, a.node, a.target);
  const sources = a.bitmaps as unknown[];
  if (sources.length === 0 && !inTransaction) throw new QemuCrash("SIGSEGV", EMPTY_MERGE);
  const before = dst.snapshot();
  try {
    for (const [i, item] of sources.entries()) {
      let src: DirtyBitmap | undefined;
      if (typeof item === "string") {
        src = node.bitmap(item);
        if (!src) throw genericError(`Dirty bitmap '${item}' not found`);
      } else if (item !== null && typeof item === "object" && !Array.isArray(item)) {
        const ext = item as Record<string, unknown>;
        if (typeof ext.node !== "string" || typeof ext.name !== "string") throw genericError(`Invalid parameter type for 'bitmaps[${i}]', expected: BlockDirtyBitmap`);
        src = lookupBitmap(ctx, ext.node, ext.name).bitmap;
      } else {
        throw genericError("Invalid parameter type for 'null', expected: BlockDirtyBitmapOrStr"); // a list element has no name in QEMU's visitor
      }
      checkNotBusy(dst);
      checkNotBusy(src);
      try {
        dst.mergeFrom(src);
      } catch (e) {
        throw genericError((e as Error).message);
      }
    }
  } catch (e) {
    dst.restore(before);
    throw e;
  }
  return dst;
}

function removeBitmap(ctx: QemuContext, a: Record<string, unknown>): { node: BlockNode; bitmap: DirtyBitmap } {
  const found = lookupBitmap(ctx, a.node, a.name);
  checkNotBusy(found.bitmap);
  return found;
}

/** A command that finds node/name's bitmap, refuses it while busy (QEMU's message), and applies `op`. */
function onIdleBitmap(op: (found: { node: BlockNode; bitmap: DirtyBitmap }) => void): Command<QemuContext> {
  return {
    args: NODE_NAME,
    run: (ctx, a) => {
      const found = findBitmap(ctx, a.node, a.name);
      if (found instanceof QmpError) return found;
      checkNotBusy(found.bitmap);
      op(found);
      return undefined;
    },
  };
}

export const BITMAP_COMMANDS: Record<string, Command<QemuContext>> = {
  "block-dirty-bitmap-add": { args: BITMAP_ADD_ARGS, run: (ctx, a) => void addBitmap(ctx, a) },
  "block-dirty-bitmap-remove": onIdleBitmap(({ node, bitmap }) => node.releaseBitmap(bitmap)),
  "block-dirty-bitmap-clear": onIdleBitmap(({ bitmap }) => bitmap.clear()),
  "block-dirty-bitmap-enable": onIdleBitmap(({ bitmap }) => bitmap.enable()),
  "block-dirty-bitmap-disable": onIdleBitmap(({ bitmap }) => bitmap.disable()),
  "block-dirty-bitmap-merge": { args: BITMAP_MERGE_ARGS, run: (ctx, a) => void mergeBitmaps(ctx, a) },
};

// ---- transaction actions ----

function addAction(ctx: QemuContext, data: Record<string, unknown>): ActionState {
  let added: { node: BlockNode; bitmap: DirtyBitmap } | undefined;
  return {
    prepare() {
      added = addBitmap(ctx, data);
    },
    commit() {},
    abort() {
      if (added) added.node.releaseBitmap(added.bitmap);
    },
    clean() {},
  };
}

function clearAction(ctx: QemuContext, data: Record<string, unknown>): ActionState {
  let undo: { bitmap: DirtyBitmap; bits: Uint8Array } | undefined;
  return {
    prepare() {
      const { bitmap } = lookupBitmap(ctx, data.node, data.name);
      checkNotBusy(bitmap);
      undo = { bitmap, bits: bitmap.snapshot() };
      bitmap.clear();
    },
    commit() {},
    abort() {
      undo?.bitmap.restore(undo.bits);
    },
    clean() {},
  };
}

function mergeAction(ctx: QemuContext, data: Record<string, unknown>): ActionState {
  let undo: { bitmap: DirtyBitmap; bits: Uint8Array } | undefined;
  return {
    prepare() {
      const { bitmap } = lookupBitmap(ctx, data.node, data.target);
      const bits = bitmap.snapshot();
      mergeBitmaps(ctx, data, true);
      undo = { bitmap, bits };
    },
    commit() {
      if ((data.bitmaps as unknown[]).length === 0) throw new QemuCrash("SIGSEGV", `${EMPTY_MERGE} (the transaction's commit)`);
    },
    abort() {
      undo?.bitmap.restore(undo.bits);
    },
    clean() {},
  };
}

function enableAction(ctx: QemuContext, data: Record<string, unknown>, on: boolean): ActionState {
  let undo: { bitmap: DirtyBitmap; was: boolean } | undefined;
  return {
    prepare() {
      const { bitmap } = lookupBitmap(ctx, data.node, data.name);
      checkNotBusy(bitmap);
      undo = { bitmap, was: bitmap.enabled };
      if (on) bitmap.enable();
      else bitmap.disable();
    },
    commit() {},
    abort() {
      if (undo && undo.was !== on) {
        if (undo.was) undo.bitmap.enable();
        else undo.bitmap.disable();
      }
    },
    clean() {},
  };
}

function removeAction(ctx: QemuContext, data: Record<string, unknown>): ActionState {
  let held: { node: BlockNode; bitmap: DirtyBitmap } | undefined;
  return {
    prepare() {
      held = removeBitmap(ctx, data);
      held.bitmap.busy = true;
    },
    commit() {
      held!.bitmap.busy = false;
      held!.node.releaseBitmap(held!.bitmap);
    },
    abort() {
      if (held) held.bitmap.busy = false;
    },
    clean() {},
  };
}

/** The bitmap actions of `transaction`, by type. */
export const BITMAP_ACTIONS: Record<string, { args: ArgSpec; make: (ctx: QemuContext, data: Record<string, unknown>) => ActionState }> = {
  "block-dirty-bitmap-add": { args: BITMAP_ADD_ARGS, make: addAction },
  "block-dirty-bitmap-remove": { args: NODE_NAME, make: removeAction },
  "block-dirty-bitmap-clear": { args: NODE_NAME, make: clearAction },
  "block-dirty-bitmap-enable": { args: NODE_NAME, make: (c, d) => enableAction(c, d, true) },
  "block-dirty-bitmap-disable": { args: NODE_NAME, make: (c, d) => enableAction(c, d, false) },
  "block-dirty-bitmap-merge": { args: BITMAP_MERGE_ARGS, make: mergeAction },
};

/** QMP BlockDirtyInfo for every bitmap of `node`, newest first as QEMU lists them; undefined if it has none. */
export function dirtyBitmapsInfo(node: BlockNode): Record<string, unknown>[] | undefined {
  const list = node.bitmaps();
  if (list.length === 0) return undefined;
  return [...list].reverse().map((b) => ({
    ...(b.anonymous ? {} : { name: b.name }),
    recording: b.recording,
    persistent: b.persistent,
    busy: b.busy,
    granularity: b.granularityBytes,
    count: b.dirtyBytes,
  }));
}
