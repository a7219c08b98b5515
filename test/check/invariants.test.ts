import { describe, expect, it } from "vitest";
import { startGuest } from "../../sim/block/index.js";
import { checkRun, formatViolation, INVARIANTS, invariantByName, listInvariants, type CheckViolation } from "../../sim/check/index.js";
import { createQemu, type Qemu } from "../../sim/qmp/qemu.js";
import type { Behaviour } from "../../sim/qmp/profiles.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { RandomStrategy, Scheduler, sleep, type Process, type Strategy } from "../../sim/scheduler/index.js";
import { createBlockJob, type JobNodes } from "../../sim/jobs/block-job.js";
import type { StreamDriver } from "../../sim/jobs/drivers/stream.js";
import type { Job } from "../../sim/jobs/job.js";
import { runModel, type FuzzScenario } from "../../sim/fuzz/index.js";

const MiB = 1 << 20;
type Qmp = (execute: string, args?: Record<string, unknown>) => Process<QmpResponse>;

/** A simulated QEMU with nodes src/tgt/other/spare on 16 MiB devices (and a spare device d5), all invariants attached, and a client script. */
function checked(script: (q: Qemu, qmp: Qmp) => Process, opts: { behaviour?: Partial<Behaviour>; strategy?: Strategy; maxTimeNs?: number; invariants?: string[] } = {}) {
  const sim = new Scheduler({ maxTimeNs: opts.maxTimeNs ?? 60e9, maxSteps: 5_000_000, ...(opts.strategy ? { strategy: opts.strategy, seed: 1 } : {}) });
  const q = createQemu(sim, opts.behaviour ?? {});
  for (const name of ["d1", "d2", "d3", "d4", "d5"]) {
    q.addDevice({ name, sizeBytes: 16 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1_000_000, writeLatencyNs: 1_000_000, bandwidthBytesPerSec: 0, queueDepth: 8 });
  }
  const qmp: Qmp = (execute, args) => q.monitor.execute(args ? { execute, arguments: args } : { execute });
  const check = checkRun(q, opts.invariants ?? INVARIANTS);
  sim.spawn("client", (function* (): Process {
    for (const [name, file] of [["src", "d1"], ["tgt", "d2"], ["other", "d3"], ["spare", "d4"]]) yield* qmp("blockdev-add", { driver: "raw", "node-name": name, file });
    yield* script(q, qmp);
  })());
  const result = sim.run();
  const violations = check.finish(result);
  return { q, result, violations, names: [...new Set(violations.map((v) => v.invariant))] };
}

function* untilNoJobs(q: Qemu): Process<void> {
  while (q.jm.jobs.length > 0) yield sleep(1_000_000);
}

function* untilStatus(q: Qemu, id: string, status: string): Process<void> {
  while (q.jm.get(id)?.status !== status) yield sleep(100_000);
}

const guest = (q: Qemu, node: string) =>
  startGuest(q.sim, {
    name: "guest", backend: q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node(node), queueWhenDrained: true }),
    pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 2, intervalNs: { minNs: 0, maxNs: 2_000_000 }, stopAtNs: 400_000_000,
  });

const show = (vs: CheckViolation[]) => vs.map(formatViolation).join("\n");

describe("the invariant catalog", () => {
  it("every invariant has a unique kebab-case name and a one-line description", () => {
    const names = INVARIANTS.map((i) => i.name);
    expect(new Set(names).size).toBe(names.length);
    for (const i of listInvariants()) {
      expect(i.name).toMatch(/^[a-z]+(-[a-z]+)*$/);
      expect(i.description).not.toContain("\n");
      expect(i.description.length).toBeGreaterThan(20);
    }
  });

  it("an unknown name is refused with the list of known ones", () => {
    expect(() => invariantByName("no-such")).toThrow(/unknown invariant 'no-such'; known invariants: legal-transitions, /);
  });

  it("a checked run has the same trace hash as an unchecked one", () => {
    const run = (withCheck: boolean) => {
      const sim = new Scheduler({ seed: 3, strategy: new RandomStrategy(3) });
      const q = createQemu(sim);
      q.addDevice({ name: "d1", sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1e6, writeLatencyNs: 1e6, bandwidthBytesPerSec: 0, queueDepth: 8 });
      q.addDevice({ name: "d2", sizeBytes: 4 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1e6, writeLatencyNs: 1e6, bandwidthBytesPerSec: 0, queueDepth: 8 });
      const c = withCheck ? checkRun(q) : undefined;
      sim.spawn("client", (function* (): Process {
        yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "raw", "node-name": "a", file: "d1" } });
        yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "raw", "node-name": "b", file: "d2" } });
        yield* q.monitor.execute({ execute: "blockdev-backup", arguments: { "job-id": "j", device: "a", target: "b", sync: "full" } });
        yield* untilNoJobs(q);
      })());
      const r = sim.run();
      c?.finish(r);
      return r.hash;
    };
    expect(run(true)).toBe(run(false));
  });
});

describe("healthy runs break no invariant", () => {
  it("backup under a guest, to completion", () => {
    const { violations, q } = checked(function* (q, qmp) {
      guest(q, "src");
      yield sleep(5_000_000);
      yield* qmp("blockdev-backup", { "job-id": "b0", device: "drive0", target: "tgt", sync: "full" });
      yield* untilNoJobs(q);
    });
    expect(show(violations)).toBe("");
    expect(q.jm.events.some((e) => e.event === "BLOCK_JOB_COMPLETED")).toBe(true);
  });

  it("mirror to ready under a guest, then complete (pivot)", () => {
    const { violations, result } = checked(function* (q, qmp) {
      guest(q, "src");
      yield* qmp("blockdev-mirror", { "job-id": "m0", device: "drive0", target: "tgt", sync: "full" });
      yield* untilStatus(q, "m0", "ready");
      yield sleep(3_000_000);
      yield* qmp("block-job-complete", { device: "m0" });
      yield* untilNoJobs(q);
    });
    expect(show(violations)).toBe("");
    expect(result.outcome.kind).toBe("ok");
  });

  it("grouped transaction of two backups, pause/resume, set-speed, and a cancel, under random schedules", () => {
    for (const seed of [1, 2, 3]) {
      const { violations } = checked(function* (q, qmp) {
        guest(q, "src");
        yield* qmp("transaction", {
          actions: [
            { type: "blockdev-backup", data: { "job-id": "j1", device: "drive0", target: "tgt", sync: "full" } },
            { type: "blockdev-backup", data: { "job-id": "j2", device: "other", target: "spare", sync: "full", speed: 4 * MiB } },
          ],
          properties: { "completion-mode": "grouped" },
        });
        yield sleep(2_000_000);
        yield* qmp("job-pause", { id: "j1" });
        yield sleep(5_000_000);
        yield* qmp("job-resume", { id: "j1" });
        yield* qmp("block-job-set-speed", { device: "j2", speed: 0 });
        yield* untilNoJobs(q);
        yield* qmp("blockdev-backup", { "job-id": "j3", device: "other", target: "spare", sync: "full", speed: MiB });
        yield sleep(3_000_000);
        yield* qmp("job-cancel", { id: "j3" });
        yield* untilNoJobs(q);
      }, { strategy: new RandomStrategy(seed) });
      expect(show(violations), `seed ${seed}`).toBe("");
    }
  });
});

describe("each invariant fires when provoked", () => {
  it("legal-transitions: an illegal status change (the run fails with IllegalTransition)", () => {
    const { names, violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield sleep(1_000_000);
      q.jm.get("j")!.transition("created");
    }, { invariants: ["legal-transitions"] });
    expect(names).toEqual(["legal-transitions"]);
    expect(violations[0].detail).toMatch(/illegal state transition running -> created/);
  });

  it("pause-count-non-negative: a resume without a pause", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield sleep(1_000_000);
      q.jm.get("j")!.resume();
      yield* qmp("job-cancel", { id: "j" });
      yield* untilNoJobs(q);
    }, { invariants: ["pause-count-non-negative"] });
    expect(violations).toMatchObject([{ invariant: "pause-count-non-negative", job: "j", detail: "resume with pause_count 0" }]);
  });

  it("no-use-after-free: a verb on a freed job", () => {
    const { names } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full" });
      const job = q.jm.get("j")!;
      yield* untilNoJobs(q);
      job.pause();
    }, { invariants: ["no-use-after-free"] });
    expect(names).toEqual(["no-use-after-free"]);
  });

  it("job-io-while-paused, and the core's no-io-while-paused: a request issued for a user-paused job", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield* qmp("job-pause", { id: "j" });
      yield* untilStatus(q, "j", "paused");
      yield* q.graph.node("tgt").write(0, 65536, "job:j");
      yield* qmp("job-cancel", { id: "j" });
      yield* untilNoJobs(q);
    }, { invariants: ["job-io-while-paused", "job-io-after-conclude"] });
    expect(violations).toMatchObject([{ invariant: "job-io-while-paused", job: "j", state: { device: "d2", status: "paused" } }]);
  });

  it("job-io-after-conclude: a request issued for a job that has concluded", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", "auto-dismiss": false });
      yield* untilStatus(q, "j", "concluded");
      yield* q.graph.node("tgt").read(0, 65536, "job:j");
      yield* qmp("job-dismiss", { id: "j" });
    }, { invariants: ["job-io-while-paused", "job-io-after-conclude"] });
    expect(violations).toMatchObject([{ invariant: "job-io-after-conclude", job: "j", state: { status: "concluded" } }]);
  });

  it("job-io-in-drained-section: a job request on a node whose drained section is established; none before it is", () => {
    const { violations } = checked(function* (q) {
      const node = q.graph.node("other");
      yield* node.read(0, 65536, "job:x"); // not drained: fine
      yield* q.graph.drainedBegin(node);
      yield* node.read(65536, 65536, "guest"); // not a job: fine
      yield* node.read(0, 65536, "job:x");
      q.graph.drainedEnd(node);
      yield* node.read(0, 65536, "job:x");
    }, { invariants: ["job-io-in-drained-section"] });
    expect(violations).toMatchObject([{ invariant: "job-io-in-drained-section", job: "x", state: { node: "other", sections: 1 } }]);
  });

  it("events-match-states: an event that no status change stands behind", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full" });
      q.jm.emit({ event: "JOB_STATUS_CHANGE", data: { id: "j", status: "paused" } });
      yield* untilNoJobs(q);
    }, { invariants: ["events-match-states"] });
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]).toMatchObject({ invariant: "events-match-states", job: "j", detail: "JOB_STATUS_CHANGE j:paused but the next status change was none" });
  });

  it("txn-all-or-nothing: one member of a grouped transaction committed while the other aborted", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("transaction", {
        actions: [
          { type: "blockdev-backup", data: { "job-id": "j1", device: "src", target: "tgt", sync: "full" } },
          { type: "blockdev-backup", data: { "job-id": "j2", device: "other", target: "spare", sync: "full" } },
        ],
        properties: { "completion-mode": "grouped" },
      });
      // the mutation: a forged success of j1 before the group's real outcome
      q.jm.emit({ event: "BLOCK_JOB_COMPLETED", data: { type: "backup", device: "j1", len: 0, offset: 0, speed: 0 } });
      yield* qmp("job-cancel", { id: "j2" });
      yield* untilNoJobs(q);
    }, { invariants: ["txn-all-or-nothing"] });
    expect(violations.length).toBeGreaterThan(0);
    expect(violations[0]).toMatchObject({ invariant: "txn-all-or-nothing", detail: expect.stringMatching(/aborted but j1 of the same transaction committed/) });
  });

  it("backup-point-in-time: the target is written behind the job's back", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: 8 * MiB });
      yield sleep(10_000_000); // cluster 0 is copied by now, the job is not done
      yield* q.graph.node("tgt").write(0, 65536, "rogue");
      yield* untilNoJobs(q);
    }, { invariants: ["backup-point-in-time"] });
    expect(violations).toMatchObject([{ invariant: "backup-point-in-time", job: "j", state: { offset: 0, target: "tgt" } }]);
  });

  it("backup-point-in-time stays quiet when the guest writes the source during the backup", () => {
    const { violations } = checked(function* (q, qmp) {
      guest(q, "src");
      yield* qmp("blockdev-backup", { "job-id": "j", device: "drive0", target: "tgt", sync: "full" });
      yield* untilNoJobs(q);
    }, { invariants: ["backup-point-in-time"] });
    expect(violations).toEqual([]);
  });

  it("backup-point-in-time: a sync=top backup answers only for the clusters allocated in its source (the backing's data is not its to copy)", () => {
    const { q, violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-del", { "node-name": "spare" });
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "ov", file: "d4", backing: "src" });
      yield* q.graph.node("src").write(0, 2 * MiB, "base-data");
      yield* q.graph.node("ov").write(4 * MiB, MiB, "overlay-data");
      yield* qmp("blockdev-backup", { "job-id": "j", device: "ov", target: "tgt", sync: "top" });
      yield* untilNoJobs(q);
    }, { invariants: ["backup-point-in-time"] });
    expect(violations).toEqual([]);
    expect(q.monitor.events.some((e) => e.event === "BLOCK_JOB_COMPLETED" && e.data.error === undefined && e.data.len === MiB)).toBe(true);
  });

  it("backup-bitmap-settled: a write reaches the source's device without marking the bitmap", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("block-dirty-bitmap-add", { node: "src", name: "b0" });
      yield* q.graph.node("src").write(0, 4 * MiB, "guest");
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "incremental", bitmap: "b0", speed: 8 * MiB });
      yield sleep(10_000_000);
      yield q.devices.get("d1")!.io({ op: "write", offset: 8 * MiB, bytes: 65536, issuer: "rogue" }); // under the node: no bitmap sees it
      yield* untilNoJobs(q);
    }, { invariants: ["backup-bitmap-settled"] });
    expect(violations).toMatchObject([{ invariant: "backup-bitmap-settled", job: "j", state: { mode: "on-success", succeeded: true, missing: [128] } }]);
  });

  it("backup-bitmap-settled and backup-point-in-time stay quiet for incremental backups under a guest: one completed, one cancelled, one with bitmap-mode always failing", () => {
    const { q, violations } = checked(function* (q, qmp) {
      yield* q.graph.node("src").write(8 * MiB, MiB, "before-the-bitmap"); // never copied by an incremental backup
      yield* qmp("block-dirty-bitmap-add", { node: "src", name: "b0" });
      guest(q, "src");
      yield sleep(50_000_000);
      yield* qmp("blockdev-backup", { "job-id": "j1", device: "drive0", target: "tgt", sync: "incremental", bitmap: "b0" });
      yield* untilNoJobs(q);
      yield sleep(50_000_000);
      yield* qmp("blockdev-backup", { "job-id": "j2", device: "drive0", target: "tgt", sync: "bitmap", bitmap: "b0", "bitmap-mode": "never", speed: MiB });
      yield sleep(20_000_000);
      yield* qmp("job-cancel", { id: "j2" });
      yield* untilNoJobs(q);
      q.devices.get("d2")!.faults.add({ op: "write", errno: "EIO", once: true });
      yield* qmp("blockdev-backup", { "job-id": "j3", device: "drive0", target: "tgt", sync: "full", bitmap: "b0", "bitmap-mode": "always" });
      yield* untilNoJobs(q);
    }, { invariants: ["backup-bitmap-settled", "backup-point-in-time"] });
    expect(violations).toEqual([]);
    const ends = q.monitor.events.filter((e) => e.event.startsWith("BLOCK_JOB_C")).map((e) => `${e.event} ${String(e.data.device)} ${String(e.data.error ?? "")}`.trim());
    expect(ends).toEqual(["BLOCK_JOB_COMPLETED j1", "BLOCK_JOB_CANCELLED j2", "BLOCK_JOB_COMPLETED j3 Input/output error"]);
    expect(q.graph.node("src").bitmap("b0")!.count).toBeGreaterThan(0);
  });

  it("backup-bitmap-settled stays quiet when a stream copies up into the backup's source: copy-on-read writes dirty no bitmap", () => {
    const { q, violations } = checked(function* (q, qmp) {
      yield* q.graph.node("src").write(0, 4 * MiB, "before"); // what the stream copies up into top
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d5", backing: "src" });
      yield* qmp("block-dirty-bitmap-add", { node: "top", name: "b0" });
      yield* q.graph.node("top").write(8 * MiB, 4 * MiB, "guest"); // what the incremental backup copies, for 3 s at 1 MiB/s
      yield* qmp("blockdev-backup", { "job-id": "j", device: "top", target: "tgt", sync: "incremental", bitmap: "b0", speed: MiB });
      yield* qmp("block-stream", { "job-id": "s", device: "top" });
      yield* untilNoJobs(q);
    }, { invariants: ["backup-bitmap-settled"] });
    const ends = q.monitor.events.filter((e) => e.event === "BLOCK_JOB_COMPLETED").map((e) => `${String(e.data.device)} ${String(e.data.error ?? "ok")}`);
    expect(ends.sort()).toEqual(["j ok", "s ok"]);
    // the stream wrote the first 4 MiB into top while the backup ran, and the bitmap did not take them
    expect(q.graph.node("top").allocation(0, 4 * MiB).allocated).toBe(true);
    expect(q.graph.node("top").bitmap("b0")!.count).toBe(0);
    expect(violations).toEqual([]);
  });

  it("backup-bitmap-settled tells a copy-on-read write by the request's `unchanged` flag, not by who issued it", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* q.graph.node("src").write(0, 4 * MiB, "before");
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d5", backing: "src" });
      yield* qmp("block-dirty-bitmap-add", { node: "top", name: "b0" });
      yield* q.graph.node("top").write(8 * MiB, 4 * MiB, "guest"); // 3 s of copying at 1 MiB/s
      yield* qmp("blockdev-backup", { "job-id": "j", device: "top", target: "tgt", sync: "incremental", bitmap: "b0", speed: MiB });
      yield* qmp("block-stream", { "job-id": "s", device: "top", speed: MiB });
      yield sleep(10_000_000);
      const d5 = q.devices.get("d5")!;
      // under the node, so no bitmap sees either: a plain write in the running stream's name must be counted,
      // a flagged one in anyone's name must not
      yield d5.io({ op: "write", offset: 14 * MiB, bytes: 65536, issuer: "job:s" });
      yield d5.io({ op: "write", offset: 15 * MiB, bytes: 65536, issuer: "rogue", unchanged: true });
      yield* untilNoJobs(q);
    }, { invariants: ["backup-bitmap-settled"] });
    expect(violations).toMatchObject([{ invariant: "backup-bitmap-settled", job: "j", state: { succeeded: true, missing: [224], extra: [] } }]);
  });

  it("mirror-pivot-content: the target is changed while the mirror is ready", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full" });
      yield* untilStatus(q, "m", "ready");
      yield* q.graph.node("tgt").write(0, 65536, "rogue");
      yield* qmp("block-job-complete", { device: "m" });
      yield* untilNoJobs(q);
    }, { invariants: ["mirror-pivot-content"] });
    expect(violations).toMatchObject([{ invariant: "mirror-pivot-content", job: "m", state: { offset: 0 } }]);
  });

  it("jobs-conclude: a job left in a drained section never finishes before the time budget", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield sleep(1_000_000);
      yield* q.graph.drainedBegin(q.graph.node("tgt"));
      yield sleep(1e9);
    }, { invariants: ["jobs-conclude"], maxTimeNs: 500e6 });
    // The drain reaches the job twice: through its own link to the target and through the copy-before-write filter's target child.
    expect(violations.map((v) => v.detail)).toEqual(["the run hit its time-budget", "still paused at the end of the run (pause count 2)"]);
  });

  it("jobs-conclude: a user-paused job is not a liveness failure", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield* qmp("job-pause", { id: "j" });
    }, { invariants: ["jobs-conclude"] });
    expect(violations).toEqual([]);
  });

  it("cancel-honoured: a mirror cancelled before READY completes instead (pre-eb36639f7b); quiet for a soft cancel after READY", () => {
    const early = checked(function* (q, qmp) {
      yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full" });
      yield* qmp("block-job-cancel", { device: "m" });
      yield* untilNoJobs(q);
    }, { behaviour: { mirrorCancelsPreReady: false }, invariants: ["cancel-honoured"] });
    expect(early.violations).toMatchObject([{ invariant: "cancel-honoured", job: "m", state: { cancelledIn: "running" } }]);
    const late = checked(function* (q, qmp) {
      yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full" });
      yield* untilStatus(q, "m", "ready");
      yield* qmp("block-job-cancel", { device: "m" });
      yield* untilNoJobs(q);
    }, { invariants: ["cancel-honoured"] });
    expect(late.violations).toEqual([]);
    expect(late.q.jm.events.map((e) => e.event)).toContain("BLOCK_JOB_COMPLETED");
  });

  it("rate-limit-honoured: a job that copies without sleeping out its rate-limit delay; quiet when it sleeps it", () => {
    for (const honest of [false, true]) {
      const { violations } = checked(function* (q) {
        const driver = {
          type: "stream" as const, nodes: undefined as unknown as JobNodes,
          *run(job: Job): Process<number> {
            for (let i = 0; i < 20; i++) {
              const delay = job.accountCopy(MiB);
              yield* job.sleepNs(honest ? delay : 1_000_000);
            }
            return 0;
          },
        };
        createBlockJob(q, driver, { id: "greedy", speedBytesPerSec: MiB }, [q.graph.node("src")]).start();
        yield* untilNoJobs(q);
      }, { invariants: ["rate-limit-honoured"], maxTimeNs: 600e9 });
      if (honest) expect(violations).toEqual([]);
      else expect(violations).toMatchObject([{ invariant: "rate-limit-honoured", job: "greedy", state: { speed: MiB } }]);
    }
  });

  it("rate-limit-honoured allows one more quota after block-job-set-speed, whose limiter keeps the slice in force (fuzz seed 60004)", () => {
    const sc: FuzzScenario = {
      devices: [{ name: "ds0", sizeBytes: 4 * MiB, latencyNs: 1_000_000 }, { name: "dt2", sizeBytes: 4 * MiB, latencyNs: 100_000 }],
      nodes: [{ driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "t2", file: "dt2" }],
      actions: [
        { atNs: 0, execute: "blockdev-mirror", arguments: { "job-id": "j1", device: "s0", target: "t2", sync: "full", speed: MiB } },
        { atNs: 52_800_000, guest: "s0", requests: 299, intervalNs: 100_000 },
        { atNs: 161_500_000, execute: "block-job-set-speed", arguments: { device: "j1", speed: 64 * MiB } },
      ],
      maxTimeNs: 30e9,
    };
    const r = runModel(sc, { invariants: ["rate-limit-honoured"] });
    expect(r.responses.map((x) => x.response)).not.toContainEqual(expect.objectContaining({ error: expect.anything() }));
    expect(r.events).toContain("BLOCK_JOB_COMPLETED j1");
    expect(r.violations).toEqual([]);
  });

  it("rate-limit-honoured stays quiet for QEMU 7.2's early wake: a stream paused and resumed mid-sleep takes its next chunk at once", () => {
    let streamLedger: Job["copyLedger"] = [];
    const { violations, q } = checked(function* (q, qmp) {
      yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d5", backing: "src" });
      yield* qmp("block-stream", { "job-id": "s", device: "top", speed: MiB });
      streamLedger = q.jm.get("s")!.copyLedger;
      for (let i = 0; i < 4; i++) {
        yield sleep(150_000_000);
        yield* qmp("job-pause", { id: "s" });
        yield* untilStatus(q, "s", "paused");
        yield* qmp("job-resume", { id: "s" });
      }
      yield* untilNoJobs(q);
    }, { invariants: ["rate-limit-honoured"], maxTimeNs: 600e9 });
    expect(violations).toEqual([]);
    // the exception was used: chunks taken right after a sleep cut short by the pause
    const ledger = q.jm.events.length > 0 ? streamLedger : [];
    expect(ledger.filter((e) => e.afterEarlyWake).length).toBeGreaterThan(0);
    expect(q.jm.events.map((e) => e.event)).toContain("BLOCK_JOB_COMPLETED");
  });

  it("pause-at-pause-point: job-pause of a job asleep for its rate limit is not honoured until the sleep ends (enter-skips-sleeping-job); quiet under current", () => {
    const script = function* (q: Qemu, qmp: Qmp): Process {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield sleep(50_000_000); // asleep for its rate limit
      yield* qmp("job-pause", { id: "j" });
      yield* untilStatus(q, "j", "paused");
      yield* qmp("job-cancel", { id: "j" });
      yield* untilNoJobs(q);
    };
    const buggy = checked(script, { behaviour: { enterWakesSleepingJob: false }, invariants: ["pause-at-pause-point"] });
    expect(buggy.violations).toMatchObject([{ invariant: "pause-at-pause-point", job: "j", state: { status: "running", pauseCount: 1, userPaused: true } }]);
    expect(checked(script, { invariants: ["pause-at-pause-point"] }).violations).toEqual([]);
  });

  it("complete-not-cancelled: a job hard-cancelled inside the model after an accepted job-complete; quiet when the client cancels", () => {
    for (const byClient of [false, true]) {
      const { violations } = checked(function* (q, qmp) {
        yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full" });
        yield* untilStatus(q, "m", "ready");
        yield* qmp("job-pause", { id: "m" });
        yield* untilStatus(q, "m", "standby");
        yield* qmp("job-complete", { id: "m" }); // accepted in standby, takes effect on resume
        if (byClient) yield* qmp("job-cancel", { id: "m" });
        else q.jm.get("m")!.userCancel(true); // no QMP command asked for it
        yield* untilNoJobs(q);
      }, { invariants: ["complete-not-cancelled"] });
      if (byClient) expect(violations).toEqual([]);
      else expect(violations).toMatchObject([{ invariant: "complete-not-cancelled", job: "m" }]);
    }
  });

  it("complete-not-cancelled: a block-job-cancel without force of a PENDING mirror after an accepted complete is a hard cancel, as QEMU 7.2's mirror_cancel makes it (fuzz seed 103000)", () => {
    const { violations, q } = checked(function* (q, qmp) {
      yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full", "auto-finalize": false });
      yield* untilStatus(q, "m", "ready");
      yield* qmp("job-complete", { id: "m" });
      yield* untilStatus(q, "m", "pending");
      yield* qmp("block-job-cancel", { device: "m", force: false }); // not READY: forced, the job aborts
      yield* untilNoJobs(q);
    }, { invariants: ["complete-not-cancelled", "outcome-applied"] });
    expect(q.jm.events.map((e) => e.event)).toContain("BLOCK_JOB_CANCELLED");
    expect(violations).toEqual([]);
  });

  it("outcome-applied: a mirror that pivots without an accepted job-complete, and a stream that completes without re-pointing its top", () => {
    const mirror = checked(function* (q, qmp) {
      yield* qmp("blockdev-mirror", { "job-id": "m", device: "src", target: "tgt", sync: "full" });
      yield* untilStatus(q, "m", "ready");
      const job = q.jm.get("m")!;
      job.driver.complete!(job); // not through QMP
      yield* untilNoJobs(q);
    }, { invariants: ["outcome-applied"] });
    expect(mirror.violations).toMatchObject([{ invariant: "outcome-applied", job: "m", detail: "completed without job-complete, yet it pivoted" }]);
    for (const broken of [true, false]) {
      const stream = checked(function* (q, qmp) {
        yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "d5", backing: "src" });
        yield* qmp("block-stream", { "job-id": "s", device: "top" });
        if (broken) (q.jm.get("s")!.driver as StreamDriver).prepare = () => 0;
        yield* untilNoJobs(q);
      }, { invariants: ["outcome-applied"] });
      if (broken) expect(stream.violations).toMatchObject([{ invariant: "outcome-applied", job: "s", detail: "completed, yet 'top' still has backing 'src', not 'none'" }]);
      else expect(stream.violations).toEqual([]);
    }
  });

  it("outcome-applied and complete-not-cancelled judge a job that ends under a refused job-complete by its reply (fuzz seed 103000: a soft-cancelled READY active commit)", () => {
    // The heal phase sends job-complete to the commit, still READY; QEMU refuses it (the job is cancelled), and the
    // commit's exit, already due, runs in that reply's round: it completes without a pivot, as a soft cancel should.
    // The cancel comes at 200 us: the commit is READY only after its target's flush (100 us latency), and a cancel
    // before READY is a hard one (the fuzz run's cancel at 100 us now lands during that flush).
    const sc: FuzzScenario = {
      devices: ["ds0", "dt0", "base.qcow2", "mid.qcow2", "top.qcow2"].map((name) => ({ name, sizeBytes: 4 * MiB, latencyNs: 100_000 })),
      nodes: [
        { driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "t0", file: "dt0" },
        { driver: "raw", "node-name": "base", file: "base.qcow2" },
        { driver: "qcow2", "node-name": "mid", file: "mid.qcow2", backing: "base" },
        { driver: "qcow2", "node-name": "top", file: "top.qcow2", backing: "mid" },
      ],
      actions: [
        { atNs: 200_000, execute: "block-job-cancel", arguments: { device: "j2", force: false } },
        { atNs: 0, execute: "block-commit", arguments: { "job-id": "j2", device: "top", "base-node": "base" } },
      ],
      maxTimeNs: 30e9,
    };
    const r = runModel(sc, { invariants: ["outcome-applied", "complete-not-cancelled", "cancel-honoured"] });
    expect(r.responses.at(-1)).toMatchObject({ execute: "job-complete", response: { error: { desc: "The active block job 'j2' cannot be completed" } } });
    expect(r.events).toContain("BLOCK_JOB_COMPLETED j2");
    expect(r.violations).toEqual([]);
  });

  it("op-blockers-honoured: a job's write lands on a node another job holds; a second backup of the same source is fine", () => {
    const { violations } = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "a", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield* qmp("blockdev-backup", { "job-id": "b", device: "src", target: "spare", sync: "full" });
      yield* q.graph.node("tgt").write(0, 65536, "job:b"); // the mutation: b writes a's target behind the blockers
      yield* qmp("job-cancel", { id: "a" });
      yield* untilNoJobs(q);
    }, { invariants: ["op-blockers-honoured"] });
    expect(violations).toMatchObject([{ invariant: "op-blockers-honoured", job: "b", state: { holder: "a", node: "tgt" } }]);
  });

  it("no-crash: an exception inside the simulation (QEMU would abort)", () => {
    const { violations } = checked(function* () {
      yield sleep(1_000);
      throw new Error("assertion failed: something");
    }, { invariants: ["no-crash", "no-use-after-free", "legal-transitions"] });
    expect(violations).toMatchObject([{ invariant: "no-crash", detail: "assertion failed: something", state: { process: "client" } }]);
  });

  it("a failure is told by the class of what was thrown, never by its text: legal-transitions, no-use-after-free, no-crash", () => {
    const three = ["no-crash", "no-use-after-free", "legal-transitions"];
    // An exception whose message reads like the other two is a crash.
    const lookalike = checked(function* () {
      yield sleep(1_000);
      throw new Error("IllegalTransition: use after free: words in a message only");
    }, { invariants: three });
    expect(lookalike.violations).toMatchObject([{ invariant: "no-crash", detail: "IllegalTransition: use after free: words in a message only" }]);
    expect(lookalike.names).toEqual(["no-crash"]);
    // A real illegal transition, a job used after it was freed, an IOThread's AioContext used after object-del: one name each.
    const illegal = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed: MiB });
      yield sleep(1_000_000);
      q.jm.get("j")!.transition("created");
    }, { invariants: three });
    expect(illegal.names).toEqual(["legal-transitions"]);
    const freedJob = checked(function* (q, qmp) {
      yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full" });
      const job = q.jm.get("j")!;
      yield* untilNoJobs(q);
      job.pause();
    }, { invariants: three });
    expect(freedJob.names).toEqual(["no-use-after-free"]);
    const deletedIothread = checked(function* (_q, qmp) {
      yield* qmp("object-add", { "qom-type": "iothread", id: "io0" });
      yield* qmp("x-blockdev-set-iothread", { "node-name": "src", iothread: "io0" });
      yield* qmp("object-del", { id: "io0" });
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "src", target: "tgt", sync: "full" });
    }, { invariants: three });
    expect(deletedIothread.violations).toMatchObject([{ invariant: "no-use-after-free", detail: expect.stringContaining("iothread 'io0', which was deleted") }]);
  });

  it("the core rules surface under their own names (no-io-while-paused before the start shim)", () => {
    const { names } = checked(function* (q, qmp) {
      guest(q, "src");
      yield sleep(10_000_000);
      yield* qmp("blockdev-backup", { "job-id": "j0", device: "drive0", target: "tgt", sync: "full" });
      yield* untilNoJobs(q);
    }, { behaviour: { startShim: false }, invariants: ["no-io-while-paused", "coroutine-reentered"] });
    expect(names).toContain("no-io-while-paused");
  });
});
