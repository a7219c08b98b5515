import { describe, expect, it } from "vitest";
import {
  ABORT_POLL_INTERVAL_NS, destroy, migrateWithStorage, blockCommit, blockCopy, blockJobAbort, blockJobSetSpeed, blockPull, Domain, getBlockJobInfo, VirError,
  type BlockJobInfo, type MgmtBehaviour,
} from "../../sim/mgmt/index.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import { Scheduler, sleep, type Process } from "../../sim/scheduler/index.js";
import { MiB, ms, runOk, s } from "./helpers.js";

/** A VM with disk vda (drive0 on disk0) and a target device slow.img. */
function makeVm(opts: { behaviour?: Partial<MgmtBehaviour>; targetBandwidthBytesPerSec?: number; chain?: boolean } = {}) {
  const sim = new Scheduler({ seed: 1, maxTimeNs: 300 * s });
  const q = createQemu(sim);
  const dev = (name: string, bw = 0) =>
    q.addDevice({ name, sizeBytes: 16 * MiB, clusterSizeBytes: 65536, readLatencyNs: 100_000, writeLatencyNs: 100_000, bandwidthBytesPerSec: bw, queueDepth: 8 });
  dev("disk.img");
  dev("base.img");
  dev("slow.img", opts.targetBandwidthBytesPerSec ?? 0);
  const dom = new Domain(q, { disks: [{ target: "vda", device: "drive0" }], behaviour: opts.behaviour ?? {} });
  function* boot(): Process<void> {
    const add = (a: Record<string, unknown>) => q.monitor.execute({ execute: "blockdev-add", arguments: a });
    if (opts.chain) {
      yield* add({ driver: "qcow2", "node-name": "base", file: "base.img", backing: null });
      yield* add({ driver: "qcow2", "node-name": "disk0", file: "disk.img", backing: "base" });
    } else {
      yield* add({ driver: "raw", "node-name": "disk0", file: "disk.img" });
    }
    q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node("disk0") });
  }
  /** Runs `body` after boot as client "app"; returns what it returned. */
  function run<T>(body: () => Process<T>): { result: T | undefined; error: VirError | undefined } {
    let result: T | undefined;
    let error: VirError | undefined;
    sim.spawn("app", (function* () {
      yield* boot();
      try {
        result = yield* body();
      } catch (e) {
        if (!(e instanceof VirError)) throw e;
        error = e;
      }
    })());
    runOk(sim);
    return { result, error };
  }
  return { sim, q, dom, run };
}

describe("virDomainGetBlockJobInfo", () => {
  it("returns null (libvirt: 0) when QEMU lists no job on the disk", () => {
    const { dom, run } = makeVm();
    const { result, error } = run(() => getBlockJobInfo(dom, "app", "vda"));
    expect(error).toBeUndefined();
    expect(result).toBeNull();
  });

  it("reports a copy job's type, progress and bandwidth in MiB/s after set-speed", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 1 * MiB });
    const { result } = run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      yield* blockJobSetSpeed(dom, "app", "vda", 3);
      yield sleep(3 * s);
      const info = yield* getBlockJobInfo(dom, "app", "vda");
      yield* blockJobAbort(dom, "app", "vda", { async: true });
      return info;
    });
    expect(result).toMatchObject({ type: "copy", bandwidthMiB: 3, end: 16 * MiB } satisfies Partial<BlockJobInfo>);
    expect(result!.cur).toBeGreaterThan(0);
    expect(result!.cur).toBeLessThan(16 * MiB);
  });

  it("an unknown disk is refused with libvirt's text", () => {
    const { dom, run } = makeVm();
    const { error } = run(() => getBlockJobInfo(dom, "app", "vdz"));
    expect(error?.message).toBe("invalid argument: No device found for specified path");
  });

  it("takes a MODIFY job under info-modify-job and a QUERY job under the fix", () => {
    for (const [job, expected] of [["modify", "modify"], ["query", "query"]] as const) {
      const { dom, run } = makeVm({ behaviour: { blockJobInfoJob: job } });
      run(() => getBlockJobInfo(dom, "app", "vda"));
      expect(dom.jobWaits.map((w) => w.kind)).toEqual([expected]);
    }
  });
});

describe("virDomainBlockJobAbort", () => {
  it("without a job: 'No active operation on device' (QMP DeviceNotActive)", () => {
    const { dom, run } = makeVm();
    const { error } = run(() => blockJobAbort(dom, "app", "vda"));
    expect(error?.message).toBe("Requested operation is not valid: No active operation on device: drive0");
    expect(dom.holders).toEqual([]);
  });

  it("synchronous (polling): returns only once QEMU no longer lists the job, on the 50 ms poll grid, holding MODIFY throughout", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 2 * MiB });
    run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      yield sleep(1 * s);
      yield* blockJobAbort(dom, "app", "vda");
    });
    const ev = dom.events.find((e) => e.status === "cancelled")!;
    const abort = dom.calls.find((c) => c.call.api === "virDomainBlockJobAbort")!;
    expect(ev.timeNs - abort.call.startNs).toBeGreaterThan(1 * s); // the cancel itself takes seconds on the slow target
    expect(abort.endNs).toBeGreaterThanOrEqual(ev.timeNs);
    expect(abort.endNs - ev.timeNs).toBeLessThanOrEqual(ABORT_POLL_INTERVAL_NS + 2 * ms);
    const hold = dom.holds.find((h) => h.call.id === abort.call.id)!;
    expect(hold.kind).toBe("modify");
    expect(hold.toNs).toBe(abort.endNs);
    expect(hold.fromNs).toBe(abort.call.startNs);
  });

  it("synchronous (event, libvirt-1.2.17): returns at the instant the cancel event is handled", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 2 * MiB, behaviour: { syncAbortWait: "event" } });
    run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      yield sleep(1 * s);
      yield* blockJobAbort(dom, "app", "vda");
    });
    const ev = dom.events.find((e) => e.status === "cancelled")!;
    const abort = dom.calls.find((c) => c.call.api === "virDomainBlockJobAbort")!;
    expect(abort.endNs).toBe(ev.timeNs);
    expect(dom.disks[0]!.mirror).toBeNull();
  });

  it("ABORT_ASYNC returns after one round trip; the event comes later", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 2 * MiB });
    run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      yield sleep(1 * s);
      yield* blockJobAbort(dom, "app", "vda", { async: true });
    });
    const abort = dom.calls.find((c) => c.call.api === "virDomainBlockJobAbort")!;
    expect(abort.latencyNs).toBe(1 * ms);
    expect(dom.events.find((e) => e.status === "cancelled")!.timeNs).toBeGreaterThan(abort.endNs + 1 * s);
  });

  it("a second abort while the first is ending is refused: 'another job on disk is still being ended'", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 2 * MiB });
    const { error } = run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      yield sleep(1 * s);
      yield* blockJobAbort(dom, "app", "vda", { async: true });
      yield* blockJobAbort(dom, "app", "vda", { async: true });
    });
    expect(error?.message).toBe("Requested operation is not valid: another job on disk 'vda' is still being ended");
  });

  it("pivot: refused without a copy job, refused before the copy is ready, done after", () => {
    {
      const { dom, run } = makeVm();
      expect(run(() => blockJobAbort(dom, "app", "vda", { pivot: true })).error?.message)
        .toBe("Requested operation is not valid: pivot of disk 'vda' requires an active copy job");
    }
    {
      const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 1 * MiB });
      const { error } = run(function* () {
        yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
        try {
          yield* blockJobAbort(dom, "app", "vda", { pivot: true });
        } finally {
          yield* blockJobAbort(dom, "app", "vda", { async: true });
        }
      });
      expect(error?.message).toBe("block copy still active: disk 'vda' not ready for pivot yet");
    }
    {
      const { dom, run } = makeVm();
      run(function* () {
        yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
        // As `virsh blockjob --wait` does: poll until the copy has caught up.
        for (;;) {
          const info = yield* getBlockJobInfo(dom, "app", "vda");
          if (info && info.cur === info.end) break;
          yield sleep(500 * ms);
        }
        yield* blockJobAbort(dom, "app", "vda", { pivot: true });
      });
      expect(dom.events.map((e) => e.status)).toEqual(["ready", "completed"]);
      const abort = dom.calls.find((c) => c.call.api === "virDomainBlockJobAbort")!;
      expect(abort.ok).toBe(true);
      expect(abort.endNs).toBeGreaterThanOrEqual(dom.events[1]!.timeNs);
    }
  });
});

describe("the block job event handler (qemuProcessHandleBlockJob, no job, vm lock only)", () => {
  it("misses a READY that arrives during the drive-mirror round trip (v1.2.9 sets disk->mirror after ExitMonitor); GetBlockJobInfo's snooping recovers it", () => {
    const { dom, run } = makeVm();
    const states: string[] = [];
    run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      states.push(dom.disks[0]!.mirrorState);
      yield* getBlockJobInfo(dom, "app", "vda");
      states.push(dom.disks[0]!.mirrorState);
      yield* blockJobAbort(dom, "app", "vda");
    });
    const ready = dom.events.find((e) => e.status === "ready")!;
    const copy = dom.calls.find((c) => c.call.api === "virDomainBlockRebase")!;
    expect(ready.timeNs).toBeLessThan(copy.endNs);
    expect(states).toEqual(["none", "ready"]);
  });
});

describe("starting jobs", () => {
  it("a second job on a disk with a copy job: BLOCK_COPY_ACTIVE", () => {
    const { dom, run } = makeVm({ targetBandwidthBytesPerSec: 1 * MiB });
    const { error } = run(function* () {
      yield* blockCopy(dom, "app", "vda", { dest: "slow.img", reuseExt: true });
      try {
        yield* blockPull(dom, "app", "vda");
      } finally {
        yield* blockJobAbort(dom, "app", "vda", { async: true });
      }
    });
    expect(error?.message).toBe("block copy still active: disk 'vda' already in active block job");
  });

  it("block pull sends block-stream with the bandwidth in bytes/s, and its end is a pull event", () => {
    const { q, dom, run } = makeVm({ chain: true });
    run(() => blockPull(dom, "app", "vda", { bandwidthMiB: 8 }));
    expect(q.monitor.transcript).toContainEqual({ cmd: "block-stream", args: { device: "drive0", "job-id": "drive0", speed: 8 * MiB } });
    expect(dom.events.at(-1)).toMatchObject({ disk: "vda", type: "pull", status: "completed" });
  });

  it("block commit: the active layer needs the ACTIVE flag; with it the job is an active commit", () => {
    {
      const { dom, run } = makeVm({ chain: true });
      expect(run(() => blockCommit(dom, "app", "vda", { base: "base" })).error?.message)
        .toBe("invalid argument: commit of 'vda' active layer requires active flag");
    }
    const { dom, run } = makeVm({ chain: true });
    const { result } = run(function* () {
      yield* blockCommit(dom, "app", "vda", { base: "base", active: true });
      const info = yield* getBlockJobInfo(dom, "app", "vda");
      yield* blockJobAbort(dom, "app", "vda");
      return info;
    });
    expect(result?.type).toBe("active-commit");
    expect(dom.disks[0]!.blockJobActive).toBe(false);
  });

  it("QEMU's refusals come back as libvirt errors naming the command", () => {
    const { dom, run } = makeVm();
    const { error } = run(() => blockCopy(dom, "app", "vda", { dest: "nowhere.img", reuseExt: true }));
    expect(error?.message).toBe("internal error: unable to execute QEMU command 'drive-mirror': Could not open 'nowhere.img': No such file or directory");
  });
});

describe("storage migration (MIGRATION_OUT async job)", () => {
  it("copies each disk under nested jobs, polling every 500 ms, then cancels the copies and frees the domain", () => {
    const { q, dom, run } = makeVm({ targetBandwidthBytesPerSec: 8 * MiB });
    run(() => migrateWithStorage(dom, "app", { dests: { vda: "slow.img" }, memoryPhaseNs: 1 * s }));
    const m = dom.calls.find((c) => c.call.api === "virDomainMigrate")!;
    expect(m.ok).toBe(true);
    expect(m.latencyNs).toBeGreaterThan(3 * s); // 16 MiB at 8 MiB/s, then 1 s of memory
    expect(q.monitor.transcript).toContainEqual({ cmd: "drive-mirror", args: { device: "drive0", "job-id": "drive0", target: "slow.img", sync: "full", mode: "existing" } });
    expect(dom.jobWaits.filter((w) => w.kind === "async-nested").length).toBeGreaterThan(20);
    expect(dom.asyncJob).toBeNull();
    expect(q.jm.jobs).toEqual([]);
    expect(dom.modelErrors).toEqual([]);
  });

  it("a destroy during it (DESTROY is in every mask) makes it fail and still frees the async slot", () => {
    const { sim, q, dom, run } = makeVm({ targetBandwidthBytesPerSec: 1 * MiB });
    sim.spawn("admin", (function* () {
      yield sleep(2 * s);
      yield* destroy(dom, "admin");
      // The simulated QEMU is not killed by destroy (the domain only turns inactive): stop its copy by hand.
      yield* q.monitor.execute({ execute: "block-job-cancel", arguments: { device: "drive0", force: true } });
    })());
    const { error } = run(() => migrateWithStorage(dom, "app", { dests: { vda: "slow.img" }, memoryPhaseNs: 1 * s }));
    expect(error?.message).toBe("operation failed: monitor connection closed (domain is not running)");
    expect(dom.calls.find((c) => c.call.api === "virDomainDestroy")!.jobWaitNs).toBe(0);
    expect(dom.asyncJob).toBeNull();
    expect(dom.modelErrors).toEqual([]);
  });
});
