/**
 * Cluster-granular copying from a source node to a target, shared by a
 * backup job's background copy and its copy-before-write filter (QEMU
 * block/block-copy.c): a cluster is copied at most once; a cluster already
 * being copied is waited for, never copied twice; a failed copy leaves the
 * cluster to copy again. Before a copy the source's block status is asked
 * (QEMU block_copy_block_status): a range that reads as zeroes (null-co with
 * read-zeroes, a qcow2 range no image of its chain allocates) is written to
 * the target as zeroes without reading the source, and a copy is cut where
 * the status changes.
 */
import { IoError, type Errno } from "../disk/index.js";
import { DirtyBitmap, type BlockNode, type BlockRequest } from "../block/index.js";
import { notify, Signal, wait, type Process } from "../scheduler/index.js";

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

  /** The next run of dirty, idle clusters at or after `from`, at most `max` long; null when none is left. */
  nextRun(from: number, max: number): { first: number; count: number } | null {
    let c = from;
    while (c < this.clusters && (!this.dirty[c] || this.busy[c] !== undefined)) c++;
    if (c >= this.clusters) return null;
    let n = 1;
    while (n < max && c + n < this.clusters && this.dirty[c + n] && this.busy[c + n] === undefined) n++;
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
      // (a qcow2 source's status reads the tables QEMU's caches lack first: the image's first status)
      if (this.source.statusNeedsTables()) yield* this.source.loadStatusTables(offset, bytes, null, issuer);
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
   * body): makes sure every cluster the write overlaps is copied (copies
   * the dirty ones, waits for those in flight), and a failed copy fails the
   * write. One generator for both: a guest write under a backup resumes
   * through every generator level on each completion.
   */
  *beforeWrite(req: BlockRequest, node: BlockNode, issuer: string): Process<void> {
    const last = Math.min(Math.ceil((req.offset + req.bytes) / this.clusterSizeBytes), this.clusters);
    for (let c = Math.floor(req.offset / this.clusterSizeBytes); c < last; c++) {
      for (;;) {
        const inFlight = this.busy[c];
        if (inFlight) {
          yield wait(inFlight);
          continue; // it may have failed and be dirty again
        }
        if (!this.dirty[c]) break;
        const err = yield* this.copy(c, 1, issuer, this.status(c, 1).zero);
        if (err) throw new IoError(err.errno, node.name, req.op, req.offset, req.bytes);
      }
    }
  }

  private bytesOf(first: number, count: number): number {
    return Math.min((first + count) * this.clusterSizeBytes, this.source.sizeBytes) - first * this.clusterSizeBytes;
  }
}
