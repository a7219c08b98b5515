/**
 * Virtual time as people read it. It lives in the kernel, the lowest layer
 * (a deadlock names a device request in service, a violation its moment), so
 * every layer above prints moments and durations the same way.
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

/** A duration as scenario files write one: `0`, `1.5ms`, `2s`, `750ns` (three decimals at most). */
export function formatDuration(ns: number): string {
  if (ns === 0) return "0";
  const units: [number, string][] = [[1e9, "s"], [1e6, "ms"], [1e3, "us"]];
  for (const [f, u] of units) if (ns >= f) return `${trim(ns / f)}${u}`;
  return `${ns}ns`;
}

function trim(x: number): string {
  return Number(x.toFixed(3)).toString();
}
