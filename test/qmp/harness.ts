import { createQemu, type Qemu } from "../../sim/qmp/qemu.js";
import type { Behaviour } from "../../sim/qmp/profiles.js";
import type { QmpResponse, TranscriptEntry } from "../../sim/qmp/types.js";
import { Scheduler, sleep, type Process, type Strategy } from "../../sim/scheduler/index.js";

export const MiB = 1 << 20;

/** A simulated QEMU with devices d1..d4 (16 MiB raw, 1 ms latency) and a client script; returns the transcript. */
export function session(script: (q: Qemu, qmp: (execute: string, args?: Record<string, unknown>) => Process<QmpResponse>) => Process, behaviour: Partial<Behaviour> = {}, strategy?: Strategy) {
  const sim = new Scheduler({ maxTimeNs: 600e9, maxSteps: 5_000_000, strategy });
  const q = createQemu(sim, behaviour);
  for (const name of ["d1", "d2", "d3", "d4"]) {
    q.addDevice({ name, sizeBytes: 16 * MiB, clusterSizeBytes: 65536, readLatencyNs: 1_000_000, writeLatencyNs: 1_000_000, bandwidthBytesPerSec: 0, queueDepth: 8 });
  }
  const qmp = (execute: string, args?: Record<string, unknown>) => q.monitor.execute(args ? { execute, arguments: args } : { execute });
  sim.spawn("client", script(q, qmp));
  const result = sim.run();
  return { q, result, transcript: q.monitor.transcript, lines: q.monitor.transcript.map(line) };
}

/** Waits until no job is left. */
export function* drained(q: Qemu): Process<void> {
  while (q.jm.jobs.length > 0) yield sleep(1_000_000);
}

export function line(t: TranscriptEntry): string {
  if ("cmd" in t) return `> ${t.cmd}`;
  if ("event" in t) return t.event === "JOB_STATUS_CHANGE" ? `${t.data.id}:${t.data.status}` : `${t.event}:${t.data.device ?? t.data.id}`;
  if ("error" in t) return `! ${t.error.class}: ${t.error.desc}`;
  return "<";
}
