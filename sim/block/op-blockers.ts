/**
 * Op blockers (QEMU `bdrv_op_block` and friends, seed fbe40ff780): per
 * operation type, a list of reasons why a node may not take part in that
 * operation. Whoever blocks owns the reason object and unblocks with the very
 * same object; asking about an operation reports the most recently added
 * reason, prefixed with the node's name, so a second job on a busy node is
 * refused with "Node 'x' is busy: block device is in use by block job: stream".
 */
import { ExpectedError } from "../disk/index.js";

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
 * A blocker's reason: an Error, as QEMU's is, of which only the identity and
 * the message are used. Made without the Error constructor: even with no
 * stack frames captured it costs ~0.4 µs, and a run makes one per job and
 * per backing link.
 */
export function blockerReason(message: string): Error {
  const reason = Object.create(Error.prototype) as Error;
  reason.message = message;
  return reason;
}

/** The error an operation on a blocked node gets; QMP reports it as a GenericError with this message. An expected answer. */
export class OpBlockedError extends ExpectedError {
  constructor(
    /** The name used in the message (a named BlockBackend's, else the node's). */
    readonly nodeName: string,
    readonly op: BlockOpType,
    /** The blocker's reason object itself. */
    readonly reason: Error,
  ) {
    super();
    this.name = "OpBlockedError";
  }

  override get message(): string {
    return `Node '${this.nodeName}' is busy: ${this.reason.message}`;
  }
}

const OP_INDEX = new Map<BlockOpType, number>(BLOCK_OP_TYPES.map((t, i) => [t, i]));
const ALL_OPS = (1 << BLOCK_OP_TYPES.length) - 1;

/** One block call: its reason and the operation types (bits in BLOCK_OP_TYPES order) it still blocks. */
interface Entry {
  readonly reason: Error;
  ops: number;
}

/**
 * The blockers of one node: one entry per block call, oldest first, with the
 * set of operation types it blocks, so a job blocking every type on a node
 * makes one entry, not sixteen. The reasons of one type, newest first (QEMU
 * inserts at its list head), are the entries holding it, read from the end.
 */
export class OpBlockers {
  private entries: Entry[] = [];

  /** Blocks `op` for `reason`. */
  block(op: BlockOpType, reason: Error): void {
    checkReason(reason);
    this.entries.push({ reason, ops: bitOf(op) });
  }

  /** Removes every entry of `op` whose reason is this exact object. */
  unblock(op: BlockOpType, reason: Error): void {
    this.lift(bitOf(op), reason);
  }

  /** Blocks every operation type for `reason`. */
  blockAll(reason: Error): void {
    checkReason(reason);
    this.entries.push({ reason, ops: ALL_OPS });
  }

  /** Unblocks every operation type for `reason`. */
  unblockAll(reason: Error): void {
    this.lift(ALL_OPS, reason);
  }

  /** Whether `op` has any blocker. */
  isBlocked(op: BlockOpType): boolean {
    return this.first(op) !== undefined;
  }

  /** The most recently added reason blocking `op`, if any. */
  first(op: BlockOpType): Error | undefined {
    const bit = bitOf(op);
    for (let i = this.entries.length - 1; i >= 0; i--) if (this.entries[i].ops & bit) return this.entries[i].reason;
    return undefined;
  }

  /** All reasons blocking `op`, newest first. */
  reasons(op: BlockOpType): readonly Error[] {
    const bit = bitOf(op);
    return this.entries.filter((e) => e.ops & bit).map((e) => e.reason).reverse();
  }

  /** Takes the types in `ops` off every entry of `reason`; an entry left blocking nothing goes. */
  private lift(ops: number, reason: Error): void {
    let gone = false;
    for (const e of this.entries) {
      if (e.reason !== reason) continue;
      e.ops &= ~ops;
      if (e.ops === 0) gone = true;
    }
    if (gone) this.entries = this.entries.filter((e) => e.ops !== 0);
  }
}

function bitOf(op: BlockOpType): number {
  const i = OP_INDEX.get(op);
  if (i === undefined) throw new TypeError(`unknown block operation type ${JSON.stringify(op)} (expected one of ${BLOCK_OP_TYPES.join(", ")})`);
  return 1 << i;
}

function checkReason(reason: Error): Error {
  if (!(reason instanceof Error)) {
    throw new TypeError(`an op blocker reason must be an Error object (unblocking matches the same object), got ${typeof reason}`);
  }
  return reason;
}
