import { describe, expect, it } from "vitest";
import { formatHistograms, formatNs, LatencyHistogram, latencyByApi, type CallRecord } from "../../sim/mgmt/index.js";

const call = (api: string, latencyNs: number): CallRecord => ({
  call: { id: 0, client: "c", api, startNs: 0 }, endNs: latencyNs, latencyNs, ok: true, jobWaitNs: 0,
});

describe("LatencyHistogram", () => {
  it("keeps exact min, max, mean and nearest-rank percentiles", () => {
    const h = new LatencyHistogram();
    for (const v of [5, 1, 4, 2, 3]) h.add(v * 1_000_000);
    expect(h.count).toBe(5);
    expect(h.minNs).toBe(1_000_000);
    expect(h.maxNs).toBe(5_000_000);
    expect(h.meanNs).toBe(3_000_000);
    expect(h.percentileNs(50)).toBe(3_000_000);
    expect(h.percentileNs(99)).toBe(5_000_000);
    expect(h.percentileNs(0)).toBe(1_000_000);
  });

  it("puts a sample on a bound into that bound's bucket, and anything past 30 s into the last", () => {
    const h = new LatencyHistogram();
    h.add(1_000_000); // ≤ 1 ms
    h.add(1_000_001); // ≤ 10 ms
    h.add(31e9);
    expect(h.buckets[1]).toBe(1);
    expect(h.buckets[2]).toBe(1);
    expect(h.buckets.at(-1)).toBe(1);
  });

  it("is empty-safe", () => {
    const h = new LatencyHistogram();
    expect([h.count, h.minNs, h.maxNs, h.meanNs, h.percentileNs(99)]).toEqual([0, 0, 0, 0, 0]);
  });
});

describe("latencyByApi and formatHistograms", () => {
  it("one histogram per API in first-seen order, printed as a table", () => {
    const hs = latencyByApi([call("virDomainGetBlockJobInfo", 1e6), call("virDomainBlockJobAbort", 2.96e9), call("virDomainGetBlockJobInfo", 2.943e9)]);
    expect([...hs.keys()]).toEqual(["virDomainGetBlockJobInfo", "virDomainBlockJobAbort"]);
    expect(hs.get("virDomainGetBlockJobInfo")!.maxNs).toBe(2.943e9);
    const text = formatHistograms(hs);
    expect(text.split("\n")[1]).toMatch(/^virDomainGetBlockJobInfo\s+2\s+1\.0 ms\s+2\.94 s\s+2\.94 s/);
    expect(text.split("\n")).toHaveLength(3);
  });

  it("formats durations in the unit that reads best", () => {
    expect([formatNs(999), formatNs(1500), formatNs(49_900_000), formatNs(3_200_000_000)]).toEqual(["999 ns", "1.5 µs", "49.9 ms", "3.20 s"]);
  });
});
