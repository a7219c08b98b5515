/**
 * Block permissions (QEMU's BLK_PERM_*): what each user of a node needs from
 * it and what it lets the node's other users do, checked whenever a user is
 * attached, with QEMU 7.2's error text. It stands for:
 *
 *  - `blk_new(perm, shared)` / `blk_set_perm`: a BlockBackend's permissions —
 *    a guest device's (consistent read and write; shares consistent read,
 *    write unchanged and resize, and write only with share-rw=on), a
 *    drive_add'ed backend without a device (consistent read; shares all), a
 *    job's backends (a mirror's target, a commit's base);
 *  - `block_job_add_bdrv` and `block_job_create`: a job's permissions on
 *    each of its nodes (see the drivers: main node, source, target,
 *    intermediate node, base);
 *  - `bdrv_child_perm` with `bdrv_default_perms` (a qcow2's backing child:
 *    consistent read if its parents need it; shares write and resize only if
 *    every parent of the overlay shares write) and the filters' own child_perm
 *    callbacks (`bdrv_filter_default_perms` passes permissions through;
 *    mirror_top for active commit takes no consistent read and shares write;
 *    copy-before-write, once it has parents, adds consistent read to a write
 *    and unshares write and resize on its source; copy-on-read adds write
 *    unchanged);
 *  - `bdrv_refresh_perms` / `bdrv_node_refresh_perm` (bdrv_check_perm before
 *    QEMU 6.x's transactional rework) with
 *    `bdrv_parent_perms_conflict` / `bdrv_a_allow_b`: from the node whose
 *    users changed, parents before children, every ordered pair of a node's
 *    users (newest first) is checked, and the first user that unshares what
 *    another needs is reported as QEMU does: "Permission conflict on node
 *    'X': permissions 'write' are both required by node '#block3' (uses node
 *    'X' as 'target' child) and unshared by block device 'vda' (uses node 'X'
 *    as 'root' child)."
 *
 * A node opened read-only refuses users that write (write or write
 * unchanged) with "Block node is read-only" (bdrv_node_refresh_perm);
 * guest disks on one are read-only disks (they take no write).
 *
 * Left out: BLK_PERM_GRAPH_MOD (never checked in 7.2), protocol (`file`)
 * children below format nodes (blocksim's raw and qcow2 nodes sit on a
 * device: two format nodes on one image are refused when they are added),
 * inactive nodes, reopen's permission updates (but for a reopen to
 * read-only under a writer, refused: sim/qmp/lifecycle-commands.ts), permissions
 * that change while a link exists (a mirror's `stop` state: its filter is
 * gone in the same step), and the image locking of the files below.
 */
import type { BlockNode } from "./node.js";
import type { ParentLink } from "./links.js";

export const PERM_CONSISTENT_READ = 1;
export const PERM_WRITE = 2;
export const PERM_WRITE_UNCHANGED = 4;
export const PERM_RESIZE = 8;
export const PERM_ALL = 15;

/** QEMU's names for the permissions, in bit order (bdrv_perm_names). */
const NAMES: readonly [number, string][] = [
  [PERM_CONSISTENT_READ, "consistent read"],
  [PERM_WRITE, "write"],
  [PERM_WRITE_UNCHANGED, "write unchanged"],
  [PERM_RESIZE, "resize"],
];

/** "consistent read, write": QEMU's list of the permissions in `perm`. */
export function permNames(perm: number): string {
  return NAMES.filter(([bit]) => perm & bit).map(([, name]) => name).join(", ");
}

/** What a user needs from a node and what it lets others do; who it is, as QEMU describes it. */
export interface LinkPerms {
  perm: number;
  shared: number;
  /** The parent as QEMU names it: "block device 'vda'", "an unnamed block device", "mirror job 'j0'", "node '#block3'". */
  user: string;
  /** The child's name: 'root', 'main node', 'source', 'target', 'intermediate node', 'base', 'backing', 'file'. */
  childName: string;
}

/**
 * A guest device's BlockBackend (QEMU blkconf_apply_backend_options, share-rw
 * off by default); on a read-only node the disk is read-only and takes no
 * write (virtio-blk asks blk_supports_write_perm).
 */
export function guestDevicePerms(shareRw = false, readOnly = false): { perm: number; shared: number } {
  return { perm: PERM_CONSISTENT_READ | (readOnly ? 0 : PERM_WRITE), shared: PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED | PERM_RESIZE | (shareRw ? PERM_WRITE : 0) };
}

/** A drive_add'ed BlockBackend with no device yet: QEMU 7.2 takes consistent read and shares all. */
export const DRIVE_PERMS = { perm: PERM_CONSISTENT_READ, shared: PERM_ALL } as const;

/** Declares what `link` (a BlockBackend's root or a job's link) takes and shares. */
export function setLinkPerms(link: ParentLink, perms: LinkPerms): void {
  link.declaredPerms = perms;
}

/** Forgets what `link` declared: it takes nothing and shares all, or derives its permissions again (a node link). */
export function clearLinkPerms(link: ParentLink): void {
  link.declaredPerms = undefined;
}

/** What `link` declared, if anything. */
export function linkPermsOf(link: ParentLink): LinkPerms | undefined {
  return link.declaredPerms;
}

/**
 * Changes what an attached link takes (QEMU blk_set_perm, e.g. a device
 * attached to a drive_add'ed backend): checked from its node down, and left as
 * it was on a conflict.
 */
export function changeLinkPerms(link: ParentLink, perms: LinkPerms): void {
  const old = link.declaredPerms;
  link.declaredPerms = perms;
  try {
    if (link.child) checkPermissions(link.child);
  } catch (e) {
    link.declaredPerms = old;
    throw e;
  }
}

/** A user refused what it asked of a node, with QEMU 7.2's message; QMP reports it as a GenericError. */
export class PermissionDenied extends Error {
  override name = "PermissionDenied";
  constructor(readonly node: BlockNode, message: string) {
    super(message);
  }
}

/** Two users of a node at odds: one needs what the other does not share. */
export class PermissionConflict extends PermissionDenied {
  override name = "PermissionConflict";
  constructor(node: BlockNode, readonly required: LinkPerms, readonly unsharedBy: LinkPerms, readonly perms: number) {
    const n = node.name;
    super(node, `Permission conflict on node '${n}': permissions '${permNames(perms)}' are both required by ${required.user} (uses node '${n}' as '${required.childName}' child) and unshared by ${unsharedBy.user} (uses node '${n}' as '${unsharedBy.childName}' child).`);
  }
}

/** A user would write a read-only node (QEMU bdrv_node_refresh_perm: write and write unchanged need a writable node). */
export class ReadOnlyNode extends PermissionDenied {
  override name = "ReadOnlyNode";
  constructor(node: BlockNode) {
    super(node, "Block node is read-only");
  }
}

/** A user about to be attached: checked as if it were the newest parent of `node`. */
export interface PendingParent {
  node: BlockNode;
  perms: LinkPerms;
}

/**
 * Checks every node from `start` down (QEMU bdrv_refresh_perms), with
 * `pending` counted as attached; throws the first PermissionConflict, or
 * ReadOnlyNode where the node's users together would write a read-only node
 * (each node: its users' conflicts first, then that).
 */
export function checkPermissions(start: BlockNode, pending?: PendingParent): void {
  const check = new PermCheck(pending);
  for (let n: BlockNode | null = start; n; n = n.childLink?.child ?? null) {
    const parents = check.parentsOf(n);
    for (const a of parents) {
      for (const b of parents) {
        if (a === b) continue;
        const missing = b.perm & ~a.shared;
        if (missing) throw new PermissionConflict(n, b, a, missing);
      }
    }
    if (n.readOnly && parents.some((p) => p.perm & (PERM_WRITE | PERM_WRITE_UNCHANGED))) throw new ReadOnlyNode(n);
  }
}

/** What `node`'s users take together (QEMU bdrv_get_cumulative_perm). */
export function usersPerm(node: BlockNode): number {
  return new PermCheck(undefined).parentsOf(node).reduce((p, l) => p | l.perm, 0);
}

/** Whether a user of `node` writes it: what a reopen to read-only refuses (or, from a snapshot's commit, skips). */
export function usersWrite(node: BlockNode): boolean {
  return (usersPerm(node) & (PERM_WRITE | PERM_WRITE_UNCHANGED)) !== 0;
}

/** One checkPermissions: the pending parent, and each node's cumulative permissions as its parents take them. */
class PermCheck {
  /** Made on first use: most checks never ask for a parent node's permissions. */
  private memo: Map<BlockNode, { perm: number; shared: number }> | undefined = undefined;
  constructor(private readonly pending: PendingParent | undefined) {}

  /** What each user of `node` takes, newest first (the pending one first of all). */
  parentsOf(node: BlockNode): LinkPerms[] {
    const out: LinkPerms[] = [];
    if (this.pending !== undefined && this.pending.node === node) out.push(this.pending.perms);
    for (const l of node.parentLinks) out.push(this.linkPerms(l));
    return out;
  }

  private hasParents(node: BlockNode): boolean {
    return node.parentLinks.length > 0 || this.pending?.node === node;
  }

  /** What all users of `node` take together, and what they all share. */
  private cumulative(node: BlockNode): { perm: number; shared: number } {
    const memo = (this.memo ??= new Map());
    let c = memo.get(node);
    if (!c) {
      c = { perm: 0, shared: PERM_ALL };
      for (const p of this.parentsOf(node)) {
        c.perm |= p.perm;
        c.shared &= p.shared;
      }
      memo.set(node, c);
    }
    return c;
  }

  /** What a link takes: declared for backends and jobs, derived from its parent node for backing and file links. */
  private linkPerms(link: ParentLink): LinkPerms {
    const d = link.declaredPerms;
    if (d) return d;
    if (!link.parentIsNode) {
      // A BlockBackend or user that declared nothing (qemu-io's temporary one): takes nothing, shares all.
      const name = "name" in link.parent && typeof link.parent.name === "string" && link.parent.name !== "" ? `block device '${link.parent.name}'` : "an unnamed block device";
      return { perm: 0, shared: PERM_ALL, user: name, childName: "root" };
    }
    const parent = link.parent as BlockNode;
    // copy-before-write's target child: the backup job's own link to the target declares what it takes (node-perms.ts)
    if (link.role === "target") return { perm: 0, shared: PERM_ALL, user: `node '${parent.name}'`, childName: "target" };
    const { perm, shared } = this.cumulative(parent);
    const user = `node '${parent.name}'`;
    if (parent.driver === "qcow2") {
      // bdrv_default_perms for a COW child
      return {
        perm: perm & PERM_CONSISTENT_READ,
        shared: (shared & PERM_WRITE ? PERM_WRITE | PERM_RESIZE : 0) | PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED,
        user, childName: "backing",
      };
    }
    // a filter: bdrv_filter_default_perms passes everything through, then the driver's adjustments
    let p = perm, s = shared, childName = "file";
    switch (parent.filterDriver) {
      case "mirror_top":
        childName = "backing";
        break;
      case "commit_top": // active commit's mirror_top: no consistent read above the base, writes shared
        childName = "backing";
        p &= ~PERM_CONSISTENT_READ;
        s |= PERM_WRITE;
        break;
      case "copy-before-write":
        // a user about to be attached counts: the backup job's own BlockBackend on the filter is what gives it parents
        if (this.hasParents(parent)) {
          if (p & PERM_WRITE) p |= PERM_CONSISTENT_READ;
          s &= ~(PERM_WRITE | PERM_RESIZE);
        }
        break;
      case "copy-on-read":
        p |= PERM_WRITE_UNCHANGED;
        break;
    }
    return { perm: p, shared: s, user, childName };
  }
}
