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
 * (the job's own copy loop is). The stream holds a BlockBackend of its own
 * on the filter (QEMU's s->blk; blockdev-del: "Node X is in use"); its
 * copies go straight to top in the model. All ops are blocked on the filter and on every
 * node from top down to (not including) base — down to the bottom when
 * there is no base; stream keeps its blockers until the job is freed.
 *
 * Completion, as QEMU 7.2's stream_prepare and stream_clean run it (each a
 * drained section from the main loop, so a nested poll, and a job above top
 * — a backup's copy-before-write filter — blips paused/running at each;
 * golden stream_under_backup shows the four):
 *  1. prepare drops the filter (bdrv_cor_filter_drop → bdrv_drop_filter): a
 *     drained section of the filter; its users, the BlockBackend too, move
 *     down to top;
 *  2. prepare drains the node just above base (bdrv_subtree_drained_begin;
 *     the model quiesces that node and its parents, not the nodes below
 *     it), and inside it makes base top's backing in a drained section of
 *     top (bdrv_set_backing_hd); a job above top resumes when top's last
 *     section ends. The new backing file name QEMU writes into top's header
 *     (bdrv_change_backing_file) is not modelled;
 *  3. clean drops the filter if prepare did not run (a cancelled or failed
 *     stream), then lets go of the BlockBackend (blk_unref): two drained
 *     sections of the node it is on — top, after the drop.
 * The filter node itself goes when the job is freed (its last holder).
 */
import { IoError, type Errno } from "../../disk/index.js";
import type { BlockBackend, BlockGraph, BlockNode } from "../../block/index.js";
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
  /** The node directly above base, or the bottom of the chain without one (QEMU's above_base). */
  readonly aboveBase: BlockNode;
  /** The stream's own BlockBackend (QEMU s->blk), on the filter until it is dropped; null once let go. */
  blk: BlockBackend | null = null;

  constructor(readonly graph: BlockGraph, readonly opts: StreamOptions) {
    this.aboveBase = chainBetween(opts.top, opts.base).at(-1) ?? opts.top;
    this.filter = opts.filter ?? insertStreamFilter(graph, opts.top, opts.filterNodeName);
  }

  /** Creates the BlockBackend on the filter, after the job (QEMU stream_start's blk_new_with_bs). */
  attachBackend(job: Job): void {
    this.blk = this.graph.createBackend({ issuer: job.traceName, root: this.filter });
  }

  /** Whether the filter is still in the graph with its child (not yet dropped). */
  private filterInGraph(): boolean {
    return this.graph.findNode(this.filter.name) === this.filter && this.filter.file !== null;
  }

  *run(job: Job): Process<number> {
    const { top, base } = this.opts;
    // QEMU 7.2 stream_run: nothing lies between the node and its base (the base is its own backing node): the job
    // returns at once, before it sets its length (len 0; goldens/stream_nothing_to_stream)
    if (this.aboveBase === top) return 0;
    const issuer = job.traceName;
    job.progressSetRemaining(top.sizeBytes);
    let firstError: Errno | undefined;
    let delayNs = 0;
    for (let offset = 0; offset < top.sizeBytes;) {
      const bytes = Math.min(STREAM_CHUNK, top.sizeBytes - offset);
      yield* job.sleepNs(delayNs);
      if (job.isCancelled) return 0;
      delayNs = 0;
      // bdrv_is_allocated(_above) reads the qcow2 tables QEMU's caches lack first (each image's first status)
      if (top.statusNeedsTables(base)) yield* top.loadStatusTables(offset, bytes, base, issuer);
      const here = top.allocation(offset, bytes);
      let n = here.bytes;
      if (!here.allocated) {
        const above = top.backing ? top.backing.allocationAbove(base, offset, here.bytes) : { allocated: false, bytes: here.bytes };
        // QEMU 7.2 stream_run: "Finish early if end of backing file has been reached" (a backing shorter than
        // the node: nothing more to copy, the rest counts as done; goldens/stream_short_backing)
        n = !above.allocated && above.bytes === 0 ? top.sizeBytes - offset : above.bytes;
        if (above.allocated) {
          if (!job.mayIssueIo) job.checkMayIssueIo(`stream copy ${offset}+${n}`);
          try {
            const data = yield* top.read(offset, n, issuer);
            yield* top.copyOnReadWrite(offset, n, issuer, data);
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

  /** QEMU stream_prepare: the filter goes, then base becomes top's backing (steps 1 and 2 of the header). */
  prepare(): number {
    const { graph, aboveBase } = this;
    const { top, base } = this.opts;
    if (this.filterInGraph()) graph.dropFilter(this.filter);
    graph.drainedBeginPoll(aboveBase);
    try {
      // Only a node with a backing chain is re-pointed (bdrv_cow_child: a raw top has nothing to drop).
      if (top.backing) {
        graph.drainedBeginPoll(top);
        try {
          graph.setBacking(top, base);
        } finally {
          graph.drainedEnd(top);
        }
      }
    } finally {
      graph.drainedEnd(aboveBase);
    }
    return 0;
  }

  /** QEMU stream_clean: the filter if it is still in, then the BlockBackend (step 3 of the header). */
  clean(): void {
    if (this.filterInGraph()) this.graph.dropFilter(this.filter);
    const blk = this.blk;
    this.blk = null;
    blk?.unref();
  }

  /** QEMU block_job_free: the blockers and job links go; the filter's last holder lets go, so it closes. */
  free(): void {
    this.nodes.removeAll();
    if (this.blk) this.clean(); // freed without finalizing (an early fail)
    if (this.graph.findNode(this.filter.name) === this.filter) {
      if (this.filter.file) this.graph.replaceNode(this.filter, this.filter.file);
      this.graph.removeNode(this.filter);
    }
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
  const job = createBlockJob(env, driver, o, [driver.filter, ...chain], () => {
    env.graph.replaceNode(driver.filter, o.top);
    env.graph.removeNode(driver.filter);
  }, [driver.filter], streamPerms(chain));
  if (job.status === "created") driver.attachBackend(job);
  return job;
}
