/**
 * Latency histograms per API call kind, in virtual time. Samples are kept
 * (runs are small), so min, max and percentiles are exact; buckets are fixed
 * so two runs print comparable tables.
 */
import type { CallRecord } from "./domain.js";

/** Upper bounds of the buckets, ns: 100 µs, 1 ms, 10 ms, 50 ms, 100 ms, 500 ms, 1 s, 5 s, 10 s, 30 s, then +inf. */
export const BUCKET_BOUNDS_NS: readonly number[] = [1e5, 1e6, 1e7, 5e7, 1e8, 5e8, 1e9, 5e9, 1e10, 3e10];

export class LatencyHistogram {
  private readonly samples: number[] = [];
  private sorted = true;
  readonly buckets: number[] = new Array<number>(BUCKET_BOUNDS_NS.length + 1).fill(0);

  add(ns: number): void {
    this.samples.push(ns);
    this.sorted = false;
    let i = 0;
    while (i < BUCKET_BOUNDS_NS.length && ns > BUCKET_BOUNDS_NS[i]!) i++;
    this.buckets[i]!++;
  }

  get count(): number {
    return this.samples.length;
  }

  get maxNs(): number {
    return this.samples.length ? this.sortedSamples()[this.samples.length - 1]! : 0;
  }

  get minNs(): number {
    return this.samples.length ? this.sortedSamples()[0]! : 0;
  }

  get meanNs(): number {
    return this.samples.length ? this.samples.reduce((a, b) => a + b, 0) / this.samples.length : 0;
  }

  /** The p-th percentile (0..100), nearest-rank. */
  percentileNs(p: number): number {
    if (!this.samples.length) return 0;
    const s = this.sortedSamples();
    const rank = Math.max(1, Math.ceil((p / 100) * s.length));
    return s[Math.min(rank, s.length) - 1]!;
  }

  private sortedSamples(): number[] {
    if (!this.sorted) {
      this.samples.sort((a, b) => a - b);
      this.sorted = true;
    }
    return this.samples;
  }
}

/** One histogram per API name, over the calls' latencies (call to return), in first-seen order. */
export function latencyByApi(calls: readonly CallRecord[], pick: (c: CallRecord) => number = (c) => c.latencyNs): Map<string, LatencyHistogram> {
  const m = new Map<string, LatencyHistogram>();
  for (const c of calls) {
    let h = m.get(c.call.api);
    if (!h) m.set(c.call.api, (h = new LatencyHistogram()));
    h.add(pick(c));
  }
  return m;
}

/** A duration in the unit that reads best ("49.9 ms", "3.20 s"). */
export function formatNs(ns: number): string {
  if (ns >= 1e9) return `${(ns / 1e9).toFixed(2)} s`;
  if (ns >= 1e6) return `${(ns / 1e6).toFixed(1)} ms`;
  if (ns >= 1e3) return `${(ns / 1e3).toFixed(1)} µs`;
  return `${ns} ns`;
}

const BUCKET_LABELS = [...BUCKET_BOUNDS_NS.map((b) => `≤${formatNs(b)}`), `>${formatNs(BUCKET_BOUNDS_NS[BUCKET_BOUNDS_NS.length - 1]!)}`];

/** A plain-text table: one row per API with count, p50, p99, max and the bucket counts. */
export function formatHistograms(hs: Map<string, LatencyHistogram>): string {
  const rows = [["api", "n", "p50", "p99", "max", ...BUCKET_LABELS]];
  for (const [api, h] of hs) {
    rows.push([api, String(h.count), formatNs(h.percentileNs(50)), formatNs(h.percentileNs(99)), formatNs(h.maxNs), ...h.buckets.map((n) => (n ? String(n) : "."))]);
  }
  const widths = rows[0]!.map((_, i) => Math.max(...rows.map((r) => r[i]!.length)));
  return rows.map((r) => r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  ")).join("\n");
}
