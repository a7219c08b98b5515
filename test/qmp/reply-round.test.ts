/**
 * When QMP's reply goes out relative to the bottom halves a command caused
 * (goldens cancel_ratelimited_*, recorded from QEMU 7.2.22): a job-cancel of
 * a job asleep for its rate limit ends the job's run at once and its exit
 * is a main-context bottom half, which QEMU runs before the dispatcher
 * coroutine writes the reply; a mirror (here an active commit) drains on its
 * way out through a bounce bottom half, and its exit comes after the reply.
 * These orders hold under every strategy, not only FIFO.
 */
import { describe, expect, it } from "vitest";
import { createQemu } from "../../sim/qmp/qemu.js";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { FifoStrategy, PctStrategy, RandomStrategy, Scheduler, sleep, type Process, type Strategy } from "../../sim/scheduler/index.js";
import { line, MiB } from "./harness.js";

type Job = "commit" | "stream" | "backup" | "active-commit";

function run(job: Job, strategy: Strategy): string[] {
  const sim = new Scheduler({ strategy, maxTimeNs: 600e9, maxSteps: 5_000_000 });
  const q = createQemu(sim);
  const devs = ["base", "mid", "top"].map((name) => q.addDevice({ name: `${name}.img`, sizeBytes: 8 * MiB, clusterSizeBytes: 65536, readLatencyNs: 0, writeLatencyNs: 0, bandwidthBytesPerSec: 0, queueDepth: 32 }));
  const qmp = (execute: string, args?: Record<string, unknown>): Process<QmpResponse> => q.monitor.execute(args ? { execute, arguments: args } : { execute });
  sim.spawn("client", (function* (): Process {
    yield devs[1].io({ op: "write", offset: MiB, bytes: 4 * MiB, issuer: "qemu-io" });
    yield devs[2].io({ op: "write", offset: 6 * MiB, bytes: MiB, issuer: "qemu-io" });
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "base", file: "base.img" });
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "mid", file: "mid.img", backing: "base" });
    yield* qmp("blockdev-add", { driver: "qcow2", "node-name": "top", file: "top.img", backing: "mid" });
    yield* qmp("blockdev-add", { driver: "null-co", "node-name": "src", size: 64 * MiB, "read-zeroes": false });
    yield* qmp("blockdev-add", { driver: "null-co", "node-name": "tgt", size: 64 * MiB, "read-zeroes": false });
    const speed = MiB;
    const started =
      job === "commit" ? yield* qmp("block-commit", { "job-id": "j", device: "top", "top-node": "mid", "base-node": "base", speed })
      : job === "active-commit" ? yield* qmp("block-commit", { "job-id": "j", device: "top", speed })
      : job === "stream" ? yield* qmp("block-stream", { "job-id": "j", device: "top", "base-node": "base", speed })
      : yield* qmp("blockdev-backup", { "job-id": "j", device: "src", target: "tgt", sync: "full", speed });
    expect(started).toEqual({ return: {} });
    yield sleep(100e6); // the job has copied its first chunk and sleeps for its rate limit
    yield* qmp("job-cancel", { id: "j" });
    while (q.jm.jobs.length > 0) yield sleep(1e6);
  })());
  expect(sim.run().outcome).toEqual({ kind: "ok" });
  const all = q.monitor.transcript.map(line);
  return all.slice(all.indexOf("> job-cancel"));
}

const ENDED = ["j:aborting", "BLOCK_JOB_CANCELLED:j", "j:concluded", "j:null"];
const STRATEGIES: [string, (seed: number) => Strategy][] = [
  ["random", (seed) => new RandomStrategy(seed)],
  ["pct", (seed) => new PctStrategy(seed, { depth: 3, expectedChoices: 200 })],
];

describe("the reply to job-cancel of a job asleep for its rate limit", () => {
  for (const job of ["commit", "stream", "backup"] as const) {
    it(`${job}: the job's exit runs before the reply, under FIFO and 20 random and 20 PCT schedules`, () => {
      expect(run(job, new FifoStrategy())).toEqual(["> job-cancel", ...ENDED, "<"]);
      for (const [name, make] of STRATEGIES) {
        for (let seed = 1; seed <= 20; seed++) expect(run(job, make(seed)), `${name} seed ${seed}`).toEqual(["> job-cancel", ...ENDED, "<"]);
      }
    });
  }

  it("active commit: the mirror's drain bounce runs before the reply and its exit after it, under every schedule tried", () => {
    expect(run("active-commit", new FifoStrategy())).toEqual(["> job-cancel", "<", ...ENDED]);
    for (const [name, make] of STRATEGIES) {
      for (let seed = 1; seed <= 20; seed++) expect(run("active-commit", make(seed)), `${name} seed ${seed}`).toEqual(["> job-cancel", "<", ...ENDED]);
    }
  });
});
