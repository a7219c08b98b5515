/**
 * The job verbs and queries: job-* and block-job-* commands, query-jobs and
 * query-block-jobs (QEMU job-qmp.c and blockdev.c). Lookups differ on
 * purpose, as in QEMU: block-job-* answers DeviceNotActive "Block job 'x'
 * not found", job-* a GenericError "Job not found".
 */
import { genericError, QmpError } from "../jobs/errors.js";
import type { Job } from "../jobs/job.js";
import type { JobManager } from "../jobs/manager.js";
import type { ArgSpec } from "./args.js";
import type { Command } from "./monitor.js";

function blockJob(jm: JobManager, id: unknown): Job {
  const job = typeof id === "string" ? jm.get(id) : undefined;
  if (!job) throw new QmpError("DeviceNotActive", `Block job '${String(id)}' not found`);
  return job;
}

function job(jm: JobManager, id: unknown): Job {
  const j = typeof id === "string" ? jm.get(id) : undefined;
  if (!j) throw genericError("Job not found");
  return j;
}

const ID: ArgSpec = { id: { type: "str" } };
const DEVICE: ArgSpec = { device: { type: "str" } };

export const JOB_COMMANDS: Record<string, Command<{ jm: JobManager }>> = {
  "job-pause": { args: ID, run: ({ jm }, a) => void job(jm, a.id).userPause() },
  "job-resume": { args: ID, run: ({ jm }, a) => void job(jm, a.id).userResume() },
  "job-cancel": { args: ID, run: ({ jm }, a) => void job(jm, a.id).userCancel(true) },
  "job-complete": { args: ID, run: ({ jm }, a) => void job(jm, a.id).complete() },
  "job-finalize": { args: ID, run: ({ jm }, a) => void job(jm, a.id).finalize() },
  "job-dismiss": { args: ID, run: ({ jm }, a) => void job(jm, a.id).dismiss() },

  "block-job-pause": { args: DEVICE, run: ({ jm }, a) => void blockJob(jm, a.device).userPause() },
  "block-job-resume": { args: DEVICE, run: ({ jm }, a) => void blockJob(jm, a.device).userResume() },
  "block-job-complete": { args: DEVICE, run: ({ jm }, a) => void blockJob(jm, a.device).complete() },
  "block-job-finalize": { args: ID, run: ({ jm }, a) => void blockJob(jm, a.id).finalize() },
  "block-job-dismiss": { args: ID, run: ({ jm }, a) => void blockJob(jm, a.id).dismiss() },
  "block-job-set-speed": {
    args: { device: { type: "str" }, speed: { type: "int" } },
    run: ({ jm }, a) => void blockJob(jm, a.device).setSpeed(a.speed as number),
  },
  "block-job-cancel": {
    args: { device: { type: "str" }, force: { type: "bool", optional: true } },
    run: ({ jm }, a) => {
      const j = blockJob(jm, a.device);
      const force = (a.force as boolean | undefined) ?? false;
      if (j.userPaused && !force) throw genericError(`The block job for device '${a.device}' is currently paused`);
      j.userCancel(force);
    },
  },

  "query-jobs": { args: {}, run: ({ jm }) => jm.jobs.filter((j) => j.id !== null).map(jobInfo) },
  "query-block-jobs": { args: {}, run: ({ jm }) => jm.jobs.filter((j) => j.id !== null).map(blockJobInfo) },
};

/** query-jobs' JobInfo. */
export function jobInfo(j: Job): Record<string, unknown> {
  return {
    id: j.id,
    type: j.type,
    status: j.status,
    "current-progress": j.progressCurrent,
    "total-progress": j.progressTotal,
    ...(j.ret !== 0 && j.err !== undefined ? { error: j.err } : {}),
  };
}

/** query-block-jobs' BlockJobInfo: `paused` is a requested pause (pause_count > 0), not the parked flag. */
export function blockJobInfo(j: Job): Record<string, unknown> {
  return {
    type: j.type,
    device: j.id,
    len: j.progressTotal,
    offset: j.progressCurrent,
    busy: j.busy,
    paused: j.pauseCount > 0,
    speed: j.speed,
    "io-status": j.iostatus,
    ready: j.ready,
    status: j.status,
    "auto-finalize": j.autoFinalize,
    "auto-dismiss": j.autoDismiss,
    ...(j.ret !== 0 && j.err !== undefined ? { error: j.err } : {}),
  };
}
