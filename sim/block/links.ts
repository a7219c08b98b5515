/**
 * Parent links: who uses a node. A node's parents are other nodes (through
 * their `backing` or `file` child link, or a copy-before-write filter's
 * `target` child), BlockBackends (`root`), and users such as jobs (`user`)
 * that register a DrainParent. Drains travel from a
 * node to its parents along these links; each link counts the drained_begin
 * calls it has delivered and not yet ended (QEMU's parent_quiesce_counter),
 * so moving a link to another node can settle the difference exactly.
 */
import type { AioContext } from "../scheduler/index.js";
import type { BlockBackend } from "./backend.js";
import type { BlockNode } from "./node.js";
import type { LinkPerms } from "./permissions.js";

/**
 * A user of a node that takes part in drained sections (seed 003's drain
 * callback): a job registers one with `graph.attachParent(node, parent)`.
 */
export interface DrainParent {
  /** For traces and deadlock reports. */
  readonly name: string;
  /** A drained section began on the node (or on one of its children): stop issuing new requests. Called once per begin. */
  drainedBegin(): void;
  /** One drained section ended. */
  drainedEnd(): void;
  /** Whether the parent may still issue requests (a busy job). A drain waits until every parent says false; call `graph.kick()` when it changes to false. */
  drainedPoll(): boolean;
  /** Other nodes that must share the node's AioContext (a job's other nodes); see aio-context.ts. */
  aioNodes?(): readonly BlockNode[];
  /**
   * The links to those nodes, newest first (QEMU's job->nodes, a list each
   * block_job_add_bdrv prepends to): the order an AioContext change walks them.
   */
  aioLinks?(): readonly ParentLink[];
  /** Follows the node into another AioContext (a job moves its coroutine). */
  setAioContext?(ctx: AioContext): void;
}

/**
 * What a link means: a node's backing or file child, a copy-before-write
 * filter's target child, a BlockBackend's root, or a registered user.
 */
export type LinkRole = "backing" | "file" | "target" | "root" | "user";

/** One parent→child edge. */
export class ParentLink {
  /** drained_begin calls delivered to the parent through this link and not yet ended. */
  quiesced = 0;
  /**
   * A user that holds the node through a BlockBackend of its own (a
   * stream's filter, a mirror's target, a commit's top and base; since QEMU
   * 7.0 a job has none on its main node): the node counts for QEMU's
   * bdrv_has_blk, as a BlockBackend's root does (see BlockGraph.hasBlk).
   */
  blk = false;
  /** For a backing link: the reason of the op blocker it puts on its child (QEMU's backing_blocker). */
  backingBlocker: Error | undefined = undefined;
  /** What a BlockBackend's or a user's link declared it takes and shares (permissions.ts setLinkPerms); node links derive theirs. */
  declaredPerms: LinkPerms | undefined = undefined;
  constructor(
    readonly role: LinkRole,
    /** A BlockNode for backing/file, a BlockBackend for root, the DrainParent for user. */
    readonly parent: BlockNode | BlockBackend | DrainParent,
    /** The node used; null for a BlockBackend without a medium. */
    public child: BlockNode | null,
  ) {}

  /** Whether the parent is itself a node (drains then quiesce it too). */
  get parentIsNode(): boolean {
    return this.role === "backing" || this.role === "file" || this.role === "target";
  }
}
