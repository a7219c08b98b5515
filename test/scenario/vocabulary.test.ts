/**
 * No false passes (issue 18): event names, event data members and reply
 * members in a scenario are checked against QEMU 7.2's tables, so a typo is
 * an error with a "did you mean", not an expectation that cannot fail.
 */
import { describe, expect, it } from "vitest";
import { InputError } from "../../sim/scenario/errors.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { MODELLED_EVENTS, QEMU_EVENTS } from "../../sim/qmp/events.js";
import { REPLIES } from "../../sim/qmp/replies.js";
import { COMMANDS } from "../../sim/qmp/qemu.js";

const BASE = `name: v
nodes: [{ driver: null-co, node-name: src, size: 64MiB }, { driver: null-co, node-name: tgt, size: 64MiB }]
`;

function problems(text: string): string[] {
  try {
    loadScenarioText(BASE + text, "v.yaml");
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return e.problems.map((p) => `${p.path}: ${p.message}`);
  }
  return [];
}

describe("event names and data members are checked", () => {
  it("never: [BLOCK_JOB_CANCELED] is an error with a did-you-mean, not a silent pass", () => {
    expect(problems("expect: { never: [BLOCK_JOB_CANCELED] }\n")).toEqual([
      expect.stringMatching(/^expect\.never\[0\]: unknown event "BLOCK_JOB_CANCELED" \(did you mean "BLOCK_JOB_CANCELLED"\?\)/),
    ]);
  });

  it("a data member the event never carries is an error naming the event's members", () => {
    const p = problems("expect: { never: [{ event: BLOCK_JOB_CANCELLED, data: { id: ja } }] }\n");
    expect(p).toEqual([expect.stringMatching(/^expect\.never\[0\]\.data\.id: BLOCK_JOB_CANCELLED has no data member "id"; its members: type, device, len, offset, speed/)]);
  });

  it("on-event and expect.events are checked too, names, members and enum values", () => {
    const p = problems(`steps:
  - on-event: { event: JOB_STATUS_CHANGE, data: { id: j, status: runing } }
    execute: query-jobs
  - on-event: { event: BLOCK_JOB_REDY }
    execute: query-jobs
expect:
  events: { order: subsequence, sequence: [{ event: BLOCK_JOB_COMPLETED, data: { devce: j } }] }
`);
    expect(p).toEqual([
      expect.stringMatching(/^steps\[0\]\.on-event\.data\.status: JOB_STATUS_CHANGE's status is one of .*; got "runing" \(did you mean "running"\?\)/),
      expect.stringMatching(/^steps\[1\]\.on-event\.event: unknown event "BLOCK_JOB_REDY" \(did you mean "BLOCK_JOB_READY"\?\)/),
      expect.stringMatching(/^expect\.events\.sequence\[0\]\.data\.devce: BLOCK_JOB_COMPLETED has no data member "devce" \(did you mean "device"\?\)/),
    ]);
  });

  it("an event QEMU 7.2 sends but blocksim does not is named as such, never as unknown", () => {
    const p = problems("expect: { never: [BLOCK_IO_ERROR] }\n");
    expect(p).toEqual([expect.stringMatching(/^expect\.never\[0\]: valid in QEMU 7\.2, not modelled by blocksim: event BLOCK_IO_ERROR .*cannot fail/)]);
  });

  it("correct names and members load", () => {
    expect(problems(`steps:
  - on-event: { event: JOB_STATUS_CHANGE, data: { id: j, status: running } }
    execute: query-jobs
expect: { events: [BLOCK_JOB_COMPLETED, { event: BLOCK_JOB_ERROR, data: { device: j, operation: write, action: report } }], never: [BLOCK_JOB_CANCELLED] }
`)).toEqual([]);
  });

  it("the catalog holds the events blocksim sends (the jobs', and the run state's), each once", () => {
    expect([...MODELLED_EVENTS].sort()).toEqual(["BLOCK_JOB_CANCELLED", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_ERROR", "BLOCK_JOB_PENDING", "BLOCK_JOB_READY", "JOB_STATUS_CHANGE", "RESUME", "SHUTDOWN", "STOP"]);
    expect(new Set(QEMU_EVENTS.map((e) => e.name)).size).toBe(QEMU_EVENTS.length);
  });
});

describe("return expectations are checked against the command's reply", () => {
  it("a member the reply never has is an error", () => {
    const p = problems(`steps:
  - at: 1ms
    execute: query-jobs
    expect: { return: [{ id: j, stauts: running }] }
`);
    expect(p).toEqual([expect.stringMatching(/^steps\[0\]\.expect\.return\[0\]\.stauts: JobInfo has no member "stauts" \(did you mean "status"\?\)/)]);
  });

  it("a command answering {} cannot be expected to return members; a list is not an object", () => {
    const p = problems(`steps:
  - at: 1ms
    execute: job-pause
    arguments: { id: j }
    expect: { return: { paused: true } }
  - at: 2ms
    execute: query-block-jobs
    expect: { return: { device: j } }
`);
    expect(p).toEqual([
      expect.stringMatching(/^steps\[0\]\.expect\.return: job-pause answers \{\} in QEMU 7\.2/),
      expect.stringMatching(/^steps\[1\]\.expect\.return: query-block-jobs answers a list of BlockJobInfo/),
    ]);
  });

  it("a member QEMU has and blocksim leaves out says so", () => {
    const p = problems(`steps:
  - at: 1ms
    execute: query-named-block-nodes
    expect: { return: [{ node-name: src, detect_zeroes: "off" }] }
`);
    expect(p).toEqual([expect.stringMatching(/valid in QEMU 7\.2, not modelled by blocksim: BlockDeviceInfo member "detect_zeroes"/)]);
  });

  it("every command blocksim implements has a reply entry", () => {
    expect(Object.keys(COMMANDS).filter((c) => !Object.hasOwn(REPLIES, c))).toEqual([]);
  });
});

describe("what QEMU 7.2 accepts and blocksim does not model", () => {
  it("is refused as such at load time, never in QMP's words (drive-mirror node-name, drive-mirror unmap false, backup compress)", () => {
    const p = problems(`steps:
  - at: 1ms
    execute: drive-mirror
    arguments: { job-id: m, device: src, target: /x, sync: full, node-name: n, copy-mode: write-blocking }
  - at: 2ms
    execute: drive-mirror
    arguments: { device: src, target: /x, sync: full, unmap: false }
  - at: 3ms
    execute: blockdev-backup
    arguments: { device: src, target: tgt, sync: full, compress: true }
`);
    expect(p).toEqual([
      "steps[0].arguments: valid in QEMU 7.2, not modelled by blocksim: drive-mirror's parameter 'node-name'",
      "steps[1].arguments: valid in QEMU 7.2, not modelled by blocksim: drive-mirror's 'unmap': false",
      "steps[2].arguments: valid in QEMU 7.2, not modelled by blocksim: blockdev-backup's parameter 'compress'",
    ]);
  });

  it("inside a run (generated or served commands) it ends the run naming it, never with a QMP error QEMU would not send", async () => {
    const { Scheduler } = await import("../../sim/scheduler/index.js");
    const { createQemu } = await import("../../sim/qmp/qemu.js");
    const sim = new Scheduler();
    const q = createQemu(sim);
    sim.spawn("client", (function* () {
      yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "null-co", "node-name": "src", size: 1048576 } });
      yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "null-co", "node-name": "tgt", size: 1048576 } });
      yield* q.monitor.execute({ execute: "blockdev-backup", arguments: { device: "src", target: "tgt", sync: "full", compress: true } });
    })());
    const r = sim.run();
    expect(r.outcome).toMatchObject({ kind: "failure", error: "NotModelledError: valid in QEMU 7.2, not modelled by blocksim: parameter 'compress'" });
  });
});
