/**
 * Op blockers (QEMU `bdrv_op_block` and friends, seed fbe40ff780): per
 * operation type, a list of reasons why a node may not take part in that
 * operation. Whoever blocks owns the reason object and unblocks with the very
 * same object; asking about an operation reports the most recently added
 * reason, prefixed with the node's name, so a second job on a busy node is
 * refused with "Node 'x' is busy: block device is in use by block job: stream".
 */

/** Operation types, in QEMU's BlockOpType order (modern set: COMMIT and MIRROR split, REPLACE added). */
export const BLOCK_OP_TYPES = [
  "BACKUP_SOURCE",
  "BACKUP_TARGET",
  "CHANGE",
  "COMMIT_SOURCE",
  "COMMIT_TARGET",
  "DATAPLANE",
  "DRIVE_DEL",
  "EJECT",
  "EXTERNAL_SNAPSHOT",
  "INTERNAL_SNAPSHOT",
  "INTERNAL_SNAPSHOT_DELETE",
  "MIRROR_SOURCE",
  "MIRROR_TARGET",
  "RESIZE",
  "STREAM",
  "REPLACE",
] as const;

export type BlockOpType = (typeof BLOCK_OP_TYPES)[number];

/**
 * A blocker's reason: an Error, as QEMU's is, made without a stack (one is
 * made per job, and capturing a stack was ~1.5 % of a fuzz run).
 */
export function blockerReason(message: string): Error {
  const limit = Error.stackTraceLimit;
  Error.stackTraceLimit = 0;
  try {
    return new Error(message);
  } finally {
    Error.stackTraceLimit = limit;
  }
}

/** The error an operation on a blocked node gets; QMP reports it as a GenericError with this message. An expected answer: no stack. */
export class OpBlockedError extends Error {
  override name = "OpBlockedError";
  constructor(
    /** The name used in the message (a named BlockBackend's, else the node's). */
    readonly nodeName: string,
    readonly op: BlockOpType,
    /** The blocker's reason object itself. */
    readonly reason: Error,
  ) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`Node '${nodeName}' is busy: ${reason.message}`);
    Error.stackTraceLimit = limit;
  }
}

const OP_INDEX = new Map<BlockOpType, number>(BLOCK_OP_TYPES.map((t, i) => [t, i]));
const NONE: readonly Error[] = Object.freeze([]);

/** The blocker lists of one node (each made when first blocked: every node has them, few nodes are ever blocked). */
export class OpBlockers {
  private readonly lists: (Error[] | undefined)[] = [];

  /** Blocks `op` for `reason` (newest first, as QEMU inserts at the list head). */
  block(op: BlockOpType, reason: Error): void {
    checkReason(reason);
    const i = indexOf(op);
    (this.lists[i] ??= []).unshift(reason);
  }

  /** Removes every entry of `op` whose reason is this exact object. */
  unblock(op: BlockOpType, reason: Error): void {
    const l = this.lists[indexOf(op)];
    if (l === undefined) return;
    for (let i = l.length - 1; i >= 0; i--) if (l[i] === reason) l.splice(i, 1);
  }

  /** Blocks every operation type for `reason`. */
  blockAll(reason: Error): void {
    checkReason(reason);
    for (let i = 0; i < BLOCK_OP_TYPES.length; i++) (this.lists[i] ??= []).unshift(reason);
  }

  /** Unblocks every operation type for `reason`. */
  unblockAll(reason: Error): void {
    for (const t of BLOCK_OP_TYPES) this.unblock(t, reason);
  }

  /** Whether `op` has any blocker. */
  isBlocked(op: BlockOpType): boolean {
    return this.reasons(op).length > 0;
  }

  /** The most recently added reason blocking `op`, if any. */
  first(op: BlockOpType): Error | undefined {
    return this.reasons(op)[0];
  }

  /** All reasons blocking `op`, newest first. */
  reasons(op: BlockOpType): readonly Error[] {
    return this.lists[indexOf(op)] ?? NONE;
  }
}

function indexOf(op: BlockOpType): number {
  const i = OP_INDEX.get(op);
  if (i === undefined) throw new TypeError(`unknown block operation type ${JSON.stringify(op)} (expected one of ${BLOCK_OP_TYPES.join(", ")})`);
  return i;
}

function checkReason(reason: Error): Error {
  if (!(reason instanceof Error)) {
    throw new TypeError(`an op blocker reason must be an Error object (unblocking matches the same object), got ${typeof reason}`);
  }
  return reason;
}
