/**
 * Block nodes (QEMU's BlockDriverState): a name, a driver, children, and the
 * request path through them.
 *
 * Drivers:
 *  - "raw": a format node on a Device; every cluster is allocated; no backing.
 *    Its block status says data everywhere, except on a sparse device (an
 *    image file), where clusters that read as zeroes are holes: zero.
 *  - "qcow2": a copy-on-write format node on a Device. A cluster is allocated
 *    here once any write, write-zeroes or discard completed on it; reading an
 *    unallocated cluster falls through to the backing node (zeroes without
 *    one, or past the backing node's end), without touching this device.
 *  - "null-co": no device; reads return zeroes (readZeroes, the default) or
 *    unspecified data, writes are dropped; every request takes `latencyNs`
 *    (a flush only when something was written since the last one).
 *  - "filter": passes every request to its `file` child (copy-before-write,
 *    throttle, mirror_top…); allocation and content are its child's.
 *
 * The request path, for a request on a node: count it in flight; for a
 * modifying request (write, write-zeroes, discard) run the node's
 * beforeWrite hooks in the caller's process, then issue it, then mark the
 * node's enabled dirty bitmaps; uncount it. A flush does the node's own
 * part (its flush hooks, its device or null-co latency) only when something
 * was written since its last good flush, then flushes a filter's child.
 * Requests are generators run with `yield*` in the issuing process, so a
 * hook can do I/O and the write waits. A write-zeroes on a raw or qcow2
 * node that covers part of a cluster not reading as zeroes writes that
 * part as data (zeroesPieces).
 *
 * Limits: no request serialisation or overlap tracking between concurrent
 * requests (QEMU's tracked requests), no copy-on-read, no resize (block
 * permissions are checked when users attach: permissions.ts). A qcow2 read
 * with mixed allocation is split into runs issued one after another, as
 * qcow2 does.
 */
import {
  IoError, versionAt, ZERO_VERSION,
  type ClusterVersion, type Content, type Device, type IoOp,
} from "../disk/index.js";
import { coSleep, notify, Signal, wait, type Process } from "../scheduler/index.js";
import { Qcow2Layout } from "./qcow2-layout.js";
import { DirtyBitmap, type BitmapHolder } from "./bitmap.js";
import type { BlockGraph } from "./graph.js";
import type { ParentLink } from "./links.js";
import { OpBlockedError, OpBlockers, type BlockOpType } from "./op-blockers.js";

/** What a null-co node with readZeroes=false returns: data nobody wrote. */
export const UNSPECIFIED_VERSION: ClusterVersion = Object.freeze({ writeId: -1, writer: "" });

/** A request on a node. `offset`/`bytes` are 0 for flush. */
export interface BlockRequest {
  readonly op: IoOp;
  readonly offset: number;
  readonly bytes: number;
  /** Who issued it; carried to the device, the trace and written versions. */
  readonly issuer: string;
  /** For a write: versions to copy instead of stamping a new write id. */
  readonly data?: Content;
  /**
   * A copy-on-read write (QEMU's BDRV_REQ_WRITE_UNCHANGED through
   * bdrv_co_do_copy_on_readv): what the guest reads does not change, and
   * QEMU writes it below bdrv_co_write_req_finish, so it dirties no bitmap.
   */
  readonly unchanged?: true;
}

/** Who is told when a request it issued through a node has finished (a BlockBackend). */
export interface RequestOwner {
  /** `error`: what the request threw, or undefined. */
  requestDone(req: BlockRequest, error: unknown): void;
}

/** Runs in the writer's process before a modifying request on the node is issued; may do I/O. Throwing fails the request. */
export type BeforeWriteHook = (req: BlockRequest, node: BlockNode) => Process<void>;

/**
 * A filter driver's own write path (QEMU's .bdrv_co_pwritev of the filter):
 * runs in the writer's process in place of passing the modifying request to
 * the filtered child; `pass` does that, and resumes with what it returns.
 */
export type FilterWrite = (req: BlockRequest, pass: () => Process<unknown>) => Process<unknown>;

/** How to build a node; see the header for the drivers. */
export type NodeConfig =
  | { name: string; driver: "raw"; device: Device }
  | { name: string; driver: "qcow2"; device: Device; backing?: BlockNode | null }
  | {
      name: string;
      driver: "null-co";
      sizeBytes: number;
      /** Default 65536. */
      clusterSizeBytes?: number;
      /** Per request, default 0. */
      latencyNs?: number;
      /** Default true. */
      readZeroes?: boolean;
    }
  | {
      name: string;
      driver: "filter";
      file: BlockNode;
      /** Shown in traces, e.g. "copy-before-write" (default "filter"). */
      filterDriver?: string;
      /**
       * A second child the filter writes to (copy-before-write's `target`):
       * a node parent of it, so drains on it climb to the filter; requests
       * and permissions do not go through this link (the job's own link to
       * the target carries the child's permissions, see node-perms.ts).
       */
      target?: BlockNode;
    };

export type DriverName = NodeConfig["driver"];

/** A NodeConfig without its name (an implicit node's, named by the graph). */
export type NodeDriverConfig = NodeConfig extends infer C ? (C extends unknown ? Omit<C, "name"> : never) : never;

/** A node in a BlockGraph; build it with `graph.createNode`. */
export class BlockNode implements BitmapHolder {
  readonly name: string;
  readonly driver: DriverName;
  /** Changed only by resize() (block_resize). */
  sizeBytes: number;
  readonly clusterSizeBytes: number;
  /** The device of a raw or qcow2 node. */
  readonly device: Device | null;
  /** The driver label of a filter (e.g. "copy-before-write"). */
  readonly filterDriver: string | null;
  /** QEMU's bs->drv->format_name: a filter's own driver (blkdebug, copy-before-write...), else the node's. */
  get formatName(): string {
    return this.filterDriver ?? this.driver;
  }
  /** A truncation of this node, passed down through filters (QEMU bdrv_co_truncate), ends at a driver with none: null-co. */
  get truncateUnsupported(): boolean {
    for (let n: BlockNode | null = this; n; n = n.file) if (n.driver === "null-co") return true;
    return false;
  }
  /** Op blockers; see also blockOp/unblockOp/opBlocker. */
  readonly blockers = new OpBlockers();

  /** Requests on this node that have not finished (including their hooks and backing reads). */
  inFlight = 0;
  /**
   * The monitor holds a reference (blockdev-add made it): the node outlives
   * its last user until blockdev-del. Nodes a job or drive_add made are not
   * monitor-owned and close when their last user lets go (QEMU bdrv_unref).
   */
  monitorOwned = false;
  /** Opened read-only (blockdev-add or blockdev-reopen `read-only`). */
  readOnly = false;
  /** The options it was opened (or last reopened) with, as QMP gave them: what blockdev-reopen compares against. */
  openOptions: Readonly<Record<string, unknown>> = {};

  /** A reopen that only switches read-only (QEMU bdrv_reopen_set_read_only), as blockdev-reopen and commit jobs do. */
  setReadOnly(readOnly: boolean): void {
    this.readOnly = readOnly;
    this.openOptions = { ...this.openOptions, "read-only": readOnly };
  }
  /** Drained sections in force on this node (QEMU's quiesce_counter), drain-all ones included. */
  quiesceCount = 0;
  /** @internal the part of quiesceCount that came from drain-all (not passed on to node parents). */
  allQuiesce = 0;
  /** @internal links to the users of this node, newest first (QEMU's order: drains tell them in this order). */
  readonly parentLinks: ParentLink[] = [];
  /** @internal the link to the backing child (qcow2) or file child (filter). */
  childLink: ParentLink | null = null;
  /** @internal a copy-before-write filter's link to its target, else null. */
  targetLink: ParentLink | null = null;
  /**
   * @internal the child links that point at a node, the one (re)attached
   * last first: QEMU inserts a child at the head of its parent's list when
   * it is attached and again when it is moved to another node, and an
   * AioContext change walks the children in that order.
   */
  readonly childOrder: ParentLink[] = [];

  private readonly nullLatencyNs: number;
  private readonly nullReadZeroes: boolean;
  /** Replaced, never changed in place: a request runs the hooks there were when it started, whatever a hook adds or removes. */
  private hooks: readonly BeforeWriteHook[] = [];
  private readHooks: readonly BeforeWriteHook[] = [];
  private flushHooks: readonly BeforeWriteHook[] = [];
  /**
   * Modifying requests finished on this node, and that count when its last flush succeeded (QEMU's
   * write_gen and flushed_gen): a flush with nothing written since skips this node's own flush.
   */
  private writeGen = 0;
  /**
   * The end of the highest write or write-zeroes that reached this node, failed or not (QEMU 7.2
   * bdrv_co_write_req_finish's wr_highest_offset; a discard does not count, nor a copy-on-read write): query-blockstats.
   */
  wrHighestOffset = 0;
  /** A qcow2 node's clusters in its image file (made before its first modifying request: the device then holds the image as opened). */
  private layout: Qcow2Layout | undefined = undefined;
  private flushedGen = 0;
  private filterWrite: FilterWrite | null = null;
  private readonly bitmapList: DirtyBitmap[] = [];
  /**
   * qcow2 tables QEMU's caches do not hold yet (a device with coldMetadataCaches): the refcount block the
   * first block status reads (qcow2_detect_metadata_preallocation) and the L2 table the first cluster lookup
   * reads. One load at a time, as under qcow2's lock: `tablesLoading` while one is under way.
   */
  private refcountCold = false;
  private l2Cold = false;
  /** The device models qcow2's tables (coldMetadataCaches); an allocating write left them dirty (written back at the next flush). */
  private tablesModelled = false;
  private tablesDirty = false;
  /** The image is known to have an L2 table (something was written to it); until then its first allocating write makes one. */
  private l2Present = false;
  private tablesLoading: Signal<void> | null = null;

  /** @internal use graph.createNode. */
  constructor(readonly graph: BlockGraph, name: string, config: NodeDriverConfig) {
    this.name = name;
    this.driver = config.driver;
    this.filterDriver = null;
    this.nullLatencyNs = 0;
    this.nullReadZeroes = true;
    switch (config.driver) {
      case "raw":
      case "qcow2":
        this.device = config.device;
        this.sizeBytes = config.device.sizeBytes;
        this.clusterSizeBytes = config.device.clusterSizeBytes;
        break;
      case "null-co":
        this.device = null;
        this.sizeBytes = config.sizeBytes;
        this.clusterSizeBytes = config.clusterSizeBytes ?? 65536;
        this.nullLatencyNs = config.latencyNs ?? 0;
        this.nullReadZeroes = config.readZeroes ?? true;
        break;
      case "filter":
        this.device = null;
        this.sizeBytes = config.file.sizeBytes;
        this.clusterSizeBytes = config.file.clusterSizeBytes;
        this.filterDriver = config.filterDriver ?? "filter";
        break;
    }
    if (config.driver === "qcow2") this.tablesModelled = this.refcountCold = this.l2Cold = config.device.coldMetadataCaches;
  }

  // ---- structure ----

  /** The backing node (qcow2), or null. */
  get backing(): BlockNode | null {
    return this.driver === "qcow2" ? this.childLink?.child ?? null : null;
  }

  /** The filtered child (filter), or null. */
  get file(): BlockNode | null {
    return this.driver === "filter" ? this.childLink!.child : null;
  }

  /** The nodes this one reads from besides its device: [backing] or [file] or []. */
  children(): BlockNode[] {
    const c = this.childLink?.child;
    return c ? [c] : [];
  }

  /** The links of every user of this node, newest first: the order in which drains reach them. */
  parents(): readonly ParentLink[] {
    return this.parentLinks;
  }

  /** This node, then its backing (or filtered) child, and so on down the chain. */
  chain(): BlockNode[] {
    const out: BlockNode[] = [];
    for (let n: BlockNode | null = this; n; n = n.childLink?.child ?? null) out.push(n);
    return out;
  }

  // ---- requests (generators: run them with yield*) ----

  /**
   * Issues any request; resumes like the typed helpers below. `owner`, if
   * given, is told when the request has finished, after this node's own
   * count, whether it succeeded or not: a BlockBackend's accounting, which
   * so needs no generator of its own around this one.
   *
   * Each driver's path is taken here, not through a helper generator: every
   * generator level costs on each resume (a level was ~3 % of a fuzz run),
   * and a guest write below a job's filter goes through two nodes.
   */
  *io(req: BlockRequest, owner?: RequestOwner): Process<unknown> {
    let counted = false;
    let error: unknown = undefined;
    try {
      this.checkRequest(req);
      this.inFlight++;
      counted = true;
      switch (req.op) {
        case "read":
          if (this.readHooks.length > 0) yield* runHooks(this.readHooks, req, this);
          if (this.driver === "raw") return (yield this.device!.io(req)) as Content;
          if (this.driver === "qcow2") {
            if (this.l2Cold) yield* this.loadTables(false, true, req.issuer);
            return yield* this.readCow(req);
          }
          if (this.driver === "filter") return (yield* this.file!.io(req)) as Content;
          return yield* this.readNull(req);
        case "flush":
          return yield* this.doFlush(req);
        default: {
          if (this.hooks.length > 0) yield* runHooks(this.hooks, req, this);
          try {
            // write (resumes with the write id), write-zeroes and discard (with undefined)
            if (this.l2Cold || this.refcountCold) {
              // an allocating write needs the refcounts too, after the L2 table (qcow2_alloc_cluster_offset)
              yield* this.loadTables(!this.isAllocated(req.offset, req.bytes), true, req.issuer, true);
            }
            if (this.tablesModelled && !this.l2Present && req.op !== "discard") yield* this.allocateL2(req.issuer);
            // an allocating write leaves the cached tables dirty until the next flush writes them back
            if (this.tablesModelled && !this.tablesDirty && !this.isAllocated(req.offset, req.bytes)) this.tablesDirty = true;
            if (this.device) {
              // the image file's layout is what the device holds before the first modifying request: a zero cluster
              // a write-zeroes (or discard) leaves is no data cluster (goldens/stream_zero_clusters)
              if (this.driver === "qcow2") this.hostLayout();
              const pieces = req.op === "write-zeroes" ? this.zeroesPieces(req) : null;
              if (pieces === null) {
                if (this.driver !== "qcow2" || req.op !== "write") return yield this.device.io(req);
                return yield* this.qcow2DataWrite(req);
              }
              for (const piece of pieces) {
                if (this.driver === "qcow2" && piece.op === "write") yield* this.qcow2DataWrite(piece);
                else yield this.device.io(piece);
              }
              return undefined;
            }
            if (this.driver === "filter") {
              const id = yield* this.passDown(req);
              return req.op === "write" ? id : undefined;
            }
            if (this.nullLatencyNs > 0) yield coSleep(this.nullLatencyNs);
            return req.op === "write" ? 0 : undefined;
          } finally {
            this.written(req);
          }
        }
      }
    } catch (e) {
      error = e;
      throw e;
    } finally {
      // a copy-on-read write is the driver's own (bdrv_co_do_copy_on_readv), past the generic write path that counts
      if (counted && (req.op === "write" || req.op === "write-zeroes") && !req.unchanged && req.offset + req.bytes > this.wrHighestOffset) this.wrHighestOffset = req.offset + req.bytes;
      if (counted && --this.inFlight === 0) this.graph.onIdle();
      if (owner !== undefined) owner.requestDone(req, error);
    }
  }

  /** Reads through the chain; resumes with the content in this node's cluster size. */
  read(offset: number, bytes: number, issuer: string): Process<Content> {
    return this.io({ op: "read", offset, bytes, issuer }) as Process<Content>;
  }

  /** Writes; resumes with the write id stamped (0 if the node dropped it or it copied `data`). */
  write(offset: number, bytes: number, issuer: string, data?: Content): Process<number> {
    return this.io(data === undefined ? { op: "write", offset, bytes, issuer } : { op: "write", offset, bytes, issuer, data }) as Process<number>;
  }

  /**
   * A copy-on-read write of `data` (what a stream copies up): it dirties no bitmap. A chunk that reads as
   * zeroes goes to a qcow2 node as write-zeroes, as QEMU 7.2's bdrv_co_do_copy_on_readv does (buffer_is_zero):
   * zero clusters, no data cluster in the image file (goldens/stream_short_backing: a short layer's zeroes).
   */
  copyOnReadWrite(offset: number, bytes: number, issuer: string, data: Content): Process<number> {
    if (this.driver === "qcow2" && data.versions.every((v) => v.writeId === 0)) return this.copyOnReadZeroes(offset, bytes, issuer);
    return this.io({ op: "write", offset, bytes, issuer, data, unchanged: true }) as Process<number>;
  }

  private *copyOnReadZeroes(offset: number, bytes: number, issuer: string): Process<number> {
    yield* this.io({ op: "write-zeroes", offset, bytes, issuer, unchanged: true });
    return 0;
  }

  writeZeroes(offset: number, bytes: number, issuer: string): Process<void> {
    return this.io({ op: "write-zeroes", offset, bytes, issuer }) as Process<void>;
  }

  discard(offset: number, bytes: number, issuer: string): Process<void> {
    return this.io({ op: "discard", offset, bytes, issuer }) as Process<void>;
  }

  flush(issuer: string): Process<void> {
    return this.io({ op: "flush", offset: 0, bytes: 0, issuer }) as Process<void>;
  }

  // ---- inspection: no I/O, no time ----

  /** The version cluster `cluster` (in this node's cluster size) reads as now, resolved through the chain. */
  contentAt(cluster: number): ClusterVersion {
    if (!Number.isSafeInteger(cluster) || cluster < 0 || cluster * this.clusterSizeBytes >= this.sizeBytes) {
      throw new RangeError(`node "${this.name}": cluster must be a whole number in [0, ${Math.ceil(this.sizeBytes / this.clusterSizeBytes)}), got ${String(cluster)}`);
    }
    return this.versionAtOffset(cluster * this.clusterSizeBytes);
  }

  /** What a read of [offset, offset+bytes) would return now. */
  content(offset: number, bytes: number): Content {
    const cs = this.clusterSizeBytes;
    // the whole of a node of size 0 (a null-co may have one): nothing
    if (bytes === 0 && offset === 0 && this.sizeBytes === 0) return { offset: 0, clusterSizeBytes: cs, versions: [] };
    this.checkRange("content", offset, bytes);
    const first = Math.floor(offset / cs), last = Math.floor((offset + bytes - 1) / cs);
    const versions: ClusterVersion[] = [];
    for (let c = first; c <= last; c++) versions.push(this.versionAtOffset(Math.max(offset, c * cs)));
    return { offset: first * cs, clusterSizeBytes: cs, versions };
  }

  /** The first node at or below this one that is no filter (QEMU bdrv_skip_filters). */
  skipFilters(): BlockNode {
    let n: BlockNode = this;
    while (n.driver === "filter" && n.file) n = n.file;
    return n;
  }

  /** Whether every cluster overlapping the range is allocated in this node itself (not its backing). */
  isAllocated(offset: number, bytes: number): boolean {
    const r = this.allocation(offset, bytes);
    return r.allocated && r.bytes === bytes;
  }

  /**
   * Like QEMU's bdrv_is_allocated: whether the range's first byte is
   * allocated in this node, and for how many bytes from `offset` that answer
   * holds (at most `bytes`).
   */
  allocation(offset: number, bytes: number): { allocated: boolean; bytes: number } {
    this.checkRange("allocation", offset, bytes);
    if (this.driver === "filter") return this.file!.allocation(offset, bytes);
    // null-co's status is zero with read-zeroes, else neither data nor zero: unallocated (goldens/mirror_sync_top_without_backing)
    if (this.driver === "null-co") return { allocated: this.nullReadZeroes, bytes };
    if (this.driver !== "qcow2") return { allocated: true, bytes };
    const dev = this.device!, cs = this.clusterSizeBytes, end = offset + bytes;
    let c = Math.floor(offset / cs);
    const allocated = dev.isWritten(c);
    while ((c + 1) * cs < end && dev.isWritten(c + 1) === allocated) c++;
    return { allocated, bytes: Math.min(end, (c + 1) * cs) - offset };
  }

  /**
   * Like QEMU's bdrv_is_allocated_above: whether the first byte is allocated
   * in any node from this one down to, not including, `base` (null: the whole
   * chain), and for how many bytes that holds. Stream, commit and
   * backup sync=top step through a disk with it.
   *
   * A chain may hold layers of other sizes (block_resize of an overlay, images made so), and QEMU 7.2's
   * bdrv_co_common_block_status_above answers as follows: a range past this node's own end is at its EOF,
   * not allocated for 0 bytes (a stream of a node longer than its backing then finishes early); a layer
   * below that ends before `offset` synthesizes zeroes there, and they count as allocated in that layer
   * (so a stream copies them, a commit or a mirror's dirty init counts them). goldens/stream_short_backing
   */
  allocationAbove(base: BlockNode | null, offset: number, bytes: number): { allocated: boolean; bytes: number } {
    if (Number.isSafeInteger(offset) && offset >= this.sizeBytes && Number.isSafeInteger(bytes) && bytes >= 1) return { allocated: false, bytes: 0 };
    // bdrv_co_block_status clamps the range to the node's end
    if (Number.isSafeInteger(offset) && offset >= 0 && Number.isSafeInteger(bytes)) bytes = Math.min(bytes, this.sizeBytes - offset);
    this.checkRange("allocationAbove", offset, bytes);
    let n = bytes;
    for (let node: BlockNode | null = this; node && node !== base; node = node.childLink?.child ?? null) {
      if (offset >= node.sizeBytes) return { allocated: true, bytes: n };
      const r = node.allocation(offset, Math.min(n, node.sizeBytes - offset));
      if (r.allocated) return r;
      n = Math.min(n, r.bytes);
    }
    return { allocated: false, bytes: n };
  }

  /**
   * Like QEMU's bdrv_block_status_above(node, NULL): whether the range's first byte is data some node of the
   * chain holds (data), else whether it reads as zeroes (zero), and for how many bytes from `offset` that
   * answer holds (at most `bytes`). raw: data everywhere on a disk, zero where an image file (a sparse
   * device) reads as zeroes; qcow2: data where
   * allocated in the chain, zero where a zero cluster (write-zeroes, discard) is the first allocation down
   * the chain or nothing down to the bottom holds it; null-co:
   * zero with read-zeroes, else neither; a filter (blkdebug...) answers with its child's.
   */
  blockStatus(offset: number, bytes: number): { data: boolean; zero: boolean; bytes: number } {
    this.checkRange("blockStatus", offset, bytes);
    switch (this.driver) {
      case "filter":
        return this.file!.blockStatus(offset, bytes);
      case "raw": {
        const dev = this.device!;
        if (!dev.sparse) return { data: true, zero: false, bytes };
        // an image file's holes (and zeroed clusters) read as zeroes and say so (goldens/raw_sparse_block_status)
        const cs = this.clusterSizeBytes, end = offset + bytes;
        let c = Math.floor(offset / cs);
        const zero = dev.versionAt(c).writeId === 0;
        while ((c + 1) * cs < end && (dev.versionAt(c + 1).writeId === 0) === zero) c++;
        return { data: !zero, zero, bytes: Math.min(end, (c + 1) * cs) - offset };
      }
      case "null-co":
        return { data: false, zero: this.nullReadZeroes, bytes };
      case "qcow2": {
        const r = this.allocation(offset, bytes);
        if (r.allocated) {
          // a cluster write-zeroes (or a discard) left is a zero cluster: allocated, it reads as zeroes whatever
          // the backing holds, and QEMU's status says ZERO, not DATA (goldens/block_status_qcow2_zero_cluster)
          const dev = this.device!, cs = this.clusterSizeBytes, end = offset + r.bytes;
          let c = Math.floor(offset / cs);
          const zero = dev.versionAt(c).writeId === 0;
          while ((c + 1) * cs < end && (dev.versionAt(c + 1).writeId === 0) === zero) c++;
          return { data: !zero, zero, bytes: Math.min(end, (c + 1) * cs) - offset };
        }
        const b = this.backing;
        if (b && offset < b.sizeBytes) return b.blockStatus(offset, Math.min(r.bytes, b.sizeBytes - offset));
        return { data: false, zero: true, bytes: r.bytes };
      }
    }
  }

  /**
   * Whether a block status of this node (down to, not including, `base`) may first have to read qcow2
   * tables QEMU's caches do not hold yet: then run loadStatusTables before blockStatus, allocation or
   * allocationAbove, as QEMU's bdrv_co_block_status reads them before it answers.
   */
  statusNeedsTables(base: BlockNode | null = null): boolean {
    for (let n: BlockNode | null = this; n && n !== base; n = n.childLink?.child ?? null) if (n.refcountCold || n.l2Cold) return true;
    return false;
  }

  /**
   * Reads the tables a block status of [offset, offset+bytes) reads on its way down the chain (to `base`):
   * at each qcow2 node it visits, the refcount block on its first status, then its L2 table; the walk goes
   * on below a node only where the range is not allocated in it (bdrv_block_status_above).
   */
  *loadStatusTables(offset: number, bytes: number, base: BlockNode | null, issuer: string): Process<void> {
    this.checkRange("loadStatusTables", offset, bytes);
    for (let n: BlockNode | null = this; n && n !== base && offset < n.sizeBytes; n = n.childLink?.child ?? null) {
      if (n.driver !== "qcow2") continue; // a filter passes on; raw and null-co end the chain
      if (n.refcountCold || n.l2Cold) yield* n.loadTables(true, true, issuer);
      if (n.allocation(offset, Math.min(bytes, n.sizeBytes - offset)).allocated) return;
    }
  }

  /**
   * Reads this qcow2 node's refcount block (with `refcount`) and its L2 table (with `l2`) where QEMU's caches
   * do not hold them, one cluster each from its device: in that order for a block status, the L2 table first
   * with `l2First` (an allocating write looks the cluster up, then allocates). An image nothing was ever
   * written to has no L2 table yet: its lookup reads nothing, and the first write makes the table in the cache.
   */
  private *loadTables(refcount: boolean, l2: boolean, issuer: string, l2First = false): Process<void> {
    while (this.tablesLoading) yield wait(this.tablesLoading);
    const dev = this.device!;
    const r = refcount && this.refcountCold ? ["refcount block"] : [], t = l2 && this.l2Cold ? ["L2 table"] : [];
    const tables = l2First ? t.concat(r) : r.concat(t);
    if (tables.length === 0) return;
    const loading = (this.tablesLoading = new Signal<void>(`qcow2 tables of ${this.name}`));
    try {
      for (const table of tables) {
        if (table === "L2 table" && !dev.anyWritten()) {
          this.l2Cold = false;
          continue;
        }
        yield dev.io({ op: "read", offset: 0, bytes: Math.min(this.clusterSizeBytes, dev.sizeBytes), issuer: `${issuer} (${this.name} ${table})` });
        if (table === "L2 table") this.l2Cold = false;
        else this.refcountCold = false;
      }
    } finally {
      this.tablesLoading = null;
      yield notify(loading);
    }
  }

  /** The image file's write end as far as blocksim models a qcow2's layout (qcow2-layout.ts); 0 before any write. */
  get fileWrHighestOffset(): number {
    return this.layout?.fileWrHighestOffset ?? 0;
  }

  private hostLayout(): Qcow2Layout {
    return (this.layout ??= new Qcow2Layout(this.device!, this.clusterSizeBytes));
  }

  /** A data write through a qcow2 node onto its device, placed in the image file first (qcow2-layout.ts: query-blockstats). */
  private *qcow2DataWrite(req: BlockRequest): Process<unknown> {
    const end = this.hostLayout().write(req.offset, req.bytes);
    try {
      return yield this.device!.io(req);
    } finally {
      this.layout!.written(end);
    }
  }

  /**
   * The first write (or write-zeroes) to an image without an L2 table makes one, as QEMU 7.2's
   * qcow2_l2_allocate does under the image's lock: the new table's cluster is allocated in the refcount
   * block, which is written back and synced first (qcow2_cache_flush: the L2 cache depends on it), then the
   * table is written and synced, then its L1 entry (bdrv_pwrite_sync). Three syncs before the data write:
   * about 1.2 ms in a trace of QEMU on the recording machine (goldens/qcow2_first_write_allocates_l2).
   */
  private *allocateL2(issuer: string): Process<void> {
    while (this.tablesLoading) yield wait(this.tablesLoading);
    const dev = this.device!;
    if (this.l2Present || dev.anyWritten()) {
      this.l2Present = true;
      return;
    }
    const loading = (this.tablesLoading = new Signal<void>(`qcow2 L2 allocation of ${this.name}`));
    try {
      const table = Math.min(this.clusterSizeBytes, dev.sizeBytes);
      for (const [what, bytes] of [["refcount block", table], ["L2 table", table], ["L1 entry", 8]] as const) {
        yield dev.io({ op: "write", offset: 0, bytes, issuer: `${issuer} (${this.name} ${what})`, metadata: true });
        yield dev.io({ op: "flush", issuer: `${issuer} (${this.name} ${what})` });
      }
      this.l2Present = true;
    } finally {
      this.tablesLoading = null;
      yield notify(loading);
    }
  }

  // ---- write hooks and dirty bitmaps ----

  /** Runs `hook` before every modifying request on this node, in registration order; returns the remover. */
  addBeforeWriteHook(hook: BeforeWriteHook): () => void {
    this.hooks = [...this.hooks, hook];
    return () => {
      this.hooks = this.hooks.filter((h) => h !== hook);
    };
  }

  /** Gives this filter its own write path (mirror_top in write-blocking mode); null takes it away. */
  setFilterWrite(fn: FilterWrite | null): void {
    if (this.driver !== "filter") throw new TypeError(`node "${this.name}": only a filter has a write path of its own`);
    this.filterWrite = fn;
  }

  /** Runs `hook` before this node's own flush (blkdebug's flush faults); throwing fails the flush. Returns the remover. */
  addBeforeFlushHook(hook: BeforeWriteHook): () => void {
    this.flushHooks = [...this.flushHooks, hook];
    return () => {
      this.flushHooks = this.flushHooks.filter((h) => h !== hook);
    };
  }

  /** Runs `hook` before every read on this node (blkdebug's read faults); throwing fails the read. Returns the remover. */
  addBeforeReadHook(hook: BeforeWriteHook): () => void {
    this.readHooks = [...this.readHooks, hook];
    return () => {
      this.readHooks = this.readHooks.filter((h) => h !== hook);
    };
  }

  /** Adds an enabled, clean bitmap. Errors as QMP block-dirty-bitmap-add. */
  addBitmap(name: string, granularityBytes: number): DirtyBitmap {
    if (typeof name !== "string" || name === "") throw new TypeError(`node "${this.name}": a bitmap needs a non-empty name`);
    if (this.bitmapList.some((b) => b.name === name)) throw new Error(`Bitmap already exists: ${name}`);
    if (!Number.isSafeInteger(granularityBytes) || granularityBytes < 512 || (granularityBytes & (granularityBytes - 1)) !== 0) {
      throw new RangeError("Granularity must be power of 2, and at least 512");
    }
    const b = new DirtyBitmap(name, granularityBytes, this.sizeBytes);
    this.bitmapList.push(b);
    return b;
  }

  /** The bitmap called `name`, or undefined (anonymous ones have no name to find). */
  bitmap(name: string): DirtyBitmap | undefined {
    return name === "" ? undefined : this.bitmapList.find((b) => b.name === name);
  }

  /** Adds an existing bitmap object (a successor) to this node. */
  attachBitmap(b: DirtyBitmap): void {
    if (b.sizeBytes !== this.sizeBytes) throw new RangeError(`node "${this.name}": a bitmap of ${b.sizeBytes} bytes cannot cover ${this.sizeBytes}`);
    if (!this.bitmapList.includes(b)) this.bitmapList.push(b);
  }

  /** Drops this bitmap object, whatever its name. */
  releaseBitmap(b: DirtyBitmap): void {
    const i = this.bitmapList.indexOf(b);
    if (i >= 0) this.bitmapList.splice(i, 1);
  }

  /** Removes a bitmap; throws if there is none by that name. */
  removeBitmap(name: string): void {
    const i = this.bitmapList.findIndex((b) => b.name === name);
    if (i < 0) throw new Error(`Dirty bitmap '${name}' not found`);
    this.bitmapList.splice(i, 1);
  }

  /**
   * A raw or qcow2 node truncated to `sizeBytes` (QEMU bdrv_co_truncate on
   * an image file, called drained): its file grows or shrinks, its bitmaps
   * follow. What QEMU allows is block_resize's to check.
   */
  resize(sizeBytes: number): void {
    if (!this.device) throw new Error(`node "${this.name}": only a raw or qcow2 node on a device can be resized here`);
    this.device.resize(sizeBytes);
    this.sizeBytes = sizeBytes;
    for (const b of this.bitmapList) b.truncate(sizeBytes);
  }

  /** Every bitmap, in creation order. */
  bitmaps(): readonly DirtyBitmap[] {
    return this.bitmapList;
  }

  // ---- op blockers ----

  /** Blocks `op` on this node for `reason` (keep the object to unblock). */
  blockOp(op: BlockOpType, reason: Error): void {
    this.blockers.block(op, reason);
  }

  /** Removes the blockers of `op` whose reason is this exact object. */
  unblockOp(op: BlockOpType, reason: Error): void {
    this.blockers.unblock(op, reason);
  }

  /** Blocks every operation type for `reason`. */
  blockAllOps(reason: Error): void {
    this.blockers.blockAll(reason);
  }

  /** Unblocks every operation type for `reason`. */
  unblockAllOps(reason: Error): void {
    this.blockers.unblockAll(reason);
  }

  /**
   * undefined if `op` may proceed on this node, else the error to report:
   * "Node '<name>' is busy: <most recent reason>". Like QEMU's
   * bdrv_get_device_or_node_name, the name is that of a named BlockBackend
   * whose root this node is, if any, else the node name.
   */
  opBlocker(op: BlockOpType): OpBlockedError | undefined {
    const reason = this.blockers.first(op);
    return reason === undefined ? undefined : new OpBlockedError(this.deviceOrNodeName(), op, reason);
  }

  /** The first named BlockBackend using this node as root, else the node name. */
  deviceOrNodeName(): string {
    for (const l of this.parentLinks) {
      if (l.role === "root") {
        const name = (l.parent as { name: string }).name;
        if (name !== "") return name;
      }
    }
    return this.name;
  }

  // ---- drivers ----

  private *readNull(req: BlockRequest): Process<Content> {
    if (this.nullLatencyNs > 0) yield coSleep(this.nullLatencyNs);
    const cs = this.clusterSizeBytes;
    const first = Math.floor(req.offset / cs), last = Math.floor((req.offset + req.bytes - 1) / cs);
    const v = this.nullReadZeroes ? ZERO_VERSION : UNSPECIFIED_VERSION;
    return { offset: first * cs, clusterSizeBytes: cs, versions: new Array<ClusterVersion>(last - first + 1).fill(v) };
  }

  /** A modifying request has finished here, failed or not: it counts as written, and dirties the enabled bitmaps (unless a copy-on-read write). */
  private written(req: BlockRequest): void {
    this.writeGen++;
    if (req.unchanged) return;
    const list = this.bitmapList;
    for (let i = 0; i < list.length; i++) if (list[i].enabled) list[i].set(req.offset, req.bytes);
  }

  /** A filter's modifying request (not flush) to its child, through the filter's own write path if it has one. */
  private passDown(req: BlockRequest): Process<unknown> {
    const child = this.file!;
    return this.filterWrite === null ? child.io(req) : this.filterWrite(req, () => child.io(req));
  }

  /**
   * QEMU bdrv_co_flush: the node's own flush only if something was written since its last successful
   * flush (else it costs nothing), then its child's (a filter's file; a device node's file is its device).
   */
  private *doFlush(req: BlockRequest): Process<void> {
    const gen = this.writeGen;
    if (gen !== this.flushedGen) {
      if (this.flushHooks.length > 0) yield* runHooks(this.flushHooks, req, this);
      if (this.tablesDirty) {
        // qcow2_cache_flush: the refcount block goes to stable storage before the L2 table that points at the
        // new clusters, so writing dirty tables back takes a sync of its own before the one of the flush
        this.tablesDirty = false;
        yield this.device!.io({ op: "flush", issuer: `${req.issuer} (${this.name} tables)` });
      }
      if (this.device) yield this.device.io(req);
      else if (this.driver === "null-co" && this.nullLatencyNs > 0) yield coSleep(this.nullLatencyNs);
    }
    if (this.driver === "filter") yield* this.file!.io(req);
    this.flushedGen = gen;
  }

  /** A qcow2 read: allocated runs from the device, the others from the backing node (or zeroes). */
  private *readCow(req: BlockRequest): Process<Content> {
    const dev = this.device!, cs = this.clusterSizeBytes;
    const start = req.offset, end = req.offset + req.bytes;
    const first = Math.floor(start / cs), last = Math.floor((end - 1) / cs);
    if (dev.isWritten(first) && (first === last || this.allocation(start, req.bytes).bytes === req.bytes)) {
      return (yield dev.io(req)) as Content;
    }
    const versions = new Array<ClusterVersion>(last - first + 1);
    let c = first;
    while (c <= last) {
      const allocated = dev.isWritten(c);
      let e = c;
      while (e < last && dev.isWritten(e + 1) === allocated) e++;
      const runStart = Math.max(start, c * cs), runEnd = Math.min(end, (e + 1) * cs);
      let got: Content | undefined;
      let gotEnd = runStart;
      if (allocated) {
        got = (yield dev.io({ op: "read", offset: runStart, bytes: runEnd - runStart, issuer: req.issuer })) as Content;
        gotEnd = runEnd;
      } else {
        const backing = this.backing;
        if (backing && runStart < backing.sizeBytes) {
          gotEnd = Math.min(runEnd, backing.sizeBytes);
          got = (yield* backing.io({ op: "read", offset: runStart, bytes: gotEnd - runStart, issuer: req.issuer })) as Content;
        }
      }
      for (let k = c; k <= e; k++) {
        const at = Math.max(start, k * cs);
        versions[k - first] = got && at < gotEnd ? versionAt(got, at) : ZERO_VERSION;
      }
      c = e + 1;
    }
    return { offset: first * cs, clusterSizeBytes: cs, versions };
  }

  private versionAtOffset(offset: number): ClusterVersion {
    switch (this.driver) {
      case "raw":
        return this.device!.versionAt(Math.floor(offset / this.clusterSizeBytes));
      case "qcow2": {
        const c = Math.floor(offset / this.clusterSizeBytes);
        if (this.device!.isWritten(c)) return this.device!.versionAt(c);
        const b = this.backing;
        return b && offset < b.sizeBytes ? b.versionAtOffset(offset) : ZERO_VERSION;
      }
      case "filter":
        return this.file!.versionAtOffset(offset);
      case "null-co":
        return this.nullReadZeroes ? ZERO_VERSION : UNSPECIFIED_VERSION;
    }
  }

  /**
   * A write-zeroes that covers part of a cluster leaves it zero only if the rest of it reads as zeroes
   * already (QEMU 7.2 qcow2_co_pwrite_zeroes, else -ENOTSUP, and bdrv_co_do_pwrite_zeroes writes a buffer
   * of zeroes there: the cluster holds data; a raw file zeroes just those bytes): the requests to issue in
   * order, head, aligned middle and tail, a partial cluster that does not read as zeroes written as data
   * (goldens/write_zeroes_partial_cluster); null when the request can go as it is. The device's last
   * cluster, when the device ends inside it, is whole up to the end.
   */
  private zeroesPieces(req: BlockRequest): BlockRequest[] | null {
    const cs = this.clusterSizeBytes, start = req.offset, end = req.offset + req.bytes;
    const readsZero = (offset: number) => this.versionAtOffset(offset - (offset % cs)).writeId === 0;
    const headPartial = start % cs !== 0 && !readsZero(start);
    const tailPartial = end % cs !== 0 && end !== this.sizeBytes && !readsZero(end - 1);
    if (!headPartial && !tailPartial) return null;
    const headEnd = headPartial ? Math.min(end, start - (start % cs) + cs) : start;
    const tailStart = tailPartial ? Math.max(headEnd, end - (end % cs)) : end;
    const pieces: BlockRequest[] = [];
    const piece = (op: "write" | "write-zeroes", from: number, to: number) => {
      if (to > from) pieces.push({ op, offset: from, bytes: to - from, issuer: req.issuer });
    };
    piece("write", start, headEnd);
    piece("write-zeroes", headEnd, tailStart);
    piece("write", tailStart, end);
    return pieces;
  }

  private checkRequest(req: BlockRequest): void {
    if (req.op === "flush") return;
    this.checkRange(req.op, req.offset, req.bytes);
    if (req.data !== undefined && req.op !== "write") {
      throw new TypeError(`node "${this.name}": only a write may carry data, not ${req.op}`);
    }
  }

  private checkRange(what: string, offset: number, bytes: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(bytes) || bytes < 1) {
      throw new RangeError(`node "${this.name}": ${what} needs a whole offset >= 0 and bytes >= 1, got ${String(offset)}+${String(bytes)}`);
    }
    if (offset + bytes > this.sizeBytes) {
      throw new RangeError(`node "${this.name}": ${what} ${offset}+${bytes} ends past the node size (${this.sizeBytes} bytes)`);
    }
  }
}

/**
 * Runs a node's hooks of one kind in order, in the issuing process. Its own
 * generator, entered only when there are hooks: their calls see many targets
 * (each job's closures), and kept out of `io` they leave its optimized code
 * alone (V8 compiled `io` four times a campaign, twice for hooks).
 */
function* runHooks(hooks: readonly BeforeWriteHook[], req: BlockRequest, node: BlockNode): Process<void> {
  for (let i = 0; i < hooks.length; i++) yield* hooks[i](req, node);
}

/** @internal An IoError raised by the block layer itself (no medium). */
export function noMedium(where: string, req: { op: IoOp; offset?: number; bytes?: number }): IoError {
  return new IoError("ENOMEDIUM", where, req.op, req.offset ?? 0, req.bytes ?? 0);
}
