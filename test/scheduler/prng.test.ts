import seedrandom from "seedrandom";
import { describe, expect, it } from "vitest";
import { Alea, Streams } from "../../sim/scheduler/index.js";

describe("the kernel's Alea", () => {
  it("draws exactly what seedrandom's alea draws for the same seed (streams are part of every trace)", () => {
    const seeds = ["", " ", "0/guest/g0", "42/disk/latency/src", "1001/strategy/schedule", "-7/x", "1.5/y", "é/ü/€/😀", "a".repeat(300)];
    for (let i = 0; i < 200; i++) seeds.push(`${i * 7919}/stream-${i}`);
    for (const seed of seeds) {
      const ours = new Alea(seed), theirs = seedrandom.alea(seed);
      for (let k = 0; k < 500; k++) expect(ours.next(), `seed ${JSON.stringify(seed)}, draw ${k}`).toBe(theirs());
    }
  });

  it("a named stream is seeded from the root seed and its name", () => {
    const s = new Streams(5);
    const rng = s.get("guest/g");
    const want = seedrandom.alea("5/guest/g");
    expect([rng(), rng(), rng()]).toEqual([want(), want(), want()]);
    expect(s.get("guest/g")).toBe(rng);
    expect(s.names()).toEqual(["guest/g"]);
  });
});
