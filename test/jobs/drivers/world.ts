import { BlockGraph, startGuest, type BlockNode, type GuestConfig } from "../../../sim/block/index.js";
import { Device, type DeviceConfig } from "../../../sim/disk/index.js";
import type { JobEvent } from "../../../sim/jobs/job.js";
import { JobManager } from "../../../sim/jobs/manager.js";
import { Scheduler, type Process, type Strategy } from "../../../sim/scheduler/index.js";
import { compact } from "../harness.js";

export const MiB = 1 << 20;

/** A scheduler, a block graph and a job manager wired together (idle jobs kick drain pollers). */
export function blockWorld(opts: { seed?: number; strategy?: Strategy; behaviour?: ConstructorParameters<typeof JobManager>[1] } = {}) {
  const sim = new Scheduler({ seed: opts.seed ?? 1, strategy: opts.strategy, maxSteps: 5_000_000, maxTimeNs: 600e9 });
  const graph = new BlockGraph(sim);
  const jm = new JobManager(sim, opts.behaviour);
  jm.onIdle(() => graph.kick());
  const disk = (name: string, sizeBytes: number, over: Partial<DeviceConfig> = {}): BlockNode =>
    graph.createNode({
      name,
      driver: "raw",
      device: new Device(sim, {
        name: `${name}-dev`, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: 100_000, writeLatencyNs: 100_000,
        bandwidthBytesPerSec: 0, queueDepth: 32, ...over,
      }),
    });
  /** A qcow2 node on its own device, over `backing`. */
  const qcow2 = (name: string, sizeBytes: number, backing: BlockNode | null): BlockNode =>
    graph.createNode({
      name, driver: "qcow2", backing,
      device: new Device(sim, { name: `${name}-dev`, sizeBytes, clusterSizeBytes: 65536, readLatencyNs: 100_000, writeLatencyNs: 100_000, bandwidthBytesPerSec: 0, queueDepth: 32 }),
    });
  /** A guest on its own backend (`.backend`), writing 64 KiB at random. */
  const guest = (name: string, node: BlockNode, over: Partial<GuestConfig> = {}) => {
    const backend = graph.createBackend({ name, issuer: "guest", root: node, queueWhenDrained: true });
    const g = startGuest(sim, { name, backend, pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 4, intervalNs: 200_000, ...over });
    return Object.assign(g, { backend });
  };
  const run = (script: () => Process) => {
    sim.spawn("script", script());
    return sim.run();
  };
  const events = () => compact(jm.events);
  return { sim, graph, jm, disk, qcow2, guest, run, events, eventsOf: (id: string) => compact(jm.events.filter((e: JobEvent) => (e.data.id ?? e.data.device) === id)) };
}
