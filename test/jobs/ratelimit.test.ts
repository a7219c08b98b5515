import { describe, expect, it } from "vitest";
import { RateLimit, SLICE_NS } from "../../sim/jobs/ratelimit.js";

const MiB = 1 << 20;

describe("RateLimit (QEMU ratelimit_calculate_delay)", () => {
  it("lets the chunk that crosses the quota through and stretches the slice by the overshoot", () => {
    const l = new RateLimit(32 * MiB); // 3.2 MiB a 100 ms slice
    for (let i = 0; i < 3; i++) expect(l.delayNs(0, MiB)).toBe(0);
    expect(l.delayNs(0, MiB)).toBe(125_000_000); // 4 MiB of 3.2: 1.25 slices
    expect(l.delayNs(50_000_000, 0)).toBe(75_000_000);
  });

  it("starts a new slice for a job that wakes at the stretched slice's end (QEMU's clock is past it by then)", () => {
    const l = new RateLimit(32 * MiB);
    for (let i = 0; i < 4; i++) l.delayNs(0, MiB);
    // goldens/backup_limit_new_slice_after_sleep: at 125 ms four more chunks go before the next sleep
    for (let i = 0; i < 3; i++) expect(l.delayNs(125_000_000, MiB)).toBe(0);
    expect(l.delayNs(125_000_000, MiB)).toBe(125_000_000);
  });

  it("speed 0 never delays", () => {
    const l = new RateLimit(0);
    expect(l.delayNs(0, 1 << 30)).toBe(0);
    expect(SLICE_NS).toBe(100_000_000);
  });
});
