/**
 * Disk benchmark: simulated requests per wall-clock second for a guest
 * issuing 4 KiB random writes at queue depth 32 — the full path a job races
 * against: guest workload -> BlockBackend -> raw node -> Device (latency,
 * shared bandwidth channel, queue depth 32, fault rules checked, content
 * stamped, every completion hashed into the trace) on blocksim's Scheduler.
 *
 * Printed beside a reference from the same process: a minimal kernel written
 * here (plain object binary heap, bare generators, no strategy, no hash, no
 * trace) stepping 1,000 processes that loop `sleep(random ns)`. The ratio
 * requests/s ÷ reference events/s says how many reference events one
 * simulated request costs. A second line shows the same writes issued
 * straight to the Device (no block layer, no guest), to split the cost.
 * Median of several runs after a warm-up. A measurement, not a test.
 *
 * Usage: npx tsx bench/disk.ts [requests per run]
 */
import { median, referenceEventsPerSec, timed } from "./reference-kernel.js";
import { BlockGraph, startGuest } from "../sim/block/index.js";
import { Device } from "../sim/disk/index.js";
import { Scheduler, type Process } from "../sim/scheduler/index.js";

const REQUESTS = Number(process.argv[2] ?? 300_000);
const RUNS = 5;
const QUEUE_DEPTH = 32;
const KiB = 4096;
const DISK_BYTES = 1 << 30;

// ---- blocksim ----

function device(sim: Scheduler): Device {
  return new Device(sim, {
    name: "disk0",
    sizeBytes: DISK_BYTES,
    clusterSizeBytes: KiB,
    readLatencyNs: { minNs: 50_000, maxNs: 150_000 },
    writeLatencyNs: { minNs: 50_000, maxNs: 150_000 },
    bandwidthBytesPerSec: 2_000_000_000,
    queueDepth: QUEUE_DEPTH,
  });
}

/** The guest path: startGuest -> BlockBackend -> raw node -> Device. */
function runGuest(): { requests: number; steps: number; endTimeNs: number } {
  const sim = new Scheduler({ seed: 1 });
  const graph = new BlockGraph(sim);
  const node = graph.createNode({ name: "disk0", driver: "raw", device: device(sim) });
  const blk = graph.createBackend({ name: "drive0", issuer: "guest", root: node, queueWhenDrained: true });
  const g = startGuest(sim, { name: "guest", backend: blk, pattern: "random", requestBytes: KiB, iodepth: QUEUE_DEPTH, maxRequests: REQUESTS, daemon: false });
  const r = sim.run();
  if (r.outcome.kind !== "ok" || g.stats.completed !== REQUESTS) throw new Error(`guest run ended with ${JSON.stringify(r.outcome)} after ${g.stats.completed} requests`);
  return { requests: g.stats.completed, steps: r.steps, endTimeNs: r.endTimeNs };
}

/** The same writes straight to the Device from 32 processes. */
function runDirect(): { requests: number; steps: number; endTimeNs: number } {
  const sim = new Scheduler({ seed: 1 });
  const dev = device(sim);
  const rng = sim.streams.get("bench/direct");
  const clusters = DISK_BYTES / KiB;
  const per = REQUESTS / QUEUE_DEPTH;
  for (let i = 0; i < QUEUE_DEPTH; i++) {
    sim.spawn("w", (function* (): Process {
      for (let j = 0; j < per; j++) yield dev.io({ op: "write", offset: Math.floor(rng() * clusters) * KiB, bytes: KiB, issuer: "guest" });
    })());
  }
  const r = sim.run();
  if (r.outcome.kind !== "ok") throw new Error(`direct run ended with ${JSON.stringify(r.outcome)}`);
  return { requests: dev.stats.completed, steps: r.steps, endTimeNs: r.endTimeNs };
}

referenceEventsPerSec();
const guestWarm = runGuest();
const directWarm = runDirect();
const ref: number[] = [], guest: number[] = [], direct: number[] = [];
for (let i = 0; i < RUNS; i++) {
  const order = i % 2 === 0 ? ["ref", "guest", "direct"] : ["direct", "guest", "ref"];
  for (const which of order) {
    if (which === "ref") {
      ref.push(referenceEventsPerSec());
    } else if (which === "guest") {
      const t = timed(runGuest);
      guest.push(t.value.requests / t.seconds);
    } else {
      const t = timed(runDirect);
      direct.push(t.value.requests / t.seconds);
    }
  }
}
const refEv = median(ref), guestRq = median(guest), directRq = median(direct);
const m = (x: number) => `${(x / 1e6).toFixed(2)} M`;
const k = (x: number) => `${(x / 1e3).toFixed(0)} k`;
console.log(`disk bench: ${REQUESTS.toLocaleString("en-US")} random 4 KiB writes at queue depth ${QUEUE_DEPTH}, latency 50-150 µs drawn, 2 GB/s; median of ${RUNS} after a warm-up; node ${process.version}`);
console.log(`simulated time per run: ${(guestWarm.endTimeNs / 1e6).toFixed(1)} ms; kernel steps per request: guest path ${(guestWarm.steps / guestWarm.requests).toFixed(2)}, direct ${(directWarm.steps / directWarm.requests).toFixed(2)}`);
console.log("");
console.log("| workload | requests/s | reference kernel (events/s) | ratio |");
console.log("|---|---:|---:|---:|");
console.log(`| guest -> BlockBackend -> raw node -> Device | ${k(guestRq)} | ${m(refEv)} | ${(guestRq / refEv).toFixed(3)} |`);
console.log(`| 32 processes -> Device directly | ${k(directRq)} | ${m(refEv)} | ${(directRq / refEv).toFixed(3)} |`);
