/**
 * Human units in scenario files: sizes (`64MiB`, `4k`, `512`), durations
 * (`2ms`, `500us`, `1.5s`, plain numbers are ns) and rates (`200MB/s`,
 * `1GiB/s`). Every parser returns an exact integer (bytes, ns, bytes per
 * second) or throws a UnitError saying what was expected, so the schema can
 * put the message next to the file, line and path.
 *
 * Sizes: k/K/KiB = 1024, M/MiB = 1024², G/GiB, T/TiB; KB/MB/GB/TB are powers
 * of 1000 (as `dd` and disk vendors use them). Rates use the same prefixes
 * followed by `/s`. Durations: ns, us (or µs), ms, s, min.
 */

/**
 * Whether a quantity may be a bare number (no unit): yes in JSON files, which
 * are mostly generated (ns, bytes, bytes per second are the documented
 * defaults), no in YAML, which people write — `latency: 200` would be 200 ns.
 * Set by the loader around a file's validation.
 */
let bareNumbers = true;

/** Runs `fn` with bare numbers allowed or refused. */
export function withBareNumbers<T>(allowed: boolean, fn: () => T): T {
  const before = bareNumbers;
  bareNumbers = allowed;
  try {
    return fn();
  } finally {
    bareNumbers = before;
  }
}

/** A value that is not a well-formed quantity of the expected kind. */
export class UnitError extends Error {
  override name = "UnitError";
}

const SIZE_FACTORS: Readonly<Record<string, number>> = {
  "": 1, b: 1, B: 1,
  k: 1024, K: 1024, KiB: 1024, kiB: 1024,
  M: 1024 ** 2, MiB: 1024 ** 2,
  G: 1024 ** 3, GiB: 1024 ** 3,
  T: 1024 ** 4, TiB: 1024 ** 4,
  kB: 1000, KB: 1000, MB: 1000 ** 2, GB: 1000 ** 3, TB: 1000 ** 4,
};

const TIME_FACTORS: Readonly<Record<string, number>> = {
  "": 1, ns: 1, us: 1e3, "µs": 1e3, ms: 1e6, s: 1e9, min: 60e9,
};

const NUMBER = /^\s*(\d+(?:\.\d+)?|\.\d+)(?:e(\d+))?\s*([A-Za-zµ]*)\s*$/;

function parseQuantity(
  input: unknown,
  factors: Readonly<Record<string, number>>,
  what: string,
  unitsHelp: string,
  example: string,
): number {
  if (typeof input === "number") {
    if (!Number.isSafeInteger(input) || input < 0) {
      throw new UnitError(`expected ${what} as a whole number >= 0 or a string like "${example}", got ${input}`);
    }
    if (!bareNumbers && input !== 0) throw needsUnit(what, String(input), example);
    return input;
  }
  if (typeof input !== "string") {
    throw new UnitError(`expected ${what} (a number or a string like "${example}"), got ${describe(input)}`);
  }
  const m = NUMBER.exec(input);
  if (!m) throw new UnitError(`expected ${what} like "${example}", got ${JSON.stringify(input)}`);
  const unit = m[3];
  if (unit === "" && !bareNumbers && Number(m[1]) !== 0) throw needsUnit(what, input.trim(), example);
  if (!Object.hasOwn(factors, unit)) {
    throw new UnitError(`unknown unit "${unit}" in ${JSON.stringify(input)}; ${what} units are ${unitsHelp}`);
  }
  const value = Number(m[1]) * (m[2] === undefined ? 1 : 10 ** Number(m[2])) * factors[unit];
  const rounded = Math.round(value);
  if (!Number.isSafeInteger(rounded)) throw new UnitError(`${JSON.stringify(input)} is too large`);
  if (Math.abs(value - rounded) > 1e-6 * Math.max(1, Math.abs(value))) {
    throw new UnitError(`${JSON.stringify(input)} is not a whole number of ${what === "a duration" ? "nanoseconds" : "bytes"}`);
  }
  return rounded;
}

function needsUnit(what: string, n: string, example: string): UnitError {
  const unit = what === "a duration" ? "ns" : what === "a rate" ? "B/s" : "B";
  return new UnitError(`${what} needs a unit in a YAML file: write ${n}${unit} if you mean ${unit === "ns" ? "nanoseconds" : unit === "B" ? "bytes" : "bytes per second"}, or like "${example}" (a bare number keeps its default unit, ${unit}, only in JSON files)`);
}

/** Bytes from `64MiB`, `4k`, `1GB`, `512` or a whole number. */
export function parseSize(input: unknown): number {
  return parseQuantity(input, SIZE_FACTORS, "a size", "B, k/KiB, M/MiB, G/GiB, T/TiB (powers of 1024) and kB, MB, GB, TB (powers of 1000)", "64MiB");
}

/** Nanoseconds from `2ms`, `500us`, `1.5s`, `100ns` or a whole number (ns). */
export function parseDuration(input: unknown): number {
  return parseQuantity(input, TIME_FACTORS, "a duration", "ns, us (µs), ms, s, min (a plain number is ns)", "2ms");
}

/** Bytes per second from `200MB/s`, `1GiB/s`, `0` (unlimited) or a whole number. */
export function parseRate(input: unknown): number {
  if (typeof input === "string") {
    const m = /^(.*?)\s*\/\s*s\s*$/.exec(input);
    if (!m) {
      if (/^\s*\d+(\.\d+)?\s*$/.test(input)) return parseSize(input);
      throw new UnitError(`expected a rate like "200MB/s" or "1GiB/s" (bytes per second), got ${JSON.stringify(input)}`);
    }
    try {
      return parseSize(m[1]);
    } catch (e) {
      throw new UnitError(`in rate ${JSON.stringify(input)}: ${(e as Error).message}`);
    }
  }
  return parseQuantity(input, SIZE_FACTORS, "a rate", "B/s, k/s … (as sizes, followed by /s)", "200MB/s");
}

/** Formats ns for people: `0`, `1.5ms`, `2s`, `750ns` (the kernel's one duration format). */
export { formatDuration } from "../scheduler/time.js";

/** Formats bytes for people: `64MiB`, `4KiB`, `100B`. */
export function formatSize(bytes: number): string {
  const units: [number, string][] = [[1024 ** 4, "TiB"], [1024 ** 3, "GiB"], [1024 ** 2, "MiB"], [1024, "KiB"]];
  for (const [f, u] of units) if (bytes >= f && bytes % (f / 1024) === 0) return `${trim(bytes / f)}${u}`;
  return `${bytes}B`;
}

function trim(x: number): string {
  return Number(x.toFixed(3)).toString();
}

function describe(v: unknown): string {
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "boolean") return `${v}`;
  return typeof v;
}
