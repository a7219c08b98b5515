/**
 * stream (QEMU block/stream.c): pulls data from the backing chain into the
 * top node, then makes `base` the top's backing node (dropping the nodes in
 * between). Works in 512 KiB chunks: a chunk allocated in the top already is
 * skipped; one allocated above the base is read through the top (so it comes
 * from the chain) and written into the top; the rest is skipped. Only copied
 * chunks count against the speed limit. on-error: report fails the job,
 * stop pauses and retries the chunk, ignore remembers the first error and
 * goes on (the job still ends with it, offset == len, as iotest 030 shows).
 * Before the job is created a copy-on-read filter node is inserted above
 * `top` (QEMU 7.2's stream_start: bdrv_cor_filter_append, then
 * block_job_create; named by `filter-node-name`, else implicit): the users
 * of top move to it, and it is the job's main node. The filter's copy-on-read of guest reads is not modelled
 * (the job's own copy loop is). The filter goes in prepare, or when the job
 * is freed after a cancel. The stream reads through a BlockBackend of its
 * own on the filter (blockdev-del: "Node X is in use"). All ops are blocked on the filter and on every
 * node from top down to (not including) base — down to the bottom when
 * there is no base; stream keeps its blockers until the job is freed.
 */
import { IoError, type Errno } from "../../disk/index.js";
import type { BlockGraph, BlockNode } from "../../block/index.js";
import type { Process } from "../../scheduler/index.js";
import { createBlockJob, type BlockJobOptions, type JobNodes } from "../block-job.js";
import { streamPerms } from "../node-perms.js";
import { genericError } from "../errors.js";
import type { ErrorAction, Job, JobDriver } from "../job.js";
import type { JobManager } from "../manager.js";

export const STREAM_CHUNK = 512 * 1024;

export interface StreamOptions extends BlockJobOptions {
  top: BlockNode;
  /** The node that becomes top's backing (null: stream everything, top ends with no backing). */
  base: BlockNode | null;
  onError?: ErrorAction;
  /** The copy-on-read filter's node name (QMP filter-node-name; default: implicit). */
  filterNodeName?: string;
  /** The filter, when the caller already inserted it (insertStreamFilter, inside its own drained section). */
  filter?: BlockNode;
}

/**
 * Inserts the copy-on-read filter above `top` (QEMU bdrv_cor_filter_append):
 * the users of top move to it. The caller holds top drained around it.
 */
export function insertStreamFilter(graph: BlockGraph, top: BlockNode, filterNodeName: string | undefined): BlockNode {
  const cfg = { driver: "filter", file: top, filterDriver: "copy-on-read" } as const;
  const filter = filterNodeName === undefined ? graph.createImplicitNode(cfg) : graph.createNode({ ...cfg, name: filterNodeName });
  graph.replaceNode(top, filter);
  return filter;
}

export class StreamDriver implements JobDriver {
  readonly type = "stream" as const;
  nodes!: JobNodes;
  readonly filter: BlockNode;

  constructor(readonly graph: BlockGraph, readonly opts: StreamOptions) {
    this.filter = opts.filter ?? insertStreamFilter(graph, opts.top, opts.filterNodeName);
  }

  /** Moves the filter's users back to top (QEMU bdrv_cor_filter_drop); the node goes once the job lets go of it. */
  private dropFilter(): void {
    if (this.graph.findNode(this.filter.name) === this.filter) this.graph.replaceNode(this.filter, this.opts.top);
  }

  *run(job: Job): Process<number> {
    const { top, base } = this.opts;
    const issuer = `job:${job.name}`;
    job.progressSetRemaining(top.sizeBytes);
    let firstError: Errno | undefined;
    let delayNs = 0;
    for (let offset = 0; offset < top.sizeBytes;) {
      const bytes = Math.min(STREAM_CHUNK, top.sizeBytes - offset);
      yield* job.sleepNs(delayNs);
      if (job.isCancelled) return 0;
      delayNs = 0;
      const here = top.allocation(offset, bytes);
      let n = here.bytes;
      if (!here.allocated) {
        const above = top.backing ? top.backing.allocationAbove(base, offset, here.bytes) : { allocated: false, bytes: here.bytes };
        n = above.bytes;
        if (above.allocated) {
          job.checkMayIssueIo(`stream copy ${offset}+${n}`);
          try {
            const data = yield* top.read(offset, n, issuer);
            yield* top.write(offset, n, issuer, data);
          } catch (e) {
            if (!(e instanceof IoError)) throw e;
            const action = job.requestFailed(this.opts.onError ?? "report", e);
            if (action === "report") return job.fail(e.errno);
            if (action === "stop") continue; // retry this chunk after the resume
            firstError ??= e.errno;
          }
          delayNs = job.accountCopy(n);
        }
      }
      offset += n;
      job.progressUpdate(n);
    }
    return firstError ? job.fail(firstError) : 0;
  }

  /**
   * QEMU stream_prepare: the filter goes (bdrv_cor_filter_drop, a drained
   * section of the filter around the node replacement), then top's backing
   * becomes base inside a drained section of top (bdrv_set_backing_hd).
   * Both are drains from the main loop, so nested polls, and jobs above
   * (a backup's copy-before-write filter) blip paused→running at each.
   */
  prepare(): number {
    const { graph, filter } = this;
    const { top, base } = this.opts;
    if (graph.findNode(filter.name) === filter) {
      graph.drainedBeginPoll(filter);
      try {
        this.dropFilter();
      } finally {
        graph.drainedEnd(filter);
      }
    }
    // Only a node with a backing chain is re-pointed (a raw top has nothing to drop).
    if (top.backing !== base) {
      graph.drainedBeginPoll(top);
      try {
        graph.setBacking(top, base);
      } finally {
        graph.drainedEnd(top);
      }
    }
    return 0;
  }

  free(): void {
    this.nodes.removeAll();
    this.dropFilter();
    if (this.graph.findNode(this.filter.name) === this.filter) this.graph.removeNode(this.filter);
  }
}

/** The nodes from `top` down to `base` (excluded) along backing and filter links. */
export function chainBetween(top: BlockNode, base: BlockNode | null): BlockNode[] {
  const out: BlockNode[] = [];
  for (let n: BlockNode | null = top; n && n !== base; n = n.backing ?? n.file) out.push(n);
  return out;
}

/** The checks of QEMU qmp_block_stream and stream_start that come before the filter goes in; throws QmpError. */
export function checkStream(o: { top: BlockNode; base: BlockNode | null }): void {
  const chain = chainBetween(o.top, o.base);
  if (o.base && !chain.at(-1)?.children().includes(o.base)) {
    throw genericError(`Node '${o.base.name}' is not a backing image of '${o.top.name}'`);
  }
  for (const n of chain) {
    const blocked = n.opBlocker("STREAM");
    if (blocked) throw genericError(blocked.message);
  }
}

/** Checks and creates a stream job in state `created` (QEMU qmp_block_stream + stream_start). */
export function createStream(env: { jm: JobManager; graph: BlockGraph }, o: StreamOptions): Job {
  checkStream(o);
  const chain = chainBetween(o.top, o.base);
  const driver = new StreamDriver(env.graph, o);
  return createBlockJob(env, driver, o, [driver.filter, ...chain], () => {
    env.graph.replaceNode(driver.filter, o.top);
    env.graph.removeNode(driver.filter);
  }, [driver.filter], streamPerms(chain));
}
