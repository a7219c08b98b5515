import { Scheduler, sleep, type Process, type Strategy } from "../../sim/scheduler/index.js";
import type { Job, JobBehaviour, JobEvent } from "../../sim/jobs/job.js";
import { JobManager } from "../../sim/jobs/manager.js";

export interface World {
  sim: Scheduler;
  jm: JobManager;
}

/** Runs a script process against a fresh job manager; returns the run and its events in compact form. */
export function runScript(
  script: (w: World) => Process,
  opts: { behaviour?: Partial<JobBehaviour>; strategy?: Strategy; maxTimeNs?: number } = {},
) {
  const sim = new Scheduler({ strategy: opts.strategy, maxTimeNs: opts.maxTimeNs ?? 60e9, maxSteps: 2_000_000 });
  const jm = new JobManager(sim, { behaviour: opts.behaviour });
  sim.spawn("script", script({ sim, jm }));
  const result = sim.run();
  return { sim, jm, result, events: compact(jm.events) };
}

/** `j0:running` for status changes, `BLOCK_JOB_COMPLETED:j0` (plus `!error`) for the rest. */
export function compact(events: readonly JobEvent[]): string[] {
  return events.map((e) => {
    if (e.event === "JOB_STATUS_CHANGE") return `${e.data.id}:${e.data.status}`;
    const who = e.data.device ?? e.data.id;
    return `${e.event}:${who}${e.data.error ? "!" : ""}${e.event === "BLOCK_JOB_ERROR" ? `(${e.data.operation},${e.data.action})` : ""}`;
  });
}

/** A drained section without a block graph: pause, then wait until the job is not busy. */
export function* quiesce(job: Job): Process<void> {
  job.pause();
  while (job.busy && !job.completed) yield sleep(1);
}

/** Sleeps until `cond` holds (polling every `stepNs`), at most `limitNs`. */
export function* until(cond: () => boolean, stepNs = 1000, limitNs = 10e9): Process<void> {
  for (let t = 0; !cond(); t += stepNs) {
    if (t > limitNs) throw new Error("until: condition never held");
    yield sleep(stepNs);
  }
}
