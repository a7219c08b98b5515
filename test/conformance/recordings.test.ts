import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { expectConformance } from "./expect-conformance.js";
import { KNOWN_RECORDING_DIFFERENCES as KNOWN_DIFFERENCES } from "../../live/known-differences.js";
import { CONFORMANCE_DIR, load, SHARED_WAITS } from "../../live/spec-driver.js";

const WAITS = SHARED_WAITS;

const files = readdirSync(CONFORMANCE_DIR).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, ""));

describe("the recordings of real QEMU 7.2 in ../shared/conformance", () => {
  it("are all covered by this suite", () => {
    expect(files.sort()).toEqual(Object.keys(WAITS).sort());
  });

  for (const name of Object.keys(WAITS)) {
    it(`${name}: the simulator produces the recorded sequence`, () => {
      expectConformance(name, load(name), WAITS[name], KNOWN_DIFFERENCES[name], "KNOWN_DIFFERENCES");
    });
  }
});
