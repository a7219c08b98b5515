/**
 * An indexed binary min-heap of integer slots, ordered by (time, seq).
 *
 * Keys live in parallel typed arrays (DESIGN.md: ~1.8x faster than an object
 * heap at 1,000 entries, ~3x at 100,000) and every slot knows its position, so
 * a pending timer can be removed when its process is interrupted.
 */
export class SlotHeap {
  private time: Float64Array;
  private seq: Float64Array;
  private slot: Int32Array;
  /** pos[slot] = index in the heap, or -1 when the slot is not queued. */
  private pos: Int32Array;
  size = 0;

  /**
   * Small by default: V8 keeps a typed array of up to 64 bytes inside its
   * own heap, while a larger one gets a separately allocated buffer (~5 µs
   * for the four arrays, against ~0.3 µs: a fuzz run makes one heap and
   * rarely holds more than a few entries). They grow by doubling.
   */
  constructor(capacity = 8) {
    this.time = new Float64Array(capacity);
    this.seq = new Float64Array(capacity);
    this.slot = new Int32Array(capacity);
    this.pos = new Int32Array(capacity).fill(-1);
  }

  has(slot: number): boolean {
    return slot < this.pos.length && this.pos[slot] >= 0;
  }

  peekTime(): number {
    return this.time[0];
  }

  peekSlot(): number {
    return this.slot[0];
  }

  push(slot: number, time: number, seq: number): void {
    if (this.size === this.time.length) this.growEntries();
    if (slot >= this.pos.length) this.growSlots(slot + 1);
    let i = this.size++;
    // sift up
    while (i > 0) {
      const p = (i - 1) >> 1;
      const pt = this.time[p];
      if (pt < time || (pt === time && this.seq[p] < seq)) break;
      this.move(p, i);
      i = p;
    }
    this.put(i, slot, time, seq);
  }

  /** Removes and returns the slot with the smallest (time, seq). */
  pop(): number {
    const top = this.slot[0];
    this.pos[top] = -1;
    const last = --this.size;
    if (last > 0) this.siftDown(0, this.slot[last], this.time[last], this.seq[last]);
    return top;
  }

  /** Removes a queued slot wherever it is. */
  remove(slot: number): void {
    const i = this.pos[slot];
    this.pos[slot] = -1;
    const last = --this.size;
    if (i === last) return;
    const s = this.slot[last], t = this.time[last], q = this.seq[last];
    // The moved entry may need to go either way.
    if (i > 0) {
      const p = (i - 1) >> 1;
      if (this.time[p] > t || (this.time[p] === t && this.seq[p] > q)) {
        let j = i;
        while (j > 0) {
          const pp = (j - 1) >> 1;
          const pt = this.time[pp];
          if (pt < t || (pt === t && this.seq[pp] < q)) break;
          this.move(pp, j);
          j = pp;
        }
        this.put(j, s, t, q);
        return;
      }
    }
    this.siftDown(i, s, t, q);
  }

  private siftDown(i: number, s: number, t: number, q: number): void {
    const n = this.size;
    const time = this.time, seq = this.seq;
    for (;;) {
      let c = 2 * i + 1;
      if (c >= n) break;
      const r = c + 1;
      if (r < n && (time[r] < time[c] || (time[r] === time[c] && seq[r] < seq[c]))) c = r;
      if (t < time[c] || (t === time[c] && q < seq[c])) break;
      this.move(c, i);
      i = c;
    }
    this.put(i, s, t, q);
  }

  private move(from: number, to: number): void {
    this.time[to] = this.time[from];
    this.seq[to] = this.seq[from];
    const s = this.slot[from];
    this.slot[to] = s;
    this.pos[s] = to;
  }

  private put(i: number, s: number, t: number, q: number): void {
    this.time[i] = t;
    this.seq[i] = q;
    this.slot[i] = s;
    this.pos[s] = i;
  }

  private growEntries(): void {
    const cap = this.time.length * 2;
    const time = new Float64Array(cap), seq = new Float64Array(cap), slot = new Int32Array(cap);
    time.set(this.time);
    seq.set(this.seq);
    slot.set(this.slot);
    this.time = time;
    this.seq = seq;
    this.slot = slot;
  }

  private growSlots(min: number): void {
    let cap = this.pos.length * 2;
    while (cap < min) cap *= 2;
    const pos = new Int32Array(cap).fill(-1);
    pos.set(this.pos);
    this.pos = pos;
  }
}
