import { describe, expect, it } from "vitest";
import { attachDevice, nodeContext } from "../../sim/block/index.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { Scheduler, sleep, type Process, type TraceRecord } from "../../sim/scheduler/index.js";

const MiB = 1 << 20;

/** A traced simulated QEMU with two raw nodes (src on d1, tgt on d2) and io0; `script` drives it over QMP. */
function traced(script: (q: ReturnType<typeof createQemu>, qmp: (execute: string, args?: Record<string, unknown>) => Process<QmpResponse>) => Process) {
  const sim = new Scheduler({ trace: true, maxTimeNs: 60e9, maxSteps: 2_000_000 });
  const q = createQemu(sim, {});
  for (const name of ["d1", "d2"]) {
    q.addDevice({ name, sizeBytes: 16 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1_000_000, writeLatencyNs: 1_000_000, bandwidthBytesPerSec: 0, queueDepth: 8 });
  }
  const qmp = (execute: string, args?: Record<string, unknown>) => q.monitor.execute(args ? { execute, arguments: args } : { execute });
  sim.spawn("client", (function* (): Process {
    yield* qmp("object-add", { "qom-type": "iothread", id: "io0" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "d1" });
    yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
    yield* script(q, qmp);
  })());
  const result = sim.run();
  return { q, result, trace: result.trace ?? [], moves: (result.trace ?? []).filter((t: TraceRecord) => t.kind === "change-context").map((t) => t.data) };
}

describe("AioContext changes in the trace", () => {
  it("a move is recorded once its walk succeeded; a move a guest device's BlockBackend refuses records none (nothing moved)", () => {
    const replies: string[] = [];
    const { q, result, moves } = traced(function* (q, qmp) {
      const r = function* (e: string, a: Record<string, unknown>): Process<void> {
        const reply = yield* qmp(e, a);
        replies.push("error" in reply ? reply.error.desc : "ok");
      };
      yield* r("x-blockdev-set-iothread", { "node-name": "tgt", iothread: "io0" });
      attachDevice(q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node("src"), queueWhenDrained: true }));
      yield* r("x-blockdev-set-iothread", { "node-name": "src", iothread: "io0", force: true });
    });
    expect(result.outcome.kind).toBe("ok");
    expect(replies).toEqual(["ok", "Cannot change iothread of active block backend"]);
    expect(nodeContext(q.graph.node("src")).name).toBe("main");
    expect(moves).toEqual([{ node: "tgt", to: "io0", nodes: ["tgt"] }]);
  });
});

describe("an AioContext change's commit", () => {
  it("sets every context before it ends any drained section (QEMU 7.2 tran_commit: all commits, then all cleans)", () => {
    const { result, trace } = traced(function* (_q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "src", target: "tgt", sync: "full", speed: 4 * MiB });
      yield sleep(20_000_000);
      yield* qmp("x-blockdev-set-iothread", { "node-name": "tgt", iothread: "io0" });
      yield* qmp("job-cancel", { id: "j0" });
    });
    expect(result.outcome.kind).toBe("ok");
    const move = trace.findIndex((t) => t.kind === "change-context" && t.data?.to === "io0");
    const end = trace.findIndex((t, i) => i > move && t.kind === "return");
    const commit = trace.slice(move, end).filter((t) => t.kind === "aio-context" || t.kind === "drained-end").map((t) => (t.kind === "aio-context" ? `${t.src} to ${t.data?.to}` : `end ${t.data?.node}`));
    expect(commit[0]).toBe("job:j0 to io0");
    expect(commit.slice(1).every((c) => c.startsWith("end "))).toBe(true);
    expect(commit.length).toBeGreaterThan(2);
  });
});
