/**
 * Nested polling in the job core and the block layer: what runs inside a
 * drained section's begin or end, and inside job_finish_sync.
 */
import { describe, expect, it } from "vitest";
import { setDriverDrainEnd } from "../../sim/block/drain.js";
import type { BlockNode } from "../../sim/block/index.js";
import { createBlockJob, type JobNodes } from "../../sim/jobs/block-job.js";
import type { Job, JobDriver } from "../../sim/jobs/job.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import { Scheduler, sleep, type Process } from "../../sim/scheduler/index.js";

const MiB = 1 << 20;

/**
 * QEMU's test_blockjob_commit_by_drained_end (tests/unit/test-bdrv-drain.c):
 * a child node with three parent nodes backed by it, a job on the last
 * parent that runs until told to complete and whose commit detaches the child
 * from two of the parents. The job is told to complete, then a drained
 * section on the child begins and ends.
 */
function commitByDrainedEnd(opts: { driverDrainEnd: boolean }) {
  const sim = new Scheduler({ trace: true, maxTimeNs: 10e9 });
  const q = createQemu(sim);
  const child = q.graph.createNode({ name: "child-node", driver: "null-co", sizeBytes: MiB });
  const parents: BlockNode[] = [0, 1, 2].map((i) => q.graph.createNode({
    name: `parent-node-${i}`, driver: "qcow2", backing: child,
    device: q.addDevice({ name: `parent-${i}.img`, sizeBytes: MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 32 }),
  }));
  const log: string[] = [];
  if (opts.driverDrainEnd) {
    // QEMU's bdrv_test driver has a drain_end callback on every node of the test.
    for (const n of [child, ...parents]) setDriverDrainEnd(n, () => log.push(`drain_end ${n.name}`));
  }
  let shouldComplete = false;
  let completed = false;
  const driver: JobDriver & { nodes: JobNodes } = {
    type: "test",
    nodes: undefined as unknown as JobNodes,
    *run(job: Job): Process<number> {
      while (!shouldComplete) yield* job.sleepNs(0);
      return 0;
    },
    commit: () => {
      q.graph.setBacking(parents[2], null);
      q.graph.setBacking(parents[0], null);
      completed = true;
      log.push("job committed");
    },
  };
  const job = createBlockJob(q, driver, { id: "job" }, [parents[2]]);
  const seen: Record<string, boolean> = {};
  // Main-loop code, as the unit test's body is.
  sim.at(1000, "test body", () => {
    job.start();
    shouldComplete = true;
    q.graph.drainedBeginPoll(child);
    seen.afterBegin = completed;
    q.graph.drainedEnd(child);
    seen.afterEnd = completed;
    log.push("drained_end returned");
  });
  sim.at(1001, "later", () => { seen.later = completed; });
  sim.spawn("keep the run going", (function* (): Process { yield sleep(2000); })());
  const r = sim.run();
  return { r, log, seen, parents, child };
}

describe("test_blockjob_commit_by_drained_end", () => {
  it("with drivers that have a drain_end callback, the job has completed when the drained section's end returns", () => {
    const { r, log, seen, parents, child } = commitByDrainedEnd({ driverDrainEnd: true });
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(seen).toEqual({ afterBegin: false, afterEnd: true, later: true });
    // The drain_end callbacks and the job's exit (scheduled when parent-node-2's end resumed the job) ran
    // in one poll at the very end of bdrv_drained_end, after every parent had left the section, in the order
    // they were scheduled: the commit's graph change did not cut the walk over the parents short.
    expect(log).toEqual(["drain_end child-node", "drain_end parent-node-2", "job committed", "drain_end parent-node-1", "drain_end parent-node-0", "drained_end returned"]);
    expect(parents.map((p) => p.childLink?.child?.name ?? null)).toEqual([null, "child-node", null]);
    expect([child, ...parents].map((n) => n.quiesceCount)).toEqual([0, 0, 0, 0]);
    expect(r.trace!.filter((t) => t.kind === "poll").map((t) => t.data)).toContainEqual({ what: 'drained_end("child-node")', depth: 1 });
  });

  it("without such callbacks (raw, qcow2, null-co: QEMU 7.2 does not poll then) the job completes only after it returns, in a later main-loop turn", () => {
    const { r, seen, parents } = commitByDrainedEnd({ driverDrainEnd: false });
    expect(r.outcome).toEqual({ kind: "ok" });
    expect(seen).toEqual({ afterBegin: false, afterEnd: false, later: true });
    expect(parents.map((p) => p.childLink?.child?.name ?? null)).toEqual([null, "child-node", null]);
  });
});
