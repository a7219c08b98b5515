/**
 * The job state machine of QEMU 7.2 (qapi/job.json JobStatus, the JobSTT and
 * JobVerbTable of job.c), as data. An illegal transition is a simulator bug:
 * `assertTransition` throws and the run fails loudly.
 */

export const JOB_STATUSES = [
  "undefined", "created", "running", "paused", "ready", "standby",
  "waiting", "pending", "aborting", "concluded", "null",
] as const;
export type JobStatus = (typeof JOB_STATUSES)[number];

/** Where each status may go next. */
export const TRANSITIONS: Readonly<Record<JobStatus, readonly JobStatus[]>> = {
  undefined: ["created"],
  created: ["running", "aborting", "null"],
  running: ["paused", "ready", "waiting", "aborting"],
  paused: ["running"],
  ready: ["standby", "waiting", "aborting"],
  standby: ["ready"],
  waiting: ["pending", "aborting"],
  pending: ["concluded", "aborting"],
  aborting: ["concluded", "aborting"], // the self-loop is legal (QEMU 35d6b368f2)
  concluded: ["null"],
  null: [],
};

export const JOB_VERBS = ["cancel", "pause", "resume", "set-speed", "complete", "finalize", "dismiss", "change"] as const;
export type JobVerb = (typeof JOB_VERBS)[number];

const ACTIVE: readonly JobStatus[] = ["created", "running", "paused", "ready", "standby"];

/** The states in which each verb is accepted (complete in standby since QEMU 6.0, 53ddb9c892). */
export const VERBS: Readonly<Record<JobVerb, readonly JobStatus[]>> = {
  cancel: [...ACTIVE, "waiting", "pending"],
  pause: ACTIVE,
  resume: ACTIVE,
  "set-speed": ACTIVE,
  change: ACTIVE,
  complete: ["ready", "standby"],
  finalize: ["pending"],
  dismiss: ["concluded"],
};

export function isLegalTransition(from: JobStatus, to: JobStatus): boolean {
  return TRANSITIONS[from].includes(to);
}

export function acceptsVerb(status: JobStatus, verb: JobVerb): boolean {
  return VERBS[verb].includes(status);
}

/** A job whose run has ended (QEMU's job_is_completed). */
export function isCompleted(status: JobStatus): boolean {
  return status === "waiting" || status === "pending" || status === "aborting" || status === "concluded" || status === "null";
}

/** Thrown for an illegal transition: a bug in the simulator or a driver, never a user error. */
export class IllegalTransition extends Error {
  constructor(readonly jobId: string, readonly from: JobStatus, readonly to: JobStatus) {
    super(`job '${jobId}': illegal state transition ${from} -> ${to}`);
    this.name = "IllegalTransition";
  }
}
