/**
 * The permissions each block job takes on its nodes, from QEMU 7.2's drivers
 * (block/mirror.c mirror_start_job, block/backup.c backup_job_create with
 * block/copy-before-write.c, block/stream.c stream_start, block/commit.c
 * commit_start; blockjob.c block_job_create's "main node"), in the order the
 * drivers attach them. sim/block/permissions.ts checks them; a conflict after
 * the job was created fails it early (created → null), as QEMU does.
 */
import {
  PERM_ALL, PERM_CONSISTENT_READ as CR, PERM_RESIZE as RESIZE, PERM_WRITE as W, PERM_WRITE_UNCHANGED as WU,
  type BlockNode,
} from "../block/index.js";
import type { NodePerms } from "./block-job.js";

/** A job BlockBackend's description in QEMU's messages (it has no name). */
const UNNAMED = "an unnamed block device";

/**
 * Mirror and active commit, for [mirror_top, target, source, ...intermediates]:
 * the job's main node takes consistent read; the target's BlockBackend takes
 * write (and resize, for a commit into a smaller base) and shares only write
 * unchanged (a commit's base, in use below the top, shares consistent read and
 * write too); the source is held sharing what the filter needs; the nodes a
 * commit removes share write and write unchanged, and consistent read from the
 * first filter on the base down.
 */
export function mirrorPerms(o: { source: BlockNode; target: BlockNode; commit?: { intermediates: BlockNode[] } }): NodePerms[] {
  const commit = o.commit !== undefined;
  const grow = commit && o.target.sizeBytes < o.source.sizeBytes ? RESIZE : 0;
  return [
    { perm: CR, shared: CR | WU | W, childName: "main node" },
    { perm: W | grow, shared: WU | (commit ? CR | W : 0), childName: "root", user: UNNAMED },
    { perm: 0, shared: WU | W | CR, childName: "source" },
    ...(o.commit?.intermediates ?? []).map((n) => ({ perm: 0, shared: WU | W | (filtersDownTo(n, o.target) ? CR : 0), childName: "intermediate node" })),
  ];
}

/** Whether every node from `n` down to `base` (excluded) is a filter: "filters on the base". */
function filtersDownTo(n: BlockNode, base: BlockNode): boolean {
  for (let x: BlockNode | null = n; x && x !== base; x = x.file) if (x.driver !== "filter") return false;
  return true;
}

/**
 * The copy-before-write filter's target child: it writes and shares all but
 * resize (so a guest's disk in the target's backing chain keeps its writes).
 */
export function cbwTargetPerms(filter: BlockNode): NodePerms {
  return { perm: W, shared: PERM_ALL & ~RESIZE, childName: "target", user: `node '${filter.name}'` };
}

/** Backup, for [copy-before-write filter, target]: the job itself takes nothing (QEMU 7.2 block_job_create(cbw, 0, ALL)); the filter's target child does. */
export function backupPerms(filter: BlockNode): NodePerms[] {
  return [{ perm: 0, shared: PERM_ALL, childName: "main node" }, cbwTargetPerms(filter)];
}

/**
 * Stream, for [copy-on-read filter, top, ...intermediates]: the main node
 * takes consistent read and shares write; the active node shares all but
 * resize; the nodes it streams from share consistent read and write unchanged
 * only (nobody may write them meanwhile).
 */
export function streamPerms(chain: readonly BlockNode[]): NodePerms[] {
  return [
    { perm: CR, shared: CR | WU | W, childName: "main node" },
    ...chain.map((_n, i) => (i === 0 ? { perm: 0, shared: CR | WU | W, childName: "active node" } : { perm: 0, shared: CR | WU, childName: "intermediate node" })),
  ];
}

/**
 * Intermediate commit, for [device, ...top..(above base), base]: the main node
 * takes nothing; the nodes it removes share write and write unchanged only;
 * the base's BlockBackend takes consistent read, write (and resize for a
 * smaller base) and shares consistent read and write unchanged.
 */
export function commitPerms(top: BlockNode, chain: readonly BlockNode[], base: BlockNode): NodePerms[] {
  return [
    { perm: 0, shared: PERM_ALL, childName: "main node" },
    ...chain.map((n) => ({ perm: 0, shared: WU | W | (filtersDownTo(n, base) ? CR : 0), childName: "intermediate node" })),
    { perm: CR | W | (base.sizeBytes < top.sizeBytes ? RESIZE : 0), shared: CR | WU, childName: "root", user: UNNAMED },
  ];
}

/**
 * What the commit_top filter QEMU puts above an intermediate commit's top
 * passes down: nothing taken, all shared. blocksim has no such node, so the
 * overlay's backing link declares this while the commit runs.
 */
export const COMMIT_TOP_CHILD: NodePerms = { perm: 0, shared: PERM_ALL, childName: "backing" };
