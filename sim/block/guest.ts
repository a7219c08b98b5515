/**
 * A guest workload: the live I/O that jobs race against.
 *
 * `iodepth` worker processes issue requests through one BlockBackend. Issues
 * are paced globally: successive issues are at least `intervalNs` apart
 * (0 = as fast as the workers get free), so the rate is 1/intervalNs until
 * `iodepth` requests are outstanding, and the workers then wait. Each issue
 * draws, from the named stream `guest/<name>` and in issue order: read or
 * write (readFraction), the size (fixed or uniform, a multiple of alignBytes),
 * and the offset by pattern — sequential (a cursor that wraps at the end of
 * the region), random (uniform and aligned over the region), or hot (with
 * probability hotFraction inside the hot range, else uniform over the region).
 *
 * A failed request (IoError) is counted and traced, and the worker carries
 * on; the guest has no error policy (QEMU's werror/rerror) here. Workers are
 * daemons by default, so a guest never keeps a run alive. While the VM is
 * stopped (QMP `stop`, graph.vm) workers issue nothing and wait for `cont`.
 */
import { IoError } from "../disk/index.js";
import { sleep, wait, type ProcHandle, type Process, type Scheduler } from "../scheduler/index.js";
import type { BlockBackend } from "./backend.js";

/** Where requests land. */
export type GuestPattern =
  | "sequential"
  | "random"
  | { kind: "hot"; /** Start of the hot range. */ offsetBytes: number; bytes: number; /** Share of requests inside it, 0..1. */ hotFraction: number };

/** A guest workload. Fields without a default are required. */
export interface GuestConfig {
  /** Names the processes (`<name>/0`…) and the stream (`guest/<name>`). */
  name: string;
  backend: BlockBackend;
  pattern: GuestPattern;
  /** Share of reads, 0..1 (default 0: writes only). */
  readFraction?: number;
  /** Request size: fixed, or uniform over multiples of alignBytes in [minBytes, maxBytes]. */
  requestBytes: number | { minBytes: number; maxBytes: number };
  /** Offsets and sizes are multiples of this (default 4096). */
  alignBytes?: number;
  /** Requests outstanding at most (default 1). */
  iodepth?: number;
  /** Least gap between two issues: fixed, or drawn per issue (default 0). */
  intervalNs?: number | { minNs: number; maxNs: number };
  /** The part of the disk used (default: all of the backend's root). */
  regionOffsetBytes?: number;
  regionBytes?: number;
  /** Stop after issuing this many requests (default: never). */
  maxRequests?: number;
  /** Issue nothing at or after this virtual time (default: never stop). */
  stopAtNs?: number;
  /** Stream name (default `guest/<name>`). */
  stream?: string;
  /** Whether the workers are daemons (default true). */
  daemon?: boolean;
  /** The AioContext its device runs in (default: the starter's). */
  context?: number;
}

/** Counters of a running guest. */
export interface GuestStats {
  issued: number;
  completed: number;
  failed: number;
  reads: number;
  writes: number;
}

/** A started guest workload. */
export class GuestWorkload {
  readonly stats: GuestStats = { issued: 0, completed: 0, failed: 0, reads: 0, writes: 0 };
  /** The worker processes. */
  readonly procs: ProcHandle[] = [];
  private halted = false;
  private nextIssueNs: number;
  private cursor: number;
  private readonly rng: () => number;
  private readonly align: number;
  private readonly regionStart: number;
  private readonly regionEnd: number;

  /** @internal use startGuest. */
  constructor(private readonly sim: Scheduler, private readonly cfg: GuestConfig) {
    const root = cfg.backend.root;
    if (!root) throw new Error(`guest "${cfg.name}": its backend has no node`);
    this.align = cfg.alignBytes ?? 4096;
    this.regionStart = cfg.regionOffsetBytes ?? 0;
    this.regionEnd = this.regionStart + (cfg.regionBytes ?? root.sizeBytes - this.regionStart);
    validate(cfg, this.align, this.regionStart, this.regionEnd, root.sizeBytes);
    this.rng = sim.streams.get(cfg.stream ?? `guest/${cfg.name}`);
    this.nextIssueNs = sim.now;
    this.cursor = this.regionStart;
  }

  /** Stops issuing; requests in flight still complete. */
  stop(): void {
    this.halted = true;
  }

  /** Whether the guest issues no more requests. */
  get stopped(): boolean {
    return this.halted || (this.cfg.maxRequests !== undefined && this.stats.issued >= this.cfg.maxRequests);
  }

  /** @internal */
  *worker(): Process<void> {
    const cfg = this.cfg, sim = this.sim, blk = cfg.backend;
    const paced = cfg.intervalNs !== undefined && cfg.intervalNs !== 0;
    for (;;) {
      if (this.stopped) return;
      if (paced) {
        const t = sim.now;
        const at = Math.max(t, this.nextIssueNs);
        this.nextIssueNs = at + this.draw(cfg.intervalNs!);
        if (at > t) yield sleep(at - t);
        if (this.stopped) return;
      }
      while (!blk.graph.vm.running) {
        yield wait(blk.graph.vm.resumed);
        if (this.stopped) return;
      }
      if (cfg.stopAtNs !== undefined && sim.now >= cfg.stopAtNs) return;
      this.stats.issued++;
      const read = cfg.readFraction !== undefined && cfg.readFraction > 0 && this.rng() < cfg.readFraction;
      const bytes = this.drawSize();
      const offset = this.drawOffset(bytes);
      if (read) this.stats.reads++;
      else this.stats.writes++;
      // the device accounts its request (query-blockstats), as virtio-blk does around blk_aio_*
      const acct = blk.acct.start(read ? "rd" : "wr", bytes, sim.now);
      try {
        if (read) yield* blk.read(offset, bytes);
        else yield* blk.write(offset, bytes);
        blk.acct.end(acct, false, sim.now);
        this.stats.completed++;
      } catch (e) {
        if (!(e instanceof IoError)) throw e;
        blk.acct.end(acct, true, sim.now);
        this.stats.failed++;
        sim.record(cfg.name, "io-error", { op: read ? "read" : "write", offset, bytes, errno: e.errno });
      }
    }
  }

  private draw(x: number | { minNs: number; maxNs: number }): number {
    return typeof x === "number" ? x : x.minNs + Math.floor(this.rng() * (x.maxNs - x.minNs + 1));
  }

  private drawSize(): number {
    const r = this.cfg.requestBytes;
    if (typeof r === "number") return r;
    const lo = r.minBytes / this.align, hi = r.maxBytes / this.align;
    return (lo + Math.floor(this.rng() * (hi - lo + 1))) * this.align;
  }

  private drawOffset(bytes: number): number {
    const p = this.cfg.pattern;
    if (p === "sequential") {
      if (this.cursor + bytes > this.regionEnd) this.cursor = this.regionStart;
      const o = this.cursor;
      this.cursor += bytes;
      return o;
    }
    if (p !== "random" && this.rng() < p.hotFraction) return this.uniform(p.offsetBytes, p.offsetBytes + p.bytes, bytes);
    return this.uniform(this.regionStart, this.regionEnd, bytes);
  }

  /** An aligned offset o with start <= o and o + bytes <= end. */
  private uniform(start: number, end: number, bytes: number): number {
    const first = Math.ceil(start / this.align), last = Math.floor((end - bytes) / this.align);
    return (first + Math.floor(this.rng() * (last - first + 1))) * this.align;
  }
}

/** Starts `iodepth` worker processes issuing the workload; returns the handle to watch or stop it. */
export function startGuest(sim: Scheduler, cfg: GuestConfig): GuestWorkload {
  const g = new GuestWorkload(sim, cfg);
  const depth = cfg.iodepth ?? 1;
  for (let i = 0; i < depth; i++) g.procs.push(sim.spawn(`${cfg.name}/${i}`, g.worker(), { daemon: cfg.daemon ?? true, context: cfg.context }));
  return g;
}

function validate(cfg: GuestConfig, align: number, start: number, end: number, size: number): void {
  const who = `guest "${cfg.name}"`;
  const whole = (v: unknown, min: number) => typeof v === "number" && Number.isSafeInteger(v) && v >= min;
  if (typeof cfg.name !== "string" || cfg.name === "") throw new TypeError(`guest config: name must be a non-empty string, got ${JSON.stringify(cfg.name)}`);
  if (!whole(align, 1)) throw new RangeError(`${who}: alignBytes must be a whole number >= 1, got ${String(align)}`);
  if (!whole(start, 0) || start % align !== 0) throw new RangeError(`${who}: regionOffsetBytes must be a multiple of alignBytes (${align}) >= 0, got ${String(cfg.regionOffsetBytes)}`);
  if (!whole(end - start, 1) || end > size) throw new RangeError(`${who}: the region [${start}, ${end}) must be non-empty and lie within the disk (${size} bytes)`);
  if (cfg.iodepth !== undefined && !whole(cfg.iodepth, 1)) throw new RangeError(`${who}: iodepth must be a whole number >= 1, got ${String(cfg.iodepth)}`);
  if (cfg.readFraction !== undefined && !(cfg.readFraction >= 0 && cfg.readFraction <= 1)) {
    throw new RangeError(`${who}: readFraction must be between 0 and 1, got ${String(cfg.readFraction)}`);
  }
  const r = cfg.requestBytes;
  const [lo, hi] = typeof r === "number" ? [r, r] : r && typeof r === "object" ? [r.minBytes, r.maxBytes] : [NaN, NaN];
  if (!whole(lo, 1) || !whole(hi, lo) || lo % align !== 0 || hi % align !== 0 || hi > end - start) {
    throw new RangeError(`${who}: requestBytes must be a multiple of alignBytes (${align}), or a { minBytes, maxBytes } range of such, no larger than the region; got ${JSON.stringify(r)}`);
  }
  const iv = cfg.intervalNs;
  if (iv !== undefined && !(typeof iv === "number" ? whole(iv, 0) : iv && whole(iv.minNs, 0) && whole(iv.maxNs, iv.minNs))) {
    throw new RangeError(`${who}: intervalNs must be whole ns >= 0 or { minNs, maxNs } with minNs <= maxNs, got ${JSON.stringify(iv)}`);
  }
  const p = cfg.pattern;
  if (p !== "sequential" && p !== "random") {
    if (!p || typeof p !== "object" || p.kind !== "hot") throw new TypeError(`${who}: pattern must be "sequential", "random" or { kind: "hot", … }, got ${JSON.stringify(p)}`);
    if (!whole(p.offsetBytes, 0) || !whole(p.bytes, hi) || p.offsetBytes < start || p.offsetBytes + p.bytes > end) {
      throw new RangeError(`${who}: the hot range ${p.offsetBytes}+${p.bytes} must lie within the region and hold the largest request`);
    }
    if (!(p.hotFraction >= 0 && p.hotFraction <= 1)) throw new RangeError(`${who}: hotFraction must be between 0 and 1, got ${String(p.hotFraction)}`);
  }
  for (const f of ["maxRequests", "stopAtNs"] as const) {
    if (cfg[f] !== undefined && !whole(cfg[f], 0)) throw new RangeError(`${who}: ${f} must be a whole number >= 0, got ${String(cfg[f])}`);
  }
}
