/**
 * QMP `block_resize` (QEMU 7.2 blockdev.c qmp_block_resize, a coroutine
 * command), what libvirt's `virsh blockresize` sends. Its checks, in QEMU's
 * order: the node (bdrv_lookup_bs: `device` names a BlockBackend only, then
 * `node-name` a node; the error shows each as given, or empty); a negative
 * size; the node's RESIZE op blocker, reported as QEMU does, naming the
 * `device` argument ("Device '(null)' is in use" when only a node name was
 * given: a job's node, a backing node); then a temporary BlockBackend that
 * takes RESIZE and shares everything, refused by a user that does not share
 * it (a backup's copy-before-write filter) with QEMU's permission conflict.
 * Then the node is drained around the truncation (from the command's
 * coroutine: it parks until the node is idle), which refuses a read-only
 * node ("Image is read-only") and a driver that cannot resize (null-co),
 * looking through filters to their child.
 *
 * Modelled: a new size of a raw or qcow2 node on an image file (truncate
 * below), and the node's current size, which changes nothing. Refused as
 * not modelled (valid in QEMU): a node on a disk, a filter or under one,
 * a size that is no whole number of the file's clusters, and shrinking a
 * node a BlockBackend uses.
 */
import { checkPermissions, PERM_ALL, PERM_RESIZE, PermissionDenied, type BlockNode } from "../block/index.js";
import { genericError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { NotModelledError } from "./args.js";
import { lookupNode, type QemuContext } from "./context.js";
import type { Command } from "./monitor.js";

function* resize(ctx: QemuContext, a: Record<string, unknown>): Process<void> {
  const device = a.device as string | undefined;
  const node = lookupNode(ctx, device, a["node-name"]);
  const size = a.size as number;
  if (size < 0) throw genericError("Parameter 'size' expects a >0 size");
  // QEMU's message takes the device argument, even when it is absent (glib prints NULL as "(null)").
  if (node.opBlocker("RESIZE")) throw genericError(`Device '${device ?? "(null)"}' is in use`);
  try {
    checkPermissions(node, { node, perms: { perm: PERM_RESIZE, shared: PERM_ALL, user: "an unnamed block device", childName: "root" } });
  } catch (e) {
    throw e instanceof PermissionDenied ? genericError(e.message) : e;
  }
  yield* ctx.graph.drainedBegin(node);
  try {
    truncate(ctx, node, size);
    ctx.sim.record("block", "resize", { node: node.name, size });
  } finally {
    ctx.graph.drainedEnd(node);
  }
}

/**
 * QEMU 7.2 bdrv_co_truncate's refusals, node by node down through filters
 * (a filter without a truncate of its own passes it to its child): a
 * read-only node, a driver that cannot resize (null-co); then qcow2's own
 * (a size that is no whole number of sectors). Then the truncation: a raw
 * or qcow2 node's image file grows or shrinks, and its dirty bitmaps with
 * it (goldens/block_resize_new_size). There is no event; a guest disk on
 * the node sees the new size, and jobs started later copy it whole.
 */
function truncate(ctx: QemuContext, node: BlockNode, size: number): void {
  for (let n: BlockNode | null = node; n; n = n.file) if (n.readOnly) throw genericError("Image is read-only");
  // a null-co ends the walk (no child): its refusal comes after every node's read-only check, as in QEMU's walk
  if (node.truncateUnsupported) throw genericError("Image format driver does not support resize");
  if (node.driver === "qcow2" && size % 512 !== 0) throw genericError("The new size must be a multiple of 512");
  if (size === node.sizeBytes) return; // nothing changes
  const notModelled = (why: string) => new NotModelledError(`block_resize of node '${node.name}' from ${node.sizeBytes} to ${size} bytes: ${why}`);
  if (node.driver === "filter") throw notModelled(`through a ${node.formatName} (only raw and qcow2 nodes on an image file are resized)`);
  const dev = node.device!;
  if (!dev.sparse) throw notModelled(`its device '${dev.name}' is a disk (only image files, sparse: true, grow and shrink)`);
  if (size % dev.clusterSizeBytes !== 0 || size === 0) throw notModelled(`the size is no whole, non-zero number of its ${dev.clusterSizeBytes}-byte clusters`);
  if (node.parents().some((l) => l.parentIsNode)) throw notModelled("another node sits on it (a filter's sizes are not followed)");
  if (size < node.sizeBytes && ctx.graph.backends().some((b) => b.root === node)) {
    throw notModelled("shrinking under a BlockBackend (a guest disk or drive_add'ed backend, whose I/O past the new end is not modelled)");
  }
  node.resize(size);
}

export const RESIZE_COMMANDS: Record<string, Command<QemuContext>> = {
  block_resize: {
    args: {
      device: { type: "str", optional: true },
      "node-name": { type: "str", optional: true },
      size: { type: "int" },
    },
    run: (ctx, a) => resize(ctx, a),
  },
};
