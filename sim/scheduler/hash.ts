/**
 * A 64-bit running hash over the ordered sequence of observable records.
 *
 * Two independent 32-bit lanes (murmur3-style mixing with different seeds)
 * instead of BigInt FNV-64: BigInt arithmetic costs more than a kernel event.
 * The value depends only on the words fed in, so it is identical on every machine.
 */
export class TraceHash {
  private a = 0x9747b28c | 0;
  private b = 0x5bd1e995 | 0;

  /** Feeds one 32-bit word. */
  word(w: number): void {
    let k = Math.imul(w | 0, 0xcc9e2d51);
    k = (k << 15) | (k >>> 17);
    k = Math.imul(k, 0x1b873593);
    let a = this.a ^ k;
    a = (a << 13) | (a >>> 19);
    this.a = (Math.imul(a, 5) + 0xe6546b64) | 0;
    let b = this.b ^ Math.imul(w | 0, 0x85ebca6b);
    b = (b << 17) | (b >>> 15);
    this.b = (Math.imul(b, 0x27d4eb2d) + 0x165667b1) | 0;
  }

  /** Feeds a non-negative integer up to 2^53 (virtual time, ids, sizes). */
  int(n: number): void {
    this.word(n >>> 0);
    this.word((n / 4294967296) >>> 0);
  }

  /**
   * Feeds a string, length-prefixed so concatenations cannot collide. The
   * same as word() per character, with the lanes kept in locals (every
   * record's source and kind pass through here: it was the costliest
   * function of a fuzz run).
   */
  str(s: string): void {
    this.word(s.length);
    let a = this.a, b = this.b;
    for (let i = 0; i < s.length; i++) {
      const w = s.charCodeAt(i);
      let k = Math.imul(w, 0xcc9e2d51);
      k = (k << 15) | (k >>> 17);
      k = Math.imul(k, 0x1b873593);
      a ^= k;
      a = (a << 13) | (a >>> 19);
      a = (Math.imul(a, 5) + 0xe6546b64) | 0;
      b ^= Math.imul(w, 0x85ebca6b);
      b = (b << 17) | (b >>> 15);
      b = (Math.imul(b, 0x27d4eb2d) + 0x165667b1) | 0;
    }
    this.a = a;
    this.b = b;
  }

  /** Feeds any JSON-like value in a canonical form (object keys in insertion order). */
  value(v: unknown): void {
    switch (typeof v) {
      case "number":
        if (Number.isInteger(v) && v >= 0) { this.word(1); this.int(v); }
        else { this.word(2); this.str(String(v)); }
        return;
      case "string": this.word(3); this.str(v); return;
      case "boolean": this.word(v ? 4 : 5); return;
      case "undefined": this.word(6); return;
      case "object":
        if (v === null) { this.word(7); return; }
        if (Array.isArray(v)) {
          this.word(8); this.word(v.length);
          for (const x of v) this.value(x);
          return;
        }
        this.word(9);
        for (const k in v as Record<string, unknown>) {
          this.str(k);
          this.value((v as Record<string, unknown>)[k]);
        }
        this.word(10);
        return;
      default:
        this.word(11); this.str(String(v));
    }
  }

  /** The hash as 16 lowercase hex digits. */
  hex(): string {
    const fin = (h: number) => {
      h ^= h >>> 16; h = Math.imul(h, 0x85ebca6b);
      h ^= h >>> 13; h = Math.imul(h, 0xc2b2ae35);
      h ^= h >>> 16;
      return (h >>> 0).toString(16).padStart(8, "0");
    };
    return fin(this.a ^ this.b) + fin(this.b + Math.imul(this.a, 31));
  }
}
