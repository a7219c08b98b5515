import type { DeviceConfig } from "../../sim/disk/index.js";
import { BlockGraph, type DrainParent } from "../../sim/block/index.js";
import { Scheduler, type SchedulerOptions } from "../../sim/scheduler/index.js";
import { makeDevice } from "../disk/helpers.js";

/** A scheduler, a graph, and a device maker with small round defaults. */
export function world(opts: SchedulerOptions = {}) {
  const sim = new Scheduler({ trace: true, ...opts });
  const graph = new BlockGraph(sim);
  const device = (name: string, over: Partial<DeviceConfig> = {}) => makeDevice(sim, { name, queueDepth: 8, ...over });
  return { sim, graph, device };
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
