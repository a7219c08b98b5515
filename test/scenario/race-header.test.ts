/** The `race:` header: read from the file, and its invariants always checked. */
import { describe, expect, it } from "vitest";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

const RACE = `
name: soft-cancel
race:
  fixed-by: { project: qemu, commit: eb36639f7b, title: "block/mirror: Make cancel always cancel pre-READY", date: 2018-05-02 }
  buggy-profile: mirror-soft-cancel-pre-ready
  breaks: [cancel-honoured]
  reported: Red Hat bugzilla 1572856
devices:
  - { name: disk.img, size: 8MiB, latency: 500us, data: [{ offset: 0, length: 8MiB }] }
  - { name: copy.img, size: 8MiB, latency: 1ms }
nodes:
  - { driver: raw, node-name: src, file: disk.img }
  - { driver: raw, node-name: tgt, file: copy.img }
steps:
  - execute: blockdev-mirror
    arguments: { job-id: mirror0, device: src, target: tgt, sync: full }
  - at: 1ms
    execute: block-job-cancel
    arguments: { device: mirror0 }
expect:
  invariants: none
`;

describe("a scenario with a race header", () => {
  const loaded = loadScenarioText(RACE, "soft-cancel.yaml");

  it("keeps the header, with the fixed profile defaulting to current", () => {
    expect(loaded.scenario.race).toEqual({
      "fixed-by": { project: "qemu", commit: "eb36639f7b", title: "block/mirror: Make cancel always cancel pre-READY", date: "2018-05-02" },
      "buggy-profile": "mirror-soft-cancel-pre-ready", "fixed-profile": "current", breaks: ["cancel-honoured"], reported: "Red Hat bugzilla 1572856",
    });
  });

  it("checks the invariants it breaks even when expect.invariants is none", () => {
    expect(runScenario(loaded).ok).toBe(true);
    const buggy = runScenario(loaded, { profile: "mirror-soft-cancel-pre-ready" });
    expect(buggy.ok).toBe(false);
    expect(buggy.violations.map((v) => v.invariant)).toEqual(["cancel-honoured"]);
  });
});
