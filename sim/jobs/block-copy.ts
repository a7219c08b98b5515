/**
 * Cluster-granular copying from a source node to a target, shared by a
 * backup job's background copy and its copy-before-write filter (QEMU
 * block/block-copy.c): a cluster is copied at most once; a cluster already
 * being copied is waited for, never copied twice; a failed copy leaves the
 * cluster to copy again. Before a copy the source's block status is asked
 * (QEMU block_copy_block_status): a range that reads as zeroes (null-co with
 * read-zeroes, a qcow2 range no image of its chain allocates) is written to
 * the target as zeroes without reading the source, and a copy is cut where
 * the status changes. A block-copy call is one loop (BlockCopyCall):
 * copy-before-write makes one over a write's range (`call`); the backup
 * job's background call is another, with hooks for what the job adds (its
 * pause point, cancel, speed limit and progress: drivers/backup.ts).
 */
import { IoError, type Errno } from "../disk/index.js";
import { DirtyBitmap, type BlockNode, type BlockRequest } from "../block/index.js";
import { notify, Signal, spawn, wait, type Process, type ProcHandle } from "../scheduler/index.js";

/** QEMU 7.2 block-copy's defaults: a task copies at most its 1 MiB buffer (BLOCK_COPY_MAX_BUFFER), a call runs at most 64 at once. */
export const MAX_CHUNK_BYTES = 1 << 20;
export const MAX_WORKERS = 64;

/** A failed copy: which direction failed and how. */
export interface CopyError {
  operation: "read" | "write";
  errno: Errno;
}

export class BlockCopy {
  readonly clusters: number;
  /** 1 where a cluster still has to be copied. */
  private readonly dirty: Uint8Array;
  /** Cluster -> the signal of the copy in flight on it (an array, not a Map: a copy marks each of its clusters). */
  private readonly busy: (Signal<void> | undefined)[];
  /** Notified whenever a copy ends, successfully or not. */
  readonly changed = new Signal<void>("block-copy progress");
  remainingBytes = 0;
  /** Called with the bytes of every successful copy (job progress). */
  onCopied: (bytes: number) => void = () => {};
  /** Called when any copy ends, successfully or not (kicks the job). */
  onEnded: () => void = () => {};
  /**
   * What QMP shows of the copy state: an anonymous, non-recording bitmap of
   * the clusters still to copy, a task's clusters taken out while it runs
   * (QEMU's block-copy bitmap on the source node; the job attaches it).
   */
  readonly bitmap: DirtyBitmap;

  constructor(readonly source: BlockNode, readonly target: BlockNode, readonly clusterSizeBytes: number) {
    this.clusters = Math.ceil(source.sizeBytes / clusterSizeBytes);
    this.dirty = new Uint8Array(this.clusters);
    this.busy = new Array<Signal<void> | undefined>(this.clusters).fill(undefined);
    this.bitmap = new DirtyBitmap("", clusterSizeBytes, source.sizeBytes);
    this.bitmap.disable();
  }

  /** Marks clusters to copy: all of them, or those `pred` accepts. Each run of them goes to the bitmap in one call. */
  markDirty(pred: (cluster: number) => boolean = () => true): void {
    let run = -1;
    for (let c = 0; c <= this.clusters; c++) {
      if (c < this.clusters && !this.dirty[c] && pred(c)) {
        this.dirty[c] = 1;
        this.remainingBytes += this.clusterSizeBytes;
        if (run < 0) run = c;
      } else if (run >= 0) {
        this.bitmap.set(run * this.clusterSizeBytes, this.bytesOf(run, c - run));
        run = -1;
      }
    }
  }

  isDirty(cluster: number): boolean {
    return this.dirty[cluster] === 1;
  }

  isBusy(cluster: number): boolean {
    return this.busy[cluster] !== undefined;
  }

  /** The next run of dirty, idle clusters in [from, end), at most `max` long; null when none is left. */
  nextRun(from: number, max: number, end = this.clusters): { first: number; count: number } | null {
    let c = from;
    while (c < end && (!this.dirty[c] || this.busy[c] !== undefined)) c++;
    if (c >= end) return null;
    let n = 1;
    while (n < max && c + n < end && this.dirty[c + n] && this.busy[c + n] === undefined) n++;
    return { first: c, count: n };
  }

  /** Whether any cluster remains dirty. */
  get done(): boolean {
    return this.remainingBytes === 0;
  }

  /**
   * The source's block status for a copy of `count` clusters from `first`
   * (QEMU 7.2 block_copy_block_status, over the whole backing chain): how
   * many of them, from `first`, one status covers (whole clusters, at least
   * one: a status shorter than a cluster counts as data), and whether they
   * read as zeroes.
   */
  status(first: number, count: number): { count: number; zero: boolean } {
    const cs = this.clusterSizeBytes, offset = first * cs;
    const st = this.source.blockStatus(offset, this.bytesOf(first, count));
    if (st.bytes < cs) return { count: 1, zero: false };
    const n = offset + st.bytes === this.source.sizeBytes ? Math.ceil(st.bytes / cs) : Math.floor(st.bytes / cs);
    return { count: n, zero: st.zero && !st.data };
  }

  /**
   * Copies `count` clusters from `first` (all dirty and idle: take them from
   * nextRun, cut to one status): with `zero` a write-zeroes of the target,
   * else a read of the source and a write. Returns undefined on success, or
   * the failure.
   */
  *copy(first: number, count: number, issuer: string, zero: boolean): Process<CopyError | undefined> {
    const done = new Signal<void>(`block-copy ${this.source.name}:${first}+${count}`);
    this.busy.fill(done, first, first + count);
    const offset = first * this.clusterSizeBytes, bytes = this.bytesOf(first, count);
    this.bitmap.reset(offset, bytes);
    let failure: CopyError | undefined;
    try {
      // QEMU 7.2 block-copy asks the source's block status before a copy (the task's status was taken
      // when it was cut: status()): a range that reads as zeroes is never read (so a null-co source's
      // latency-ns is not waited for when it has read-zeroes: goldens/backup_zero_source_unread; a qcow2's
      // unallocated ranges: goldens/backup_block_status_qcow2)
      if (zero) yield* this.target.writeZeroes(offset, bytes, issuer);
      else {
        const data = yield* this.source.read(offset, bytes, issuer);
        yield* this.target.write(offset, bytes, issuer, data);
      }
      for (let c = first; c < first + count; c++) this.dirty[c] = 0;
      // progress counts whole clusters, a partial last one too (QEMU's block-copy tasks and the bitmap's
      // count are cluster-aligned: goldens/odd_size_job_len), where the I/O stops at the node's end
      this.remainingBytes -= count * this.clusterSizeBytes;
      this.onCopied(count * this.clusterSizeBytes);
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      failure = { operation: e.op === "read" ? "read" : "write", errno: e.errno };
      this.bitmap.set(offset, bytes);
    } finally {
      this.busy.fill(undefined, first, first + count);
      yield notify(done);
      yield notify(this.changed);
      this.onEnded();
    }
    return failure;
  }

  /**
   * Copy-before-write's part of a write to `node` (a BeforeWriteHook's
   * body): one block-copy call over the clusters the write overlaps (QEMU
   * 7.2 cbw_do_copy_before_write → block_copy, which ignores the speed
   * limit), and a failed call fails the write.
   */
  *beforeWrite(req: BlockRequest, node: BlockNode, issuer: string): Process<void> {
    const cs = this.clusterSizeBytes;
    const first = Math.floor(req.offset / cs), end = Math.min(Math.ceil((req.offset + req.bytes) / cs), this.clusters);
    const err = yield* this.call(first, end, issuer);
    if (err) throw new IoError(err.errno, node.name, req.op, req.offset, req.bytes);
  }

  /**
   * One block-copy call over clusters [first, end) with QEMU's defaults and
   * nothing around it (copy-before-write's): see BlockCopyCall. A guest
   * write's whole range is one call of 1 MiB tasks run in parallel, not a
   * copy per cluster (goldens/cbw_write_range_one_call).
   */
  *call(first: number, end: number, issuer: string, maxChunk = Math.max(1, Math.floor(MAX_CHUNK_BYTES / this.clusterSizeBytes)), maxWorkers = MAX_WORKERS): Process<CopyError | undefined> {
    const result = yield* new BlockCopyCall(this, { first, end, issuer, maxChunk, maxWorkers, inlineLastTask: true }).run();
    return result === "cancelled" ? undefined : result; // no hooks: never cancelled
  }

  /** The first copy in flight on clusters [first, end), if any. */
  busyIn(first: number, end: number): Signal<void> | undefined {
    let inFlight: Signal<void> | undefined;
    for (let k = first; k < end && !inFlight; k++) inFlight = this.busy[k];
    return inFlight;
  }

  /** Reads the tables a block status of the clusters needs; whether that failed (then QEMU copies one cluster as data). */
  *readStatusTables(first: number, count: number, issuer: string): Process<boolean> {
    try {
      yield* this.source.loadStatusTables(first * this.clusterSizeBytes, this.bytesOf(first, count), null, issuer);
      return false;
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      return true;
    }
  }

  private bytesOf(first: number, count: number): number {
    return Math.min((first + count) * this.clusterSizeBytes, this.source.sizeBytes) - first * this.clusterSizeBytes;
  }
}

/** Why a block-copy call waits for one of its own tasks. */
export type TaskWait = "workers" | "pass-end" | "failure";

/**
 * What the caller of a block-copy call adds to its loop: the backup job's
 * background call (QEMU 7.2 backup_loop around block_copy_async) is run by
 * the job's own coroutine, so its pause point, cancel, speed limit and
 * progress come in here. Every hook is optional; without one the call
 * behaves as QEMU's block_copy from a coroutine (copy-before-write's).
 */
export interface CallHooks {
  /** Before each chunk: whether the caller's pause point is due (the job's pause may cancel the call: BlockCopyCall.restart). */
  pauseDue?(): boolean;
  pausePoint?(): Process<void>;
  /** Before each chunk: whether the call ends because its caller was cancelled. */
  cancelSeen?(): boolean;
  /** Whether the caller was cancelled: a failed call stops waiting for its tasks. */
  cancelRequested?(): boolean;
  /** Waits until one of the call's tasks ends (default: the call's own signal of task ends). */
  waitForTask?(why: TaskWait): Process<void>;
  /** Waits until `copy`, another call's copy in flight on the range, ends (default: waits for it). */
  waitForOtherCopy?(copy: Signal<void>): Process<void>;
  /** The block status's qcow2 table reads for a chunk (default: in the call); whether the call still issues the chunk, and whether the status failed. */
  readStatusTables?(first: number, count: number): Process<{ stillToIssue: boolean; failed: boolean }>;
  /** Before a chunk is cut: true if the call slept for the speed limit (it then looks for its chunk again). */
  rateLimit?(): Process<boolean>;
  /** A task of `count` clusters from `first` is about to be issued / was just issued (and entered). */
  issuing?(first: number, count: number): void;
  issued?(first: number, count: number): void;
}

export interface CallOptions {
  first: number;
  end: number;
  issuer: string;
  /** Largest task, in clusters; most tasks in flight at once. */
  maxChunk: number;
  maxWorkers: number;
  /**
   * QEMU runs a task that covers the rest of the range as the pass's first in the call's own coroutine. The
   * backup's call runs in the job's coroutine here, so it issues that task as a coroutine of its own: the job
   * waits for it in job_yield, not busy, as QEMU's job waits for its call.
   */
  inlineLastTask: boolean;
}

/**
 * One block-copy call over clusters [first, end) (QEMU 7.2
 * block_copy_common): passes over the range, each issuing a task per run of
 * dirty, idle clusters (at most maxChunk clusters, cut to one block status)
 * up to maxWorkers at once, every task entered at once, and waiting at the
 * pass's end for its tasks (block_copy_dirty_clusters). A pass that issued
 * something is followed by another from the start; one that found nothing
 * waits for a copy in flight on the range (another call's) and passes
 * again, or ends the call. The first failed task fails the call: it issues
 * no more tasks, waits for those in flight and returns the failure. A block
 * status that needs qcow2 tables the caches lack reads them before the task
 * is cut. What a caller adds (pause point, cancel, speed limit, progress)
 * comes through CallHooks.
 */
export class BlockCopyCall {
  /** Where the pass looks for its next chunk. */
  cursor: number;
  /** Tasks issued and not yet ended, and the first failure among them. */
  inFlight = 0;
  failure: CopyError | undefined;
  /** The pass's tasks were issued from the pool (not one run in the caller). */
  private pooled = false;
  /** The pass found nothing more and waits for its tasks. */
  private draining = false;
  /** Notified as each task ends, when the default waitForTask waits on it (a signal per pass). */
  private taskEnded: Signal<void> | null = null;

  constructor(readonly bc: BlockCopy, readonly opts: CallOptions, readonly hooks: CallHooks = {}) {
    this.cursor = opts.first;
    this.newPass();
  }

  /** The call is cancelled (a pause), a new one takes its place: it scans from the start, and a failure met before is forgotten. */
  restart(): void {
    this.failure = undefined;
    this.newPass();
  }

  *run(): Process<CopyError | "cancelled" | undefined> {
    const bc = this.bc, h = this.hooks, o = this.opts;
    for (;;) {
      if (h.pauseDue?.()) yield* h.pausePoint!();
      if (h.cancelSeen?.()) return "cancelled";
      if (this.failure) {
        while (this.inFlight > 0 && !h.cancelRequested?.()) yield* this.waitForTask("failure");
        if (h.cancelRequested?.()) return "cancelled";
        if (!this.failure) continue; // a pause meanwhile cancelled the call, and the failure with it (restart)
        return this.failure;
      }
      if (this.inFlight >= o.maxWorkers) {
        yield* this.waitForTask("workers");
        continue;
      }
      let next = this.draining ? null : bc.nextRun(this.cursor, o.maxChunk, o.end);
      if (!next) {
        // QEMU 7.2 block_copy_dirty_clusters waits for its pass's tasks at the end of the range before
        // block_copy_common passes again from the start, so a cluster a failed copy-before-write left dirty,
        // behind the pass or ahead of it, is copied only after them, not looked for while the pass waits
        // (goldens/block_copy_pass_waits_for_tasks, block_copy_pass_waits_for_tasks_last_cluster)
        if (this.inFlight > 0) {
          this.draining = true;
          yield* this.waitForTask("pass-end");
          continue;
        }
        if (this.cursor > o.first) {
          this.newPass();
          continue;
        }
        // nothing dirty and idle: wait for a copy in flight on the range (it may fail and leave its clusters dirty)
        const busy = bc.done ? undefined : bc.busyIn(o.first, o.end);
        if (!busy) return undefined;
        if (h.waitForOtherCopy) yield* h.waitForOtherCopy(busy);
        else yield wait(busy);
        continue;
      }
      let failed = false;
      if (bc.source.statusNeedsTables()) {
        // the status reads the qcow2 tables QEMU's caches lack, in the call, before the task is cut
        if (h.readStatusTables) {
          const read = yield* h.readStatusTables(next.first, next.count);
          if (!read.stillToIssue) continue;
          failed = read.failed;
        } else failed = yield* bc.readStatusTables(next.first, next.count, o.issuer);
        next = bc.nextRun(next.first, next.count, next.first + next.count); // another call may have taken some meanwhile
        if (!next) continue;
      }
      if (h.rateLimit && (yield* h.rateLimit())) continue;
      yield* this.issue(next.first, next.count, failed);
    }
  }

  /**
   * Cuts a task from `count` dirty, idle clusters at `first` to one block
   * status of the source (a status that failed counts as one cluster of
   * data: QEMU block_copy_block_status) and issues it, entered at once
   * (aio_task_pool_start_task), or runs it in the caller (inlineLastTask).
   */
  *issue(first: number, count: number, statusFailed: boolean): Process<void> {
    const bc = this.bc, o = this.opts, h = this.hooks;
    const st = statusFailed ? { count: 1, zero: false } : bc.status(first, count);
    this.cursor = first + st.count;
    if (o.inlineLastTask && !this.pooled && this.cursor >= o.end) {
      this.failure = yield* bc.copy(first, st.count, o.issuer, st.zero);
      return;
    }
    this.pooled = true;
    h.issuing?.(first, st.count);
    this.inFlight++;
    const task = (yield spawn(`${o.issuer} copy ${first}+${st.count}`, this.task(first, st.count, st.zero, this.taskEnded), { coroutine: true })) as ProcHandle;
    bc.source.graph.sim.enterNow(task);
    h.issued?.(first, st.count);
  }

  private *task(first: number, count: number, zero: boolean, ended: Signal<void> | null): Process<void> {
    const err = yield* this.bc.copy(first, count, this.opts.issuer, zero);
    if (err) this.failure ??= err;
    this.inFlight--;
    if (ended) yield notify(ended);
  }

  private *waitForTask(why: TaskWait): Process<void> {
    if (this.hooks.waitForTask) yield* this.hooks.waitForTask(why);
    else yield wait(this.taskEnded!);
  }

  private newPass(): void {
    const o = this.opts;
    this.cursor = o.first;
    this.pooled = false;
    this.draining = false;
    if (!this.hooks.waitForTask) this.taskEnded = new Signal<void>(`block-copy pass ${this.bc.source.name}:${o.first}-${o.end}`);
  }
}
