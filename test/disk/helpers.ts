import { Device, type DeviceConfig, type IoRequest } from "../../sim/disk/index.js";
import { now, sleep, type Process, type Scheduler } from "../../sim/scheduler/index.js";

/** A device with small, round defaults; override what the test is about. */
export function makeDevice(sim: Scheduler, over: Partial<DeviceConfig> = {}): Device {
  return new Device(sim, {
    name: "d0",
    sizeBytes: 1 << 20,
    clusterSizeBytes: 4096,
    readLatencyNs: 1_000,
    writeLatencyNs: 1_000,
    bandwidthBytesPerSec: 0,
    queueDepth: 1,
    ...over,
  });
}

export interface Done {
  submitNs: number;
  doneNs: number;
  result?: unknown;
  error?: unknown;
}

/** Spawns one process per request, each issuing at `atNs` (default 0, in list order); records when each completed. */
export function issueAll(sim: Scheduler, dev: Device, reqs: { req: IoRequest; atNs?: number }[]): Done[] {
  const out: Done[] = reqs.map(() => ({ submitNs: -1, doneNs: -1 }));
  reqs.forEach(({ req, atNs = 0 }, i) => {
    sim.spawn(`p${i}`, (function* (): Process {
      if (atNs > 0) yield sleep(atNs);
      const d = out[i];
      d.submitNs = (yield now()) as number;
      try {
        d.result = yield dev.io(req);
      } catch (e) {
        d.error = e;
      }
      d.doneNs = (yield now()) as number;
    })());
  });
  return out;
}
