/** A run ended by its time or step budget says where it stood: each job's status and progress, each waiting step (issue 18). */
import { describe, expect, it } from "vitest";
import { verdict } from "../../sim/report/text.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

describe("the job summary at a budget end", () => {
  it("names the running mirror with its progress and the step waiting for READY", () => {
    const r = runScenario(loadScenarioText(`name: budget
devices: [{ name: s, size: 64MiB, data: [{ offset: 0, length: 64MiB }] }, { name: t, size: 64MiB, bandwidth: 10MB/s }]
nodes: [{ driver: raw, node-name: src, file: s }, { driver: raw, node-name: tgt, file: t }]
steps:
  - at: 1ms
    execute: blockdev-mirror
    arguments: { job-id: m0, device: src, target: tgt, sync: full }
  - on-event: { event: BLOCK_JOB_READY }
    execute: job-complete
    arguments: { id: m0 }
limits: { time: 2s }
`));
    expect(r.outcome.kind).toBe("time-budget");
    expect(verdict(r)).toMatch(/\n {2}when it ended: job m0 \(mirror\) running, \d+MiB of 64MiB; steps\[1\] job-complete waits for event BLOCK_JOB_READY$/m);
  });
});
