/**
 * What the command line offers for a mistyped profile, strategy or option:
 * a near miss (a typo, or a known name with one of its words left out) is
 * named; an unrelated word gets no suggestion.
 */
import { describe, expect, it } from "vitest";
import { runMain as run } from "./run-main.js";

describe("did you mean", () => {
  it("offers the known profile a typed name leaves one word out of", async () => {
    for (const [typed, meant] of [["no-shim", "no-start-shim"], ["ignores-jobs", "drain-ignores-jobs"], ["set-speed-no-kick", "set-speed-zero-no-kick"], ["cancel-user-paused-early", "cancel-clears-user-paused-early"]]) {
      const r = await run("run", "x.yaml", "--profile", typed);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`unknown profile "${typed}" (did you mean "${meant}"?); known profiles:`);
    }
  });

  it("offers nothing for an unrelated or too short name", async () => {
    for (const typed of ["banana-shim", "no-banana", "shim", "start", "no-start-shim-please-now", "jobs-ignores-drain"]) {
      const r = await run("run", "x.yaml", "--profile", typed);
      expect(r.code).toBe(2);
      expect(r.stderr).toContain(`unknown profile "${typed}"; known profiles:`);
    }
  });

  it("still offers a typo's correction, for profiles and options", async () => {
    expect((await run("run", "x.yaml", "--profile", "no-strat-shim")).stderr).toContain('(did you mean "no-start-shim"?)');
    expect((await run("run", "x.yaml", "--seeed", "3")).stderr).toContain('unknown option --seeed for \'run\' (did you mean "--seed"?)');
  });
});
