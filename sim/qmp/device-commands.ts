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
 * device properties (one the device does not have is refused: "Property
 * 'virtio-blk-pci.X' not found"); the disk does no I/O of its own (`qemu-io -d
 * /machine/peripheral/ID/virtio-backend "write …"` writes through it).
 */
import { attachDevice, changeLinkPerms, guestDevicePerms, PermissionDenied, type BlockBackend, type BlockNode } from "../block/index.js";
import { genericError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { NotModelledError, OTHER_MEMBERS } from "./args.js";
import { namedBackend, type QemuContext } from "./context.js";
import { qdictOrder } from "./lifecycle-commands.js";
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

/**
 * QEMU 7.2's qmp_device_add reads its arguments as QemuOpts: a number or a
 * boolean becomes text ("on"/"off" for booleans), anything else is dropped.
 */
function optText(v: unknown): string | undefined {
  if (typeof v === "string") return v;
  if (typeof v === "number") return String(v);
  if (typeof v === "boolean") return v ? "on" : "off";
  return undefined;
}

/** A qdev boolean property from its text (qapi_bool_parse). */
function optBool(name: string, v: unknown): boolean {
  const text = optText(v);
  if (text === undefined) return false;
  if (["on", "yes", "true", "y"].includes(text)) return true;
  if (["off", "no", "false", "n"].includes(text)) return false;
  throw genericError(`Parameter '${name}' expects 'on' or 'off'`);
}

/** QemuOpts' id rule (id_wellformed): a letter, then letters, digits, '-', '.', '_'. */
const OPTS_ID = /^[A-Za-z][A-Za-z0-9._-]*$/;

/** What a device's `drive` property holds once set: a drive_add'ed backend, or a node its own backend is made for. */
type Drive = { named: BlockBackend } | { node: BlockNode };

/**
 * The `drive` property set (QEMU set_drive_helper): a drive_add'ed backend
 * is taken as it is; on a node a new BlockBackend that takes nothing yet is
 * attached, a drained section of the node (a job on it blips).
 */
function setDrive(ctx: QemuContext, all: Map<string, BlockBackend>, drive: string): Drive {
  const named = namedBackend(ctx, drive);
  if (named) {
    if ([...all.values()].includes(named)) throw genericError(`Drive '${drive}' is already in use by another device`);
    return { named };
  }
  const node = ctx.graph.findNode(drive);
  if (!node) throw genericError(`Property 'virtio-blk-device.drive' can't find value '${drive}'`);
  ctx.graph.drain(node);
  return { node };
}

/** A device given up after its drive was set (QEMU's unparent of the half-made device): a node's backend goes, a second drained section. */
function releaseDrive(ctx: QemuContext, d: Drive): void {
  if ("node" in d) {
    ctx.graph.drain(d.node);
  }
}

function* addDisk(ctx: QemuContext, a: Record<string, unknown>): Process<void> {
  // The id is checked as the options are created, before the driver is looked at; a non-text id is no id.
  const id = typeof a.id === "string" ? a.id : undefined;
  if (id !== undefined && !OPTS_ID.test(id)) throw genericError("Parameter 'id' expects an identifier");
  const driver = optText(a.driver);
  if (driver === undefined) throw genericError("Parameter 'driver' is missing");
  if (driver !== "virtio-blk-pci") throw new NotModelledError(`device_add driver '${driver}' (only virtio-blk-pci is simulated)`);
  if (id === undefined) throw new NotModelledError("device_add without an id");
  const all = disks(ctx);
  if (all.has(id)) throw genericError(`Duplicate device ID '${id}'`);
  // QEMU 7.2 sets the properties one by one in the QDict's order; the first refusal ends the command, and a
  // drive set before it is let go of again (goldens/device_add_unknown_property). A value that is no QemuOpts
  // text is dropped, as QemuOpts drops it.
  let shareRw = false;
  let drive: Drive | undefined;
  for (const key of qdictOrder(Object.keys(a).filter((k) => k !== "driver" && k !== "id" && optText(a[k]) !== undefined))) {
    try {
      if (key === "drive") drive = setDrive(ctx, all, optText(a.drive)!);
      else if (key === "share-rw") shareRw = optBool("share-rw", a["share-rw"]);
      else throw genericError(`Property 'virtio-blk-pci.${key}' not found`);
    } catch (e) {
      if (drive) releaseDrive(ctx, drive);
      throw e;
    }
  }
  if (drive === undefined) throw genericError("drive property not set");
  const perms = (node: BlockNode | null) => guestDevicePerms(shareRw, node?.readOnly === true);
  let blk: BlockBackend;
  if ("named" in drive) {
    // realize: the drive_add'ed backend's node is drained once, then the disk's permissions are asked
    const named = drive.named;
    const root = named.root;
    if (root) {
      ctx.graph.drain(root);
    }
    try {
      changeLinkPerms(named.link, { ...perms(root), user: `block device '${named.name}'`, childName: "root" });
    } catch (e) {
      throw e instanceof PermissionDenied ? genericError(e.message) : e;
    }
    blk = named;
  } else {
    // realize asks for the disk's permissions; a refused disk is detached (a second drained section)
    const node = drive.node;
    try {
      blk = ctx.graph.createBackend({ issuer: id, root: node, queueWhenDrained: true, perms: { ...perms(node), user: `block device '/machine/peripheral/${id}/virtio-backend'` } });
    } catch (e) {
      if (!(e instanceof PermissionDenied)) throw e;
      releaseDrive(ctx, drive);
      throw genericError(e.message);
    }
  }
  attachDevice(blk);
  all.set(id, blk);
}

export const DEVICE_COMMANDS: Record<string, Command<QemuContext>> = {
  device_add: {
    // Values are QemuOpts text (see optText), so the schema takes any; a property virtio-blk-pci does not have is
    // refused as QEMU refuses it, its other properties are not modelled.
    args: {
      [OTHER_MEMBERS]: { type: "any", optional: true },
      driver: { type: "any", optional: true },
      id: { type: "any", optional: true },
      drive: { type: "any", optional: true },
      "share-rw": { type: "any", optional: true },
      ...Object.fromEntries(["bus", "addr", "serial", "bootindex", "num-queues", "iothread", "write-cache", "werror", "rerror", "logical_block_size", "physical_block_size"]
        .map((p) => [p, { type: "any" as const, optional: true, unmodelled: true }])),
    },
    run: (ctx, a) => addDisk(ctx, a),
  },
};

/** The QOM path of the guest disk a BlockBackend serves (QEMU blk_get_attached_dev_id: its virtio backend has no id of its own), or undefined. */
export function diskQomPath(ctx: QemuContext, blk: BlockBackend): string | undefined {
  for (const [id, b] of disks(ctx)) if (b === blk) return `/machine/peripheral/${id}/virtio-backend`;
  return undefined;
}
