/**
 * A simulated storage device: latency, bandwidth, queue depth, injected
 * faults and per-cluster content versions, on the virtual clock.
 *
 * Timing model. The device serves at most `queueDepth` requests at once;
 * more wait in a FIFO. Data moves over one channel of `bandwidthBytesPerSec`
 * shared by all requests in service. For a request submitted at `submitNs`:
 *
 *   startNs      = submitNs if a slot is free and nobody queues, else the
 *                  instant the slot it waits for is freed (FIFO)
 *   latencyNs    = the read or write latency (fixed, or drawn uniformly from
 *                  [minNs, maxNs] on the stream `disk/<name>/latency` at startNs,
 *                  in start order); write-zeroes, discard and flush use the
 *                  write latency
 *   transferNs   = ceil(bytes * 1e9 / bandwidthBytesPerSec) for read and
 *                  write; 0 for the others or when bandwidth is 0 (unlimited)
 *   channelNs    = max(startNs, the instant the channel finishes the previous
 *                  transfer); the channel is then busy until channelNs + transferNs
 *                  (only requests with transferNs > 0 take the channel; with
 *                  transferPerRequest none does: channelNs = startNs)
 *   completionNs = channelNs + transferNs + latencyNs
 *   flush:       = max(startNs + latencyNs + syncNs, the latest completionNs of any
 *                  write, write-zeroes or discard started before it), where
 *                  syncNs = ceil(bytes written since the last flush started *
 *                  1e9 / flushBytesPerSec), 0 without flushBytesPerSec
 *
 * The slot is held from startNs to completionNs. A request takes effect
 * atomically at completionNs: a write stamps its clusters then, a read
 * samples them then. Completions at the same instant are scheduler events
 * like any other, so their order is a choice point.
 *
 * Content model. Each cluster holds the ClusterVersion of the last write that
 * completed on it; a write touching any byte of a cluster stamps the whole
 * cluster (so use cluster-aligned I/O where exact content matters). Write ids
 * are global per Scheduler (unique across devices), increasing in completion
 * order. A write may carry `data` (Content read elsewhere) to copy versions
 * instead of stamping a new one. Write-zeroes and discard stamp write id 0.
 * A cluster counts as written (allocated, for qcow2-like nodes) once any
 * write, write-zeroes or discard completed on it.
 *
 * Fault model: see faults.ts. A faulted request never reaches the medium.
 * Limits: no partial completion, no reordering inside the device beyond
 * completion times, no power loss (flush only orders completions), no
 * request cancellation (an interrupted issuer leaves its request in flight).
 */
import {
  awaitOp, choose, formatTime, type Effect, type Operation, type OperationHost, type Process, type ProcHandle, type Scheduler,
} from "../scheduler/index.js";
import { versionAt, ZERO_VERSION, type ClusterVersion, type Content } from "./content.js";
import { IoError, type Errno } from "./errors.js";
import { FaultRules, IO_OPS, isIoOp, type ActiveFault, type FaultRule, type IoOp } from "./faults.js";
import { Waiters } from "./waiters.js";

/** A latency: fixed ns, or uniform over [minNs, maxNs] drawn from the device's latency stream. */
export type LatencyNs = number | { readonly minNs: number; readonly maxNs: number };

/**
 * What a device left unsaid takes: 64 KiB clusters, no latency, unlimited
 * bandwidth, 32 requests at once. One set for every device the simulator
 * makes — a world's (sim/harness), an image file a drive-backup or
 * drive-mirror creates (sim/qmp/transaction.ts).
 */
export const DEVICE_DEFAULTS = { clusterSizeBytes: 65536, latencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 32 } as const;

/** How a device is built. Every field is required except where a default is given. */
export interface DeviceConfig {
  /** Unique name; appears in the trace and in errors. */
  name: string;
  /** Capacity in bytes. */
  sizeBytes: number;
  /** Content granularity, a power of two >= 512. */
  clusterSizeBytes: number;
  readLatencyNs: LatencyNs;
  writeLatencyNs: LatencyNs;
  /** Shared data channel speed; 0 = unlimited. */
  bandwidthBytesPerSec: number;
  /**
   * Each request moves its bytes at bandwidthBytesPerSec on its own, not over
   * one channel shared with the others (QEMU's thread pool reading an image
   * file from the host's cache: workers copy in parallel). Default false.
   */
  transferPerRequest?: boolean;
  /**
   * A flush also takes the bytes written since the last flush started at this
   * rate (an fdatasync writing the host's cache back). Default 0: a flush
   * takes only its latency.
   */
  flushBytesPerSec?: number;
  /** Requests served at once (>= 1); more wait in FIFO order. */
  queueDepth: number;
  /** PRNG stream for drawn latencies (default `disk/<name>/latency`). */
  latencyStream?: string;
  /** Fault rules in force from the start. */
  faults?: FaultRule[];
  /**
   * A qcow2 image on this device opens with QEMU's metadata caches empty: its
   * first block status reads a refcount block, its first cluster lookup its
   * L2 table, each a one-cluster read of this device (sim/block/node.ts).
   * Default false: a qcow2 node's metadata costs nothing.
   */
  coldMetadataCaches?: boolean;
  /**
   * The backing file a qcow2 image on this device names in its header (an
   * image qemu-img made with -b): opening it also reads the backing format
   * extension and the name (sim/block/qcow2-open.ts, with coldMetadataCaches).
   */
  backingFile?: string;
  /**
   * The device is an image file, not a disk: the clusters that read as
   * zeroes (never written, or zeroed) are holes a raw node's block status
   * reports as zero (QEMU 7.2 file-posix raw_co_block_status: SEEK_DATA and
   * SEEK_HOLE), so jobs write zeroes there without reading. Default false: a
   * disk (host_device), whose block status says data everywhere.
   */
  sparse?: boolean;
}

/** A request as an issuer states it. `offset`/`bytes` are ignored for flush. */
export interface IoRequest {
  op: IoOp;
  offset?: number;
  bytes?: number;
  /** Who issues it ("guest", "job:backup0", …): carried into the trace and into written versions. */
  issuer: string;
  /** For a write: copy these versions instead of stamping a new write id. Must cover [offset, offset+bytes). */
  data?: Content;
  /**
   * A write that leaves what a reader sees unchanged (QEMU's
   * BDRV_REQ_WRITE_UNCHANGED: a copy-on-read write, or its write-zeroes of a chunk that reads as zeroes). Carried into the trace
   * record, so a checker can tell it from a write that dirties bitmaps.
   */
  unchanged?: boolean;
  /**
   * A write of the image format's own metadata (a qcow2 table the driver
   * writes back): it takes a write's time and its bytes count toward the next
   * flush's sync, but no cluster a reader sees changes. Fault rules (which
   * name the content's ranges) do not apply, and its trace record has no
   * offset: no checker takes it for a write of content.
   */
  metadata?: boolean;
}

/** Counters since creation. */
export interface DeviceStats {
  submitted: number;
  completed: number;
  /** Requests failed by a fault rule. */
  faulted: number;
  bytesRead: number;
  bytesWritten: number;
}

/** A request on its way through the device; the Operation a process awaits. */
class DeviceOp implements Operation {
  readonly dev: Device;
  readonly op: IoOp;
  readonly offset: number;
  readonly bytes: number;
  readonly issuer: string;
  readonly data: Content | undefined;
  readonly unchanged: boolean;
  readonly metadata: boolean;
  proc: ProcHandle | undefined;
  token: number;
  submitNs: number;
  startNs: number;
  // Fields set in the constructor, not declared with initializers: V8 runs a class's field initializers as a
  // function of their own, a call more for every request until the constructor is optimized.
  constructor(dev: Device, op: IoOp, offset: number, bytes: number, issuer: string, data: Content | undefined, unchanged: boolean, metadata: boolean) {
    this.dev = dev;
    this.op = op;
    this.offset = offset;
    this.bytes = bytes;
    this.issuer = issuer;
    this.data = data;
    this.unchanged = unchanged;
    this.metadata = metadata;
    this.proc = undefined;
    this.token = 0;
    this.submitNs = 0;
    this.startNs = -1;
  }

  start(_host: OperationHost, proc: ProcHandle, token: number): void {
    this.proc = proc;
    this.token = token;
    this.dev.submit(this);
  }

  describe(): string {
    const where = this.op === "flush" ? "" : ` ${this.offset}+${this.bytes}`;
    // How long, not since when: a report counts its moments from the end of setup, which the device does not know.
    const state = this.startNs < 0 ? "queued" : `in service for ${formatTime(this.dev.nowNs() - this.startNs)}`;
    return `${this.op}${where} on device "${this.dev.name}" (${state})`;
  }
}

/** A simulated device. Issue requests with `yield dev.io({...})`. */
export class Device {
  readonly name: string;
  /** Changed only by resize(). */
  sizeBytes: number;
  readonly clusterSizeBytes: number;
  /** Number of clusters (the last one may be partial). */
  clusters: number;
  readonly queueDepth: number;
  readonly bandwidthBytesPerSec: number;
  readonly transferPerRequest: boolean;
  readonly flushBytesPerSec: number;
  readonly readLatencyNs: LatencyNs;
  readonly writeLatencyNs: LatencyNs;
  /** See DeviceConfig.coldMetadataCaches. */
  readonly coldMetadataCaches: boolean;
  /** See DeviceConfig.backingFile. */
  readonly backingFile: string | undefined;
  /** See DeviceConfig.sparse; a device recreate() made anew is one. */
  sparse: boolean;
  /** Fault rules; add and remove them at any time. */
  readonly faults: FaultRules;
  readonly stats: DeviceStats = { submitted: 0, completed: 0, faulted: 0, bytesRead: 0, bytesWritten: 0 };

  /** Requests submitted and not yet completed (queued, in service, or waiting on a fault choice). */
  inFlight = 0;
  /** Requests holding a queue slot. */
  active = 0;

  private readonly sim: Scheduler;
  private readonly latencyStream: string;
  private latencyRng: (() => number) | undefined = undefined;
  private readonly versions: (ClusterVersion | undefined)[];
  private readonly queue: DeviceOp[] = [];
  private queueHead = 0;
  private channelFreeNs = 0;
  private lastModifyCompletionNs = 0;
  /** Bytes of the writes started since the last flush started (what flushBytesPerSec syncs). */
  private unflushedBytes = 0;
  private readonly label: string;
  private readonly listeners: ((inFlight: number) => void)[] = [];
  private readonly idle: Waiters;

  constructor(sim: Scheduler, config: DeviceConfig) {
    validateConfig(config);
    this.sim = sim;
    this.name = config.name;
    this.sizeBytes = config.sizeBytes;
    this.clusterSizeBytes = config.clusterSizeBytes;
    this.clusters = Math.ceil(config.sizeBytes / config.clusterSizeBytes);
    this.queueDepth = config.queueDepth;
    this.bandwidthBytesPerSec = config.bandwidthBytesPerSec;
    this.transferPerRequest = config.transferPerRequest ?? false;
    this.flushBytesPerSec = config.flushBytesPerSec ?? 0;
    this.readLatencyNs = config.readLatencyNs;
    this.writeLatencyNs = config.writeLatencyNs;
    this.coldMetadataCaches = config.coldMetadataCaches ?? false;
    this.backingFile = config.backingFile;
    this.sparse = config.sparse ?? false;
    this.latencyStream = config.latencyStream ?? `disk/${config.name}/latency`;
    this.versions = new Array<ClusterVersion | undefined>(this.clusters); // holes read as undefined: never written
    this.faults = new FaultRules(config.name);
    for (const f of config.faults ?? []) this.faults.add(f);
    this.label = `device ${config.name}`;
    this.idle = new Waiters(() => `device "${this.name}" to go idle (${this.inFlight} in flight)`);
  }

  /**
   * The effect that issues `req` and blocks until it completes. Resumes with
   * the Content read (read), the write id stamped (write; 0 when it copied
   * `data`), or undefined; throws an IoError into the process on a fault.
   * A malformed request throws a RangeError/TypeError here, synchronously.
   */
  io(req: IoRequest): Effect {
    return awaitOp(this.request(req));
  }

  /** Builds the Operation for `req` after validating it (for callers that await it themselves). */
  request(req: IoRequest): Operation {
    const op = req.op;
    if (!isIoOp(op)) throw new TypeError(`device "${this.name}": op must be one of ${IO_OPS.join(", ")}, got ${JSON.stringify(op)}`);
    if (typeof req.issuer !== "string") throw new TypeError(`device "${this.name}": ${op} needs an issuer label (a string)`);
    if (op === "flush") return new DeviceOp(this, op, 0, 0, req.issuer, undefined, false, false);
    const offset = req.offset ?? NaN, bytes = req.bytes ?? NaN;
    this.checkRange(op, offset, bytes);
    if (req.data !== undefined) {
      if (op !== "write") throw new TypeError(`device "${this.name}": only a write may carry data, not ${op}`);
      const d = req.data;
      const end = d.offset + d.versions.length * d.clusterSizeBytes;
      if (d.offset > offset || end < offset + bytes) {
        throw new RangeError(`device "${this.name}": write ${offset}+${bytes} carries data covering only [${d.offset}, ${end})`);
      }
    }
    const unchanged = req.unchanged === true;
    if (unchanged && op !== "write" && op !== "write-zeroes") throw new TypeError(`device "${this.name}": only a write or write-zeroes may be unchanged, not ${op}`);
    const metadata = req.metadata === true;
    if (metadata && (op !== "write" || req.data !== undefined || unchanged)) throw new TypeError(`device "${this.name}": only a plain write may be a metadata write, not ${op}`);
    return new DeviceOp(this, op, offset, bytes, req.issuer, req.data, unchanged, metadata);
  }

  /** Requests waiting for a queue slot. */
  get queued(): number {
    return this.queue.length - this.queueHead;
  }

  /** Calls `fn(inFlight)` after every change of the in-flight count; returns the unsubscribe function. */
  onInFlightChange(fn: (inFlight: number) => void): () => void {
    this.listeners.push(fn);
    return () => {
      const i = this.listeners.indexOf(fn);
      if (i >= 0) this.listeners.splice(i, 1);
    };
  }

  /** The effect that blocks until no request is in flight (resumes at once, at this instant, if none is). */
  waitIdle(): Effect {
    const dev = this;
    return awaitOp({
      start(host, proc, token) {
        if (dev.inFlight === 0) host.wake(proc, token);
        else dev.idle.ticket().start(host, proc, token);
      },
      describe: () => this.idle.describe(),
    });
  }

  // ---- inspection (no I/O, no time) ----

  /** The version cluster `cluster` holds now. */
  versionAt(cluster: number): ClusterVersion {
    this.checkCluster(cluster);
    return this.versions[cluster] ?? ZERO_VERSION;
  }

  /**
   * The file is created anew over the old one (QEMU bdrv_img_create of an
   * existing file, drive-backup or drive-mirror in mode absolute-paths): every
   * cluster a hole again, nothing unflushed, and an image file from now on.
   */
  recreate(): void {
    this.versions.fill(undefined);
    this.unflushedBytes = 0;
    this.sparse = true;
  }

  /**
   * The file truncated to `sizeBytes` (through its node: QEMU's
   * block_resize, or a commit growing its base to a top of any size,
   * goldens/block_resize_chain_jobs): clusters past the new end are gone,
   * new ones are holes. The last cluster may be partial; a partial last
   * cluster that grows keeps its version whole (the model's granularity:
   * its new bytes read as written, where QEMU's read as zeroes), which is
   * why block_resize takes only whole clusters. No request may be in flight.
   */
  resize(sizeBytes: number): void {
    if (!Number.isSafeInteger(sizeBytes) || sizeBytes < 1) throw new RangeError(`device "${this.name}": a new size must be a whole number >= 1, got ${String(sizeBytes)}`);
    if (this.inFlight > 0) throw new Error(`device "${this.name}": resized with ${this.inFlight} requests in flight`);
    this.sizeBytes = sizeBytes;
    this.clusters = Math.ceil(sizeBytes / this.clusterSizeBytes);
    this.versions.length = this.clusters;
  }

  /** Whether any write, write-zeroes or discard has completed on any cluster. */
  anyWritten(): boolean {
    for (let c = 0; c < this.clusters; c++) if (this.versions[c] !== undefined) return true;
    return false;
  }

  /** Whether any write, write-zeroes or discard has completed on `cluster`. */
  isWritten(cluster: number): boolean {
    this.checkCluster(cluster);
    return this.versions[cluster] !== undefined;
  }

  /** The content of the clusters overlapping [offset, offset+bytes), as a read would return it now. */
  content(offset: number, bytes: number): Content {
    this.checkRange("content", offset, bytes);
    return this.snapshot(offset, bytes);
  }

  /** Adds a fault rule (shorthand for `faults.add`). */
  addFault(rule: FaultRule): ActiveFault {
    return this.faults.add(rule);
  }

  /** @internal The virtual time now (a request describing itself). */
  nowNs(): number {
    return this.sim.now;
  }

  // ---- the request path ----

  /** @internal Called by the Operation when the issuing process blocks on it. */
  submit(r: DeviceOp): void {
    r.submitNs = this.sim.now;
    this.stats.submitted++;
    // changeInFlight(1), inline (a count that rises never reaches 0): every request passes here
    const n = ++this.inFlight;
    if (this.listeners.length > 0) this.tellInFlight(n);
    if (this.faults.size > 0 && !r.metadata) {
      const d = this.faults.decide(r.op, r.offset, r.bytes, r.issuer);
      if (d !== undefined) {
        if (d.choose) this.askStrategy(r, d.fault);
        else this.inject(r, d.fault);
        return;
      }
    }
    // enqueue(r), inline
    if (this.active < this.queueDepth && this.queueHead === this.queue.length) this.startService(r);
    else this.queue.push(r);
  }

  private enqueue(r: DeviceOp): void {
    if (this.active < this.queueDepth && this.queueHead === this.queue.length) this.startService(r);
    else this.queue.push(r);
  }

  private startService(r: DeviceOp): void {
    const now = this.sim.now;
    this.active++;
    r.startNs = now;
    const read = r.op === "read";
    const spec = read ? this.readLatencyNs : this.writeLatencyNs;
    const latency = typeof spec === "number" ? spec : this.drawLatency(spec);
    let done: number;
    if (r.op === "flush") {
      // with flushBytesPerSec, the bytes written since the last flush go to stable storage first (fdatasync)
      const sync = this.flushBytesPerSec > 0 ? transferNs(this.unflushedBytes, this.flushBytesPerSec) : 0;
      this.unflushedBytes = 0;
      done = Math.max(now + latency + sync, this.lastModifyCompletionNs);
    } else {
      if (r.op === "write") this.unflushedBytes += r.bytes;
      const transfer = read || r.op === "write" ? transferNs(r.bytes, this.bandwidthBytesPerSec) : 0;
      let channel = now;
      if (transfer > 0 && !this.transferPerRequest) {
        if (this.channelFreeNs > channel) channel = this.channelFreeNs;
        this.channelFreeNs = channel + transfer;
      }
      done = channel + transfer + latency;
      if (!read && done > this.lastModifyCompletionNs) this.lastModifyCompletionNs = done;
    }
    this.sim.at(done, this.label, () => this.complete(r));
  }

  private complete(r: DeviceOp): void {
    this.active--;
    let result: unknown = undefined;
    const sim = this.sim;
    switch (r.op) {
      case "read":
        result = this.snapshot(r.offset, r.bytes);
        this.stats.bytesRead += r.bytes;
        sim.record(this.name, "io", { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer });
        break;
      case "write": {
        let id = 0;
        if (r.metadata) {
          this.stats.bytesWritten += r.bytes;
          sim.record(this.name, "io", { op: r.op, bytes: r.bytes, issuer: r.issuer, metadata: true });
          break;
        }
        if (r.data === undefined) {
          id = ++sim.lastWriteId; // global per scheduler
          this.stamp(r.offset, r.bytes, { writeId: id, writer: r.issuer });
        } else {
          this.copy(r.offset, r.bytes, r.data);
        }
        result = id;
        this.stats.bytesWritten += r.bytes;
        // `unchanged` only when set: every other write's record keeps its shape (and trace hash)
        sim.record(this.name, "io", r.unchanged
          ? { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer, writeId: id, unchanged: true }
          : { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer, writeId: id });
        break;
      }
      case "write-zeroes":
      case "discard":
        this.stamp(r.offset, r.bytes, { writeId: 0, writer: r.issuer });
        // a copy-on-read write-zeroes (a stream's zero chunk) says it is unchanged, as a copy-on-read write does
        sim.record(this.name, "io", r.unchanged
          ? { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer, unchanged: true }
          : { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer });
        break;
      case "flush":
        sim.record(this.name, "io", { op: r.op, issuer: r.issuer });
        break;
    }
    this.stats.completed++;
    while (this.active < this.queueDepth && this.queueHead < this.queue.length) {
      const next = this.queue[this.queueHead++];
      if (this.queueHead > 1024 && this.queueHead * 2 > this.queue.length) {
        this.queue.splice(0, this.queueHead);
        this.queueHead = 0;
      }
      this.startService(next);
    }
    const n = --this.inFlight; // changeInFlight(-1), inline
    if (this.listeners.length > 0) this.tellInFlight(n);
    if (n === 0 && this.idle.length > 0) this.idle.wakeAll();
    sim.wakeEnter(r.proc!, r.token, result); // the thread pool's completion enters a coroutine at once
  }

  private inject(r: DeviceOp, fault: ActiveFault): void {
    fault.fired++;
    if (fault.rule.once) fault.spent = true;
    this.stats.faulted++;
    const errno: Errno = fault.rule.errno;
    this.sim.record(this.name, "fault", r.unchanged
      ? { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer, errno, rule: fault.id, unchanged: true }
      : { op: r.op, offset: r.offset, bytes: r.bytes, issuer: r.issuer, errno, rule: fault.id });
    this.sim.at(this.sim.now, this.label, () => {
      this.changeInFlight(-1);
      this.sim.wakeThrow(r.proc!, r.token, new IoError(errno, `device "${this.name}"`, r.op, r.offset, r.bytes));
    });
  }

  /**
   * A choice rule matched: the Operation cannot yield, so a helper process
   * asks the strategy (the choice is logged and replayable like any other),
   * then fails the request or lets it join the queue, at the same instant.
   */
  private askStrategy(r: DeviceOp, fault: ActiveFault): void {
    const dev = this;
    const label = fault.rule.choose!;
    this.sim.spawn(`${this.name}/fault-choice`, (function* (): Process {
      const pick = (yield choose(label, 2)) as number;
      if (pick === 1 && !fault.spent) dev.inject(r, fault);
      else dev.enqueue(r);
    })(), { daemon: true });
  }

  private changeInFlight(delta: number): void {
    const n = (this.inFlight += delta);
    if (this.listeners.length > 0) this.tellInFlight(n);
    if (n === 0 && this.idle.length > 0) this.idle.wakeAll();
  }

  private tellInFlight(n: number): void {
    for (let i = 0; i < this.listeners.length; i++) this.listeners[i](n);
  }

  private drawLatency(spec: LatencyNs): number {
    if (typeof spec === "number") return spec;
    const rng = (this.latencyRng ??= this.sim.streams.get(this.latencyStream));
    return spec.minNs + Math.floor(rng() * (spec.maxNs - spec.minNs + 1));
  }

  private stamp(offset: number, bytes: number, v: ClusterVersion): void {
    const cs = this.clusterSizeBytes;
    const last = Math.floor((offset + bytes - 1) / cs);
    for (let c = Math.floor(offset / cs); c <= last; c++) this.versions[c] = v;
  }

  private copy(offset: number, bytes: number, data: Content): void {
    const cs = this.clusterSizeBytes;
    const last = Math.floor((offset + bytes - 1) / cs);
    for (let c = Math.floor(offset / cs); c <= last; c++) {
      this.versions[c] = versionAt(data, Math.max(offset, c * cs));
    }
  }

  private snapshot(offset: number, bytes: number): Content {
    const cs = this.clusterSizeBytes;
    const first = Math.floor(offset / cs);
    const last = Math.floor((offset + bytes - 1) / cs);
    const versions: ClusterVersion[] = new Array(last - first + 1);
    for (let c = first; c <= last; c++) versions[c - first] = this.versions[c] ?? ZERO_VERSION;
    return { offset: first * cs, clusterSizeBytes: cs, versions };
  }

  private checkRange(op: string, offset: number, bytes: number): void {
    if (!Number.isSafeInteger(offset) || offset < 0) {
      throw new RangeError(`device "${this.name}": ${op} offset must be a whole number of bytes >= 0, got ${String(offset)}`);
    }
    if (!Number.isSafeInteger(bytes) || bytes < 1) {
      throw new RangeError(`device "${this.name}": ${op} bytes must be a whole number >= 1, got ${String(bytes)}`);
    }
    if (offset + bytes > this.sizeBytes) {
      throw new RangeError(`device "${this.name}": ${op} ${offset}+${bytes} ends past the device size (${this.sizeBytes} bytes)`);
    }
  }

  private checkCluster(cluster: number): void {
    if (!Number.isSafeInteger(cluster) || cluster < 0 || cluster >= this.clusters) {
      throw new RangeError(`device "${this.name}": cluster must be a whole number in [0, ${this.clusters}), got ${String(cluster)}`);
    }
  }
}

/** ceil(bytes * 1e9 / bandwidthBytesPerSec) exactly, in ns; 0 when bandwidth is 0 (unlimited). */
export function transferNs(bytes: number, bandwidthBytesPerSec: number): number {
  if (bandwidthBytesPerSec === 0 || bytes === 0) return 0;
  const num = bytes * 1e9;
  if (num <= Number.MAX_SAFE_INTEGER) {
    let t = Math.ceil(num / bandwidthBytesPerSec);
    if (t * bandwidthBytesPerSec < num) t++;
    else if ((t - 1) * bandwidthBytesPerSec >= num) t--;
    return t;
  }
  const bw = BigInt(bandwidthBytesPerSec);
  return Number((BigInt(bytes) * 1_000_000_000n + bw - 1n) / bw);
}

function validateConfig(c: DeviceConfig): void {
  if (c === null || typeof c !== "object") throw new TypeError(`device config: expected an object, got ${String(c)}`);
  if (typeof c.name !== "string" || c.name === "") throw new TypeError(`device config: name must be a non-empty string, got ${JSON.stringify(c.name)}`);
  // Every world checks its devices: the checks allocate nothing unless one fails.
  checkWhole(c, "sizeBytes", 1);
  checkWhole(c, "clusterSizeBytes", 512);
  if ((c.clusterSizeBytes & (c.clusterSizeBytes - 1)) !== 0) {
    throw new RangeError(`device "${c.name}": clusterSizeBytes must be a power of two >= 512, got ${c.clusterSizeBytes}`);
  }
  checkWhole(c, "bandwidthBytesPerSec", 0);
  checkWhole(c, "queueDepth", 1);
  if (c.flushBytesPerSec !== undefined) checkWhole(c, "flushBytesPerSec", 0);
  checkLatency(c, "readLatencyNs");
  checkLatency(c, "writeLatencyNs");
  if (c.transferPerRequest !== undefined && typeof c.transferPerRequest !== "boolean") {
    throw new TypeError(`device "${c.name}": transferPerRequest must be true or false, got ${JSON.stringify(c.transferPerRequest)}`);
  }
  if (c.coldMetadataCaches !== undefined && typeof c.coldMetadataCaches !== "boolean") {
    throw new TypeError(`device "${c.name}": coldMetadataCaches must be true or false, got ${JSON.stringify(c.coldMetadataCaches)}`);
  }
  if (c.backingFile !== undefined && (typeof c.backingFile !== "string" || c.backingFile === "")) {
    throw new TypeError(`device "${c.name}": backingFile must be a non-empty file name, got ${JSON.stringify(c.backingFile)}`);
  }
  if (c.sparse !== undefined && typeof c.sparse !== "boolean") {
    throw new TypeError(`device "${c.name}": sparse must be true or false, got ${JSON.stringify(c.sparse)}`);
  }
  if (c.latencyStream !== undefined && (typeof c.latencyStream !== "string" || c.latencyStream === "")) {
    throw new TypeError(`device "${c.name}": latencyStream must be a non-empty stream name, got ${JSON.stringify(c.latencyStream)}`);
  }
}

function checkWhole(c: DeviceConfig, field: "sizeBytes" | "clusterSizeBytes" | "bandwidthBytesPerSec" | "flushBytesPerSec" | "queueDepth", min: number): void {
  const v = c[field];
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < min) {
    throw new RangeError(`device "${c.name}": ${field} must be a whole number >= ${min}, got ${String(v)}`);
  }
}

const wholeNs = (x: unknown) => typeof x === "number" && Number.isSafeInteger(x) && x >= 0;

function checkLatency(c: DeviceConfig, field: "readLatencyNs" | "writeLatencyNs"): void {
  const v = c[field];
  if (typeof v === "number") {
    if (!wholeNs(v)) throw new RangeError(`device "${c.name}": ${field} must be a whole number of ns >= 0, got ${v}`);
  } else if (v !== null && typeof v === "object") {
    if (!wholeNs(v.minNs) || !wholeNs(v.maxNs) || v.maxNs < v.minNs) {
      throw new RangeError(`device "${c.name}": ${field} range needs whole numbers 0 <= minNs <= maxNs, got ${JSON.stringify(v)}`);
    }
  } else {
    throw new TypeError(`device "${c.name}": ${field} must be ns or { minNs, maxNs }, got ${JSON.stringify(v)}`);
  }
}
