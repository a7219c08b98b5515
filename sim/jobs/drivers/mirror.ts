/**
 * mirror, and active commit which QEMU runs on the same code (block/mirror.c).
 *
 * A mirror_top filter node is inserted above the source; a dirty bitmap on
 * the source records every write. The job copies dirty chunks to the target
 * (up to 16 operations in flight, each up to 1 MiB, within the copy buffer:
 * buf-size, 16 MiB by default), clearing the bits of the run it takes before it asks the source's
 * block status (which may yield) so a write that lands meanwhile dirties its chunk again. Where the source's block status shows no data
 * the target is zeroed (status zero) or discarded instead, in one operation
 * (methodFor). Chunks being copied are marked in flight (QEMU's
 * in_flight_bitmap): a chunk dirtied again while its first copy is in flight
 * is not copied again until that copy has landed (mirror_wait_on_conflicts),
 * else the two copies could land in either order and the stale one win.
 * A round that starts with nothing dirty or in flight flushes the target and
 * goes to ready (BLOCK_JOB_READY); a round that copied never does, even if
 * its copies have all landed: it first sleeps its rate-limit delay. In ready
 * the job stays, copying new writes and idling one 100 ms slice at a time.
 *
 * complete (or a soft cancel in ready) makes it converge: drain the source,
 * and if still clean flush the target and leave run; prepare then pivots — the target replaces the
 * source under all its parents, so the guest now writes to the target — for
 * complete only. A soft cancel in ready ends with BLOCK_JOB_COMPLETED and no
 * pivot (a point-in-time copy); a hard cancel, or a soft one before ready,
 * ends at once with BLOCK_JOB_CANCELLED. Errors: a failed read or write
 * re-dirties its chunk; on-source-error / on-target-error decide.
 *
 * Active commit is this job with type "commit": source = the active top,
 * target = its base, dirty = what is allocated above the base; the pivot
 * moves the guest onto the base.
 *
 * copy-mode write-blocking (active mirroring, QEMU 7.2; the QMP command
 * inserts mirror_top in a drained section of the source): the bitmap is
 * disabled, so guest writes no longer dirty it; instead mirror_top's own
 * write path copies each guest write to the target before the write
 * completes (bdrv_mirror_top_do_write). It starts once run() has set up the
 * bitmap (7.2 gives the filter its job only then), and stops while the job
 * has failed or is hard-cancelled (those writes are then neither copied nor
 * tracked, as in 7.2). An active write first waits until no copy or other
 * active write covers any chunk of its range (active_write_prepare), holds
 * those chunks, writes the source, then the target (do_sync_target_write):
 * a partly written chunk that is still dirty is left to the background copy,
 * the whole chunks written are cleared; a failed target write dirties the
 * chunks again and goes to on-target-error. The guest's write waits for all
 * of it. The background copy of the bitmap goes on as in background mode.
 */
import { IoError, type Errno } from "../../disk/index.js";
import { holdSection, releaseSection, yieldToDrain, type BlockGraph, type BlockNode, type BlockRequest, type DirtyBitmap } from "../../block/index.js";
import type { ClusterVersion } from "../../disk/index.js";
import { notify, Signal, sleep, spawn, wait, type Process, type ProcHandle } from "../../scheduler/index.js";
import { createBlockJob, type BlockJobOptions, type JobNodes } from "../block-job.js";
import { mirrorPerms } from "../node-perms.js";
import { genericError } from "../errors.js";
import type { ErrorAction, Job, JobDriver, JobType } from "../job.js";
import type { JobManager } from "../manager.js";
import { SLICE_NS } from "../ratelimit.js";
import { growBase, reopenForWriting } from "./commit.js";

export type MirrorSync = "full" | "top" | "none";
export type MirrorCopyMode = "background" | "write-blocking";

export interface MirrorOptions extends BlockJobOptions {
  source: BlockNode;
  target: BlockNode;
  sync: MirrorSync;
  /** Dirty-tracking granularity (default: the target's cluster size, clamped to 4 KiB..64 KiB). */
  granularityBytes?: number;
  onSourceError?: ErrorAction;
  onTargetError?: ErrorAction;
  /** Default background; active commit is always background. */
  copyMode?: MirrorCopyMode;
  /** The copy buffer (QMP buf-size; 0 or absent: 16 MiB), rounded up to the granularity. */
  bufSizeBytes?: number;
  /**
   * QEMU's zero_target (default true): a sync=full mirror must write the target all over, so everything is
   * dirty at the start. drive-mirror onto a file it has just created passes false (the new file reads as
   * zeroes, bdrv_has_zero_init): then only what is allocated somewhere in the source's chain is dirty.
   */
  zeroTarget?: boolean;
  /** Active commit: the job type "commit" and the nodes between source and target it also blocks. */
  commit?: { intermediates: BlockNode[] };
}

const MAX_IN_FLIGHT = 16;
const MAX_OP_BYTES = 1 << 20;
const BUF_BYTES = MAX_IN_FLIGHT * MAX_OP_BYTES;

export class MirrorDriver implements JobDriver {
  readonly type: JobType;
  readonly bitmap: DirtyBitmap;
  readonly mirrorTop: BlockNode;
  nodes!: JobNodes;
  /** What the source held when the job pivoted (undefined before, or without a pivot). */
  contentAtPivot: readonly ClusterVersion[] | undefined;
  pivoted = false;
  private inFlight = 0;
  private bytesInFlight = 0;
  private readonly opDone = new Signal<void>("mirror op done");
  /**
   * Chunk -> the id of the in-flight operation copying it, 0 for none (QEMU's
   * in_flight_bitmap and ops_in_flight): an array as long as the bitmap, as
   * an operation claims up to 16 chunks and a Map of them cost more than the
   * copy (a plain array: a typed one this size lives outside V8's heap and
   * costs more to make than the job uses it).
   */
  private readonly chunkOwner: number[];
  private lastOpId = 0;
  /**
   * The dirty-bitmap iterator's place (QEMU's s->dbi): the chunk an
   * iteration looks from for its first dirty chunk, just past the last
   * run taken; it starts again at 0 only when nothing is dirty from here on.
   */
  private iterChunk = 0;
  private failure: { errno: Errno } | undefined;
  private synced = false;
  /**
   * QEMU's s->in_drain: set when the job begins a drained section of its source (to converge, or on its way
   * out) and, once run() has left holding that section, kept until the exit ends it. Meanwhile the job counts
   * as quiescent to drains (it must not wait for itself, nor hold up other sections while its exit is pending).
   */
  private inDrain = false;
  /**
   * run() left with the source drained: every guest request on it queues until the exit (mirror_exit_common).
   * What holds the section then, as reports name it; undefined while no section is held.
   */
  private heldBy: string | undefined;
  /** Active commit into a read-only base: reopened read-write for the job, read-only again if it aborts (mirror_exit_common's base_ro). */
  baseReadOnly = false;
  /** The job, once run() has set up the bitmap: write-blocking mode copies guest writes from then on. */
  private activeJob: Job | undefined;
  /** Bytes of active writes being written to the target (QEMU active_write_bytes_in_flight). */
  private activeBytesInFlight = 0;
  /** Active writes from their wait for conflicts to their end (QEMU in_active_write_counter). */
  private activeWrites = 0;
  /** The copy buffer (QEMU buf_size): one iteration copies at most this much. */
  private readonly bufBytes: number;
  /** Granularity chunks of the buffer no copy holds (QEMU buf_free_count); a copy waits for its chunks. */
  private bufFreeChunks: number;

  constructor(readonly graph: BlockGraph, readonly opts: MirrorOptions) {
    this.type = opts.commit ? "commit" : "mirror";
    const g = opts.granularityBytes ?? Math.min(Math.max(opts.target.clusterSizeBytes, 4096), 65536);
    this.bitmap = opts.source.addBitmap(`#${this.type}-dirty-${opts.id ?? "internal"}`, g);
    this.bitmap.clear();
    this.chunkOwner = new Array<number>(this.bitmap.chunks).fill(0);
    this.bufBytes = Math.ceil((opts.bufSizeBytes || BUF_BYTES) / g) * g;
    this.bufFreeChunks = this.bufBytes / g;
    this.mirrorTop = graph.createImplicitNode({ driver: "filter", file: opts.source, filterDriver: opts.commit ? "commit_top" : "mirror_top" });
    graph.replaceNode(opts.source, this.mirrorTop);
    if (opts.copyMode === "write-blocking") {
      this.bitmap.disable(); // active writes copy guest writes themselves; the bitmap only shrinks
      this.mirrorTop.setFilterWrite((req, pass) => this.topWrite(req, pass));
    }
  }

  *run(job: Job): Process<number> {
    const { source, sync } = this.opts;
    const bm = this.bitmap;
    // QEMU 7.2 compares the sizes in mirror_run, not in the command: the job is created and started, and
    // fails at once, leaving through the drained section as any failure (goldens/mirror_size_mismatch_fails_in_run).
    // An active commit grows a smaller base to the top's size there instead (blk_truncate), and fails so if
    // the base cannot grow (goldens/block_resize_chain_jobs); a bigger base keeps its size.
    let setupFailure: Errno | undefined;
    if (!this.opts.commit && source.sizeBytes !== this.opts.target.sizeBytes) setupFailure = "EINVAL";
    else if (this.opts.commit && this.opts.target.sizeBytes < source.sizeBytes) setupFailure = growBase(this.opts.target, source.sizeBytes);
    const setupFailed = setupFailure !== undefined;
    if (!setupFailed && sync === "full" && this.opts.zeroTarget !== false) bm.setAll();
    else if (!setupFailed && sync !== "none") {
      // QEMU mirror_dirty_init: bdrv_is_allocated_above down to the base (active commit), of the source alone
      // (sync top), or down the whole chain (sync full onto a target that reads as zeroes:
      // goldens/drive_mirror_full_unallocated_len)
      const below = this.opts.commit ? this.opts.target : sync === "full" ? null : source.backing;
      for (let c = 0; c < bm.chunks; c++) {
        const r = bm.chunkRange(c);
        if (source.statusNeedsTables(below)) yield* source.loadStatusTables(r.offset, r.bytes, below, job.traceName);
        const a = this.opts.commit || sync === "full" ? source.allocationAbove(below, r.offset, r.bytes) : source.allocation(r.offset, r.bytes);
        if (a.allocated) bm.set(r.offset, r.bytes);
      }
    }
    this.activeJob = job;
    const sim = this.graph.sim;
    let lastPauseNs = sim.now;
    for (;;) {
      if (setupFailed) break;
      // Background copies wait while active writes are in progress (write-blocking mode).
      while (this.activeWrites > 0) yield wait(this.opDone);
      // A reported error ends the job before the pause point: a failed job never parks in `paused`.
      if (this.failure) break;
      if (job.pauseDue) yield* job.pausePoint();
      if (job.isCancelled) break;
      // `cnt` is read once, before this round's iteration: whether the round may go READY or converge
      // depends on it, so a round that copied goes round again, after the rate limit's sleep, before READY
      // (the copies themselves may all have landed meanwhile, as on a null-co source).
      let cnt = bm.count;
      job.progressSetRemaining(this.bytesInFlight + bm.dirtyBytes + this.activeBytesInFlight);
      let delayNs = 0;
      // After a slice of virtual time without sleeping (waiting for copies to land), or with an error
      // pending, the round skips copying and only yields below, so a drain or a timer gets its turn.
      if (sim.now - lastPauseNs < SLICE_NS && job.iostatus === "ok") {
        if (this.inFlight >= MAX_IN_FLIGHT || this.bufFreeChunks === 0 || (cnt === 0 && this.inFlight > 0)) {
          yield wait(this.opDone);
          continue;
        }
        if (cnt > 0) delayNs = yield* this.iteration(job);
      }
      let shouldComplete = false;
      if (this.inFlight === 0 && cnt === 0) {
        if (!this.synced) {
          // The bulk of the copy goes to the target's medium before READY; if the flush fails the error
          // action has been applied, and the next round looks at the outcome.
          if (!(yield* this.flushTarget(job))) continue;
          job.transitionToReady();
          this.synced = true;
        }
        shouldComplete = job.shouldComplete || job.cancelled;
        cnt = bm.count; // the flush may have let writes in
      }
      if (cnt === 0 && shouldComplete) {
        this.inDrain = true;
        yield* yieldToDrain(sim, `mirror '${job.name}' converging`);
        yield* this.graph.drainedBegin(source);
        // Drained, nothing can dirty the source any more; still clean, and the target flushed, it may leave.
        if (bm.count === 0 && (yield* this.flushTarget(job))) {
          this.holdDrain(job); // in_drain stays set until the exit ends the section
          break;
        }
        this.graph.drainedEnd(source); // new writes came in (or the flush failed): go round again
        this.inDrain = false;
        continue;
      }
      // In READY the rate-limit delay is dropped: a slice when idle, else none at all (completing or not:
      // `shouldComplete` is only set when nothing was dirty or in flight).
      if (this.synced && !shouldComplete) delayNs = this.inFlight === 0 && cnt === 0 ? SLICE_NS : 0;
      yield* job.sleepNs(delayNs);
      lastPauseNs = sim.now;
    }
    while (this.inFlight > 0) yield wait(this.opDone);
    if (this.heldBy === undefined) {
      // Leaving without converging (cancel, failure), QEMU's mirror_run drains the source too (need_drain),
      // bounced through the main loop, so the job ends after the reply to the command that cancelled it.
      this.inDrain = true;
      yield* yieldToDrain(this.graph.sim, `mirror '${job.name}' leaving`);
      yield* this.graph.drainedBegin(this.opts.source);
      this.holdDrain(job);
    }
    if (setupFailure) {
      const ret = job.fail(setupFailure);
      if (!this.opts.commit) job.err = "Source and target image have different sizes"; // error_setg, not strerror
      return ret;
    }
    return this.failure && !job.isCancelled ? job.fail(this.failure.errno) : 0;
  }

  /** run() leaves with the source drained (QEMU mirror_run: in_drain set, the section begun): the exit ends it. */
  private holdDrain(job: Job): void {
    this.heldBy = `the completed ${this.type} job '${job.name}' holds until its exit (${job.autoFinalize ? "the bottom half after its run" : "job-finalize: auto-finalize is off"})`;
    holdSection(this.opts.source, this.heldBy);
  }

  /** Flushes the target (QEMU mirror_flush); on failure applies on-target-error and returns false. */
  private *flushTarget(job: Job): Process<boolean> {
    if (!job.mayIssueIo) job.checkMayIssueIo(`${this.type} flush`);
    try {
      yield* this.opts.target.flush(job.traceName);
      return true;
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      if (job.requestFailed(this.opts.onTargetError ?? "report", e) === "report") this.failure ??= { errno: e.errno };
      return false;
    }
  }

  /** Issues copy operations for one run of dirty chunks; returns the rate-limit delay. */
  private *iteration(job: Job): Process<number> {
    const bm = this.bitmap, g = bm.granularityBytes;
    // One iteration copies the run of consecutive dirty chunks from the iterator's next dirty one, at most the
    // buffer (buf-size, 16 MiB by default: goldens/mirror_buf_size), then the rate limit is applied (QEMU mirror_iteration: a clean chunk
    // or one still in flight ends the run). The iterator goes on from there next time, so a chunk dirtied again behind it waits until
    // it wraps (goldens/mirror_dirty_iterator_resumes).
    let c = bm.nextDirty(this.iterChunk);
    if (c < 0) c = bm.nextDirty(0);
    if (c < 0) return 0;
    if (this.chunkOwner[c] !== 0 && job.ctx.behaviour.mirrorWaitsOnConflicts) {
      // QEMU mirror_iteration: wait until no operation in flight covers the first dirty chunk, take a
      // pause point, then copy from that chunk on (dirty still or not).
      while (this.chunkOwner[c] !== 0) yield wait(this.opDone);
      if (job.pauseDue) yield* job.pausePoint();
      if (this.failure) return 0; // a copy failed meanwhile: issue nothing more
    }
    // The run is fixed before anything yields (even before 9c83625bdd a chunk in flight ended it, only the first was not looked at).
    let n = c + 1;
    while (n < bm.chunks && (n - c) * g < this.bufBytes && bm.isDirty(n) && this.chunkOwner[n] === 0) n++;
    const from = c * g, runBytes = Math.min(n * g, bm.sizeBytes) - from;
    this.iterChunk = n;
    // The run's dirty bits are cleared, and its chunks marked in flight (QEMU's pseudo operation), before the
    // source's block status is asked, which may yield (cold qcow2 tables): a write landing meanwhile dirties
    // its chunk again, to be copied once more (goldens/mirror_write_during_first_status).
    bm.reset(from, runBytes);
    const pseudo = this.claimChunks(from, runBytes);
    let offset = from, chunksLeft = n - c, bytes = 0;
    let yielded = false; // whether anyone else ran while the run's chunks were marked
    try {
      while (chunksLeft > 0 && offset < bm.sizeBytes) {
        // QEMU reads the qcow2 tables the source's block status needs first (cold caches: the image's first status)
        if (this.opts.source.statusNeedsTables()) {
          yielded = true;
          yield* this.opts.source.loadStatusTables(offset, Math.min(chunksLeft * g, bm.sizeBytes - offset), null, job.traceName);
        }
        const { method, len } = this.methodFor(offset, Math.min(chunksLeft * g, bm.sizeBytes - offset));
        while (this.inFlight >= MAX_IN_FLIGHT) {
          yielded = true;
          yield wait(this.opDone);
        }
        if (this.failure) break; // the rest of the run is not copied: the job fails
        if (!job.mayIssueIo) job.checkMayIssueIo(`${this.type} ${method} ${offset}+${len}`);
        bytes += len;
        chunksLeft -= Math.ceil(len / g);
        if (method === "discard") {
          // The target ignores the discard (blocksim's nodes are opened as blockdev-add's default discard=ignore):
          // QEMU's operation ends inside mirror_perform, without I/O and without yielding.
          job.progressUpdate(len);
        } else {
          this.inFlight++;
          this.bytesInFlight += len;
          const id = this.claimChunks(offset, len);
          const op = (yield spawn(`${job.traceName} ${method} ${offset}+${len}`, this.op(job, offset, len, id, method === "zero"))) as ProcHandle;
          job.ctx.sim.enterNow(op); // QEMU enters a mirror operation at once, up to its first yield
        }
        offset += len;
      }
    } finally {
      // The pseudo operation ends: chunks no operation took (discarded, or left by a failure) are free again.
      this.releaseChunks(from, runBytes, pseudo);
      if (yielded) yield notify(this.opDone); // wakes whoever waits for those chunks
    }
    return job.accountCopy(bytes);
  }

  /**
   * How QEMU 7.2's mirror_iteration handles the dirty run [offset, offset+runBytes) (chunk-aligned), from the
   * source's block status: data is copied, at most MAX_OP_BYTES at once; a range without data, as long as the
   * status holds (whole chunks, not capped), has the target zeroed if it reads as zeroes, else discarded,
   * provided it is aligned to the target's clusters, else it is copied too. Returns the method and the length
   * of this one operation.
   */
  private methodFor(offset: number, runBytes: number): { method: "copy" | "zero" | "discard"; len: number } {
    const g = this.bitmap.granularityBytes, size = this.bitmap.sizeBytes;
    const st = this.opts.source.blockStatus(offset, runBytes);
    let len = st.data ? Math.min(st.bytes, MAX_OP_BYTES) : st.bytes;
    len -= len % g;
    if (len < g) return { method: "copy", len: Math.min(g, size - offset) };
    if (st.data) return { method: "copy", len };
    const target = this.opts.target.skipFilters();
    // null-co has no cluster size to round to (bdrv_round_to_subclusters leaves the range as it is)
    const cs = target.clusterSizeBytes;
    const aligned = target.driver === "null-co" || (offset % cs === 0 && (offset + len) % cs === 0);
    if (!aligned) return { method: "copy", len: Math.min(len, MAX_OP_BYTES) };
    return { method: st.zero ? "zero" : "discard", len };
  }

  /** The chunks [start, end) that [offset, offset+bytes) touches. */
  private chunkSpan(offset: number, bytes: number): { start: number; end: number } {
    const g = this.bitmap.granularityBytes;
    return { start: Math.floor(offset / g), end: Math.ceil((offset + bytes) / g) };
  }

  /** Marks the chunks of a range in flight for a new operation; returns its id. */
  private claimChunks(offset: number, bytes: number): number {
    const id = ++this.lastOpId;
    const { start, end } = this.chunkSpan(offset, bytes);
    this.chunkOwner.fill(id, start, end);
    return id;
  }

  /** Ends operation `id` on a range: an operation re-copying a chunk may already own it (only without the conflict wait). */
  private releaseChunks(offset: number, bytes: number, id: number): void {
    const { start, end } = this.chunkSpan(offset, bytes);
    for (let k = start; k < end; k++) if (this.chunkOwner[k] === id) this.chunkOwner[k] = 0;
  }

  /** Whether an operation is in flight on a chunk of the range. */
  private anyInFlight(offset: number, bytes: number): boolean {
    const { start, end } = this.chunkSpan(offset, bytes);
    for (let k = start; k < end; k++) if (this.chunkOwner[k] !== 0) return true;
    return false;
  }

  /** One operation: a copy (read, then write), or with `zero` a write-zeroes of the target. */
  private *op(job: Job, offset: number, bytes: number, id: number, zero: boolean): Process<void> {
    const issuer = job.traceName;
    // A copy takes its chunks of the buffer first, waiting for copies in flight to free them (mirror_co_read).
    const chunks = zero ? 0 : Math.ceil(bytes / this.bitmap.granularityBytes);
    let held = 0;
    try {
      if (zero) yield* this.opts.target.writeZeroes(offset, bytes, issuer);
      else {
        while (this.bufFreeChunks < chunks) yield wait(this.opDone);
        this.bufFreeChunks -= held = chunks;
        yield* this.opts.target.write(offset, bytes, issuer, yield* this.opts.source.read(offset, bytes, issuer));
      }
      job.progressUpdate(bytes);
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      this.bitmap.set(offset, bytes); // copy it again
      const onError = (e.op === "read" ? this.opts.onSourceError : this.opts.onTargetError) ?? "report";
      if (!job.isCancelled && job.requestFailed(onError, e) === "report") this.failure ??= { errno: e.errno };
    } finally {
      this.bufFreeChunks += held;
      this.inFlight--;
      this.bytesInFlight -= bytes;
      this.releaseChunks(offset, bytes, id);
      yield notify(this.opDone);
    }
  }

  /** mirror_top's write path in write-blocking mode: the guest's write, then its copy to the target. */
  private *topWrite(req: BlockRequest, pass: () => Process<unknown>): Process<unknown> {
    const job = this.activeJob;
    if (job === undefined || this.failure || job.isCancelled) return yield* pass();
    this.activeWrites++;
    let id = 0;
    try {
      // Wait for the whole range: a copy of now stale data must land first (active_write_prepare).
      while (!this.failure && this.anyInFlight(req.offset, req.bytes)) yield wait(this.opDone);
      id = this.claimChunks(req.offset, req.bytes);
      const r = yield* pass();
      yield* this.syncTargetWrite(job, req);
      return r;
    } finally {
      this.activeWrites--;
      if (id !== 0) this.releaseChunks(req.offset, req.bytes, id);
      yield notify(this.opDone);
    }
  }

  /** QEMU do_sync_target_write: the part of a guest write the background copy does not own, to the target. */
  private *syncTargetWrite(job: Job, req: BlockRequest): Process<void> {
    const bm = this.bitmap, g = bm.granularityBytes;
    let offset = req.offset, bytes = req.bytes;
    // A partly written chunk that is dirty anyway is left to the background copy (its bit stays).
    if (offset % g !== 0 && bm.isDirty(Math.floor(offset / g))) {
      const skip = g - (offset % g);
      if (bytes <= skip) return;
      offset += skip;
      bytes -= skip;
    }
    if ((offset + bytes) % g !== 0 && bm.isDirty(Math.floor((offset + bytes - 1) / g))) {
      const tail = (offset + bytes) % g;
      if (bytes <= tail) return;
      bytes -= tail;
    }
    const clearFrom = Math.ceil(offset / g) * g, clearTo = Math.floor((offset + bytes) / g) * g;
    if (clearFrom < clearTo) bm.reset(clearFrom, clearTo - clearFrom);
    job.progressIncreaseRemaining(bytes);
    this.activeBytesInFlight += bytes;
    const { source, target } = this.opts;
    const issuer = `${req.issuer} via mirror ${job.name}`; // the guest's write, through the job's target BlockBackend
    try {
      if (req.op === "write") yield* target.write(offset, bytes, issuer, source.content(offset, bytes));
      else if (req.op === "write-zeroes") yield* target.writeZeroes(offset, bytes, issuer);
      else yield* target.discard(offset, bytes, issuer);
      this.activeBytesInFlight -= bytes;
      job.progressUpdate(bytes);
    } catch (e) {
      this.activeBytesInFlight -= bytes;
      if (!(e instanceof IoError)) throw e;
      const from = Math.floor(offset / g) * g;
      bm.set(from, Math.min(Math.ceil((offset + bytes) / g) * g, bm.sizeBytes) - from);
      if (job.requestFailed(this.opts.onTargetError ?? "report", e) === "report") this.failure ??= { errno: e.errno };
    }
  }

  *pause(): Process<void> {
    while (this.inFlight > 0) yield wait(this.opDone);
  }

  /**
   * QEMU mirror_drained_poll: a job that is neither paused nor hard-cancelled
   * may still issue requests (unless the drain is its own), so the drain
   * waits; a paused one only has its in-flight operations to finish. A job
   * woken by a drained section's end but not yet run is still paused, so the
   * next drain does not wait for it to run.
   */
  drainedPoll(job: Job): boolean {
    if (!job.paused && !job.isCancelled && !this.inDrain) return true;
    return this.inFlight > 0;
  }

  /** Soft cancel only means something in ready: before it, every cancel is hard. */
  cancel(job: Job, force: boolean): boolean {
    return force || (!job.ready && job.ctx.behaviour.mirrorCancelsPreReady);
  }

  complete(job: Job): void {
    job.shouldComplete = true;
    if (!job.paused) job.enter(); // a paused job is re-entered when it is resumed
  }

  prepare(job: Job): number {
    this.exit(job, job.ret === 0 && job.shouldComplete);
    return 0;
  }

  abort(job: Job): void {
    if (this.nodes.nodes().length > 0) this.exit(job, false);
    if (this.baseReadOnly && !this.opts.target.readOnly) this.opts.target.setReadOnly(true);
  }

  /** QEMU mirror_exit_common: pivot if asked, drop the filter, the bitmap, the blockers, the drain. */
  private exit(job: Job, pivot: boolean): void {
    const { source, target } = this.opts;
    this.activeJob = undefined;
    this.mirrorTop.setFilterWrite(null);
    this.nodes.removeAll();
    if (pivot) {
      this.contentAtPivot = source.content(0, source.sizeBytes).versions;
      this.graph.replaceNode(source, target);
      this.graph.replaceNode(this.mirrorTop, target);
      this.pivoted = true;
    } else {
      this.graph.replaceNode(this.mirrorTop, this.mirrorTop.file ?? source); // its child: a node inserted below it since stays
    }
    this.graph.removeNode(this.mirrorTop);
    source.removeBitmap(this.bitmap.name);
    if (this.heldBy !== undefined) {
      releaseSection(source, this.heldBy);
      this.heldBy = undefined;
      this.graph.drainedEnd(source);
      this.inDrain = false;
    }
    this.graph.sim.record(job.traceName, pivot ? "pivot" : "no-pivot", { source: source.name, target: target.name });
  }
}

/**
 * The refusals QEMU gives before mirror_start_job's drained section (the
 * root node, op blockers; not the sizes, which mirror_run compares): a refused mirror drains nothing, so a job
 * already on the source does not blip (goldens/mirror_refused_without_drain).
 */
export function checkMirror(graph: BlockGraph, o: MirrorOptions): void {
  const { source, target } = o;
  if (!graph.isRootNode(source)) throw genericError("Need a root block node");
  if (o.commit) {
    if (source === target) throw genericError("Can't mirror node into itself");
    const blocked = source.opBlocker("COMMIT_SOURCE") ?? target.opBlocker("COMMIT_TARGET");
    if (blocked) throw genericError(blocked.message);
    return;
  }
  // blockdev_mirror_common's op blockers, then mirror_start_job's buf-size and "into itself" (goldens/mirror_check_order)
  const blocked = source.opBlocker("MIRROR_SOURCE") ?? target.opBlocker("MIRROR_TARGET");
  if (blocked) throw genericError(blocked.message);
  if (o.bufSizeBytes !== undefined && o.bufSizeBytes < 0) throw genericError("Invalid parameter 'buf-size'");
  if (source === target) throw genericError("Can't mirror node into itself");
}

/** Checks and creates a mirror (or active commit) job in state `created` (QEMU mirror_start_job). */
export function createMirror(env: { jm: JobManager; graph: BlockGraph }, o: MirrorOptions): Job {
  const { source, target } = o;
  checkMirror(env.graph, o);
  const driver = new MirrorDriver(env.graph, o);
  if (o.commit) driver.baseReadOnly = reopenForWriting(target);
  // The source is a job node too (QEMU block_job_add_bdrv "source"), so blockdev-del of it is op-blocked;
  // the target is held through the job's own BlockBackend.
  return createBlockJob(env, driver, o, [driver.mirrorTop, target, source, ...(o.commit?.intermediates ?? [])], () => {
    env.graph.replaceNode(driver.mirrorTop, source);
    env.graph.removeNode(driver.mirrorTop);
    source.removeBitmap(driver.bitmap.name);
    if (driver.baseReadOnly) target.setReadOnly(true);
  }, [target], mirrorPerms(o));
}
