/**
 * Jobs benchmark: a 1 GiB backup (64 KiB clusters, sync=full; devices with
 * 50-150 µs latency and no bandwidth cap, queue depth 32) under a live
 * guest (random 64 KiB writes, 4 deep, one every 100 µs per worker),
 * simulated to completion — the whole stack: kernel, devices, block graph,
 * copy-before-write, job core. Prints the wall time per simulated job,
 * simulated MiB copied per wall second, and kernel steps per wall second
 * beside the reference kernel's events/s from the same process (ratio).
 * A measurement, not a test.
 *
 * Usage: npx tsx bench/jobs.ts
 */
import { BlockGraph, startGuest } from "../sim/block/index.js";
import { Device } from "../sim/disk/index.js";
import { createBackup } from "../sim/jobs/drivers/backup.js";
import { JobManager } from "../sim/jobs/manager.js";
import { Scheduler, sleep, type Process } from "../sim/scheduler/index.js";
import { median, referenceEventsPerSec, timed } from "./reference-kernel.js";

const GiB = 1 << 30;
const RUNS = 5;

function runBackup(): { steps: number; endTimeNs: number; guestWrites: number } {
  const sim = new Scheduler({ seed: 1 });
  const graph = new BlockGraph(sim);
  const jm = new JobManager(sim);
  jm.onIdle(() => graph.kick());
  const disk = (name: string) => graph.createNode({
    name, driver: "raw",
    device: new Device(sim, { name, sizeBytes: GiB, clusterSizeBytes: 65536, readLatencyNs: { minNs: 50_000, maxNs: 150_000 }, writeLatencyNs: { minNs: 50_000, maxNs: 150_000 }, bandwidthBytesPerSec: 0, queueDepth: 32 }),
  });
  const src = disk("src"), tgt = disk("tgt");
  const guest = startGuest(sim, {
    name: "guest", backend: graph.createBackend({ name: "drive0", issuer: "guest", root: src, queueWhenDrained: true }),
    pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 4, intervalNs: 100_000,
  });
  sim.spawn("main", (function* (): Process {
    const job = createBackup({ jm, graph }, { id: "b0", source: src, target: tgt, sync: "full" });
    job.start();
    while (!job.freed) yield sleep(1_000_000);
  })());
  const r = sim.run();
  if (r.outcome.kind !== "ok") throw new Error(`bench run ended with ${JSON.stringify(r.outcome)}`);
  return { steps: r.steps, endTimeNs: r.endTimeNs, guestWrites: guest.stats.completed };
}

const warm = runBackup();
const ref: number[] = [], wall: number[] = [];
for (let i = 0; i < RUNS; i++) {
  ref.push(referenceEventsPerSec());
  wall.push(timed(runBackup).seconds);
}
const seconds = median(wall), refEv = median(ref);
console.log(`jobs bench: 1 GiB backup, 64 KiB clusters, guest random 64 KiB writes (4 deep, 100 µs apart); median of ${RUNS} after a warm-up; node ${process.version}`);
console.log(`simulated: ${(warm.endTimeNs / 1e6).toFixed(1)} ms of virtual time, ${warm.steps.toLocaleString("en-US")} kernel steps, ${warm.guestWrites.toLocaleString("en-US")} guest writes`);
console.log("");
console.log("| wall time per job | simulated MiB per wall second | kernel steps/s | reference kernel (events/s) | ratio |");
console.log("|---:|---:|---:|---:|---:|");
console.log(`| ${(seconds * 1000).toFixed(0)} ms | ${(1024 / seconds).toFixed(0)} | ${(warm.steps / seconds / 1e6).toFixed(2)} M | ${(refEv / 1e6).toFixed(2)} M | ${(warm.steps / seconds / refEv).toFixed(3)} |`);
