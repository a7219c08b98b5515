/**
 * Guest disks (QMP `device_add` of a virtio-blk-pci, QEMU qdev with
 * hw/block/block.c blkconf_apply_backend_options): the guest's BlockBackend
 * takes consistent read and write and shares consistent read, write
 * unchanged and resize (write too with `share-rw: true`), checked as
 * sim/block/permissions.ts does — a disk on a mirror's or a backup's target
 * is refused with QEMU's permission conflict.
 *
 * `drive` names a node (QEMU makes an anonymous BlockBackend on it, called
 * "/machine/peripheral/ID/virtio-backend" in messages) or a drive_add'ed
 * backend without a device (it gets the device's permissions). Attaching is
 * a drained section on the disk's node (a job on it blips paused→running);
 * a refused disk is detached again, a second one (goldens/perm_guest_device).
 *
 * Modelled: driver virtio-blk-pci with an `id`; no device_del, no other
 * device properties; the disk does no I/O of its own (`qemu-io -d
 * /machine/peripheral/ID/virtio-backend "write …"` writes through it).
 */
import { attachDevice, changeLinkPerms, guestDevicePerms, PermissionDenied, type BlockBackend, type BlockNode } from "../block/index.js";
import { genericError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { NotModelledError } from "./args.js";
import type { QemuContext } from "./context.js";
import type { Command } from "./monitor.js";

/** The guest disks of one QEMU process, by device id. */
const DISKS = new WeakMap<QemuContext, Map<string, BlockBackend>>();

function disks(ctx: QemuContext): Map<string, BlockBackend> {
  let m = DISKS.get(ctx);
  if (!m) DISKS.set(ctx, (m = new Map()));
  return m;
}

/** The BlockBackend of the disk at QOM path `/machine/peripheral/ID/virtio-backend` (or `ID/virtio-backend`); undefined for none. */
export function diskByQomPath(ctx: QemuContext, path: string): BlockBackend | undefined | "no-backend" {
  const m = /^(?:\/machine\/peripheral\/)?([^/]+)(\/virtio-backend)?$/.exec(path);
  if (!m) return undefined;
  const blk = disks(ctx).get(m[1]);
  if (!blk) return undefined;
  return m[2] ? blk : "no-backend"; // the virtio-blk-pci proxy itself has no drive
}

function* addDisk(ctx: QemuContext, a: Record<string, unknown>): Process<void> {
  const driver = a.driver as string;
  if (driver !== "virtio-blk-pci") throw new NotModelledError(`device_add driver '${driver}' (only virtio-blk-pci is simulated)`);
  const id = a.id as string | undefined;
  if (id === undefined) throw new NotModelledError("device_add without an id");
  const all = disks(ctx);
  if (all.has(id)) throw genericError(`Duplicate device ID '${id}'`);
  const drive = a.drive as string | undefined;
  if (drive === undefined) throw genericError("drive property not set");
  const perms = (node: BlockNode | null) => guestDevicePerms(a["share-rw"] === true, node?.readOnly === true);
  const named = ctx.graph.backends().find((b) => b.name !== "" && b.name === drive);
  let blk: BlockBackend;
  if (named) {
    if ([...all.values()].includes(named)) throw genericError(`Drive '${drive}' is already in use by another device`);
    const root = named.root;
    if (root) {
      ctx.graph.drainedBeginPoll(root);
      ctx.graph.drainedEnd(root);
    }
    try {
      changeLinkPerms(named.link, { ...perms(root), user: `block device '${drive}'`, childName: "root" });
    } catch (e) {
      throw e instanceof PermissionDenied ? genericError(e.message) : e;
    }
    blk = named;
  } else {
    const node = ctx.graph.findNode(drive);
    if (!node) throw genericError(`Property 'virtio-blk-device.drive' can't find value '${drive}'`);
    // The drive property attaches a backend that takes nothing yet (a drained section);
    // realize then asks for the disk's permissions, and a refused disk is detached (a second one).
    ctx.graph.drainedBeginPoll(node);
    ctx.graph.drainedEnd(node);
    try {
      blk = ctx.graph.createBackend({ issuer: id, root: node, queueWhenDrained: true, perms: { ...perms(node), user: `block device '/machine/peripheral/${id}/virtio-backend'` } });
    } catch (e) {
      if (!(e instanceof PermissionDenied)) throw e;
      ctx.graph.drainedBeginPoll(node);
      ctx.graph.drainedEnd(node);
      throw genericError(e.message);
    }
  }
  attachDevice(blk);
  all.set(id, blk);
}

export const DEVICE_COMMANDS: Record<string, Command<QemuContext>> = {
  device_add: {
    args: {
      driver: { type: "str" },
      id: { type: "str", optional: true },
      drive: { type: "str", optional: true },
      "share-rw": { type: "bool", optional: true },
    },
    run: (ctx, a) => addDisk(ctx, a),
  },
};
