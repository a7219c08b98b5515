/**
 * Dirty bitmaps: which chunks of a node were written since the bitmap was
 * cleared. Mirror tracks guest writes with one; QMP block-dirty-bitmap-add /
 * -clear / -enable / -disable / -merge / -remove act on them, and a backup
 * with sync=bitmap (incremental) copies what one marks. A node marks every
 * enabled bitmap after each write, write-zeroes or discard through it has
 * finished, whether it succeeded or not (as QEMU's bdrv_co_write_req_finish
 * does: after a failed write the data may still have changed).
 *
 * A backup freezes the bitmap it uses (QEMU 7.2 block/dirty-bitmap.c): it
 * gets an anonymous successor that records the writes from then on, and is
 * itself disabled and busy. When the job ends, either the successor takes
 * the bitmap's name and place (abdicate: what was backed up is forgotten) or
 * is merged back into it (reclaim: nothing is forgotten).
 */

/** How a node holds its bitmaps (BlockNode implements it). */
export interface BitmapHolder {
  readonly name: string;
  attachBitmap(b: DirtyBitmap): void;
  releaseBitmap(b: DirtyBitmap): void;
}

/** One bitmap on one node. */
export class DirtyBitmap {
  /** Number of chunks (the last may be partial). */
  chunks: number;
  private bits: Uint8Array;
  private dirty = 0;
  private on = true;
  /** Stored in the image when it closes (qcow2 only); QMP `persistent`. */
  persistent = false;
  /** In use by an operation (a backup, a transaction removing it): QMP `busy`; most commands refuse it. */
  busy = false;
  /** While frozen by a backup: the anonymous bitmap recording writes meanwhile. */
  successor: DirtyBitmap | null = null;

  constructor(
    /** "" for an anonymous bitmap (a successor); internal ones of jobs start with '#'. */
    public name: string,
    readonly granularityBytes: number,
    /** The size of the node it covers (changed only by truncate()). */
    public sizeBytes: number,
  ) {
    this.chunks = Math.ceil(sizeBytes / granularityBytes);
    this.bits = new Uint8Array(this.chunks);
  }

  /** Whether writes through the node mark it. */
  get enabled(): boolean {
    return this.on;
  }

  enable(): void {
    this.on = true;
  }

  disable(): void {
    this.on = false;
  }

  /** Whether writes are being recorded, here or in the successor (QMP `recording`). */
  get recording(): boolean {
    return this.on || (this.successor !== null && this.successor.on);
  }

  /** Anonymous (a successor) or a job's own: QMP shows no name for it. */
  get anonymous(): boolean {
    return this.name === "" || this.name.startsWith("#");
  }

  /** Number of dirty chunks. */
  get count(): number {
    return this.dirty;
  }

  /**
   * Dirty bytes, as QMP's `count` reports: whole chunks, a partial last one
   * too (QEMU hbitmap_count: bits << granularity; goldens/odd_size_job_len).
   */
  get dirtyBytes(): number {
    return this.dirty * this.granularityBytes;
  }

  /** Marks every chunk overlapping [offset, offset+bytes), enabled or not. */
  set(offset: number, bytes: number): void {
    const [a, b] = this.span(offset, bytes);
    for (let c = a; c <= b; c++) {
      if (this.bits[c] === 0) {
        this.bits[c] = 1;
        this.dirty++;
      }
    }
  }

  /** Cleans every chunk overlapping [offset, offset+bytes). */
  reset(offset: number, bytes: number): void {
    const [a, b] = this.span(offset, bytes);
    for (let c = a; c <= b; c++) {
      if (this.bits[c] === 1) {
        this.bits[c] = 0;
        this.dirty--;
      }
    }
  }

  /**
   * The node was resized (QEMU bdrv_dirty_bitmap_truncate): chunks past the
   * new end are dropped, new ones are clean (goldens/block_resize_new_size).
   */
  truncate(sizeBytes: number): void {
    const chunks = Math.ceil(sizeBytes / this.granularityBytes);
    const bits = new Uint8Array(chunks);
    bits.set(this.bits.subarray(0, Math.min(chunks, this.chunks)));
    this.bits = bits;
    this.chunks = chunks;
    this.sizeBytes = sizeBytes;
    this.dirty = bits.reduce((n, b) => n + b, 0);
  }

  /** Cleans everything. */
  clear(): void {
    this.bits.fill(0);
    this.dirty = 0;
  }

  /** Marks everything (mirror's sync=full start). */
  setAll(): void {
    this.bits.fill(1);
    this.dirty = this.chunks;
  }

  /** Whether any chunk overlapping [offset, offset+bytes) is dirty. */
  anyDirty(offset: number, bytes: number): boolean {
    const [a, b] = this.span(offset, bytes);
    for (let c = a; c <= b; c++) if (this.bits[c] === 1) return true;
    return false;
  }

  /**
   * Marks every byte range `src` marks (granularities may differ: a chunk here
   * is dirty if it overlaps a dirty chunk there). Throws QEMU's message when
   * the sizes differ.
   */
  mergeFrom(src: DirtyBitmap): void {
    if (src.sizeBytes !== this.sizeBytes) throw new Error(`Bitmaps are of different sizes (destination size is ${this.sizeBytes}, source size is ${src.sizeBytes}) and can't be merged`);
    for (let c = src.nextDirty(0); c >= 0; c = src.nextDirty(c + 1)) {
      const r = src.chunkRange(c);
      this.set(r.offset, r.bytes);
    }
  }

  /** A copy of the bits, for restore() (a transaction's undo). */
  snapshot(): Uint8Array {
    return this.bits.slice();
  }

  restore(bits: Uint8Array): void {
    if (bits.length !== this.chunks) throw new RangeError(`bitmap "${this.name}": snapshot of ${bits.length} chunks, expected ${this.chunks}`);
    this.bits.set(bits);
    this.dirty = bits.reduce((n, b) => n + b, 0);
  }

  /** Whether chunk `chunk` is dirty. */
  isDirty(chunk: number): boolean {
    return this.bits[this.checkChunk(chunk)] === 1;
  }

  /** The first dirty chunk at or after `fromChunk`, or -1. */
  nextDirty(fromChunk = 0): number {
    for (let c = Math.max(0, fromChunk); c < this.chunks; c++) if (this.bits[c] === 1) return c;
    return -1;
  }

  /** Every dirty chunk, ascending. */
  dirtyChunks(): number[] {
    const out: number[] = [];
    for (let c = 0; c < this.chunks; c++) if (this.bits[c] === 1) out.push(c);
    return out;
  }

  /** The byte range chunk `chunk` covers. */
  chunkRange(chunk: number): { offset: number; bytes: number } {
    this.checkChunk(chunk);
    const offset = chunk * this.granularityBytes;
    return { offset, bytes: Math.min(this.granularityBytes, this.sizeBytes - offset) };
  }

  private span(offset: number, bytes: number): [number, number] {
    if (!Number.isSafeInteger(offset) || !Number.isSafeInteger(bytes) || offset < 0 || bytes < 1 || offset + bytes > this.sizeBytes) {
      throw new RangeError(`bitmap "${this.name}": range ${offset}+${bytes} must lie within [0, ${this.sizeBytes})`);
    }
    return [Math.floor(offset / this.granularityBytes), Math.floor((offset + bytes - 1) / this.granularityBytes)];
  }

  private checkChunk(chunk: number): number {
    if (!Number.isSafeInteger(chunk) || chunk < 0 || chunk >= this.chunks) {
      throw new RangeError(`bitmap "${this.name}": chunk must be a whole number in [0, ${this.chunks}), got ${String(chunk)}`);
    }
    return chunk;
  }
}

/** QEMU's bdrv_dirty_bitmap_check for a busy bitmap: the error message, or undefined. */
export function busyError(b: DirtyBitmap): string | undefined {
  return b.busy ? `Bitmap '${b.name}' is currently in use by another operation and cannot be used` : undefined;
}

/**
 * Freezes `b` for a backup (bdrv_dirty_bitmap_create_successor): an
 * anonymous successor on the same node records from now on, recording as
 * `b` did; `b` stops recording and is busy. Throws QEMU's message if `b` is
 * busy already.
 */
export function createSuccessor(node: BitmapHolder, b: DirtyBitmap): DirtyBitmap {
  const busy = busyError(b);
  if (busy) throw new Error(busy);
  const child = new DirtyBitmap("", b.granularityBytes, b.sizeBytes);
  if (!b.enabled) child.disable();
  b.disable();
  b.successor = child;
  b.busy = true;
  node.attachBitmap(child);
  return child;
}

/**
 * The successor replaces `b` (bdrv_dirty_bitmap_abdicate): it takes the name
 * and persistence, `b` and what it marked are gone. Returns the successor.
 */
export function abdicate(node: BitmapHolder, b: DirtyBitmap): DirtyBitmap {
  const s = b.successor;
  if (!s) throw new Error(`bitmap "${b.name}" on "${node.name}" has no successor to abdicate to`);
  s.name = b.name;
  s.persistent = b.persistent;
  b.successor = null;
  b.busy = false;
  node.releaseBitmap(b);
  return s;
}

/**
 * The successor is merged back into `b` (bdrv_reclaim_dirty_bitmap): `b`
 * keeps its bits plus every write since it was frozen, and records again
 * if the successor did. Returns `b`.
 */
export function reclaim(node: BitmapHolder, b: DirtyBitmap): DirtyBitmap {
  const s = b.successor;
  if (!s) throw new Error(`bitmap "${b.name}" on "${node.name}" has no successor to reclaim`);
  b.mergeFrom(s);
  if (s.enabled) b.enable();
  else b.disable();
  b.busy = false;
  b.successor = null;
  node.releaseBitmap(s);
  return b;
}
