import { describe, expect, it } from "vitest";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

/** The catalog's races as scenario files: green under the current profile, failing the named invariant under the buggy one. */
const CASES: [file: string, buggy: string, invariant: string][] = [
  ["drain-during-job-io", "drain-ignores-jobs", "job-io-in-drained-section"],
  ["error-stop-stacks-pauses", "error-stop-stacks-pauses", "jobs-conclude"],
  ["cancel-error-stopped-job", "cancel-clears-user-paused-early", "no-crash"],
  ["set-speed-zero-no-kick", "set-speed-zero-no-kick", "jobs-conclude"],
  ["mirror-soft-cancel-pre-ready", "mirror-soft-cancel-pre-ready", "cancel-honoured"],
  ["iothread-drain-no-kick", "job-idle-no-kick", "jobs-conclude"],
  ["iothread-job-old-context", "job-wakes-in-old-context", "job-runs-in-its-context"],
  ["iothread-txn-abort-hang", "finish-sync-holds-context", "jobs-conclude"],
  ["drain-skips-pending-exit", "drain-skips-pending-exit", "job-exit-in-drained-section"],
  ["iothread-txn-abort-locks-all", "txn-abort-locks-all-contexts", "jobs-conclude"],
  ["iothread-txn-apply-relock", "txn-apply-relocks-context", "jobs-conclude"],
];

describe.each(CASES)("scenarios/races/%s.yaml", (file, buggy, invariant) => {
  const loaded = loadScenarioFile(new URL(`../../scenarios/races/${file}.yaml`, import.meta.url).pathname);

  it("holds every expectation under the current profile", () => {
    const r = runScenario(loaded);
    expect(r.failures.map((f) => f.message)).toEqual([]);
  });

  it(`breaks ${invariant} under ${buggy}`, () => {
    const r = runScenario(loaded, { profile: buggy });
    expect(r.ok).toBe(false);
    expect(r.violations.map((v) => v.invariant)).toContain(invariant);
  });
});
