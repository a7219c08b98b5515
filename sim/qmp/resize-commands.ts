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
 * Modelled: a resize to the node's current size, which changes nothing.
 * A new size is valid in QEMU and refused here as not modelled: blocksim's
 * nodes and devices keep the size they were made with.
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
    truncate(node, size);
    ctx.sim.record("block", "resize", { node: node.name, size });
  } finally {
    ctx.graph.drainedEnd(node);
  }
}

/**
 * QEMU 7.2 bdrv_co_truncate's refusals, node by node down through filters
 * (a filter without a truncate of its own passes it to its child): a
 * read-only node, a driver that cannot resize (null-co). Then the size.
 */
function truncate(node: BlockNode, size: number): void {
  for (let n: BlockNode | null = node; n; n = n.file) {
    if (n.readOnly) throw genericError("Image is read-only");
    if (n.driver === "null-co") throw genericError("Image format driver does not support resize");
  }
  if (size !== node.sizeBytes) throw new NotModelledError(`block_resize of node '${node.name}' from ${node.sizeBytes} to ${size} bytes (only its current size is simulated)`);
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
