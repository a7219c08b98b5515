/**
 * What makes a job a block job: the nodes it works on (QEMU
 * block_job_add_bdrv). Each node gets the job as a parent, so a drained
 * section on it pauses the job (seed 003's drain callback; since QEMU
 * ad90febaf2 any node of the job, not only its main one), and is op-blocked
 * with the reason "block device is in use by block job: <type>" (seed 002).
 */
import {
  ACTIVE_BACKEND, attachInMainLoop, changeAioContext, blockerReason, checkPermissions, clearLinkPerms, nodeContext, PermissionDenied, setLinkPerms,
  type BlockGraph, type BlockNode, type DrainParent, type ParentLink,
} from "../block/index.js";
import type { AioContext } from "../scheduler/index.js";
import { genericError, QmpError } from "./errors.js";
import type { Job, JobDriver } from "./job.js";
import type { JobManager } from "./manager.js";
import type { JobTxn } from "./txn.js";

/**
 * A job's permissions on one of its nodes (QEMU block_job_add_bdrv's perm and
 * shared_perm, or those of a BlockBackend the driver puts on the node; see
 * sim/block/permissions.ts). `user`: who QEMU names in a conflict (default
 * "<type> job '<id>'").
 */
export interface NodePerms {
  perm: number;
  shared: number;
  childName: string;
  user?: string;
}

/** What every block job is created with. */
export interface BlockJobOptions {
  /** null for an internal job. */
  id: string | null;
  /** Its transaction (default: a private one). */
  txn?: JobTxn;
  speedBytesPerSec?: number;
  autoFinalize?: boolean;
  autoDismiss?: boolean;
}

/**
 * Creates the job for `driver` in state `created` and attaches `nodes` to it
 * (the first as its main node). If the job cannot be created (a refused id),
 * `undo` reverts what the driver already did to the graph, and the error goes on.
 * The nodes in `blk` the driver holds through a BlockBackend of its own (a
 * stream's filter, a mirror's target, a commit's top and base); the others,
 * the main node too, only as the job's children (QEMU 7.2's BlockJob has no
 * BlockBackend of its own).
 */
export function createBlockJob(
  env: { jm: JobManager; graph: BlockGraph },
  driver: JobDriver & { nodes: JobNodes },
  o: BlockJobOptions,
  nodes: BlockNode[],
  undo: () => void = () => {},
  blk: readonly BlockNode[] = [],
  perms: readonly (NodePerms | undefined)[] = [],
): Job {
  let job: Job;
  const speed = o.speedBytesPerSec !== undefined && o.speedBytesPerSec < 0 ? undefined : o.speedBytesPerSec;
  // Its filter, opened in the main loop, pulls the source there unless a guest device pins it.
  if (nodes.length > 0) attachInMainLoop(env.graph, nodes[0]);
  // The job runs in its main node's AioContext (block_job_create); its other nodes join it as they
  // are attached (a guest device's backend refuses, and nothing is created).
  const ctx = nodes.length > 0 ? nodeContext(nodes[0]) : undefined;
  try {
    if (ctx) for (const n of nodes.slice(1)) changeAioContext(env.graph, n, ctx);
  } catch (e) {
    undo();
    throw e instanceof Error && e.message === ACTIVE_BACKEND ? genericError(e.message) : e;
  }
  try {
    job = env.jm.create({ id: o.id, driver, txn: o.txn, speedBytesPerSec: speed, autoFinalize: o.autoFinalize, autoDismiss: o.autoDismiss });
  } catch (e) {
    undo();
    throw e;
  }
  driver.nodes = new JobNodes(job, env.graph);
  try {
    nodes.forEach((n, i) => {
      driver.nodes.add(n, { main: i === 0, blk: blk.includes(n), perms: perms[i] });
      // QEMU 7.2 block_job_create sets the speed once its main node is attached: a negative one fails the job.
      if (i === 0 && speed !== o.speedBytesPerSec) throw genericError("Parameter 'speed' expects a non-negative value");
    });
  } catch (e) {
    if (!(e instanceof PermissionDenied) && !(e instanceof QmpError)) throw e;
    // QEMU: the job was created (its `created` event is out), so it fails early: null, freed.
    driver.nodes.removeAll();
    undo();
    job.earlyFail();
    throw e instanceof QmpError ? e : genericError(e.message);
  }
  if (ctx) job.setAioContext(ctx);
  return job;
}

export class JobNodes {
  /** The op-blocker reason, one object so unblocking removes exactly it. */
  readonly reason: Error;
  private attached: { node: BlockNode; link: ParentLink }[] = [];

  constructor(readonly job: Job, readonly graph: BlockGraph) {
    this.reason = blockerReason(`block device is in use by block job: ${job.type}`);
  }

  /**
   * Attaches `node`: drains reach the job, and every operation on it is
   * blocked (except DATAPLANE on the main node). With `perms`, they are
   * checked first; a conflict (or a write on a read-only node) throws PermissionDenied and attaches nothing.
   */
  add(node: BlockNode, opts: { main?: boolean; blk?: boolean; perms?: NodePerms } = {}): void {
    const job = this.job;
    const p = opts.perms;
    const perms = p && { perm: p.perm, shared: p.shared, childName: p.childName, user: p.user ?? `${job.type} job '${job.id ?? ""}'` };
    if (perms) checkPermissions(node, { node, perms });
    const link = this.graph.attachParent(node, new JobParent(this), { blk: opts.blk });
    if (perms) setLinkPerms(link, perms);
    node.blockAllOps(this.reason);
    if (opts.main) node.unblockOp("DATAPLANE", this.reason);
    this.attached.push({ node, link });
  }

  nodes(): BlockNode[] {
    return this.attached.map((a) => a.node);
  }

  /**
   * The driver's own BlockBackend on `node` goes (QEMU blk_unref of a job's
   * blk), the job's link and blockers stay: blockdev-del no longer says
   * "Node X is in use" but "Node 'X' is busy". `perms`: what the link still
   * takes (block_job_add_bdrv's), else what it declared stays.
   */
  releaseBlk(node: BlockNode, perms?: NodePerms): void {
    const a = this.attached.find((x) => x.node === node);
    if (!a) return;
    a.link.blk = false;
    if (perms) setLinkPerms(a.link, { perm: perms.perm, shared: perms.shared, childName: perms.childName, user: perms.user ?? `${this.job.type} job '${this.job.id ?? ""}'` });
  }

  /** The job's links, newest first (QEMU's job->nodes). */
  links(): ParentLink[] {
    return this.attached.map((a) => a.link).reverse();
  }

  /**
   * Detaches every node and lifts the job's blockers (QEMU
   * block_job_remove_all_bdrv), oldest first, the job's links to the others
   * already gone for the moves back to the main loop the detaches start.
   * QEMU lets go newest first with the rest still linked. Of the shapes
   * checked, the difference shows only in a mirror's exit, where QEMU's move
   * starts at the target's BlockBackend, released before this: QEMU's order
   * here alone would start it at the source and pause the jobs on the
   * target's side first, where QEMU and this order pause the source's side
   * first (goldens/iothread_mirror_exit_pause_order).
   */
  removeAll(): void {
    const all = this.attached;
    this.attached = [];
    for (const { node, link } of all) {
      node.unblockAllOps(this.reason);
      clearLinkPerms(link);
      this.graph.detachParent(link);
    }
  }
}

/** The job as a parent of one of its nodes (QEMU's child_job): drains reach it, and it follows the node's AioContext. */
class JobParent implements DrainParent {
  readonly name: string;
  constructor(private readonly of: JobNodes) {
    this.name = of.job.traceName;
  }

  aioNodes(): BlockNode[] {
    return this.of.nodes();
  }

  aioLinks(): ParentLink[] {
    return this.of.links();
  }

  setAioContext(ctx: AioContext): void {
    if (!this.of.job.freed) this.of.job.setAioContext(ctx);
  }

  drainedBegin(): void {
    this.of.job.pause();
  }

  drainedEnd(): void {
    if (!this.of.job.freed) this.of.job.resume();
  }

  /**
   * A parked or finished job issues nothing more; a busy one might (QEMU child_job_drained_poll).
   * Before 89bd030533 a drain did not ask the job at all (behaviour.drainWaitsForJob off); between
   * 4cf077b59f and b5a7a05735 a job whose exit was pending counted as quiescent (drainWaitsForJobExit off).
   */
  drainedPoll(): boolean {
    const job = this.of.job;
    return job.ctx.behaviour.drainWaitsForJob && !job.freed && job.busy && !job.completed
      && (job.ctx.behaviour.drainWaitsForJobExit || !job.deferredToMainLoop) && (job.driver.drainedPoll?.(job) ?? true);
  }
}
