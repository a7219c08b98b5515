import { describe, expect, it } from "vitest";
import { firstDifference } from "../../sim/scenario/replay.js";

describe("firstDifference", () => {
  it("finds the first differing line, or a missing one, or none", () => {
    expect(firstDifference(["a", "b", "c"], ["a", "b", "c"])).toBeUndefined();
    expect(firstDifference(["a", "b", "c"], ["a", "x", "c"])).toEqual({ index: 1, recorded: "b", now: "x" });
    expect(firstDifference(["a", "b"], ["a", "b", "c"])).toEqual({ index: 2, recorded: undefined, now: "c" });
    expect(firstDifference(["a", "b", "c"], ["a"])).toEqual({ index: 1, recorded: "b", now: undefined });
  });
});
