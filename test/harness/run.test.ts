import { describe, expect, it } from "vitest";
import { run } from "../../sim/harness/run.js";
import { createWorld, DEVICE_DEFAULTS } from "../../sim/harness/world.js";
import { UnknownProfileError } from "../../sim/mgmt/profiles.js";
import { RandomStrategy, sleep } from "../../sim/scheduler/index.js";

const MiB = 1 << 20;
const spec = (profile = "current") => ({
  profile,
  devices: [{ name: "a.img", sizeBytes: 4 * MiB, latencyNs: 100_000, data: [{ offset: 0, length: 4 * MiB }] }, { name: "b.img", sizeBytes: 4 * MiB }],
  nodes: [{ driver: "raw", "node-name": "src", file: "a.img" }, { driver: "raw", "node-name": "tgt", file: "b.img" }],
});

describe("createWorld", () => {
  it("builds devices with the one set of defaults, and refuses an unknown profile by type", () => {
    const w = createWorld(spec());
    const b = w.qemu.devices.get("b.img")!;
    expect(b.queueDepth).toBe(DEVICE_DEFAULTS.queueDepth);
    expect(b.clusterSizeBytes).toBe(DEVICE_DEFAULTS.clusterSizeBytes);
    expect(() => createWorld(spec("no-such-profile"))).toThrow(UnknownProfileError);
  });

  it("gives an image file a drive-backup creates its source device's timing, or the one set of defaults when the source has no device", () => {
    const w = createWorld({ ...spec(), nodes: [...spec().nodes, { driver: "null-co", "node-name": "nul", size: 4 * MiB }] });
    const replies: unknown[] = [];
    w.sim.spawn("client", (function* () {
      yield* w.setup();
      for (const [device, target] of [["src", "copy-of-a.img"], ["nul", "copy-of-null.img"]]) {
        replies.push(yield* w.qemu.monitor.execute({ execute: "drive-backup", arguments: { "job-id": `b-${device}`, device, target, sync: "full", format: "raw" } }));
      }
    })());
    w.sim.run();
    expect(replies).toEqual([{ return: {} }, { return: {} }]);
    const a = w.qemu.devices.get("a.img")!, copyOfA = w.qemu.devices.get("copy-of-a.img")!, copyOfNull = w.qemu.devices.get("copy-of-null.img")!;
    expect([copyOfA.readLatencyNs, copyOfA.writeLatencyNs, copyOfA.queueDepth]).toEqual([a.readLatencyNs, a.writeLatencyNs, a.queueDepth]);
    expect([copyOfNull.readLatencyNs, copyOfNull.writeLatencyNs, copyOfNull.bandwidthBytesPerSec, copyOfNull.queueDepth])
      .toEqual([DEVICE_DEFAULTS.latencyNs, DEVICE_DEFAULTS.latencyNs, DEVICE_DEFAULTS.bandwidthBytesPerSec, DEVICE_DEFAULTS.queueDepth]);
  });

  it("accepts a management-layer profile (one catalog)", () => {
    expect(createWorld(spec("info-modify-job")).profile).toBe("info-modify-job");
  });

  it("reports a node that cannot be added as a setup failure, and runs nothing else", () => {
    let ran = false;
    const r = run({ ...spec(), nodes: [{ driver: "raw", "node-name": "x", file: "missing.img" }] }, { *safety() { ran = true; } });
    expect(r.setupFailures[0]).toMatch(/^node "x": blockdev-add failed/);
    expect(ran).toBe(false);
  });
});

describe("the run loop", () => {
  const pausedBackup = { *safety(w: ReturnType<typeof createWorld>) {
    yield* w.qemu.monitor.execute({ execute: "blockdev-backup", arguments: { "job-id": "j0", device: "src", target: "tgt", sync: "full" } });
    yield* w.qemu.monitor.execute({ execute: "job-pause", arguments: { id: "j0" } });
    yield sleep(1_000_000);
  } };

  it("without heal, a user-paused job stays; with heal, the liveness phase resumes it and it concludes", () => {
    const noHeal = run(spec(), pausedBackup);
    expect(noHeal.world.qemu.jm.get("j0")?.status).toBe("paused");
    const healed = run(spec(), { ...pausedBackup, heal: true });
    expect(healed.world.qemu.jm.jobs).toEqual([]);
    expect(healed.violations).toEqual([]);
    expect(healed.outcome.kind).toBe("ok");
  });

  it("the liveness phase acts when a job's status changes, not on a timer: a mirror is completed the instant it is ready", () => {
    const readyAt: number[] = [], sent: { execute: string; at: number }[] = [];
    let world: ReturnType<typeof createWorld> | undefined;
    const r = run(spec(), {
      heal: true,
      *safety(w) {
        world = w;
        w.qemu.jm.onEvent((e) => { if (e.event === "BLOCK_JOB_READY") readyAt.push(w.sim.now); });
        yield* w.qemu.monitor.execute({ execute: "blockdev-mirror", arguments: { "job-id": "m0", device: "src", target: "tgt", sync: "full" } });
      },
      onHealCommand: (execute) => sent.push({ execute, at: world!.sim.now }),
    });
    expect(r.violations).toEqual([]);
    expect(readyAt.length).toBe(1);
    expect(sent.map((c) => c.execute)).toEqual(["job-complete"]);
    expect(sent[0].at).toBe(readyAt[0]);
  });

  it("the same spec and driver give the same trace hash; the strategy object decides the choices", () => {
    const a = run({ ...spec(), strategy: new RandomStrategy(3) }, { ...pausedBackup, heal: true });
    const b = run({ ...spec(), strategy: new RandomStrategy(3) }, { ...pausedBackup, heal: true });
    expect(b.hash).toBe(a.hash);
    expect(b.choices).toEqual(a.choices);
  });

  it("a QEMU that crashes (blockdev-reopen of an empty list) ends the run as qemu-crash, with no heal and no liveness violation", () => {
    const healed: string[] = [];
    const r = run(spec(), { heal: true, onHealCommand: (execute) => healed.push(execute), *safety(w) {
      yield* w.qemu.monitor.execute({ execute: "blockdev-backup", arguments: { "job-id": "j0", device: "src", target: "tgt", sync: "full", speed: 1 << 20 } });
      yield sleep(1_000_000);
      yield* w.qemu.monitor.execute({ execute: "blockdev-reopen", arguments: { options: [] } });
    } });
    expect(r.outcome).toEqual({ kind: "qemu-crash", timeNs: expect.any(Number), signal: "SIGABRT", reason: expect.stringContaining("bs_queue != NULL") });
    expect(r.violations.map((v) => v.invariant)).not.toContain("jobs-conclude");
    expect(healed).toEqual([]); // nothing is sent to a process that is gone
  });
});
