/**
 * Virtual time as people read it. It lives in the lowest layer that prints a
 * moment (a violation's), so every layer above prints moments the same way.
 */

/**
 * A moment of a run as reports print it, in one format everywhere (event
 * log, trace, verdict, violations, a QEMU crash, a replay's departure,
 * progress line, timeline): milliseconds with six decimals, exact to the
 * nanosecond — `5.000000 ms`, `-40.143040 ms`. Reports count from the end of
 * setup, so a step `at: 5ms` prints as 5 ms.
 */
export function formatTime(ns: number): string {
  const sign = ns < 0 ? "-" : "";
  const a = Math.round(Math.abs(ns));
  return `${sign}${Math.floor(a / 1e6)}.${String(a % 1e6).padStart(6, "0")} ms`;
}
