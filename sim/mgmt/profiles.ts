/**
 * Management-layer profiles: libvirt versions (and one labelled
 * counterfactual) as behaviour switches of sim/mgmt, appended to the
 * catalog of sim/qmp/profiles.ts. Each keeps QEMU at the current behaviour
 * (`behaviour: {}`), so it is a valid `Profile` for any code that builds a
 * simulated QEMU from a profile name; `mgmt` holds what changes here.
 *
 * - `info-modify-job`: libvirt before cefe0ba3d (v1.2.8 and back to
 *   b976165ca, v0.9.4): virDomainGetBlockJobInfo went through
 *   qemuDomainBlockJobImpl and took a QEMU_JOB_MODIFY job.
 * - `libvirt-1.2.9`: cefe0ba3d ("blockjob: split out block info driver
 *   handling", seed 004): GetBlockJobInfo takes QEMU_JOB_QUERY. The
 *   synchronous abort still polls query-block-jobs every 50 ms holding its
 *   MODIFY job (a91ce852b). This is the default management behaviour.
 * - `libvirt-1.2.17`: 4172b96a3 (and 630ee5ac6, v1.2.14, before it): the
 *   synchronous abort waits on the domain condition until the block job
 *   event has been handled, instead of polling; still holding MODIFY.
 * - `query-beside-modify`: NOT a libvirt version. What cefe0ba3d's message
 *   says ("can safely be used in parallel with any long running modify
 *   command"), which libvirt's job code never allowed: a QUERY job may be
 *   taken while a MODIFY job is held. Use it to show what the fix intended.
 */
import { CURRENT_BEHAVIOUR, PROFILES, profileBehaviour, UnknownProfileError, type Behaviour, type Profile } from "../qmp/profiles.js";

export { UnknownProfileError } from "../qmp/profiles.js";

/** Switches of the management layer. */
export interface MgmtBehaviour {
  /** The job kind virDomainGetBlockJobInfo takes: "modify" before cefe0ba3d, "query" after. */
  blockJobInfoJob: "modify" | "query";
  /**
   * How a synchronous virDomainBlockJobAbort waits for the job to go:
   * "poll" (query-block-jobs every 50 ms, a91ce852b, v0.9.12..v1.2.13) or
   * "event" (wait on a condition the block-job event handler signals,
   * 630ee5ac6 v1.2.14, on the domain condition since 4172b96a3 v1.2.17).
   */
  syncAbortWait: "poll" | "event";
  /** Counterfactual: a QUERY job may start while a MODIFY (or QUERY) job is held. Never true in libvirt. */
  queryBesideModify: boolean;
}

/** The default: libvirt v1.2.9 (cefe0ba3d applied). */
export const DEFAULT_MGMT_BEHAVIOUR: MgmtBehaviour = { blockJobInfoJob: "query", syncAbortWait: "poll", queryBesideModify: false };

export interface MgmtProfile extends Profile {
  mgmt: Partial<MgmtBehaviour>;
  /** True for behaviour no libvirt release had. */
  counterfactual?: boolean;
}

export const MGMT_PROFILES: readonly MgmtProfile[] = [
  {
    name: "info-modify-job",
    description: "libvirt before the seed-004 fix: virDomainGetBlockJobInfo takes a MODIFY job, so it waits behind a synchronous block job abort and cannot run during an async job (migration, save, dump, snapshot)",
    change: "before libvirt cefe0ba3d (2014-08, 'blockjob: split out block info driver handling', v1.2.9; seed 004)",
    behaviour: {},
    mgmt: { blockJobInfoJob: "modify", syncAbortWait: "poll" },
  },
  {
    name: "libvirt-1.2.9",
    description: "libvirt with the seed-004 fix: GetBlockJobInfo takes a QUERY job; the synchronous abort still polls every 50 ms holding its MODIFY job",
    change: "libvirt cefe0ba3d (v1.2.9)",
    behaviour: {},
    mgmt: { blockJobInfoJob: "query", syncAbortWait: "poll" },
  },
  {
    name: "libvirt-1.2.17",
    description: "the synchronous abort waits for the block job event on the domain condition instead of polling; still holding its MODIFY job",
    change: "libvirt 630ee5ac6 (v1.2.14) and 4172b96a3 (2015-05, 'qemu: Use domain condition for synchronous block jobs', v1.2.17)",
    behaviour: {},
    mgmt: { blockJobInfoJob: "query", syncAbortWait: "event" },
  },
  {
    name: "query-beside-modify",
    description: "COUNTERFACTUAL, no libvirt release: a QUERY job runs beside a held MODIFY job, as cefe0ba3d's message claims; shows what the fix intended for a poller during a synchronous abort",
    change: "none (the claim in cefe0ba3d's commit message, not its code)",
    behaviour: {},
    mgmt: { blockJobInfoJob: "query", syncAbortWait: "poll", queryBesideModify: true },
    counterfactual: true,
  },
];

/** The QMP catalog followed by the management-layer profiles. */
export const ALL_PROFILES: readonly Profile[] = [...PROFILES, ...MGMT_PROFILES];

/**
 * The management behaviour of a profile name. QMP-only profiles ("current",
 * …) get the default (libvirt v1.2.9). Throws with the list of known names.
 */
export function mgmtBehaviour(name: string): MgmtBehaviour {
  const m = MGMT_PROFILES.find((p) => p.name === name);
  if (m) return { ...DEFAULT_MGMT_BEHAVIOUR, ...m.mgmt };
  if (PROFILES.some((p) => p.name === name)) return { ...DEFAULT_MGMT_BEHAVIOUR };
  throw new UnknownProfileError(name, ALL_PROFILES.map((p) => p.name));
}

/** The QEMU behaviour of any profile name in ALL_PROFILES (management profiles keep QEMU current). */
export function qemuBehaviour(name: string): Behaviour {
  const m = MGMT_PROFILES.find((p) => p.name === name);
  if (m) return { ...CURRENT_BEHAVIOUR, ...m.behaviour };
  if (!PROFILES.some((p) => p.name === name)) throw new UnknownProfileError(name, ALL_PROFILES.map((p) => p.name));
  return profileBehaviour(name);
}

/** A profile with its two behaviours, made once per profile (frozen: every world of that profile shares them). */
export interface ProfileEntry {
  profile: Profile;
  qemu: Behaviour;
  mgmt: MgmtBehaviour;
}
const CATALOG: ReadonlyMap<string, Readonly<ProfileEntry>> = new Map(
  ALL_PROFILES.map((p) => [p.name, Object.freeze({ profile: p, qemu: Object.freeze(qemuBehaviour(p.name)), mgmt: Object.freeze(mgmtBehaviour(p.name)) })]),
);

/**
 * The one lookup of the profile catalog (QMP and management profiles): the
 * profile, its QEMU behaviour and its management behaviour. Every command
 * that takes a profile goes through it, so each accepts every profile
 * `blocksim profiles` lists and refuses an unknown one the same way.
 */
export function lookupProfile(name: string): Readonly<ProfileEntry> {
  const entry = CATALOG.get(name);
  if (!entry) throw new UnknownProfileError(name, ALL_PROFILES.map((p) => p.name));
  return entry;
}
