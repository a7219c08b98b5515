/**
 * backup: a point-in-time copy of a node (QEMU 7.2 block/backup.c with the
 * copy-before-write filter, block/copy-before-write.c).
 *
 * At creation a copy-before-write filter node is inserted above the source
 * (so the source is no longer a root node: QEMU's "Need a root block node"
 * for a mirror of it), and from then on a guest write to a cluster not yet
 * copied first copies the old data to the target; the write waits. The job
 * copies the remaining clusters in the background with up to `maxWorkers`
 * tasks of up to `maxChunkBytes` each (QEMU's defaults: 64 tasks of 1 MiB),
 * paced by the speed limit. So the target ends holding the source exactly as
 * it was at creation, whatever the guest does meanwhile.
 *
 * sync: full copies every cluster; top only clusters allocated in the source
 * itself; none copies only what copy-before-write saves, and runs until
 * cancelled; bitmap (QMP's incremental is bitmap with bitmap-mode
 * on-success) copies the clusters a dirty bitmap of the source marks.
 *
 * A backup given a bitmap freezes it at creation (a successor records the
 * writes meanwhile, the bitmap is busy) and settles it when the job commits
 * or aborts (backup_cleanup_sync_bitmap): bitmap-mode on-success forgets
 * what was marked if the job succeeded, always forgets it either way (but on
 * failure keeps the clusters not copied), never keeps it; what is kept gets
 * the writes made meanwhile merged back. Errors: a failed read applies on-source-error, a failed write
 * on-target-error; report fails the job, ignore retries at once, stop
 * pauses the job and retries after resume, both with a new copy call that
 * scans from offset 0. A failed copy-before-write fails
 * the guest write (on-cbw-error=break-guest-write, the default), which then
 * never reaches the source; the job is not told (no error action) and copies
 * the cluster itself later (goldens/cbw_read_error, from QEMU 7.2).
 *
 * Pausing waits for in-flight copy tasks first (and for a block status
 * reading qcow2 tables, whose chunk the call still issues), so a paused
 * backup issues nothing, and cancels the copy call: an error it met before the pause
 * gets no error action (the chunk is copied again). Blockers: the job's main node is the filter, plus the target;
 * the source itself is not blocked (a second backup of it is allowed, as
 * conformance/id_and_blockers.json shows). Filter and blockers go in clean.
 */
import type { ClusterVersion } from "../../disk/index.js";
import { abdicate, busyError, checkPermissions, createSuccessor, PermissionDenied, reclaim, type BlockGraph, type BlockNode, type DirtyBitmap } from "../../block/index.js";
import { backupPerms, cbwTargetPerms } from "../node-perms.js";
import { IoError } from "../../disk/index.js";
import { notify, Signal, spawn, wait, type Process, type ProcHandle } from "../../scheduler/index.js";
import { BlockCopy, BlockCopyCall, MAX_CHUNK_BYTES, MAX_WORKERS } from "../block-copy.js";
import { createBlockJob, type BlockJobOptions, type JobNodes } from "../block-job.js";
import { genericError } from "../errors.js";
import type { ErrorAction, Job, JobDriver } from "../job.js";
import type { JobManager } from "../manager.js";

export type BackupSync = "full" | "top" | "none" | "bitmap";
export type BitmapMode = "on-success" | "never" | "always";

export interface BackupOptions extends BlockJobOptions {
  source: BlockNode;
  target: BlockNode;
  sync: BackupSync;
  onSourceError?: ErrorAction;
  onTargetError?: ErrorAction;
  /** A dirty bitmap of the source: what sync=bitmap copies, and what the job settles when it ends. */
  bitmap?: DirtyBitmap;
  bitmapMode?: BitmapMode;
  /** The copy-before-write filter's node name (QMP filter-node-name; default an implicit #blockN). */
  filterNodeName?: string;
  /** Parallel copy tasks (QEMU x-perf max-workers, default 64). */
  maxWorkers?: number;
  /** Largest copy task (QEMU's block-copy buffer, default 1 MiB). */
  maxChunkBytes?: number;
}

const BACKUP_MIN_CLUSTER = 65536;

export class BackupDriver implements JobDriver {
  readonly type = "backup" as const;
  readonly copy: BlockCopy;
  /** The source's content at the point in time of the backup: what the target must end up holding. */
  readonly pointInTime: readonly ClusterVersion[];
  readonly filter: BlockNode;
  nodes!: JobNodes;
  private waitingForCopy = false;
  /** The background block-copy call (a new one after an ignore or stop error action; a pause restarts it). */
  private call!: BlockCopyCall;
  /** The call was started after an error action and has not yielded yet: the job does not look at a cancel before it has. */
  private freshCall = false;
  /** Asleep in the speed limit: a failure meanwhile is seen only when the sleep ends (the call has not finished). */
  private limitSleep = false;
  /** The copy call's block status reading the source's cold qcow2 tables, and the chunk it is for (readStatusTables). */
  private tableRead: Signal<void> | null = null;
  private pendingChunk: { first: number; count: number; failed: boolean } | null = null;
  private waitingForTables = false;
  private removeHook: () => void = () => {};

  /**
   * sync=top and bitmap: the clusters (of copy.clusterSizeBytes) chosen at
   * creation (allocated in the source itself, or marked by the bitmap), the
   * only ones the target answers for; the rest comes from elsewhere (the
   * target's backing, the earlier backups).
   */
  readonly selectedClusters: number[] = [];
  /** The job's name, for trace records (set in activate). */
  private traceName = "";

  constructor(readonly graph: BlockGraph, readonly opts: BackupOptions) {
    const { source, target } = opts;
    const clusterSize = Math.max(BACKUP_MIN_CLUSTER, target.clusterSizeBytes);
    this.copy = new BlockCopy(source, target, clusterSize);
    // sync=none: every cluster may still be copied before a write (QEMU sets the whole copy bitmap);
    // only the job itself copies nothing. So len is the device's size from the start (goldens/backup_sync_none).
    if (opts.sync === "full" || opts.sync === "none") this.copy.markDirty();
    else if (opts.sync === "top") this.copy.markDirty((c) => source.isAllocated(c * clusterSize, Math.min(clusterSize, source.sizeBytes - c * clusterSize)));
    else if (opts.sync === "bitmap") {
      const bm = opts.bitmap!;
      this.copy.markDirty((c) => bm.anyDirty(c * clusterSize, Math.min(clusterSize, source.sizeBytes - c * clusterSize)));
    }
    if (opts.sync === "top" || opts.sync === "bitmap") {
      for (let c = 0; c < this.copy.clusters; c++) if (this.copy.isDirty(c)) this.selectedClusters.push(c);
    }
    source.attachBitmap(this.copy.bitmap);
    this.pointInTime = source.content(0, source.sizeBytes).versions;
    const filter = { driver: "filter" as const, file: source, target, filterDriver: "copy-before-write" };
    this.filter = opts.filterNodeName ? graph.createNode({ ...filter, name: opts.filterNodeName }) : graph.createImplicitNode(filter);
    // QEMU bdrv_cbw_append: opening the filter attaches its target child (a conflict there fails the
    // node's creation), then bdrv_insert_node moves the source's users onto it (a conflict: no replace).
    try {
      checkPermissions(target, { node: target, perms: { ...cbwTargetPerms(this.filter), user: `node '${this.filter.name}'` } });
    } catch (e) {
      graph.removeNode(this.filter);
      throw e instanceof PermissionDenied ? genericError(`Could not create node: ${e.message}`) : e;
    }
    graph.replaceNode(source, this.filter);
    try {
      checkPermissions(this.filter);
    } catch (e) {
      graph.replaceNode(this.filter, source);
      graph.removeNode(this.filter);
      throw e instanceof PermissionDenied ? genericError(`Could not replace node: ${e.message}`) : e;
    }
  }

  /** Starts copy-before-write for `job` (from creation on: that is the point in time). */
  activate(job: Job): void {
    const copy = this.copy, issuer = `cbw:${job.traceName}`;
    this.traceName = job.traceName;
    // The callbacks go through locals: a function literal stored straight into a property is allocated in V8's
    // old generation, and its context (the job, the whole world) then outlived the run (sim/qmp/qemu.ts).
    const onCopied = (bytes: number) => job.progressUpdate(bytes);
    // QEMU backup_block_copy_callback: a finished copy wakes a job waiting for its copy — not one
    // sleeping for the speed limit, whose sleep must run its course.
    const onEnded = () => {
      if (this.waitingForCopy) job.enter();
    };
    copy.onCopied = onCopied;
    copy.onEnded = onEnded;
    this.call = this.newCall(job);
    this.removeHook = this.filter.addBeforeWriteHook((req, node) => copy.beforeWrite(req, node, issuer));
  }

  *run(job: Job): Process<number> {
    const o = this.opts, copy = this.copy;
    job.progressSetRemaining(copy.remainingBytes);
    if (o.sync === "none") {
      while (!job.isCancelled) yield* job.yieldJob();
      return 0;
    }
    for (;;) {
      const err = yield* this.call.run();
      // QEMU 7.2 backup_loop: a cancelled job cancels the call, waits for its tasks and ends with 0, no error action
      if (err === undefined || err === "cancelled") break;
      // a failed copy ended the call once its tasks in flight finished: one error action
      this.call.failure = undefined;
      const onError = (err.operation === "read" ? o.onSourceError : o.onTargetError) ?? "report";
      if (job.errorAction(onError, err.operation, err.errno) === "report") return job.fail(err.errno);
      // ignore or stop: QEMU 7.2 backup_loop starts a new block-copy call (after the pause point, for stop),
      // which scans from offset 0, so the failed chunk, still dirty, is the first copied again
      // (goldens/backup_error_action_restarts)
      this.call = this.newCall(job);
      this.freshCall = true;
    }
    while (this.call.inFlight > 0) yield wait(copy.changed);
    return 0;
  }

  /**
   * The job's background block-copy call over the whole device, run in the
   * job's coroutine; what the job adds to the call's loop comes in as hooks.
   */
  private newCall(job: Job): BlockCopyCall {
    const o = this.opts, copy = this.copy;
    const issuer = job.traceName;
    const maxChunk = Math.max(1, Math.floor((o.maxChunkBytes ?? MAX_CHUNK_BYTES) / copy.clusterSizeBytes));
    return new BlockCopyCall(copy, { first: 0, end: copy.clusters, issuer, maxChunk, maxWorkers: o.maxWorkers ?? MAX_WORKERS, inlineLastTask: false }, {
      pauseDue: () => job.pauseDue,
      pausePoint: () => job.pausePoint(),
      // QEMU 7.2 backup_loop looks at cancellation only once a new block-copy call has yielded: after an ignore
      // or stop error action (and stop's pause point) the new call issues its first chunks even if the job was
      // cancelled meanwhile, so job-cancel of a backup stopped on an error is answered before the job ends
      // (goldens/backup_error_action_restarts)
      cancelSeen: () => job.isCancelled && !this.freshCall,
      cancelRequested: () => job.isCancelled,
      // the job waits in job_yield (not busy) until a copy ends, its own or copy-before-write's
      waitForTask: (why) => {
        if (why !== "failure") this.freshCall = false;
        return this.waitForCopy(job);
      },
      waitForOtherCopy: () => {
        this.freshCall = false;
        return this.waitForCopy(job); // what is left is being copied by copy-before-write
      },
      // QEMU 7.2 block_copy_dirty_clusters asks the chunk's block status, reading the qcow2 tables its
      // caches lack, in the copy call's coroutine before it cuts the chunk's task, while the job waits in
      // job_yield (goldens/qcow2_backup_first_status); it looks at a cancel only before the next chunk, so
      // a cancel meanwhile still gets this chunk issued (goldens/qcow2_backup_cancel_first_status), and a
      // pause issues it before the job pauses (pause)
      readStatusTables: (first, count) => this.readStatusTables(job, first, count, issuer),
      // QEMU 7.2 block-copy checks the speed limit before each chunk, so a sleep cut short by a pause
      // (or a kick) is taken again after the resume: the limit holds across pauses (iotest 219).
      rateLimit: () => this.rateLimit(job),
      issuing: (first, count) => {
        if (!job.mayIssueIo) job.checkMayIssueIo(`backup copy of clusters ${first}+${count}`);
      },
      issued: (_first, count) => {
        job.accountCopy(count * copy.clusterSizeBytes); // accounted once issued
      },
    });
  }

  /** Sleeps for the speed limit if it says so before the next chunk; whether it did. */
  private *rateLimit(job: Job): Process<boolean> {
    const wait = job.limit.delayNs(job.ctx.sim.now, 0);
    if (wait <= 0) return false;
    this.limitSleep = true;
    this.freshCall = false;
    yield* job.sleepNs(wait);
    this.limitSleep = false;
    return true;
  }

  /**
   * The copy call's block status of a chunk, reading the qcow2 tables QEMU's caches lack (in the call's
   * coroutine, QEMU 7.2 block_copy_block_status): the job waits in job_yield, not busy; a cancelled job
   * waits for the call as backup_loop does, busy. Returns whether the chunk is still the run loop's to
   * issue (a pause meanwhile issued it: see pause) and whether the status failed.
   */
  private *readStatusTables(job: Job, first: number, count: number, issuer: string): Process<{ stillToIssue: boolean; failed: boolean }> {
    const copy = this.copy, cs = copy.clusterSizeBytes, source = copy.source;
    const offset = first * cs, bytes = Math.min((first + count) * cs, source.sizeBytes) - offset;
    const read = new Signal<void>(`backup block status ${source.name}:${first}+${count}`);
    const chunk = { first, count, failed: false };
    this.tableRead = read;
    this.pendingChunk = chunk;
    const loader = (yield spawn(`${issuer} block status ${first}+${count}`, this.loadTables(job, read, chunk, offset, bytes, issuer), { coroutine: true })) as ProcHandle;
    job.ctx.sim.enterNow(loader);
    while (this.tableRead === read) {
      if (job.isCancelled) {
        yield wait(read);
        break;
      }
      this.waitingForTables = true;
      yield* job.yieldJob();
      this.waitingForTables = false;
    }
    const stillToIssue = this.pendingChunk === chunk;
    if (stillToIssue) this.pendingChunk = null;
    return { stillToIssue, failed: chunk.failed };
  }

  private *loadTables(job: Job, read: Signal<void>, chunk: { failed: boolean }, offset: number, bytes: number, issuer: string): Process<void> {
    try {
      yield* this.copy.source.loadStatusTables(offset, bytes, null, issuer);
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      chunk.failed = true;
    } finally {
      this.tableRead = null;
      yield notify(read);
      if (this.waitingForTables) job.enter();
    }
  }

  /** Waits in job_yield (not busy) until a copy ends. */
  private *waitForCopy(job: Job): Process<void> {
    this.waitingForCopy = true;
    yield* job.yieldJob();
    this.waitingForCopy = false;
  }

  commit(): void {
    this.settleBitmap(true);
  }

  abort(): void {
    this.settleBitmap(false);
  }

  /** QEMU backup_cleanup_sync_bitmap: the frozen bitmap is forgotten (abdicate) or kept (reclaim), per bitmap-mode. */
  private settleBitmap(succeeded: boolean): void {
    const { bitmap, source } = this.opts;
    if (!bitmap || !bitmap.successor) return;
    const mode = this.opts.bitmapMode ?? "on-success";
    const forget = (succeeded || mode === "always") && mode !== "never";
    const result = forget ? abdicate(source, bitmap) : reclaim(source, bitmap);
    if (!succeeded && mode === "always") {
      // what was not copied stays marked, for the next attempt
      const cs = this.copy.clusterSizeBytes;
      for (let c = 0; c < this.copy.clusters; c++) {
        if (this.copy.isDirty(c)) result.set(c * cs, Math.min(cs, source.sizeBytes - c * cs));
      }
    }
    this.graph.sim.record(this.traceName, "bitmap-settled", { bitmap: result.name, node: source.name, forgot: forget, count: result.count });
  }

  /**
   * QEMU 7.2 backup_set_speed: every set-speed, whatever the speed, kicks
   * the background copy call out of its rate-limit sleep (block_copy_kick).
   * A call with a failed copy then ends at once, so its error action comes
   * inside the set-speed command (goldens/backup_set_speed_kicks_error); one
   * without checks the limit again and goes back to sleep.
   */
  setSpeed(job: Job): void {
    if (this.limitSleep) job.enter();
  }

  /**
   * A paused backup has no copy in flight. Pausing cancels the block-copy
   * call in progress (QEMU 7.2 backup_pause) unless it has finished (failed:
   * its tasks all ended, and the call not asleep in the speed limit, where it
   * notices a failure only when it wakes). backup_loop starts a new call
   * after the resume, scanning from the start, with no error action for a
   * cancelled one: a copy that failed in it is forgotten, its clusters
   * still dirty, copied again once the speed limit allows (a drained
   * section inside the rate-limit sleep that follows a failure swallows the
   * error: goldens/backup_error_forgotten_by_pause, and
   * goldens/stream_read_error_under_backup, where the backup reports its
   * read error only when the limit let the chunk be read again). A call
   * that had finished keeps its error for the error action after the resume.
   */
  *pause(job: Job): Process<void> {
    const call = this.call;
    const finished = call.failure !== undefined && call.inFlight === 0 && !this.limitSleep;
    // a call reading the tables for a chunk's status goes on to issue that chunk first, the speed limit
    // allowing (QEMU's loop looks at the cancel only before the next chunk)
    const read = this.tableRead;
    if (read) yield wait(read);
    const chunk = this.pendingChunk;
    if (chunk) {
      this.pendingChunk = null;
      const next = this.copy.nextRun(chunk.first, chunk.count, chunk.first + chunk.count);
      if (next && job.limit.delayNs(job.ctx.sim.now, 0) === 0) yield* call.issue(next.first, next.count, chunk.failed);
    }
    while (call.inFlight > 0) yield wait(this.copy.changed);
    if (finished) return;
    call.restart();
    // the cancelled call sleeps no more: a set-speed while paused has nothing to kick (goldens/backup_set_speed_while_paused)
    this.limitSleep = false;
  }

  clean(): void {
    this.opts.source.releaseBitmap(this.copy.bitmap);
    this.removeHook();
    this.nodes.removeAll();
    this.dropFilter();
  }

  /**
   * Takes the copy-before-write filter out of the graph again (QEMU
   * bdrv_cbw_drop → bdrv_drop_filter): a drained section on the filter
   * around moving its users down to its child — the source, or another
   * backup's filter inserted below it since. The drain is a nested poll from
   * the main loop: requests still going through the filter finish, and
   * whatever else is due runs inside — another job above the filter (a
   * second backup of the same source) is waited for until it parks, and if
   * it has already finished its run, its exit and whole finalization run
   * here, in the middle of this job's clean (goldens/cancel_two_on_one_source).
   */
  dropFilter(): void {
    const { graph, filter } = this;
    graph.dropFilter(filter);
    graph.removeNode(filter);
  }
}

/**
 * Checks and creates a backup job in state `created` (QEMU backup_job_create);
 * the caller starts it. Throws QmpError with QEMU's messages.
 */
export function createBackup(env: { jm: JobManager; graph: BlockGraph }, o: BackupOptions): Job {
  const { source, target } = o;
  if (source === target) throw genericError("Source and target cannot be the same");
  const blocked = source.opBlocker("BACKUP_SOURCE") ?? target.opBlocker("BACKUP_TARGET");
  if (blocked) throw genericError(blocked.message);
  const bitmap = o.bitmap;
  if (bitmap) {
    // a busy bitmap can be neither written (bitmap-mode on-success, always) nor frozen (never)
    const busy = busyError(bitmap);
    if (busy) throw genericError(busy);
    createSuccessor(source, bitmap);
  }
  const unfreeze = () => {
    if (bitmap?.successor) reclaim(source, bitmap);
  };
  if (source.sizeBytes !== target.sizeBytes) {
    unfreeze();
    throw genericError("Source and target image have different sizes");
  }
  if (o.filterNodeName !== undefined && env.graph.findNode(o.filterNodeName)) {
    unfreeze();
    throw genericError(`Duplicate nodes with node-name='${o.filterNodeName}'`);
  }
  let driver: BackupDriver;
  try {
    driver = new BackupDriver(env.graph, o);
  } catch (e) {
    unfreeze();
    throw e;
  }
  const job = createBlockJob(env, driver, o, [driver.filter, target], () => {
    source.releaseBitmap(driver.copy.bitmap);
    driver.dropFilter();
    unfreeze();
  }, [], backupPerms(driver.filter));
  driver.activate(job);
  return job;
}

