/**
 * Profiles: named historical behaviours. Each is a set of behaviour switches
 * with the change it corresponds to, so a fixed race can be replayed under
 * the code that had it and shown gone under the fix.
 */
import { CURRENT_JOB_BEHAVIOUR, type JobBehaviour } from "../jobs/job.js";

/** Switches of the QMP layer. */
export interface QmpBehaviour {
  /**
   * Transaction backup actions start their job in the commit phase, after
   * every action prepared (111049a4ec, seed 001). Off: the job starts as soon
   * as its action creates it, while the transaction is still being built.
   */
  txnStartInCommit: boolean;
}

export type Behaviour = JobBehaviour & QmpBehaviour;

export interface Profile {
  name: string;
  description: string;
  /** The upstream change this profile undoes or corresponds to. */
  change: string;
  behaviour: Partial<Behaviour>;
}

export const CURRENT_BEHAVIOUR: Behaviour = { ...CURRENT_JOB_BEHAVIOUR, txnStartInCommit: true };

export const PROFILES: readonly Profile[] = [
  {
    name: "current",
    description: "QEMU 7.2 as recorded in ../shared/conformance (the default)",
    change: "QEMU v7.2.0",
    behaviour: {},
  },
  {
    name: "txn-start-on-create",
    description: "transaction backup actions start their job as soon as they create it, before the transaction is fully built",
    change: "before qemu 111049a4ec (2016-11, 'blockjob: refactor backup_start as backup_job_create'; seed 001)",
    behaviour: { txnStartInCommit: false },
  },
  {
    name: "no-start-shim",
    description: "a pause requested before a job's first start is honoured the pre-2017 way: the first entry can come from a resume, with busy still false",
    change: "before qemu e3796a245a (2017-03, 'blockjob: add block_job_start_shim'; seed 000)",
    behaviour: { startShim: false },
  },
];

/** The behaviour of a named profile; throws with the list of known names. */
export function profileBehaviour(name: string): Behaviour {
  const p = PROFILES.find((x) => x.name === name);
  if (!p) throw new Error(`unknown profile '${name}'; known profiles: ${PROFILES.map((x) => x.name).join(", ")}`);
  return { ...CURRENT_BEHAVIOUR, ...p.behaviour };
}
