/**
 * Cluster-granular copying from a source node to a target, shared by a
 * backup job's background copy and its copy-before-write filter (QEMU
 * block/block-copy.c): a cluster is copied at most once; a cluster already
 * being copied is waited for, never copied twice; a failed copy leaves the
 * cluster to copy again. Before a copy the source's block status is asked
 * (QEMU block_copy_block_status): a range that reads as zeroes (null-co with
 * read-zeroes, a qcow2 range no image of its chain allocates) is written to
 * the target as zeroes without reading the source, and a copy is cut where
 * the status changes. Copy-before-write makes one block-copy call over a
 * write's range (`call`); the backup job's background call is its own loop
 * (drivers/backup.ts) over the same tasks (`copy`).
 */
import { IoError, type Errno } from "../disk/index.js";
import { DirtyBitmap, type BlockNode, type BlockRequest } from "../block/index.js";
import { notify, Signal, spawn, wait, type Process, type ProcHandle } from "../scheduler/index.js";

/** QEMU 7.2 block-copy's defaults: a task copies at most its 1 MiB buffer (BLOCK_COPY_MAX_BUFFER), a call runs at most 64 at once. */
export const MAX_CHUNK_BYTES = 1 << 20;
export const MAX_WORKERS = 64;

/** The tasks of one pass of a block-copy call over its range. */
interface Pass {
  inFlight: number;
  /** The first failure among them. */
  failure: CopyError | undefined;
  /** Notified as each ends. */
  ended: Signal<void>;
}

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
        this.remainingBytes += this.bytesOf(c, 1);
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
      this.remainingBytes -= bytes;
      this.onCopied(bytes);
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
   * One block-copy call over clusters [first, end) (QEMU 7.2
   * block_copy_common): passes over the range, each issuing a task per run
   * of dirty, idle clusters (at most `maxChunk` clusters, cut to one block
   * status) up to `maxWorkers` at once, every task entered at once, and
   * waiting at the pass's end for all its tasks
   * (block_copy_dirty_clusters). A pass that found something dirty is
   * followed by another; one that found nothing waits for a copy in flight
   * on the range (another call's) and passes again, or ends the call. A
   * task that covers the rest of the range as the pass's first runs in the
   * caller itself. The first failed task fails the call: its pass issues no
   * more tasks. So a guest write's whole range is one call of 1 MiB tasks
   * run in parallel, not a copy per cluster (goldens/cbw_write_range_one_call).
   */
  *call(first: number, end: number, issuer: string, maxChunk = Math.max(1, Math.floor(MAX_CHUNK_BYTES / this.clusterSizeBytes)), maxWorkers = MAX_WORKERS): Process<CopyError | undefined> {
    for (;;) {
      const pass: Pass = { inFlight: 0, failure: undefined, ended: new Signal<void>(`block-copy pass ${this.source.name}:${first}-${end}`) };
      let c = first, found = false, pooled = false;
      while (c < end && !pass.failure) {
        // a free worker first (QEMU takes it after cutting the task, whose clusters it has marked
        // meanwhile; here they are taken only by copy, so they are chosen once a worker is free)
        while (pass.inFlight >= maxWorkers) yield wait(pass.ended);
        if (pass.failure) break;
        let next = this.nextRun(c, maxChunk, end);
        if (!next) break;
        found = true;
        let failed = false;
        if (this.source.statusNeedsTables()) {
          // the status reads the qcow2 tables QEMU's caches lack, in the caller, before the task is cut
          failed = yield* this.readStatusTables(next.first, next.count, issuer);
          next = this.nextRun(next.first, next.count, next.first + next.count);
          if (!next) continue;
        }
        const { count, zero } = failed ? { count: 1, zero: false } : this.status(next.first, next.count);
        c = next.first + count;
        if (!pooled && c >= end) {
          pass.failure = yield* this.copy(next.first, count, issuer, zero);
          break;
        }
        pooled = true;
        pass.inFlight++;
        const task = (yield spawn(`${issuer} copy ${next.first}+${count}`, this.passTask(pass, next.first, count, issuer, zero), { coroutine: true })) as ProcHandle;
        this.source.graph.sim.enterNow(task); // aio_task_pool_start_task enters the task at once
      }
      while (pass.inFlight > 0) yield wait(pass.ended);
      if (pass.failure) return pass.failure;
      if (found) continue;
      // nothing dirty and idle: wait for a copy in flight on the range (it may fail and leave its clusters dirty)
      let inFlight: Signal<void> | undefined;
      for (let k = first; k < end && !inFlight; k++) inFlight = this.busy[k];
      if (inFlight) {
        yield wait(inFlight);
        continue;
      }
      return undefined;
    }
  }

  /** Reads the tables a block status of the clusters needs; whether that failed (then QEMU copies one cluster as data). */
  private *readStatusTables(first: number, count: number, issuer: string): Process<boolean> {
    try {
      yield* this.source.loadStatusTables(first * this.clusterSizeBytes, this.bytesOf(first, count), null, issuer);
      return false;
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      return true;
    }
  }

  private *passTask(pass: Pass, first: number, count: number, issuer: string, zero: boolean): Process<void> {
    const err = yield* this.copy(first, count, issuer, zero);
    if (err) pass.failure ??= err;
    pass.inFlight--;
    yield notify(pass.ended);
  }

  private bytesOf(first: number, count: number): number {
    return Math.min((first + count) * this.clusterSizeBytes, this.source.sizeBytes) - first * this.clusterSizeBytes;
  }
}
