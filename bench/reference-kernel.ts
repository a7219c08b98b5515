/**
 * The reference every benchmark prints its figures beside: a minimal
 * discrete-event kernel (a plain object binary heap ordered by time then
 * sequence, bare generators yielding `{ ns }` sleeps; no strategy, no choice
 * log, no hash, no trace), and the helpers to time runs. Machines here are
 * shared and noisy, so benches report ratios against this, run in the same
 * process, rather than absolute speeds.
 */
import seedrandom from "seedrandom";

export type Sleeper = Generator<{ ns: number }, void, unknown>;

interface RefEntry { t: number; seq: number; gen: Sleeper }

/** A plain binary min-heap of objects ordered by (t, seq). */
class RefHeap {
  private readonly a: RefEntry[] = [];
  get size(): number { return this.a.length; }
  push(e: RefEntry): void {
    const a = this.a;
    let i = a.length;
    a.push(e);
    while (i > 0) {
      const p = (i - 1) >> 1;
      const q = a[p];
      if (q.t < e.t || (q.t === e.t && q.seq < e.seq)) break;
      a[i] = q;
      i = p;
    }
    a[i] = e;
  }
  pop(): RefEntry {
    const a = this.a;
    const top = a[0];
    const last = a.pop()!;
    const n = a.length;
    if (n > 0) {
      let i = 0;
      for (;;) {
        let c = 2 * i + 1;
        if (c >= n) break;
        const r = c + 1;
        if (r < n && (a[r].t < a[c].t || (a[r].t === a[c].t && a[r].seq < a[c].seq))) c = r;
        if (last.t < a[c].t || (last.t === a[c].t && last.seq < a[c].seq)) break;
        a[i] = a[c];
        i = c;
      }
      a[i] = last;
    }
    return top;
  }
}

/** Steps the processes to the end; returns how many events ran and the end time. */
export function runReference(gens: Sleeper[]): { events: number; endTimeNs: number } {
  const heap = new RefHeap();
  let seq = 0, now = 0, events = 0;
  for (const gen of gens) heap.push({ t: 0, seq: seq++, gen });
  while (heap.size > 0) {
    const e = heap.pop();
    now = e.t;
    events++;
    const r = e.gen.next();
    if (r.done) continue;
    e.t = now + r.value.ns;
    e.seq = seq++;
    heap.push(e);
  }
  return { events, endTimeNs: now };
}

const DELAYS = (() => {
  const rng = seedrandom.alea("bench/reference");
  const d = new Int32Array(1 << 16);
  for (let i = 0; i < d.length; i++) d[i] = 1 + Math.floor(rng() * 1_000_000);
  return d;
})();

function* sleeper(i: number, n: number): Sleeper {
  let at = (i * 7919) & (DELAYS.length - 1);
  for (let j = 0; j < n; j++) {
    yield { ns: DELAYS[at] };
    at = (at + 1) & (DELAYS.length - 1);
  }
}

/** The standard reference workload — 1,000 processes looping `sleep(random ns)`, ~2 M events — in events/s. */
export function referenceEventsPerSec(): number {
  const t = timed(() => runReference(Array.from({ length: 1000 }, (_, i) => sleeper(i, 2000))));
  return t.value.events / t.seconds;
}

export function timed<T>(fn: () => T): { value: T; seconds: number } {
  (globalThis as { gc?: () => void }).gc?.();
  const t0 = process.hrtime.bigint();
  const value = fn();
  return { value, seconds: Number(process.hrtime.bigint() - t0) / 1e9 };
}

export function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[s.length >> 1];
}
