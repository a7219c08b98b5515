import { Domain, type DomainOptions } from "../../sim/mgmt/index.js";
import { createQemu, type Qemu } from "../../sim/qmp/qemu.js";
import { Scheduler, sleep, type Process, type RunResult, type Strategy } from "../../sim/scheduler/index.js";

export const ms = 1_000_000;
export const s = 1_000_000_000;
export const MiB = 1 << 20;

/** A domain on an empty simulated QEMU (no devices), for job-rule tests. */
export function makeDomain(opts: Partial<DomainOptions> = {}, strategy?: Strategy): { sim: Scheduler; q: Qemu; dom: Domain } {
  const sim = new Scheduler({ seed: 1, ...(strategy ? { strategy } : {}), maxTimeNs: 600 * s });
  const q = createQemu(sim);
  const dom = new Domain(q, { disks: [], qmpRoundTripNs: 0, ...opts });
  return { sim, q, dom };
}

/** Spawns `body` as client `name`, starting at `atNs`. */
export function client(sim: Scheduler, name: string, atNs: number, body: () => Process<unknown>): void {
  sim.spawn(name, (function* () {
    if (atNs > 0) yield sleep(atNs);
    try {
      yield* body();
    } catch (e) {
      if (!(e instanceof Error) || e.name !== "VirError") throw e;
    }
  })());
}

export function runOk(sim: Scheduler): RunResult {
  const r = sim.run();
  if (r.outcome.kind !== "ok") throw new Error(`run ended ${JSON.stringify(r.outcome)}`);
  return r;
}
