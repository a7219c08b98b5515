import { describe, expect, it } from "vitest";
import { sameData, ZERO_VERSION, type ClusterVersion } from "../../sim/disk/index.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { sleep, type Process } from "../../sim/scheduler/index.js";
import { drained, MiB, session } from "./harness.js";

type Qmp = (e: string, a?: Record<string, unknown>) => Process<QmpResponse>;
const CLUSTER = 65536;

function* ok(qmp: Qmp, e: string, a?: Record<string, unknown>): Process<void> {
  const r = yield* qmp(e, a);
  if ("error" in r) throw new Error(`${e}: ${r.error.desc}`);
}

function* qemuIo(qmp: Qmp, node: string, cmd: string): Process<void> {
  yield* ok(qmp, "human-monitor-command", { "command-line": `qemu-io ${node} "${cmd}"` });
}

/** The named bitmaps of a node as query-named-block-nodes shows them. */
function* bitmaps(qmp: Qmp, node: string): Process<Record<string, unknown>[]> {
  const r = yield* qmp("query-named-block-nodes");
  const n = ((r as { return: { "node-name": string; "dirty-bitmaps"?: Record<string, unknown>[] }[] }).return).find((x) => x["node-name"] === node);
  return n?.["dirty-bitmaps"] ?? [];
}

describe("incremental backup: the data on the simulated disks", () => {
  it("copies exactly the clusters the bitmap marks, and the full backup plus the incremental one equal the source at the incremental's start", () => {
    let dirtyAtStart: number[] = [], atStart: readonly ClusterVersion[] = [];
    const written = new Set<number>();
    const { q } = session(function* (q, qmp) {
      const record = q.sim.record.bind(q.sim);
      q.sim.record = (src, kind, data) => {
        if (src === "d3" && kind === "io" && data?.op === "write") {
          for (let c = (data.offset as number) / CLUSTER; c < ((data.offset as number) + (data.bytes as number)) / CLUSTER; c++) written.add(c);
        }
        record(src, kind, data);
      };
      for (const [name, file] of [["src", "d1"], ["full", "d2"], ["inc", "d3"]]) yield* ok(qmp, "blockdev-add", { driver: "raw", "node-name": name, file });
      const guest = q.graph.createBackend({ issuer: "guest", root: q.graph.node("src") });
      // iotest 124's anchor: the bitmap and a full backup in one transaction
      yield* ok(qmp, "transaction", { actions: [
        { type: "block-dirty-bitmap-add", data: { node: "src", name: "b0" } },
        { type: "blockdev-backup", data: { "job-id": "full0", device: "src", target: "full", sync: "full" } },
      ] });
      yield* drained(q);
      expect(yield* bitmaps(qmp, "src")).toEqual([{ name: "b0", recording: true, persistent: false, busy: false, granularity: CLUSTER, count: 0 }]);
      for (const cmd of ["write -P 0xab 0 512", "write -P 0xfe 4M 256k", "write -P 0x64 8160k 64k", "write 15M 1M"]) yield* qemuIo(qmp, "src", cmd);
      const b0 = q.graph.node("src").bitmap("b0")!;
      dirtyAtStart = b0.dirtyChunks();
      atStart = q.graph.node("src").content(0, 16 * MiB).versions;
      yield* ok(qmp, "blockdev-backup", { "job-id": "inc0", device: "src", target: "inc", sync: "incremental", bitmap: "b0" });
      // the guest goes on writing while the incremental backup runs: over copied, not yet copied and clean clusters
      for (const off of [0, 4 * MiB, 2 * MiB, 15 * MiB + CLUSTER]) yield* guest.write(off, CLUSTER);
      yield* drained(q);
      // what the guest wrote meanwhile is what the bitmap holds now
      expect(q.graph.node("src").bitmap("b0")!.dirtyChunks()).toEqual([0, 32, 64, 241]);
    });
    // 512 B at 0, 256 KiB at 4 MiB, 64 KiB at 8160 KiB (two clusters), 1 MiB at 15 MiB
    expect(dirtyAtStart).toEqual([0, 64, 65, 66, 67, 127, 128, ...Array.from({ length: 16 }, (_, i) => 240 + i)]);
    expect([...written].sort((a, b) => a - b)).toEqual(dirtyAtStart);
    const full = q.devices.get("d2")!, inc = q.devices.get("d3")!;
    for (let c = 0; c < 256; c++) {
      const restored = written.has(c) ? inc.versionAt(c) : full.versionAt(c);
      expect(sameData(restored, atStart[c]), `cluster ${c}`).toBe(true);
    }
  });
});

/** An incremental backup of 23 dirty clusters whose first read fails (blkdebug), with `mode`; the bitmap's chunks after. */
function settled(mode: string, fail: boolean): { chunks: number[]; busy: unknown; error: unknown } {
  let chunks: number[] = [], busy: unknown, error: unknown;
  session(function* (q, qmp) {
    yield* ok(qmp, "blockdev-add", {
      driver: "blkdebug", "node-name": "src", image: { driver: "raw", file: "d1" },
      "inject-error": fail ? [{ event: "none", iotype: "read", errno: 5, once: true }] : [],
    });
    yield* ok(qmp, "blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
    yield* ok(qmp, "block-dirty-bitmap-add", { node: "src", name: "b0" });
    for (const cmd of ["write 0 64k", "write 4M 256k", "write 15M 1M"]) yield* qemuIo(qmp, "src", cmd);
    q.jm.onEvent((e) => {
      if (e.event === "BLOCK_JOB_COMPLETED") error = e.data.error;
    });
    yield* ok(qmp, "blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "bitmap", bitmap: "b0", "bitmap-mode": mode });
    yield sleep(100_000);
    const during = yield* bitmaps(qmp, "src");
    busy = during.find((b) => b.name === "b0")?.busy;
    yield* drained(q);
    chunks = q.graph.node("src").bitmap("b0")!.dirtyChunks();
  });
  return { chunks, busy, error };
}

describe("incremental backup: what becomes of the bitmap (bitmap-mode)", () => {
  const all = [0, 64, 65, 66, 67, ...Array.from({ length: 16 }, (_, i) => 240 + i)];
  it("on success: on-success and always clear it, never keeps it; it is busy while the job runs", () => {
    expect(settled("on-success", false)).toEqual({ chunks: [], busy: true, error: undefined });
    expect(settled("always", false)).toEqual({ chunks: [], busy: true, error: undefined });
    expect(settled("never", false)).toEqual({ chunks: all, busy: true, error: undefined });
  });
  it("on failure: on-success and never keep it whole, always keeps only the clusters not copied", () => {
    expect(settled("on-success", true)).toEqual({ chunks: all, busy: true, error: "Input/output error" });
    expect(settled("never", true)).toEqual({ chunks: all, busy: true, error: "Input/output error" });
    // the failed read was cluster 0's; the other copies were already under way and finished
    expect(settled("always", true)).toEqual({ chunks: [0], busy: true, error: "Input/output error" });
  });
});

describe("incremental backup through drive-backup (iotest 124's form)", () => {
  it("drive-backup sync=incremental onto an existing image copies the dirty clusters and clears the bitmap; a refused one leaves no node behind", () => {
    const replies: string[] = [];
    const { q } = session(function* (q, qmp) {
      yield* ok(qmp, "blockdev-add", { driver: "raw", "node-name": "drive0", file: "d1" });
      yield* ok(qmp, "block-dirty-bitmap-add", { node: "drive0", name: "bitmap0" });
      yield* qemuIo(qmp, "drive0", "write -P 0x5 1M 128k");
      const bad = yield* qmp("drive-backup", { "job-id": "j", device: "drive0", target: "d3", mode: "existing", format: "raw", sync: "incremental", bitmap: "nope" });
      replies.push("error" in bad ? bad.error.desc : "ok");
      yield* ok(qmp, "drive-backup", { "job-id": "j", device: "drive0", target: "d3", mode: "existing", format: "raw", sync: "incremental", bitmap: "bitmap0" });
      yield* drained(q);
      replies.push(JSON.stringify(yield* bitmaps(qmp, "drive0")));
    });
    expect(replies).toEqual([
      "Bitmap 'nope' could not be found",
      JSON.stringify([{ name: "bitmap0", recording: true, persistent: false, busy: false, granularity: CLUSTER, count: 0 }]),
    ]);
    const src = q.devices.get("d1")!, tgt = q.devices.get("d3")!;
    for (let c = 0; c < 256; c++) expect(sameData(tgt.versionAt(c), c === 16 || c === 17 ? src.versionAt(c) : ZERO_VERSION), `cluster ${c}`).toBe(true);
    expect(q.graph.nodes().filter((n) => n.device === tgt)).toEqual([]);
  });
});
