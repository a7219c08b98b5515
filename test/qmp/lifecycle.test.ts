import { describe, expect, it } from "vitest";
import { startGuest } from "../../sim/block/index.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { sleep, type Process } from "../../sim/scheduler/index.js";
import { drained, MiB, session } from "./harness.js";

type Qmp = (e: string, a?: Record<string, unknown>) => Process<QmpResponse>;
const text = (r: QmpResponse) => ("error" in r ? `! ${r.error.desc}` : typeof r.return === "string" ? r.return : "ok");

/** A backup b0 (src → tgt) and a mirror m0 (msrc → mtgt), both limited to 1 MiB/s so they are still running. */
function* backupAndMirror(qmp: Qmp): Process<void> {
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "d1" });
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "msrc", file: "d3" });
  yield* qmp("blockdev-add", { driver: "raw", "node-name": "mtgt", file: "d4" });
  yield* qmp("blockdev-backup", { "job-id": "b0", device: "src", target: "tgt", sync: "full", speed: MiB });
  yield* qmp("blockdev-mirror", { "job-id": "m0", device: "msrc", target: "mtgt", sync: "full", speed: MiB });
}

function* driveAdd(qmp: Qmp, opts: string): Process<QmpResponse> {
  return yield* qmp("human-monitor-command", { "command-line": `drive_add 0 if=none,${opts}` });
}

describe("stop and cont: the VM's run state", () => {
  it("a guest issues nothing while the VM is stopped and goes on after cont; STOP and RESUME only on a change", () => {
    const counts: number[] = [];
    const { lines } = session(function* (q, qmp) {
      yield* driveAdd(qmp, "id=drive0,format=raw,file=d1");
      const blk = q.graph.backends()[0];
      const guest = startGuest(q.sim, { name: "guest", backend: blk, pattern: "random", requestBytes: 4096, intervalNs: 100_000, stopAtNs: 60_000_000 });
      yield sleep(5_000_000);
      yield* qmp("stop");
      const atStop = guest.stats.issued;
      yield sleep(20_000_000);
      counts.push(guest.stats.issued - atStop);
      expect((yield* qmp("query-status")) as unknown).toEqual({ return: { status: "paused", singlestep: false, running: false } });
      yield* qmp("stop");
      yield* qmp("cont");
      yield* qmp("cont");
      yield sleep(5_000_000);
      counts.push(guest.stats.issued - atStop);
    });
    expect(counts[0]).toBe(0);
    expect(counts[1]).toBeGreaterThan(2); // 1 ms a request at iodepth 1, 5 ms after cont
    expect(lines.filter((l) => /STOP|RESUME/.test(l))).toEqual(["STOP:undefined", "RESUME:undefined"]);
  });
});

describe("eject and drive_del", () => {
  it("eject takes the medium out: the guest's next requests fail with ENOMEDIUM, and a drive_add node closes", () => {
    const { q } = session(function* (q, qmp) {
      yield* driveAdd(qmp, "id=drive0,format=raw,file=d1,node-name=n0");
      const guest = startGuest(q.sim, { name: "guest", backend: q.graph.backends()[0], pattern: "sequential", requestBytes: 4096, intervalNs: 1_000_000, stopAtNs: 40_000_000 });
      yield sleep(10_000_000);
      expect(text(yield* qmp("eject", { device: "drive0" }))).toBe("ok");
      expect(q.graph.findNode("n0")).toBeUndefined();
      expect(text(yield* qmp("blockdev-del", { "node-name": "n0" }))).toBe("! Failed to find node with node-name='n0'");
      yield sleep(20_000_000);
      expect(guest.stats.failed).toBeGreaterThan(0);
      expect(guest.stats.completed).toBeGreaterThan(0);
    });
    expect(q.devices.get("d1")!.inFlight).toBe(0);
  });

  it("a job on the backend's node blocks eject and drive_del with QEMU's messages; drive_del of a node name is blockdev-del", () => {
    const out: string[] = [];
    session(function* (q, qmp) {
      yield* driveAdd(qmp, "id=drive0,format=raw,file=d1");
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "spare", file: "d3" });
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "drive0", target: "tgt", sync: "full", speed: MiB });
      out.push(text(yield* qmp("eject", { device: "drive0" })));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "drive_del drive0" })));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "drive_del tgt" })));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "drive_del spare" })));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "drive_del spare" })));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "nonsense" })));
      yield* qmp("job-cancel", { id: "j0" });
      yield* drained(q);
      out.push(text(yield* qmp("human-monitor-command", { "command-line": "drive_del drive0" })));
      out.push(text(yield* qmp("eject", { device: "drive0" })));
    });
    expect(out).toEqual([
      "! Node 'drive0' is busy: block device is in use by block job: backup",
      "Node 'drive0' is busy: block device is in use by block job: backup\r\n",
      "Node 'tgt' is busy: block device is in use by block job: backup\r\n",
      "",
      "Device 'spare' not found\r\n",
      "unknown command: 'nonsense'\r\n",
      "",
      "! Device 'drive0' not found",
    ]);
  });
});

describe("blockdev-del of a node still referenced", () => {
  it("QEMU 7.2's checks in order: a BlockBackend, an op blocker, not the monitor's, another reference", () => {
    const out: string[] = [];
    session(function* (q, qmp) {
      yield* backupAndMirror(qmp);
      const cbw = q.graph.nodes().find((n) => n.filterDriver === "copy-before-write")!.name;
      for (const n of ["src", "tgt", "msrc", "mtgt", cbw]) out.push(text(yield* qmp("blockdev-del", { "node-name": n })));
      yield* qmp("job-cancel", { id: "b0" });
      yield* qmp("job-cancel", { id: "m0" });
      yield* drained(q);
      out.push(text(yield* qmp("blockdev-del", { "node-name": "src" })));
    });
    expect(out).toEqual([
      "! Block device src is in use",
      "! Node 'tgt' is busy: block device is in use by block job: backup",
      "! Node 'msrc' is busy: block device is in use by block job: mirror",
      "! Node mtgt is in use",
      expect.stringMatching(/^! Node '#block\d+' is busy: block device is in use by block job: backup$/),
      "ok",
    ]);
  });
});

describe("blockdev-del of an intermediate commit's nodes, by the job's state (goldens/blockdev_del_concluded_job_nodes)", () => {
  function* chain(qmp: Qmp): Process<void> {
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "d1" });
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "mid", file: "d2", backing: "base" });
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d3", backing: "mid" });
  }
  const del = (qmp: Qmp, ...names: string[]) => (function* (): Process<string[]> {
    const out: string[] = [];
    for (const n of names) out.push(text(yield* qmp("blockdev-del", { "node-name": n })));
    return out;
  })();
  const BUSY = (n: string) => `! Node '${n}' is busy: block device is in use by block job: commit`;

  it("pending: its BlockBackends on mid and base; concluded: busy until job-dismiss frees the job (QEMU block_job_free)", () => {
    const out: Record<string, string[]> = {};
    session(function* (q, qmp) {
      yield* chain(qmp);
      yield* qmp("block-commit", { "job-id": "c0", device: "top", "top-node": "mid", "base-node": "base", "auto-finalize": false, "auto-dismiss": false });
      while (q.jm.get("c0")?.status !== "pending") yield sleep(1e6);
      out.pending = yield* del(qmp, "mid", "base", "top");
      yield* qmp("job-finalize", { id: "c0" });
      out.concluded = [...yield* del(qmp, "mid", "base", "top"), text(yield* qmp("block-stream", { "job-id": "x0", device: "top" })), q.jm.get("c0")!.status];
      yield* qmp("job-dismiss", { id: "c0" });
      out.dismissed = yield* del(qmp, "mid", "base", "top", "base");
    });
    expect(out).toEqual({
      pending: ["! Node mid is in use", "! Node base is in use", BUSY("top")],
      concluded: [BUSY("mid"), "! Node 'base' is busy: node is used as backing hd of 'top'", BUSY("top"), BUSY("top"), "concluded"],
      dismissed: ["ok", "! Node 'base' is busy: node is used as backing hd of 'top'", "ok", "ok"],
    });
  });

  it("cancelled: commit_abort drops the blockers at once, so the concluded job holds nothing", () => {
    let out: string[] = [];
    session(function* (q, qmp) {
      yield* chain(qmp);
      yield* qmp("block-commit", { "job-id": "k0", device: "top", "top-node": "mid", "base-node": "base", speed: 1, "auto-dismiss": false });
      yield* qmp("job-cancel", { id: "k0" });
      while (q.jm.get("k0")?.status !== "concluded") yield sleep(1e6);
      out = yield* del(qmp, "top", "mid", "base");
      yield* qmp("job-dismiss", { id: "k0" });
    });
    expect(out).toEqual(["ok", "ok", "ok"]);
  });
});

describe("blockdev-reopen", () => {
  it("drains the node: a running backup on it pauses and runs on, and its target still ends equal to the source", () => {
    const { lines, q } = session(function* (q, qmp) {
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "d1" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "tgt", file: "d2" });
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "src", target: "tgt", sync: "full", speed: 8 * MiB });
      yield sleep(300_000_000);
      expect(text(yield* qmp("blockdev-reopen", { options: [{ driver: "raw", "node-name": "src", file: "d1", "read-only": true }] }))).toBe("ok");
      yield* drained(q);
    });
    const at = lines.indexOf("> blockdev-reopen");
    expect(lines.slice(at, at + 4)).toEqual(["> blockdev-reopen", "j0:paused", "j0:running", "<"]);
    expect(lines).toContain("BLOCK_JOB_COMPLETED:j0");
    expect(q.graph.node("src").readOnly).toBe(true);
    expect(q.devices.get("d2")!.content(0, 16 * MiB).versions).toEqual(q.devices.get("d1")!.content(0, 16 * MiB).versions);
  });

  it("with an empty list QEMU 7.2 aborts: no reply, the process is gone, later commands get no reply either", () => {
    let replies = 0;
    const { q, result, transcript } = session(function* (_q, qmp) {
      yield* qmp("blockdev-add", { driver: "null-co", "node-name": "n", size: MiB });
      yield* qmp("blockdev-reopen", { options: [] });
      replies++;
    });
    expect(replies).toBe(0);
    expect(q.process.exit).toEqual({ kind: "crash", signal: "SIGABRT", reason: expect.stringContaining("bs_queue != NULL") });
    expect(transcript.at(-1)).toEqual({ exit: { signal: "SIGABRT" } });
    expect(result.outcome.kind).toBe("deadlock");
  });
});

describe("quit", () => {
  it("cancels every job newest first, answers last and exits; a later command gets no reply and no event is sent", () => {
    let after = 0;
    const { q, lines } = session(function* (q, qmp) {
      yield* backupAndMirror(qmp);
      yield sleep(100_000_000);
      yield* qmp("quit");
      yield* qmp("query-jobs");
      after++;
    });
    expect(after).toBe(0);
    expect(q.process.exit).toEqual({ kind: "quit" });
    expect(q.jm.jobs).toEqual([]);
    const at = lines.indexOf("> quit");
    expect(lines.slice(at)).toEqual([
      "> quit", "SHUTDOWN:undefined", "b0:paused", "m0:paused",
      "m0:running", "m0:aborting", "BLOCK_JOB_CANCELLED:m0", "m0:concluded", "m0:null",
      "b0:running", "b0:aborting", "BLOCK_JOB_CANCELLED:b0", "b0:concluded", "b0:null",
      "<", "<",
    ]);
    expect(q.monitor.transcript.at(-1)).toEqual({ exit: { code: 0 } });
  });
});

describe("node references and the close path", () => {
  it("a node closes when its last holder lets go, and lets go of children only it held", () => {
    session(function* (q, qmp) {
      yield* qmp("blockdev-add", { driver: "blkdebug", "node-name": "dbg", image: { driver: "raw", file: "d1" } });
      const inner = q.graph.node("dbg").file!;
      expect(inner.monitorOwned).toBe(false);
      yield* qmp("blockdev-del", { "node-name": "dbg" });
      expect(q.graph.findNode(inner.name)).toBeUndefined();
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "d2" });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d3", backing: "base" });
      expect(text(yield* qmp("blockdev-del", { "node-name": "base" }))).toBe("! Block device base is in use");
      yield* qmp("blockdev-del", { "node-name": "top" });
      expect(q.graph.findNode("base")?.parents()).toEqual([]); // the monitor still holds it
    });
  });
});

describe("block_resize", () => {
  it("a raw node on an image file grows and shrinks with its file and bitmaps; what is truncated is gone (goldens/block_resize_new_size)", () => {
    const out: string[] = [];
    const { q, result } = session(function* (q, qmp) {
      const img = q.addDevice({ name: "img", sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, sparse: true });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "r", file: "img" });
      yield* qmp("block-dirty-bitmap-add", { node: "r", name: "b" });
      out.push(text(yield* qmp("block_resize", { "node-name": "r", size: 8 * MiB })));
      out.push(String(q.graph.node("r").sizeBytes), String(img.sizeBytes));
      out.push(text(yield* qmp("human-monitor-command", { "command-line": 'qemu-io r "write 6M 64k"' })));
      out.push(String(img.isWritten(96)), String(q.graph.node("r").bitmap("b")!.dirtyBytes));
      out.push(text(yield* qmp("block_resize", { "node-name": "r", size: 2 * MiB })));
      out.push(String(q.graph.node("r").bitmap("b")!.dirtyBytes));
      out.push(text(yield* qmp("block_resize", { "node-name": "r", size: 8 * MiB })));
      out.push(String(img.isWritten(96)));
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual(["ok", String(8 * MiB), String(8 * MiB), "", "true", "65536", "ok", "0", "ok", "false"]);
  });

  it("what stays not modelled is refused as such, naming why: a disk, a size that is no whole number of clusters, shrinking under a BlockBackend", () => {
    const why = (device: { sparse?: boolean }, size: number, backend: boolean) => {
      const { result } = session(function* (q, qmp) {
        q.addDevice({ name: "img", sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, ...device });
        if (backend) yield* qmp("human-monitor-command", { "command-line": "drive_add 0 if=none,id=drive0,format=raw,file=img,node-name=r" });
        else yield* qmp("blockdev-add", { driver: "raw", "node-name": "r", file: "img" });
        yield* qmp("block_resize", backend ? { device: "drive0", size } : { "node-name": "r", size });
      });
      return result.outcome.kind === "failure" ? result.outcome.error : result.outcome.kind;
    };
    expect(why({}, 8 * MiB, false)).toMatch(/block_resize of node 'r' from 4194304 to 8388608 bytes: its device 'img' is a disk/);
    expect(why({ sparse: true }, 4 * MiB + 512, false)).toMatch(/no whole, non-zero number of its 65536-byte clusters/);
    expect(why({ sparse: true }, 2 * MiB, true)).toMatch(/from 4194304 to 2097152 bytes: shrinking under a BlockBackend/);
    expect(why({ sparse: true }, 8 * MiB, true)).toBe("ok"); // growing under one is modelled
  });

  it("the current size is accepted and changes nothing; another size of a node on a disk stops the run as not modelled, naming the node and both sizes", () => {
    const out: string[] = [];
    const { q, result } = session(function* (q, qmp) {
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "src", file: "d1" });
      out.push(text(yield* qmp("block_resize", { "node-name": "src", size: q.graph.node("src").sizeBytes })));
      yield* qmp("block_resize", { "node-name": "src", size: 32 * MiB });
      out.push("not reached");
    });
    expect(out).toEqual(["ok"]);
    expect(q.graph.node("src").sizeBytes).toBe(16 * MiB);
    expect(result.outcome).toMatchObject({ kind: "failure", error: expect.stringMatching(/not modelled by blocksim: block_resize of node 'src' from 16777216 to 33554432 bytes/) });
  });
});

describe("a commit after block_resize: the base grows to what is committed (goldens/block_resize_chain_jobs)", () => {
  type Q = Parameters<Parameters<typeof session>[0]>[0];
  /** An image file (sparse) of `sizeBytes`, 64 KiB clusters, instant. */
  const image = (q: Q, name: string, sizeBytes = 4 * MiB) =>
    q.addDevice({ name, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, sparse: true });
  const completed = (t: ReturnType<typeof session>["transcript"]) =>
    t.flatMap((e) => ("event" in e && e.event === "BLOCK_JOB_COMPLETED" ? [`${String(e.data.device)} len=${String(e.data.len)} offset=${String(e.data.offset)}${e.data.error ? ` ${String(e.data.error)}` : ""}`] : []));

  it("an intermediate commit of a grown top: len is top's size, the base and its bitmap grow, the write past its old end lands in it", () => {
    const out: unknown[] = [];
    const { result, transcript } = session(function* (q, qmp) {
      const base = image(q, "base");
      image(q, "top");
      image(q, "ov", 8 * MiB);
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "base" });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top", backing: "base" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top "write -P 0x22 1M 1M"' });
      yield* qmp("block-dirty-bitmap-add", { node: "base", name: "b" });
      out.push(text(yield* qmp("block_resize", { "node-name": "top", size: 8 * MiB })));
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top "write -P 0x33 6M 64k"' });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "ov", file: "ov", backing: null });
      yield* qmp("blockdev-snapshot", { node: "top", overlay: "ov" });
      out.push(text(yield* qmp("blockdev-add", { driver: "null-co", "node-name": "n8", size: 8 * MiB })));
      out.push(text(yield* qmp("blockdev-backup", { "job-id": "p", device: "base", target: "n8", sync: "full" })));
      out.push(text(yield* qmp("block-commit", { "job-id": "c", device: "ov", "top-node": "top", "base-node": "base" })));
      yield* drained(q);
      const node = q.graph.node("base");
      out.push(node.sizeBytes, base.sizeBytes, base.isWritten(96), base.isWritten(64), node.bitmap("b")!.dirtyBytes, node.bitmap("b")!.sizeBytes);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual(["ok", "ok", "! Source and target image have different sizes", "ok", 8 * MiB, 8 * MiB, true, false, MiB + 65536, 8 * MiB]);
    expect(completed(transcript)).toEqual([`c len=${8 * MiB} offset=${8 * MiB}`]);
  });

  it("an active commit of a grown top into a read-only base: reopened, grown before READY, the base is the 8 MiB active layer after the pivot", () => {
    const out: unknown[] = [];
    const { result, transcript } = session(function* (q, qmp) {
      const base = image(q, "base");
      image(q, "top");
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "base", "read-only": true });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top", backing: "base" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top "write -P 0x22 1M 1M"' });
      yield* qmp("block_resize", { "node-name": "top", size: 8 * MiB });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top "write -P 0x33 6M 64k"' });
      out.push(text(yield* qmp("block-commit", { "job-id": "c", device: "top" })));
      while (q.jm.jobs[0]?.status !== "ready") yield sleep(1_000_000);
      out.push(q.graph.node("base").sizeBytes, base.isWritten(96));
      out.push(text(yield* qmp("block-job-complete", { device: "c" })));
      yield* drained(q);
      const node = q.graph.node("base");
      out.push(node.readOnly, node.sizeBytes, base.isWritten(16), base.isWritten(64));
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual(["ok", 8 * MiB, true, "ok", false, 8 * MiB, true, false]);
    expect(completed(transcript)).toEqual([`c len=${MiB + 65536} offset=${MiB + 65536}`]);
  });

  it("a base that cannot grow (null-co) fails either commit in its run with 'Operation not supported'; a shrunk top leaves a bigger base as it is", () => {
    const out: unknown[] = [];
    const { result, transcript } = session(function* (q, qmp) {
      image(q, "top");
      image(q, "ov", 8 * MiB);
      image(q, "base2");
      image(q, "top2");
      yield* qmp("blockdev-add", { driver: "null-co", "node-name": "n", size: 4 * MiB });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top", backing: "n" });
      yield* qmp("block_resize", { "node-name": "top", size: 8 * MiB });
      out.push(text(yield* qmp("block-commit", { "job-id": "a", device: "top" })));
      yield* drained(q);
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "ov", file: "ov", backing: null });
      yield* qmp("blockdev-snapshot", { node: "top", overlay: "ov" });
      out.push(text(yield* qmp("block-commit", { "job-id": "i", device: "ov", "top-node": "top", "base-node": "n" })));
      yield* drained(q);
      out.push(q.graph.node("n").sizeBytes);
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base2", file: "base2" });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top2", file: "top2", backing: "base2" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top2 "write -P 0x22 1M 1M"' });
      yield* qmp("block_resize", { "node-name": "top2", size: 2 * MiB });
      yield* qmp("block-commit", { "job-id": "s", device: "top2" });
      while (q.jm.jobs[0]?.status !== "ready") yield sleep(1_000_000);
      yield* qmp("block-job-complete", { device: "s" });
      yield* drained(q);
      out.push(q.graph.node("base2").sizeBytes);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual(["ok", "ok", 4 * MiB, 4 * MiB]);
    expect(completed(transcript)).toEqual([
      "a len=0 offset=0 Operation not supported", `i len=${8 * MiB} offset=0 Operation not supported`, `s len=${MiB} offset=${MiB}`,
    ]);
  });

  it("a top of no whole number of clusters grows the base to its size, the partial last cluster copied", () => {
    const out: unknown[] = [];
    const { result, transcript } = session(function* (q, qmp) {
      const base = image(q, "base");
      image(q, "top", 4 * MiB + 512);
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "base" });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top", backing: "base" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io top "write -P 0x44 4194304 512"' });
      yield* qmp("block-commit", { "job-id": "c", device: "top" });
      while (q.jm.jobs[0]?.status !== "ready") yield sleep(1_000_000);
      yield* qmp("block-job-complete", { device: "c" });
      yield* drained(q);
      out.push(q.graph.node("base").sizeBytes, base.sizeBytes, base.clusters, base.isWritten(64));
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual([4 * MiB + 512, 4 * MiB + 512, 65, true]);
    expect(completed(transcript)).toEqual(["c len=512 offset=512"]);
  });

  it("a growth blocksim does not model stops the run at the command, naming why: a base on a disk, a partial last cluster that is written", () => {
    const why = (baseDevice: { sizeBytes: number; sparse: boolean; written: boolean }) => {
      const { result } = session(function* (q, qmp) {
        q.addDevice({ name: "base", sizeBytes: baseDevice.sizeBytes, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, sparse: baseDevice.sparse });
        image(q, "top", 8 * MiB);
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "base" });
        if (baseDevice.written) yield* qmp("human-monitor-command", { "command-line": `qemu-io base "write ${baseDevice.sizeBytes - 512} 512"` });
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top", backing: "base" });
        yield* qmp("block-commit", { "job-id": "c", device: "top" });
        while (q.jm.jobs[0]?.status !== "ready") yield sleep(1_000_000);
        yield* qmp("block-job-complete", { device: "c" });
        yield* drained(q);
      });
      return result.outcome.kind === "failure" ? result.outcome.error : result.outcome.kind;
    };
    expect(why({ sizeBytes: 4 * MiB, sparse: false, written: false })).toMatch(/block-commit growing base 'base' from 4194304 to 8388608 bytes: its device 'base' is a disk/);
    expect(why({ sizeBytes: 4 * MiB + 512, sparse: true, written: true })).toMatch(/its last 65536-byte cluster is partial and written/);
    expect(why({ sizeBytes: 4 * MiB + 512, sparse: true, written: false })).toBe("ok");
  });
});

describe("a stream over a backing layer shorter than the node streamed (goldens/stream_short_backing)", () => {
  type Q = Parameters<Parameters<typeof session>[0]>[0];
  const image = (q: Q, name: string, sizeBytes = 4 * MiB) =>
    q.addDevice({ name, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, sparse: true });
  const completed = (t: ReturnType<typeof session>["transcript"]) =>
    t.flatMap((e) => ("event" in e && e.event === "BLOCK_JOB_COMPLETED" ? [`${String(e.data.device)} len=${String(e.data.len)} offset=${String(e.data.offset)}`] : []));

  it("past the end of a short lower layer the chain reads as zeroes allocated there: a full stream copies them into the node", () => {
    const { result, transcript } = session(function* (q, qmp) {
      image(q, "a");
      image(q, "b", 8 * MiB);
      const c = image(q, "c", 8 * MiB);
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "a", file: "a" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io a "write 0 1M"' });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "b", file: "b", backing: "a" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io b "write 1M 1M"' });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "c", file: "c", backing: "b" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io c "write 2M 1M"' });
      yield* qmp("blockdev-add", { driver: "null-co", "node-name": "t8", size: 8 * MiB });
      // how far c's image file has been written (query-blockstats: the parent of c's entry is its file node)
      const fileHighest = function* (): Process<number> {
        const r = (yield* qmp("query-blockstats", { "query-nodes": true })) as { return: { "node-name"?: string; parent?: { stats: { wr_highest_offset: number } } }[] };
        return r.return.find((e) => e["node-name"] === "c")!.parent!.stats.wr_highest_offset;
      };
      const before = yield* fileHighest();
      yield* qmp("block-stream", { "job-id": "s", device: "c" });
      yield* drained(q);
      // c now holds a's and b's data and, from 4 MiB on (past a's end), the zeroes; 3-4 MiB stays unallocated
      expect([16, 32, 48, 64, 127].map((cl) => c.isWritten(cl))).toEqual([true, true, false, true, true]);
      // the zeroes went as write-zeroes (zero clusters): only the 2 MiB of data was appended to the file
      expect((yield* fileHighest()) - before).toBe(2 * MiB);
      yield* qmp("blockdev-backup", { "job-id": "k", device: "c", target: "t8", sync: "top" });
      yield* drained(q);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(completed(transcript)).toEqual([`s len=${8 * MiB} offset=${8 * MiB}`, `k len=${7 * MiB} offset=${7 * MiB}`]);
  });

  it("commits count a short middle layer's zeroes past its end as allocated there: an active commit's len, what an intermediate commit copies (goldens/commit_short_layer)", () => {
    const ready: unknown[] = [];
    const { result, transcript } = session(function* (q, qmp) {
      for (const [name, size] of [["x0", 4], ["x1", 4], ["x2", 8], ["y0", 4], ["y1", 4], ["y2", 8], ["y3", 8]] as const) image(q, name, size * MiB);
      for (const p of ["x", "y"]) {
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": `${p}0`, file: `${p}0` });
        yield* qmp("human-monitor-command", { "command-line": `qemu-io ${p}0 "write 0 1M"` });
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": `${p}1`, file: `${p}1`, backing: `${p}0` });
        yield* qmp("human-monitor-command", { "command-line": `qemu-io ${p}1 "write 1M 1M"` });
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": `${p}2`, file: `${p}2`, backing: `${p}1` });
        yield* qmp("human-monitor-command", { "command-line": `qemu-io ${p}2 "write 2M 1M"` });
      }
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "y3", file: "y3", backing: "y2" });
      yield* qmp("blockdev-add", { driver: "null-co", "node-name": "t8", size: 8 * MiB });
      yield* qmp("block-commit", { "job-id": "a", device: "x2" });
      while (q.jm.jobs[0]?.status !== "ready") yield sleep(1_000_000);
      ready.push(q.jm.jobs[0].progressTotal);
      yield* qmp("block-job-complete", { device: "a" });
      yield* drained(q);
      yield* qmp("blockdev-backup", { "job-id": "ka", device: "x0", target: "t8", sync: "top" });
      yield* drained(q);
      yield* qmp("block-commit", { "job-id": "i", device: "y3", "top-node": "y2", "base-node": "y0" });
      yield* drained(q);
      yield* qmp("blockdev-backup", { "job-id": "ki", device: "y0", target: "t8", sync: "top" });
      yield* drained(q);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(ready).toEqual([6 * MiB]);
    expect(completed(transcript)).toEqual([`a len=${6 * MiB} offset=${6 * MiB}`, `ka len=${7 * MiB} offset=${7 * MiB}`, `i len=${8 * MiB} offset=${8 * MiB}`, `ki len=${7 * MiB} offset=${7 * MiB}`]);
  });

  it("a stream of an overlay grown past its backing finishes early at the backing's end instead of stopping the run", () => {
    const { result, transcript } = session(function* (q, qmp) {
      image(q, "p0");
      image(q, "p1");
      const p2 = image(q, "p2");
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "p0", file: "p0" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io p0 "write 0 1M"' });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "p1", file: "p1", backing: "p0" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io p1 "write 1M 1M"' });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "p2", file: "p2", backing: null });
      yield* qmp("blockdev-snapshot", { node: "p1", overlay: "p2" });
      expect(text(yield* qmp("block_resize", { "node-name": "p1", size: 8 * MiB }))).toBe("! Device '(null)' is in use");
      expect(text(yield* qmp("block_resize", { "node-name": "p2", size: 8 * MiB }))).toBe("ok");
      yield* qmp("blockdev-add", { driver: "null-co", "node-name": "t8", size: 8 * MiB });
      yield* qmp("block-stream", { "job-id": "s", device: "p2", "base-node": "p0" });
      yield* drained(q);
      expect([0, 16, 63, 64, 127].map((cl) => p2.isWritten(cl))).toEqual([false, true, false, false, false]);
      yield* qmp("blockdev-backup", { "job-id": "k", device: "p2", target: "t8", sync: "top" });
      yield* drained(q);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(completed(transcript)).toEqual([`s len=${8 * MiB} offset=${8 * MiB}`, `k len=${MiB} offset=${MiB}`]);
  });
});

describe("a qcow2 image file's layout after write-zeroes (goldens/stream_zero_clusters)", () => {
  it("zero clusters made before the first data write take no data cluster: the data lands after the metadata and the L2 table", () => {
    const out: number[] = [];
    const { result } = session(function* (q, qmp) {
      q.addDevice({ name: "q", sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 8, sparse: true });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "q", file: "q" });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io q "write -z 0 1M"' });
      yield* qmp("human-monitor-command", { "command-line": 'qemu-io q "write -P 0x11 1M 64k"' });
      const r = (yield* qmp("query-blockstats", { "query-nodes": true })) as { return: { "node-name"?: string; stats: { wr_highest_offset: number }; parent?: { stats: { wr_highest_offset: number } } }[] };
      const e = r.return.find((x) => x["node-name"] === "q")!;
      out.push(e.stats.wr_highest_offset, e.parent!.stats.wr_highest_offset);
    });
    expect(result.outcome.kind).toBe("ok");
    expect(out).toEqual([MiB + 65536, 6 * 65536]); // four metadata clusters, the L2 table, then the data cluster
  });
});
