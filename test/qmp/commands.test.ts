import { describe, expect, it } from "vitest";
import type { QmpResponse } from "../../sim/qmp/types.js";
import type { Process } from "../../sim/scheduler/index.js";
import { drained, MiB, session } from "./harness.js";

const nodes = function* (qmp: (e: string, a?: Record<string, unknown>) => Process<QmpResponse>): Process<void> {
  for (const [name, file] of [["src", "d1"], ["tgt", "d2"], ["other", "d3"], ["spare", "d4"]]) yield* qmp("blockdev-add", { driver: "raw", "node-name": name, file });
};

describe("QMP commands refuse bad requests as QEMU does", () => {
  it("class and description for each refused case", () => {
    const out: QmpResponse[] = [];
    session(function* (q, qmp) {
      yield* nodes(qmp);
      const r = function* (e: string, a?: Record<string, unknown>): Process<void> { out.push(yield* qmp(e, a)); };
      yield* r("blockdev-backup", { device: "src", target: "tgt" });                                  // missing sync
      yield* r("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "fast" });      // bad enum
      yield* r("blockdev-backup", { "job-id": "j", device: "nope", target: "tgt", sync: "full" });     // unknown node
      yield* r("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: "1" }); // mistyped
      yield* r("blockdev-backup", { "job-id": "1j", device: "src", target: "tgt", sync: "full" });     // malformed id
      yield* r("blockdev-backup", { "job-id": "j0", device: "src", target: "tgt", sync: "full", speed: MiB }); // ok, and slow
      yield* r("blockdev-backup", { "job-id": "j0", device: "other", target: "spare", sync: "full" }); // duplicate id
      yield* r("blockdev-mirror", { "job-id": "m", device: "other", target: "tgt", sync: "full" });    // busy target
      yield* r("blockdev-del", { "node-name": "tgt" });                                               // busy node
      yield* r("blockdev-add", { driver: "raw", "node-name": "src", file: "d4" });                    // duplicate node
      yield* r("blockdev-add", { driver: "raw", "node-name": "x", file: "no-such-device" });
      yield* r("transaction", { actions: [{ type: "block-dirty-bitmap-add", data: { node: "other", name: "b" } }], properties: { "completion-mode": "grouped" } });
      yield* r("transaction", { actions: [{ type: "snapshot", data: {} }] });
      yield* drained(q);
    });
    expect(out.map((o) => ("error" in o ? `${o.error.class}: ${o.error.desc}` : "ok"))).toEqual([
      "GenericError: Parameter 'sync' is missing",
      "GenericError: Parameter 'sync' does not accept value 'fast'",
      "GenericError: Cannot find device='nope' nor node-name='nope'",
      "GenericError: Invalid parameter type for 'speed', expected: integer",
      "GenericError: Invalid job ID '1j'",
      "ok",
      "GenericError: Job ID 'j0' already in use",
      "GenericError: Node 'tgt' is busy: block device is in use by block job: backup",
      "GenericError: Node 'tgt' is busy: block device is in use by block job: backup",
      "GenericError: Duplicate nodes with node-name='src'",
      "GenericError: 'file' must name a simulated device (known devices: d1, d2, d3, d4), got \"no-such-device\"".replace("GenericError: ", "GenericError: raw: "),
      "GenericError: Action 'block-dirty-bitmap-add' does not support Transaction property completion-mode = grouped",
      "GenericError: Parameter 'type' does not accept value 'snapshot'",
    ]);
  });
});

describe("transactions are all or nothing", () => {
  it("an abort action rolls back every prepared action: no job starts, the bitmap is gone, no node stays drained", () => {
    const { q, lines } = session(function* (q, qmp) {
      yield* nodes(qmp);
      const r = yield* qmp("transaction", { actions: [
        { type: "block-dirty-bitmap-add", data: { node: "other", name: "b0" } },
        { type: "blockdev-backup", data: { "job-id": "j1", device: "src", target: "tgt", sync: "full" } },
        { type: "abort", data: {} },
      ] });
      expect(r).toEqual({ error: { class: "GenericError", desc: "Transaction aborted using Abort action" } });
      expect(q.graph.node("other").bitmap("b0")).toBeUndefined();
      expect(q.graph.node("src").quiesceCount).toBe(0);
      expect(q.graph.node("tgt").opBlocker("BACKUP_TARGET")).toBeUndefined();
    });
    // the job was created, then cancelled unstarted: no running, no BLOCK_JOB_CANCELLED
    expect(lines.filter((l) => l.startsWith("j1"))).toEqual(["j1:created", "j1:aborting", "j1:concluded", "j1:null"]);
    expect(q.jm.violations).toEqual([]);
  });

  it("a failing prepare after a backup action: the backup never runs and its target is free again", () => {
    const { lines } = session(function* (q, qmp) {
      yield* nodes(qmp);
      const r = yield* qmp("transaction", { actions: [
        { type: "blockdev-backup", data: { "job-id": "j1", device: "src", target: "tgt", sync: "full" } },
        { type: "blockdev-backup", data: { "job-id": "j2", device: "other", target: "tgt", sync: "full" } },
      ] });
      expect(r).toEqual({ error: { class: "GenericError", desc: "Node 'tgt' is busy: block device is in use by block job: backup" } });
      const again = yield* qmp("blockdev-backup", { "job-id": "j3", device: "other", target: "tgt", sync: "full" });
      expect(again).toEqual({ return: {} });
      yield* drained(q);
    });
    expect(lines.filter((l) => l.startsWith("j1"))).toEqual(["j1:created", "j1:aborting", "j1:concluded", "j1:null"]);
  });

  it("grouped: one member failing cancels the other; individual: the other completes", () => {
    for (const mode of ["grouped", "individual"] as const) {
      const { lines } = session(function* (q, qmp) {
        q.addDevice({ name: "bad", sizeBytes: 16 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1000, writeLatencyNs: 1000, bandwidthBytesPerSec: 0, queueDepth: 8, faults: [{ op: "write", errno: "EIO" }] });
        yield* nodes(qmp);
        yield* qmp("blockdev-add", { driver: "raw", "node-name": "badtgt", file: "bad" });
        yield* qmp("transaction", {
          actions: [
            { type: "blockdev-backup", data: { "job-id": "ok", device: "src", target: "tgt", sync: "full" } },
            { type: "blockdev-backup", data: { "job-id": "fail", device: "other", target: "badtgt", sync: "full" } },
          ],
          properties: { "completion-mode": mode },
        });
        yield* drained(q);
      });
      expect(lines).toContain("BLOCK_JOB_COMPLETED:fail");
      if (mode === "grouped") {
        expect(lines).toContain("BLOCK_JOB_CANCELLED:ok");
        expect(lines).not.toContain("BLOCK_JOB_COMPLETED:ok");
      } else {
        expect(lines).toContain("BLOCK_JOB_COMPLETED:ok");
      }
    }
  });

  it("grouped: cancelling one member cancels the whole group", () => {
    const { lines } = session(function* (q, qmp) {
      yield* nodes(qmp);
      yield* qmp("transaction", {
        actions: [
          { type: "blockdev-backup", data: { "job-id": "a", device: "src", target: "tgt", sync: "full" } },
          { type: "blockdev-backup", data: { "job-id": "b", device: "other", target: "spare", sync: "full" } },
        ],
        properties: { "completion-mode": "grouped" },
      });
      yield* qmp("job-cancel", { id: "a" });
      yield* drained(q);
    });
    expect(lines.filter((l) => l.startsWith("BLOCK_JOB")).sort()).toEqual(["BLOCK_JOB_CANCELLED:a", "BLOCK_JOB_CANCELLED:b"]);
  });

  it("jobs start only in commit: under the fixed profile a member never finishes before the transaction commits", () => {
    const { q } = session(function* (q, qmp) {
      yield* nodes(qmp);
      yield* qmp("transaction", { actions: [
        { type: "blockdev-backup", data: { "job-id": "a", device: "src", target: "tgt", sync: "top" } },
        { type: "blockdev-backup", data: { "job-id": "b", device: "other", target: "spare", sync: "full" } },
      ], properties: { "completion-mode": "grouped" } });
      yield* drained(q);
    });
    expect(q.jm.violations).toEqual([]);
  });
});

describe("targets made by drive-* and streams without a backing chain", () => {
  it("drive-backup and drive-mirror targets go away with their job, and a file in use is refused as QEMU's image lock does", () => {
    const out: string[] = [];
    const { q, result } = session(function* (q, qmp) {
      yield* nodes(qmp);
      const say = (r: QmpResponse) => out.push("error" in r ? r.error.desc : "ok");
      say(yield* qmp("drive-backup", { "job-id": "b1", device: "src", target: "/backup.img", sync: "full" }));
      yield* drained(q);
      say(yield* qmp("drive-backup", { "job-id": "b2", device: "src", target: "/backup.img", sync: "full", speed: MiB }));
      say(yield* qmp("drive-mirror", { "job-id": "m1", device: "other", target: "/backup.img", sync: "full" }));
      yield* qmp("job-cancel", { id: "b2" });
      yield* drained(q);
      say(yield* qmp("drive-mirror", { "job-id": "m2", device: "other", target: "/backup.img", sync: "full" }));
      yield* qmp("job-cancel", { id: "m2" });
      yield* drained(q);
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(out).toEqual(["ok", "ok", 'Failed to get "write" lock\nIs another process using the image [/backup.img]?', "ok"]);
    expect(q.graph.nodes().map((n) => n.name)).toEqual(["src", "tgt", "other", "spare"]);
  });

  it("a drive-* target in a format QEMU 7.2 can create but blocksim does not (vmdk) ends the run as not modelled", () => {
    const { q, result } = session(function* (q, qmp) {
      yield* nodes(qmp);
      yield* qmp("drive-mirror", { "job-id": "m0", device: "src", target: "/t.vmdk", format: "vmdk", sync: "full" });
    });
    expect(result.outcome).toMatchObject({ kind: "failure", error: "NotModelledError: valid in QEMU 7.2, not modelled by blocksim: a new target image in format 'vmdk' (blocksim creates raw and qcow2 ones)" });
    expect(q.jm.jobs).toEqual([]);
  });

  it("block-stream of a node with no backing file completes without touching the graph", () => {
    const { lines, result } = session(function* (q, qmp) {
      yield* nodes(qmp);
      yield* qmp("block-stream", { "job-id": "s0", device: "src" });
      yield* drained(q);
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(lines).toContain("BLOCK_JOB_COMPLETED:s0");
  });
});

describe("found by the fuzzer", () => {
  it("a grouped transaction whose third action fails rolls back both created jobs without touching a freed one", () => {
    const { result, q } = session(function* (q, qmp) {
      yield* nodes(qmp);
      const r = yield* qmp("transaction", {
        actions: [
          { type: "blockdev-backup", data: { "job-id": "j0", device: "src", target: "tgt", sync: "full" } },
          { type: "blockdev-backup", data: { "job-id": "j1", device: "src", target: "other", sync: "full" } },
          { type: "blockdev-backup", data: { "job-id": "j0", device: "src", target: "other", sync: "full" } },
        ],
        properties: { "completion-mode": "grouped" },
      });
      expect(r).toEqual({ error: { class: "GenericError", desc: "Node 'other' is busy: block device is in use by block job: backup" } });
      yield* drained(q);
    });
    expect(result.outcome).toEqual({ kind: "ok" });
    expect(q.jm.jobs).toEqual([]);
  });

  it("a rate-limited backup keeps to its speed even as its copies finish", () => {
    const { result, lines } = session(function* (q, qmp) {
      yield* nodes(qmp);
      yield* qmp("blockdev-backup", { "job-id": "b", device: "src", target: "tgt", sync: "full", speed: 8 * MiB });
      yield* drained(q);
    });
    expect(lines).toContain("BLOCK_JOB_COMPLETED:b");
    // 16 MiB at 8 MiB/s: about 2 s (the first chunk passes the quota at once)
    expect(result.endTimeNs).toBeGreaterThan(1_500_000_000);
  });
});
