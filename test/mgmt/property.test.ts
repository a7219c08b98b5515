import fc from "fast-check";
import { describe, expect, it } from "vitest";
import {
  ASYNC_JOB_KINDS, blockCopy, blockJobAbort, blockJobSetSpeed, blockPull, Domain, getBlockJobInfo, holdJob, JOB_KINDS, mgmtBehaviour, qemuBehaviour,
  runAsyncJob, VirError, type JobKind,
} from "../../sim/mgmt/index.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import { RandomStrategy, Scheduler, sleep, type Process } from "../../sim/scheduler/index.js";
import { client, makeDomain, MiB, ms, s } from "./helpers.js";

const NORMAL = JOB_KINDS.filter((k) => k !== "async-nested") as JobKind[];

const requestArb = fc.record({ atMs: fc.integer({ min: 0, max: 3000 }), kind: fc.constantFrom(...NORMAL), holdMs: fc.integer({ min: 0, max: 1500 }) });
const workloadArb = fc.record({
  clients: fc.array(fc.array(requestArb, { minLength: 1, maxLength: 3 }), { minLength: 1, maxLength: 6 }),
  asyncJobs: fc.array(
    fc.record({ kind: fc.constantFrom(...ASYNC_JOB_KINDS), atMs: fc.integer({ min: 0, max: 3000 }), durationMs: fc.integer({ min: 0, max: 3000 }), pollMs: fc.integer({ min: 1, max: 500 }) }),
    { maxLength: 2 },
  ),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
  counterfactual: fc.boolean(),
  roundTripMs: fc.integer({ min: 0, max: 2 }),
});

describe("random clients and async jobs under random schedules", () => {
  it("never break the job rules, never wait past the timeout, and always end with the domain free", () => {
    fc.assert(
      fc.property(workloadArb, (w) => {
        const { sim, dom } = makeDomain(
          { jobWaitTimeNs: 1000 * ms, qmpRoundTripNs: w.roundTripMs * ms, behaviour: { queryBesideModify: w.counterfactual } },
          new RandomStrategy(w.seed),
        );
        const broken: string[] = [];
        dom.onJobWait((jw) => {
          if (jw.waitedNs > dom.jobWaitTimeNs) broken.push(`waited ${jw.waitedNs} ns`);
          if (!jw.ok && jw.waitedNs !== dom.jobWaitTimeNs) broken.push(`failed after ${jw.waitedNs} ns, not at the deadline`);
          if (!jw.ok) {
            // A timeout must mean something still blocked the request at its deadline (no lost wakeup).
            const k = jw.kind;
            const blocked = k.startsWith("async:")
              ? dom.holders.length > 0 || dom.asyncJob !== null
              : !dom.slotAdmits(k as JobKind) || (k !== "async-nested" && !dom.nestedJobAllowed(k as JobKind));
            // A release at the deadline instant itself may run after the timer (virCondWaitUntil returned ETIMEDOUT first).
            const freedAtDeadline = dom.holds.some((h) => h.toNs === sim.now);
            // libvirt v1.2.9's known stranding (see domain.test.ts): an async job start took the one EndJob signal.
            const signalTakenByAsyncStart = dom.jobWaits.some((o) => o.ok && o.kind.startsWith("async:") && o.endNs >= jw.requestNs && o.waitedNs > 0);
            if (!blocked && !freedAtDeadline && !signalTakenByAsyncStart) broken.push(`${k} of ${jw.call.client} timed out with nothing blocking it (a lost wakeup)`);
            return;
          }
          const kinds = dom.activeJobs;
          if (!w.counterfactual && kinds.length > 1) broken.push(`two normal jobs at once: ${kinds.join(", ")}`);
          if (w.counterfactual && kinds.length > 1 && (kinds.some((k) => k !== "query" && k !== "modify") || kinds.filter((k) => k === "modify").length > 1)) {
            broken.push(`jobs together beyond query-beside-modify: ${kinds.join(", ")}`);
          }
          if (typeof jw.kind === "string" && !jw.kind.startsWith("async") && dom.asyncJob && !dom.asyncJob.mask.has(jw.kind as JobKind)) {
            broken.push(`${jw.kind} admitted during ${dom.asyncJob.kind}, outside its mask`);
          }
          if (jw.kind === "async-nested" && dom.asyncJob?.call.id !== jw.call.id) broken.push("a nested job outside its async job");
        });
        w.clients.forEach((reqs, i) => {
          client(sim, `c${i}`, 0, function* () {
            for (const r of [...reqs].sort((a, b) => a.atMs - b.atMs)) {
              if (r.atMs * ms > sim.now) yield sleep(r.atMs * ms - sim.now);
              try {
                yield* holdJob(dom, `c${i}`, r.kind, r.holdMs * ms);
              } catch (e) {
                if (!(e instanceof Error) || e.name !== "VirError") throw e;
              }
            }
          });
        });
        w.asyncJobs.forEach((a, i) => {
          client(sim, `a${i}`, a.atMs * ms, () => runAsyncJob(dom, `a${i}`, a.kind, { durationNs: a.durationMs * ms, pollIntervalNs: a.pollMs * ms }));
        });
        const r = sim.run();
        expect(r.outcome).toEqual({ kind: "ok" });
        expect(broken).toEqual([]);
        expect(dom.modelErrors).toEqual([]);
        expect(dom.holders).toEqual([]);
        expect(dom.asyncJob).toBeNull();
        expect(dom.jobsQueued).toBe(0);
        expect(dom.waiting()).toEqual({ job: 0, async: 0, vm: 0 });
      }),
      { seed: 4004, numRuns: 200 },
    );
  });
});

const opArb = fc.record({
  atMs: fc.integer({ min: 0, max: 4000 }),
  op: fc.constantFrom("copy", "info", "speed", "abort", "abort-async", "pivot", "pull"),
});
const apiWorkloadArb = fc.record({
  clients: fc.array(fc.array(opArb, { minLength: 1, maxLength: 4 }), { minLength: 1, maxLength: 4 }),
  profile: fc.constantFrom("info-modify-job", "libvirt-1.2.9", "libvirt-1.2.17", "query-beside-modify"),
  seed: fc.integer({ min: 1, max: 1_000_000 }),
});

/** The texts a block job API may fail with in these workloads (anything else is a model or simulator bug). */
const EXPECTED_ERRORS = [
  /^Requested operation is not valid: No active operation on device: drive0$/,
  /^Requested operation is not valid: pivot of disk 'vda' requires an active copy job$/,
  /^Requested operation is not valid: another job on disk 'vda' is still being ended$/,
  /^Requested operation is not valid: disk 'vda' does not have an active block job$/,
  /^block copy still active: disk 'vda' (already in active block job|not ready for pivot yet)$/,
  /^internal error: unable to execute QEMU command '(drive-mirror|block-stream)': .*(in use|already in use|is busy).*$/,
  /^internal error: unable to execute QEMU command 'block-job-complete': The active block job 'drive0' cannot be completed$/,
  /^internal error: unable to execute QEMU command 'block-job-(complete|cancel|set-speed)': Job '.*' in state '.*' cannot accept command verb '.*'$/,
];

describe("random block job API calls from several clients", () => {
  it("every call returns, with an expected error if any, and the domain ends free", () => {
    fc.assert(
      fc.property(apiWorkloadArb, (w) => {
        const sim = new Scheduler({ seed: w.seed, strategy: new RandomStrategy(w.seed), maxTimeNs: 120e9 });
        const q = createQemu(sim, qemuBehaviour(w.profile));
        const dev = (name: string, bw: number) =>
          q.addDevice({ name, sizeBytes: 8 * MiB, clusterSizeBytes: 65536, readLatencyNs: 100_000, writeLatencyNs: 100_000, bandwidthBytesPerSec: bw, queueDepth: 8 });
        dev("base.img", 0);
        dev("disk.img", 0);
        // One target per copy: the simulated QEMU keeps a drive-mirror's target node after the job ends, and a
        // block-stream of a node without backing fails its run in prepare (both reported, left alone); the copies
        // are qcow2, as libvirt passes the disk's format.
        for (let i = 0; i < 16; i++) dev(`slow${i}.img`, 4 * MiB);
        let copies = 0;
        const dom = new Domain(q, { disks: [{ target: "vda", device: "drive0" }], behaviour: mgmtBehaviour(w.profile) });
        const errors: string[] = [];
        let started = 0;
        const ops: Record<string, (c: string) => Process<unknown>> = {
          copy: (c) => blockCopy(dom, c, "vda", { dest: `slow${copies++}.img`, reuseExt: true, format: "qcow2" }),
          info: (c) => getBlockJobInfo(dom, c, "vda"),
          speed: (c) => blockJobSetSpeed(dom, c, "vda", 2),
          abort: (c) => blockJobAbort(dom, c, "vda"),
          "abort-async": (c) => blockJobAbort(dom, c, "vda", { async: true }),
          pivot: (c) => blockJobAbort(dom, c, "vda", { pivot: true }),
          pull: (c) => blockPull(dom, c, "vda"),
        };
        sim.spawn("boot", (function* () {
          yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "qcow2", "node-name": "base", file: "base.img", backing: null } });
          yield* q.monitor.execute({ execute: "blockdev-add", arguments: { driver: "qcow2", "node-name": "disk0", file: "disk.img", backing: "base" } });
          q.graph.createBackend({ name: "drive0", issuer: "guest", root: q.graph.node("disk0") });
          w.clients.forEach((list, i) => {
            sim.spawn(`c${i}`, (function* () {
              for (const o of [...list].sort((a, b) => a.atMs - b.atMs)) {
                if (o.atMs * ms > sim.now) yield sleep(o.atMs * ms - sim.now);
                started++;
                try {
                  yield* ops[o.op]!(`c${i}`);
                } catch (e) {
                  if (!(e instanceof VirError)) throw e;
                  errors.push(e.message);
                }
              }
            })());
          });
          // The end of the run: whatever copy is left is cancelled behind libvirt's back.
          yield sleep(30 * s);
          for (const j of [...q.jm.jobs]) yield* q.monitor.execute({ execute: "block-job-cancel", arguments: { device: j.id, force: true } });
        })());
        const r = sim.run();
        expect(r.outcome).toEqual({ kind: "ok" });
        expect(dom.calls.length).toBe(started);
        expect(errors.filter((m) => !EXPECTED_ERRORS.some((re) => re.test(m)))).toEqual([]);
        expect(dom.modelErrors).toEqual([]);
        expect(dom.holders).toEqual([]);
        expect(dom.jobsQueued).toBe(0);
      }),
      { seed: 4005, numRuns: 80 },
    );
  });
});
