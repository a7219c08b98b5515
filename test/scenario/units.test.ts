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

describe("units are required in YAML scenario files (issue 18)", () => {
  const load = async (text: string, file: string) => {
    const { loadScenarioText } = await import("../../sim/scenario/loader.js");
    const { InputError } = await import("../../sim/scenario/errors.js");
    try {
      return loadScenarioText(text, file);
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      return e.problems.map((p) => `${p.path}: ${p.message}`);
    }
  };

  it("a bare number for a duration or size is an error in YAML, naming the default it would have meant", async () => {
    expect(await load("name: u\ndevices: [{ name: d, size: 1MiB, latency: 200 }]\n", "u.yaml")).toEqual([
      expect.stringMatching(/^devices\[0\]\.latency: a duration needs a unit in a YAML file: write 200ns if you mean nanoseconds, or like "2ms"/),
    ]);
    expect(await load("name: u\ndevices: [{ name: d, size: 1048576 }]\n", "u.yaml")).toEqual([expect.stringMatching(/^devices\[0\]\.size: a size needs a unit in a YAML file: write 1048576B/)]);
    expect(await load('name: u\nsteps: [{ at: "5", execute: query-jobs }]\n', "u.yaml")).toEqual([expect.stringMatching(/^steps\[0\]\.at: a duration needs a unit/)]);
  });

  it("zero needs no unit; JSON files keep the documented defaults (ns, bytes, bytes/s)", async () => {
    expect(await load("name: u\ndevices: [{ name: d, size: 1MiB, latency: 0, bandwidth: 0, data: [{ offset: 0, length: 4k }] }]\n", "u.yaml")).toMatchObject({ scenario: { name: "u" } });
    const j = await load('{"name": "u", "devices": [{"name": "d", "size": 1048576, "latency": 200}]}', "u.json");
    expect(j).toMatchObject({ scenario: { devices: [{ size: 1048576, latency: 200 }] } });
  });
});

describe("the JSON Schema says each quantity's unit and default", () => {
  it("descriptions name the units, the JSON-only bare numbers and the default", async () => {
    const { z } = await import("zod");
    const { Scenario } = await import("../../sim/scenario/schema.js");
    const j = z.toJSONSchema(Scenario, { io: "input", unrepresentable: "any" }) as { properties: Record<string, any> };
    const dev = j.properties.devices.items.properties;
    expect(dev["cluster-size"].description).toMatch(/^A size with a unit: .*bare number means bytes and is accepted in JSON files only.*Default: 64KiB\.$/);
    expect(dev.latency.anyOf?.[0]?.description ?? dev.latency.description).toMatch(/duration with a unit/);
    expect(j.properties.limits.properties.time.description).toMatch(/nanoseconds.*Default: 60s\./);
  });
});
