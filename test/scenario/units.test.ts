import { describe, expect, it } from "vitest";
import { formatDuration, formatSize, parseDuration, parseRate, parseSize, UnitError } from "../../sim/scenario/units.js";

describe("parseSize", () => {
  it.each([
    ["64MiB", 64 * 1024 ** 2], ["4k", 4096], ["4K", 4096], ["4KiB", 4096], ["1GiB", 1024 ** 3],
    ["1GB", 1e9], ["512", 512], [512, 512], ["1.5MiB", 1.5 * 1024 ** 2], ["2 MiB", 2 * 1024 ** 2], ["0", 0],
  ])("%j is %d bytes", (input, bytes) => {
    expect(parseSize(input)).toBe(bytes);
  });

  it.each([
    ["64XB", /unknown unit "XB"/],
    ["lots", /expected a size like "64MiB"/],
    [-1, /whole number >= 0/],
    [1.5, /whole number >= 0/],
    ["0.3", /not a whole number of bytes/],
    [true, /got true/],
    [null, /got null/],
    [[1], /got a list/],
  ])("%j is refused with a clear message", (input, msg) => {
    expect(() => parseSize(input)).toThrow(UnitError);
    expect(() => parseSize(input)).toThrow(msg);
  });
});

describe("parseDuration", () => {
  it.each([
    ["2ms", 2e6], ["500us", 5e5], ["500µs", 5e5], ["1.5s", 1.5e9], ["100ns", 100], [100, 100], ["1min", 60e9], ["0", 0],
  ])("%j is %d ns", (input, ns) => {
    expect(parseDuration(input)).toBe(ns);
  });

  it("names the units it knows", () => {
    expect(() => parseDuration("2h")).toThrow(/unknown unit "h".*ns, us \(µs\), ms, s, min/);
  });
});

describe("parseRate", () => {
  it.each([
    ["200MB/s", 200e6], ["1GiB/s", 1024 ** 3], ["0", 0], [0, 0], ["64 KiB / s", 65536], [1000, 1000],
  ])("%j is %d bytes/s", (input, r) => {
    expect(parseRate(input)).toBe(r);
  });

  it.each([["200MB", /like "200MB\/s"/], ["fast/s", /in rate "fast\/s"/], ["200MX/s", /unknown unit "MX"/]])("%j is refused", (input, msg) => {
    expect(() => parseRate(input)).toThrow(msg);
  });
});

describe("formatting", () => {
  it("prints durations and sizes with units", () => {
    expect([0, 750, 1500, 2e6, 3e9].map(formatDuration)).toEqual(["0", "750ns", "1.5us", "2ms", "3s"]);
    expect([100, 4096, 64 * 1024 ** 2, 1024 ** 3].map(formatSize)).toEqual(["100B", "4KiB", "64MiB", "1GiB"]);
  });
});
