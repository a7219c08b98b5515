import type { DeviceConfig } from "../../sim/disk/index.js";
import { BlockGraph, type DrainParent } from "../../sim/block/index.js";
import { Scheduler, type Process, type SchedulerOptions } from "../../sim/scheduler/index.js";
import { makeDevice } from "../disk/helpers.js";

/** A scheduler, a graph, and a device maker with small round defaults. */
export function world(opts: SchedulerOptions = {}) {
  const sim = new Scheduler({ trace: true, ...opts });
  const graph = new BlockGraph(sim);
  const device = (name: string, over: Partial<DeviceConfig> = {}) => makeDevice(sim, { name, queueDepth: 8, ...over });
  return { sim, graph, device };
}

/**
 * base (raw, clusters 0..3 of `clusterBytes` written as ids 1..4, by a process that runs first) <- top
 * (qcow2), each on a 16-cluster device; `sparse`: base's device is an image file (it reports its holes).
 */
export function chain(clusterBytes: number, sparse = false) {
  const w = world();
  const baseDev = w.device("base-dev", { sizeBytes: 16 * clusterBytes, sparse });
  const topDev = w.device("top-dev", { sizeBytes: 16 * clusterBytes });
  const base = w.graph.createNode({ name: "base", driver: "raw", device: baseDev });
  const top = w.graph.createNode({ name: "top", driver: "qcow2", device: topDev, backing: base });
  w.sim.spawn("prep", (function* (): Process {
    for (let c = 0; c < 4; c++) yield* base.write(c * clusterBytes, clusterBytes, "prep");
  })());
  return { ...w, baseDev, topDev, base, top };
}

/** A DrainParent that records its calls; busy until told otherwise. */
export class RecordingParent implements DrainParent {
  readonly calls: string[] = [];
  begins = 0;
  busy = false;
  constructor(readonly name: string, private readonly onEnd?: () => void) {}
  drainedBegin(): void {
    this.begins++;
    this.calls.push("begin");
  }
  drainedEnd(): void {
    this.begins--;
    this.calls.push("end");
    this.onEnd?.();
  }
  drainedPoll(): boolean {
    return this.busy;
  }
}
