/**
 * Dirty bitmaps: which chunks of a node were written since the bitmap was
 * cleared. Mirror tracks guest writes with one; QMP block-dirty-bitmap-add /
 * -clear / -enable / -disable act on them. A node marks every enabled bitmap
 * after each write, write-zeroes or discard through it has finished, whether
 * it succeeded or not (as QEMU's bdrv_co_write_req_finish does: after a failed
 * write the data may still have changed).
 */

/** One bitmap on one node. */
export class DirtyBitmap {
  /** Number of chunks (the last may be partial). */
  readonly chunks: number;
  private readonly bits: Uint8Array;
  private dirty = 0;
  private on = true;

  constructor(
    readonly name: string,
    readonly granularityBytes: number,
    /** The size of the node it covers. */
    readonly sizeBytes: number,
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

  /** Number of dirty chunks. */
  get count(): number {
    return this.dirty;
  }

  /** Dirty bytes, as QMP's `count` reports (the last chunk counts its real size). */
  get dirtyBytes(): number {
    if (this.dirty === 0) return 0;
    const last = this.chunks - 1;
    const tail = this.sizeBytes - last * this.granularityBytes;
    return this.dirty * this.granularityBytes - (this.bits[last] ? this.granularityBytes - tail : 0);
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
