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

/** The job a block-job-* command names, or QEMU's refusal (returned: see Command). */
function blockJob(jm: JobManager, id: unknown): Job | QmpError {
  const job = typeof id === "string" ? jm.get(id) : undefined;
  return job ?? new QmpError("DeviceNotActive", `Block job '${String(id)}' not found`);
}

/** The job a job-* command names, or QEMU's refusal. */
function job(jm: JobManager, id: unknown): Job | QmpError {
  const j = typeof id === "string" ? jm.get(id) : undefined;
  return j ?? genericError("Job not found");
}

/** Applies `verb` to a job that was found; a refusal goes back as it is. */
function onJob(j: Job | QmpError, verb: (j: Job) => void): QmpError | undefined {
  if (j instanceof QmpError) return j;
  verb(j);
  return undefined;
}

const ID: ArgSpec = { id: { type: "str" } };
const DEVICE: ArgSpec = { device: { type: "str" } };

export const JOB_COMMANDS: Record<string, Command<{ jm: JobManager }>> = {
  "job-pause": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.userPause()) },
  "job-resume": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.userResume()) },
  "job-cancel": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.userCancel(true)) },
  "job-complete": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.complete()) },
  "job-finalize": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.finalize()) },
  "job-dismiss": { args: ID, run: ({ jm }, a) => onJob(job(jm, a.id), (j) => j.dismiss()) },

  "block-job-pause": { args: DEVICE, run: ({ jm }, a) => onJob(blockJob(jm, a.device), (j) => j.userPause()) },
  "block-job-resume": { args: DEVICE, run: ({ jm }, a) => onJob(blockJob(jm, a.device), (j) => j.userResume()) },
  "block-job-complete": { args: DEVICE, run: ({ jm }, a) => onJob(blockJob(jm, a.device), (j) => j.complete()) },
  "block-job-finalize": { args: ID, run: ({ jm }, a) => onJob(blockJob(jm, a.id), (j) => j.finalize()) },
  "block-job-dismiss": { args: ID, run: ({ jm }, a) => onJob(blockJob(jm, a.id), (j) => j.dismiss()) },
  "block-job-set-speed": {
    args: { device: { type: "str" }, speed: { type: "int" } },
    run: ({ jm }, a) => onJob(blockJob(jm, a.device), (j) => j.setSpeed(a.speed as number)),
  },
  "block-job-cancel": {
    args: { device: { type: "str" }, force: { type: "bool", optional: true } },
    run: ({ jm }, a) => {
      const j = blockJob(jm, a.device);
      if (j instanceof QmpError) return j;
      const force = (a.force as boolean | undefined) ?? false;
      if (j.userPaused && !force) return genericError(`The block job for device '${a.device}' is currently paused`);
      j.userCancel(force);
      return undefined;
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
