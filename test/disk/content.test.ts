import { describe, expect, it } from "vitest";
import { sameData, versionAt, ZERO_VERSION, type Content } from "../../sim/disk/index.js";

describe("content versions", () => {
  const c: Content = { offset: 8192, clusterSizeBytes: 4096, versions: [{ writeId: 4, writer: "g" }, ZERO_VERSION] };

  it("finds the version at a byte offset", () => {
    expect(versionAt(c, 8192).writeId).toBe(4);
    expect(versionAt(c, 12287).writeId).toBe(4);
    expect(versionAt(c, 12288)).toBe(ZERO_VERSION);
  });

  it("refuses offsets outside the content", () => {
    expect(() => versionAt(c, 8191)).toThrow("content covers [8192, 16384), not offset 8191");
    expect(() => versionAt(c, 16384)).toThrow("content covers [8192, 16384), not offset 16384");
  });

  it("compares by write id: a zeroed cluster equals a never-written one", () => {
    expect(sameData({ writeId: 0, writer: "job" }, ZERO_VERSION)).toBe(true);
    expect(sameData({ writeId: 1, writer: "a" }, { writeId: 2, writer: "a" })).toBe(false);
  });
});
