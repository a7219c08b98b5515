/**
 * One time format for a moment of a run (sim/scheduler/time.ts): the reports,
 * a violation's line and a QEMU crash all print it the same way.
 */
import { describe, expect, it } from "vitest";
import { formatViolation } from "../../sim/check/index.js";
import { formatTime } from "../../sim/scheduler/index.js";
import { describeOutcome } from "../../sim/harness/run.js";

describe("formatTime", () => {
  it("prints milliseconds with six decimals, exact to the nanosecond, negative before setup ended", () => {
    expect(formatTime(5_000_000)).toBe("5.000000 ms");
    expect(formatTime(-40_143_040)).toBe("-40.143040 ms");
    expect(formatTime(1)).toBe("0.000001 ms");
  });

  it("is the format of a violation's line and of a QEMU crash", () => {
    expect(formatViolation({ invariant: "no-io-while-paused", timeNs: 1_234_567, job: "j0", detail: "copy while paused" })).toBe("[1.234567 ms] no-io-while-paused (job j0): copy while paused");
    expect(describeOutcome({ kind: "qemu-crash", timeNs: 1_000_000, signal: "SIGABRT", reason: "assertion failed" })).toBe("QEMU crashed at 1.000000 ms (SIGABRT): assertion failed");
    // Counted from the end of setup when given it, as the event log counts.
    expect(describeOutcome({ kind: "qemu-crash", timeNs: 1_000_000, signal: "SIGABRT", reason: "assertion failed" }, 250_000)).toBe("QEMU crashed at 0.750000 ms (SIGABRT): assertion failed");
  });
});
