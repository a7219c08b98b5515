/**
 * A soft cancel sent while a scenario's `drain:` step holds a drained section
 * (the test harness order of QEMU's tests/unit/test-bdrv-drain.c and
 * test-blockjob.c, which call job functions inside bdrv_drained_begin/end;
 * no QMP client can, since QEMU 7.2 dispatches no new command inside a
 * section its own code holds). QEMU 7.2's job code wakes the drained job:
 * job_cancel enters it through job_enter_cond, which does not look at
 * `paused`, and the pause point the job sleeps in is an `if`, so the woken
 * job goes on to its next pause point. A READY mirror whose source is dirty
 * copies on the way, into the drained target. blocksim does the same, and
 * job-io-in-drained-section reports the write: documented behaviour of the
 * harness order (README, "Nested polling"), not a fuzz finding.
 */
import { describe, expect, it } from "vitest";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

// fuzz --seed 114000's shrunk case (run 64,037) as scenario steps
const yaml = (violations: string[]) => `
name: soft-cancel-in-harness-drain
devices:
  - { name: dt0, size: 4MiB, latency: 100us }
  - { name: top.qcow2, size: 4MiB, latency: { min: 2ms, max: 5ms } }
nodes:
  - { driver: raw, node-name: t0, file: dt0 }
  - { driver: qcow2, node-name: top, file: top.qcow2 }
guests:
  - { name: guest, node: top, request-size: 64k, align: 64k, iodepth: 2, interval: 100us, start: 93500us, max-requests: 100 }
steps:
  - at: 39300us
    execute: blockdev-mirror
    arguments: { job-id: j1, device: top, target: t0, sync: full }
  - at: 153800us
    drain: { node: t0 }
  - at: 153900us
    execute: block-job-cancel
    arguments: { device: j1, force: false }
  - delay: 2200us
    undrain: { node: t0 }
expect:
  jobs: { j1: "null" }
  invariants: all
  violations: [${violations.join(", ")}]
`;

describe("a soft cancel inside a scenario's drained section (the harness order)", () => {
  const r = runScenario(loadScenarioText(yaml(["job-io-in-drained-section"]), "soft-cancel-in-harness-drain.yaml"), { keepTrace: true });
  const trace = r.trace!;
  const established = trace.findIndex((x) => x.src === "block" && x.kind === "drained" && x.data?.node === "t0");
  const ended = trace.findIndex((x) => x.src === "block" && x.kind === "drained-end" && x.data?.node === "t0");
  const inside = trace.slice(established, ended);

  it("wakes the drained mirror: the cancel runs inside the section, the job leaves standby and is back in it before the end", () => {
    expect(established).toBeGreaterThan(0);
    expect(ended).toBeGreaterThan(established);
    expect(inside.filter((x) => x.src === "qmp").map((x) => x.kind)).toEqual(["command", "return"]);
    expect(inside.filter((x) => x.kind === "status").map((x) => `${String(x.data?.from)}>${String(x.data?.to)}`)).toEqual(["standby>ready", "ready>standby", "standby>ready"]);
  });

  it("the woken mirror writes to the drained target, and job-io-in-drained-section reports it (expected here, so the scenario passes)", () => {
    expect(inside.filter((x) => x.kind === "io" && x.src === "dt0" && x.data?.issuer === "job:j1").length).toBeGreaterThan(0);
    expect(r.violations.map((v) => v.invariant)).toEqual(["job-io-in-drained-section"]);
    expect(r.ok, JSON.stringify(r.failures)).toBe(true);
    expect(runScenario(loadScenarioText(yaml([]), "soft-cancel-in-harness-drain.yaml")).ok).toBe(false);
  });
});
