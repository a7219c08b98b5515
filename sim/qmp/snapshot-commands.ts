/**
 * External snapshots: QMP `blockdev-snapshot` and its transaction action
 * (QEMU 7.2 blockdev.c external_snapshot_*), which libvirt's `virsh
 * snapshot-create-as --disk-only` sends with bitmap adds on the overlay.
 *
 * prepare, in QEMU's order: find the node; begin a drained section on it
 * (ended in clean); refuse it if its EXTERNAL_SNAPSHOT op is blocked (a
 * backing node, a job's node); flush it unless it is read-only (a nested
 * poll of the main loop); find the overlay and refuse it if a user reads
 * it (a guest disk: a write-only user such as a backup's target does not
 * count), if it is a filter, if it has a backing node already or if its
 * driver cannot have one; then bdrv_append: the node becomes the
 * overlay's backing node and every parent of the node that the overlay
 * does not reach moves onto the overlay (the guest disk, a backup's
 * filter — not jobs' own links); a permission conflict there undoes both
 * and refuses the action. Node and overlay are looked up as QEMU's
 * bdrv_lookup_bs does: a BlockBackend's name first, then a node name.
 * commit reopens the node read-only (errors ignored, as QEMU passes no
 * errp) inside a drained section of the node and its children. abort drops the backing link and puts
 * the parents back.
 *
 * The standalone command is a one-action transaction, as in QEMU
 * (blockdev_do_action), so it drains all nodes first too.
 */
import { checkPermissions, PERM_CONSISTENT_READ, PermissionDenied, usersPerm, usersWrite, type BlockNode } from "../block/index.js";
import { IoError } from "../disk/index.js";
import { genericError } from "../jobs/errors.js";
import type { ArgSpec } from "./args.js";
import { deviceNode, type QemuContext } from "./context.js";
import type { ActionState } from "./transaction.js";

export const BLOCKDEV_SNAPSHOT_ARGS: ArgSpec = {
  node: { type: "str" },
  overlay: { type: "str" },
};

export class SnapshotAction implements ActionState {
  private old: BlockNode | undefined = undefined;
  private overlay: BlockNode | undefined = undefined;
  /** Whether bdrv_append succeeded (QEMU's overlay_appended). */
  private appended = false;

  constructor(
    private readonly ctx: QemuContext,
    private readonly data: Record<string, unknown>,
  ) {}

  prepare(): void {
    const { ctx, data } = this;
    const old = deviceNode(ctx, data.node);
    ctx.graph.drainedBeginPoll(old);
    this.old = old;
    const blocked = old.opBlocker("EXTERNAL_SNAPSHOT");
    if (blocked) throw genericError(blocked.message);
    if (!old.readOnly) flushFromMainLoop(ctx, old);
    const overlay = deviceNode(ctx, data.overlay);
    // Users that read the overlay as an image refuse it; a write-only one (a mirror's or backup's target) does not.
    if (usersPerm(overlay) & PERM_CONSISTENT_READ) throw genericError("The overlay is already in use");
    if (overlay.driver === "filter") throw genericError("Filters cannot be used as overlays");
    if (overlay.backing) throw genericError("The overlay already has a backing image");
    if (overlay.driver !== "qcow2") throw genericError("The overlay does not support backing images");
    this.overlay = overlay;
    append(ctx, overlay, old);
    this.appended = true;
    ctx.sim.record("block", "snapshot", { node: old.name, overlay: overlay.name });
  }

  commit(): void {
    // external_snapshot_commit: bdrv_reopen_set_read_only(old, true, NULL), a refusal ignored. The reopen drains the
    // node and everything below it (bdrv_reopen's subtree drain), even when the node is read-only already: a job
    // below the node (a backup of its backing node) blips once more.
    const { ctx } = this;
    const old = this.old!;
    const drained: BlockNode[] = [];
    for (const n of old.chain()) {
      ctx.graph.drainedBeginPoll(n);
      drained.push(n);
    }
    if (!old.readOnly && !usersWrite(old)) {
      old.setReadOnly(true);
      ctx.sim.record("block", "reopen", { node: old.name, "read-only": true });
    }
    for (const n of drained.reverse()) ctx.graph.drainedEnd(n);
  }

  abort(): void {
    if (!this.appended) return;
    // external_snapshot_abort: the backing link goes first, then bdrv_replace_node moves every parent of the
    // overlay (not only those the append moved) back to the node.
    this.ctx.graph.setBacking(this.overlay!, null);
    this.ctx.graph.replaceNode(this.overlay!, this.old!);
    this.appended = false;
  }

  clean(): void {
    if (this.old) this.ctx.graph.drainedEnd(this.old);
  }
}

/**
 * QEMU 7.2 bdrv_append(overlay, node): `node` becomes the overlay's backing
 * node, then its parents move onto the overlay (graph.replaceNode skips the
 * ones the overlay reaches, and jobs' links), then the overlay's
 * permissions are refreshed; a conflict undoes both.
 */
function append(ctx: QemuContext, overlay: BlockNode, node: BlockNode): void {
  const graph = ctx.graph;
  try {
    graph.setBacking(overlay, node);
  } catch (e) {
    // QEMU's bdrv_attach_child_noperm refuses a cycle with the same words
    if (e instanceof Error && e.message.endsWith("would create a cycle")) throw genericError(e.message);
    throw e;
  }
  const moved = graph.replaceNode(node, overlay);
  try {
    checkPermissions(overlay);
  } catch (e) {
    // bdrv_append's own transaction is undone newest first: the parents move back, then the backing link goes.
    for (const l of [...moved].reverse()) graph.retarget(l, node);
    graph.setBacking(overlay, null);
    throw e instanceof PermissionDenied ? genericError(e.message) : e;
  }
}

/** bdrv_flush from the main loop: a nested poll until the node's flush has finished. */
function flushFromMainLoop(ctx: QemuContext, node: BlockNode): void {
  let done = false, failed = false;
  const proc = ctx.sim.spawn(`flush of node "${node.name}" (blockdev-snapshot)`, (function* () {
    try {
      yield* node.io({ op: "flush", offset: 0, bytes: 0, issuer: "blockdev-snapshot" });
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      failed = true;
    } finally {
      done = true;
    }
  })(), { daemon: true, coroutine: true });
  ctx.sim.enterNow(proc);
  if (!done) ctx.sim.pollWhile(`flush of node "${node.name}"`, () => !done);
  if (failed) throw genericError("An IO error has occurred");
}
