/**
 * libvirt's block job APIs (QEMU driver, v1.2.7–v1.2.9) as processes on a
 * Domain: each takes the job its libvirt function takes, talks to the
 * simulated QEMU over QMP, and releases. Errors are thrown as VirError (the
 * API returned -1).
 *
 * Sources (src/qemu/qemu_driver.c at cefe0ba3d^ and cefe0ba3d):
 * - virDomainGetBlockJobInfo: qemuDomainBlockJobImpl(mode INFO) with a
 *   MODIFY job before cefe0ba3d; its own function with a QUERY job after
 *   (profile switch `blockJobInfoJob`). One query-block-jobs; returns null
 *   (libvirt: 0) when QEMU lists no job for the disk; maps QEMU's type
 *   (stream → pull, mirror → copy, commit → commit or active-commit) and
 *   speed in bytes/s to bandwidth in MiB/s; snoops a copy job with
 *   cur == end into mirrorState READY.
 * - virDomainBlockJobAbort: MODIFY; refuses a pivot without an active copy
 *   job and a disk whose job is already ending; block-job-cancel (or, with
 *   PIVOT, qemuDomainBlockPivot: block-job-complete once the copy is ready);
 *   then, unless ABORT_ASYNC, waits for the job to be gone WHILE STILL
 *   HOLDING THE MODIFY JOB ("to prevent newly scheduled block jobs from
 *   confusing us"): query-block-jobs every 50 ms with the vm lock dropped
 *   during the sleep (a91ce852b, v0.9.12; pivot too since 97c59b9c4,
 *   v1.2.7), or, under `syncAbortWait: "event"`, on the domain condition
 *   until the event handler has seen the job end (630ee5ac6, 4172b96a3).
 * - virDomainBlockJobSetSpeed: MODIFY, block-job-set-speed (MiB/s → bytes/s).
 * - virDomainBlockPull / virDomainBlockRebase without COPY: MODIFY,
 *   block-stream; refused with BLOCK_COPY_ACTIVE if the disk has a copy job.
 * - virDomainBlockRebase with COPY (qemuDomainBlockCopy): MODIFY,
 *   drive-mirror (sync top with SHALLOW, mode existing with REUSE_EXT).
 * - virDomainBlockCommit: MODIFY, block-commit; the active layer needs the
 *   ACTIVE flag.
 * - Async jobs: storage migration (MIGRATION_OUT, qemuMigrationDriveMirror:
 *   a drive-mirror per disk under nested jobs, polled every 500 ms until
 *   cur == end; then the memory phase polled every 50 ms), and save, dump,
 *   snapshot as an async job with periodic nested monitor calls.
 *   virDomainAbortJob takes an ABORT job. virDomainSuspend takes SUSPEND;
 *   virDomainDestroy kills QEMU first, then takes DESTROY.
 *
 * Not modelled: the old QEMU without async cancel (BLOCKJOB_SYNC, where
 * libvirt synthesises the event), relative backing names, ACL checks,
 * the XML status file.
 */
import type { QmpResponse } from "../qmp/types.js";
import { sleep, type Process } from "../scheduler/index.js";
import { ASYNC_JOB_MASK, type AsyncJobKind, type BlockJobType, type Call, type Disk, type Domain, type JobKind } from "./domain.js";
import { VirError } from "./errors.js";

/** virDomainBlockJobInfo. */
export interface BlockJobInfo {
  type: BlockJobType | "unknown";
  /** MiB/s. */
  bandwidthMiB: number;
  cur: number;
  end: number;
}

/** The abort loop's poll interval (a91ce852b): 50 ms. */
export const ABORT_POLL_INTERVAL_NS = 50_000_000;
/** qemuMigrationDriveMirror's poll interval: 500 ms. */
export const NBD_MIRROR_POLL_INTERVAL_NS = 500_000_000;
/** qemuMigrationWaitForCompletion's poll interval: 50 ms. */
export const MIGRATION_POLL_INTERVAL_NS = 50_000_000;

const MiB = 1 << 20;

/** qemuMonitorJSONBlockJob's error mapping for a failed block job command. */
function check(r: QmpResponse, cmd: string, device: string): unknown {
  if (!("error" in r)) return r.return;
  const { class: cls, desc } = r.error;
  if (cls === "DeviceNotActive") throw new VirError("VIR_ERR_OPERATION_INVALID", `No active operation on device: ${device}`);
  if (cls === "CommandNotFound") throw new VirError("VIR_ERR_OPERATION_INVALID", `Command '${cmd}' is not found`);
  throw new VirError("VIR_ERR_INTERNAL_ERROR", `unable to execute QEMU command '${cmd}': ${desc}`);
}

interface QemuBlockJob {
  type: string;
  device: string;
  len: number;
  offset: number;
  speed: number;
}

/** One query-block-jobs, and the entry for `d` if QEMU lists one (qemuMonitorJSONGetBlockJobInfo). */
function* queryJob(dom: Domain, call: Call, d: Disk, nested = false): Process<QemuBlockJob | undefined> {
  const list = check(yield* dom.qmp(call, "query-block-jobs", undefined, nested), "query-block-jobs", d.device) as QemuBlockJob[];
  return list.find((j) => j.device === d.device);
}

function toInfo(d: Disk, j: QemuBlockJob): BlockJobInfo {
  let type: BlockJobInfo["type"] = j.type === "stream" ? "pull" : j.type === "mirror" ? "copy" : j.type === "commit" ? "commit" : "unknown";
  if (type === "commit" && d.jobType === "active-commit") type = "active-commit";
  return { type, bandwidthMiB: Math.floor(j.speed / MiB), cur: j.offset, end: j.len };
}

/** Runs `body` holding a normal job of `kind`, released on every path (BeginJob … endjob: EndJob). */
function* withJob<T>(dom: Domain, call: Call, kind: JobKind, body: () => Process<T>): Process<T> {
  yield* dom.beginJob(call, kind);
  try {
    dom.checkActive();
    return yield* body();
  } finally {
    dom.endJob(call);
  }
}

/** virDomainGetBlockJobInfo: the job's progress, or null when QEMU lists no job on the disk. */
export function* getBlockJobInfo(dom: Domain, client: string, disk: string): Process<BlockJobInfo | null> {
  return yield* dom.api(client, "virDomainGetBlockJobInfo", (call) =>
    withJob(dom, call, dom.behaviour.blockJobInfoJob, function* () {
      const d = dom.disk(disk);
      const j = yield* queryJob(dom, call, d);
      if (!j) return null;
      const info = toInfo(d, j);
      // Snoop a copy job that reached the end, so a later pivot knows it may go ahead.
      if (d.mirror && info.cur === info.end && d.mirrorState === "none") d.mirrorState = "ready";
      return info;
    }));
}

export interface AbortFlags {
  /** VIR_DOMAIN_BLOCK_JOB_ABORT_ASYNC: return once QEMU accepted the cancel. */
  async?: boolean;
  /** VIR_DOMAIN_BLOCK_JOB_ABORT_PIVOT: switch the disk to the copy instead of cancelling. */
  pivot?: boolean;
}

/** virDomainBlockJobAbort. Synchronous unless `async`: returns once QEMU no longer lists the job. */
export function* blockJobAbort(dom: Domain, client: string, disk: string, flags: AbortFlags = {}): Process<void> {
  return yield* dom.api(client, "virDomainBlockJobAbort", (call) =>
    withJob(dom, call, "modify", function* () {
      const d = dom.disk(disk);
      if (flags.pivot && !d.mirror) throw new VirError("VIR_ERR_OPERATION_INVALID", `pivot of disk '${d.target}' requires an active copy job`);
      if (d.mirrorState !== "none" && d.mirrorState !== "ready") {
        throw new VirError("VIR_ERR_OPERATION_INVALID", `another job on disk '${d.target}' is still being ended`);
      }
      if (flags.pivot) {
        yield* blockPivot(dom, call, d);
      } else {
        if (d.mirror) d.mirrorState = "abort";
        try {
          check(yield* dom.qmp(call, "block-job-cancel", { device: d.device }), "block-job-cancel", d.device);
        } catch (e) {
          if (d.mirror) d.mirrorState = "none";
          throw e;
        }
      }
      if (flags.async) return;
      if (dom.behaviour.syncAbortWait === "poll") {
        // Poll every 50 ms, holding the job; the vm lock is dropped for the sleep only.
        for (;;) {
          if (!(yield* queryJob(dom, call, d))) break;
          yield sleep(ABORT_POLL_INTERVAL_NS);
          dom.checkActive();
        }
      } else {
        while (d.blockJobActive) yield* dom.waitDomainCond(call);
      }
    }));
}

/** qemuDomainBlockPivot (v1.2.9): the copy must have reached ready; then block-job-complete. */
function* blockPivot(dom: Domain, call: Call, d: Disk): Process<void> {
  const j = yield* queryJob(dom, call, d);
  if (!j) throw new VirError("VIR_ERR_OPERATION_INVALID", `disk '${d.target}' does not have an active block job`);
  if (j.offset !== j.len) throw new VirError("VIR_ERR_BLOCK_COPY_ACTIVE", `disk '${d.target}' not ready for pivot yet`);
  d.mirrorState = "pivot";
  try {
    check(yield* dom.qmp(call, "block-job-complete", { device: d.device }), "block-job-complete", d.device);
  } catch (e) {
    d.mirrorState = "none";
    throw e;
  }
}

/** virDomainBlockJobSetSpeed: MiB/s. */
export function* blockJobSetSpeed(dom: Domain, client: string, disk: string, bandwidthMiB: number): Process<void> {
  return yield* dom.api(client, "virDomainBlockJobSetSpeed", (call) =>
    withJob(dom, call, "modify", function* () {
      const d = dom.disk(disk);
      check(yield* dom.qmp(call, "block-job-set-speed", { device: d.device, speed: bandwidthMiB * MiB }), "block-job-set-speed", d.device);
    }));
}

/** v1.2.9 refuses a new job only on a disk with a recorded mirror (copy or active commit). */
function refuseIfBusy(d: Disk): void {
  if (d.mirror) throw new VirError("VIR_ERR_BLOCK_COPY_ACTIVE", `disk '${d.target}' already in active block job`);
}

/** virDomainBlockPull (and BlockRebase without COPY): block-stream, optionally down to `base` (a node name). */
export function* blockPull(dom: Domain, client: string, disk: string, opts: { bandwidthMiB?: number; base?: string } = {}): Process<void> {
  return yield* dom.api(client, opts.base === undefined ? "virDomainBlockPull" : "virDomainBlockRebase", (call) =>
    withJob(dom, call, "modify", function* () {
      const d = dom.disk(disk);
      refuseIfBusy(d);
      const args: Record<string, unknown> = { device: d.device, "job-id": d.device };
      if (opts.base !== undefined) args["base-node"] = opts.base;
      if (opts.bandwidthMiB) args.speed = opts.bandwidthMiB * MiB;
      check(yield* dom.qmp(call, "block-stream", args), "block-stream", d.device);
      d.jobType = "pull";
      d.blockJobActive = true;
    }));
}

export interface CopyOptions {
  /** The destination: a simulated device's name (drive-mirror's `target`). */
  dest: string;
  bandwidthMiB?: number;
  /** VIR_DOMAIN_BLOCK_REBASE_SHALLOW: sync "top". */
  shallow?: boolean;
  /** VIR_DOMAIN_BLOCK_REBASE_REUSE_EXT: mode "existing". */
  reuseExt?: boolean;
  /** The destination's format, passed to drive-mirror (libvirt passes the disk's format unless COPY_RAW). */
  format?: "raw" | "qcow2";
}

/** virDomainBlockRebase with COPY (qemuDomainBlockCopy): drive-mirror to `dest`. */
export function* blockCopy(dom: Domain, client: string, disk: string, opts: CopyOptions): Process<void> {
  return yield* dom.api(client, "virDomainBlockRebase", (call) =>
    withJob(dom, call, "modify", function* () {
      const d = dom.disk(disk);
      refuseIfBusy(d);
      const args: Record<string, unknown> = {
        device: d.device, "job-id": d.device, target: opts.dest, sync: opts.shallow ? "top" : "full",
        mode: opts.reuseExt ? "existing" : "absolute-paths",
      };
      if (opts.format) args.format = opts.format;
      if (opts.bandwidthMiB) args.speed = opts.bandwidthMiB * MiB;
      check(yield* dom.qmp(call, "drive-mirror", args), "drive-mirror", d.device);
      d.jobType = "copy";
      d.mirror = opts.dest;
      d.mirrorState = "none";
      d.blockJobActive = true;
    }));
}

export interface CommitOptions {
  /** Node names; absent top = the active layer, absent base = the bottom of the chain. */
  top?: string;
  base?: string;
  bandwidthMiB?: number;
  /** VIR_DOMAIN_BLOCK_COMMIT_ACTIVE: required to commit the active layer. */
  active?: boolean;
  /** The disk's active layer node, so a commit of it can be recognised (default: `top` absent means active). */
  activeNode?: string;
}

/** virDomainBlockCommit: block-commit. */
export function* blockCommit(dom: Domain, client: string, disk: string, opts: CommitOptions = {}): Process<void> {
  return yield* dom.api(client, "virDomainBlockCommit", (call) =>
    withJob(dom, call, "modify", function* () {
      const d = dom.disk(disk);
      refuseIfBusy(d);
      const isActive = opts.top === undefined || opts.top === opts.activeNode;
      if (isActive && !opts.active) throw new VirError("VIR_ERR_INVALID_ARG", `commit of '${d.target}' active layer requires active flag`);
      if (!isActive && opts.active) throw new VirError("VIR_ERR_INVALID_ARG", `active commit requested but '${opts.top}' is not active`);
      const args: Record<string, unknown> = { device: d.device, "job-id": d.device };
      if (opts.top !== undefined) args["top-node"] = opts.top;
      if (opts.base !== undefined) args["base-node"] = opts.base;
      if (opts.bandwidthMiB) args.speed = opts.bandwidthMiB * MiB;
      check(yield* dom.qmp(call, "block-commit", args), "block-commit", d.device);
      d.jobType = isActive ? "active-commit" : "commit";
      if (isActive) d.mirror = opts.base ?? "base";
      d.mirrorState = "none";
      d.blockJobActive = true;
    }));
}

/** virDomainSuspend: a SUSPEND job around QMP `stop` (not simulated: a round trip). */
export function* suspend(dom: Domain, client: string): Process<void> {
  return yield* dom.api(client, "virDomainSuspend", (call) =>
    withJob(dom, call, "suspend", () => dom.monitorRoundTrip(call, "stop")));
}

/**
 * virDomainDestroy: kills QEMU first (qemuProcessKill), then takes a DESTROY
 * job to clean up. Here the domain turns inactive (every later monitor call
 * fails); the simulated QEMU itself keeps running — stop its jobs by hand if
 * the run should end.
 */
export function* destroy(dom: Domain, client: string): Process<void> {
  return yield* dom.api(client, "virDomainDestroy", function* (call) {
    dom.markInactive();
    yield* dom.beginJob(call, "destroy");
    dom.endJob(call);
  });
}

/** virDomainAbortJob: an ABORT job; asks the running async job to stop (migrate_cancel: a round trip). */
export function* abortJob(dom: Domain, client: string): Process<void> {
  return yield* dom.api(client, "virDomainAbortJob", (call) =>
    withJob(dom, call, "abort", function* () {
      if (!dom.asyncJob) throw new VirError("VIR_ERR_OPERATION_INVALID", "no job is active on the domain");
      dom.asyncJob.abortRequested = true;
      yield* dom.monitorRoundTrip(call, "migrate_cancel");
    }));
}

/**
 * Holds a normal job of `kind` for `holdNs` without talking to QEMU: a
 * stand-in for any other API taking that job (tests of the job rules).
 */
export function* holdJob(dom: Domain, client: string, kind: JobKind, holdNs: number, api = `hold-${kind}`): Process<void> {
  return yield* dom.api(client, api, (call) =>
    withJob(dom, call, kind, function* () {
      yield sleep(holdNs);
    }));
}

export interface AsyncJobOptions {
  /** How long the job's own work lasts. */
  durationNs: number;
  /** How often it talks to QEMU under a nested job (default 50 ms, as the migration/save wait loops). */
  pollIntervalNs?: number;
  /** The mask (default ASYNC_JOB_MASK[kind]). */
  mask?: readonly JobKind[];
}

/**
 * An async job (save, dump, snapshot, migration) as its wait loop: holds
 * the async slot for `durationNs`, a nested job and a monitor round trip
 * every poll. Stops early (VIR_ERR_OPERATION_ABORTED) once virDomainAbortJob asked.
 */
export function* runAsyncJob(dom: Domain, client: string, kind: AsyncJobKind, opts: AsyncJobOptions): Process<void> {
  return yield* dom.api(client, `async:${kind}`, function* (call) {
    yield* dom.beginAsyncJob(call, kind);
    try {
      dom.setAsyncJobMask(opts.mask ?? ASYNC_JOB_MASK[kind]);
      const endNs = dom.sim.now + opts.durationNs;
      const poll = opts.pollIntervalNs ?? MIGRATION_POLL_INTERVAL_NS;
      while (dom.sim.now < endNs) {
        yield* dom.monitorRoundTrip(call, `poll ${kind}`, true);
        if (dom.asyncJob?.abortRequested) throw new VirError("VIR_ERR_OPERATION_ABORTED", `${kind}: canceled by client`);
        yield sleep(Math.max(0, Math.min(poll, endNs - dom.sim.now)));
      }
    } finally {
      dom.endAsyncJob(call);
    }
  });
}

export interface StorageMigrationOptions {
  /** Per disk (target name): the NBD destination, here a simulated device's name. */
  dests: Record<string, string>;
  bandwidthMiB?: number;
  /** Memory migration after the disks are in sync. */
  memoryPhaseNs: number;
}

/**
 * virDomainMigrate with non-shared storage (v1.2.9 qemuMigrationRun):
 * MIGRATION_OUT async job, mask default | SUSPEND | MIGRATION_OP; per disk a
 * drive-mirror under a nested job, then query-block-jobs every 500 ms under
 * nested jobs until cur == end (qemuMigrationDriveMirror); then the memory
 * phase, polled every 50 ms; then the mirrors are cancelled.
 */
export function* migrateWithStorage(dom: Domain, client: string, opts: StorageMigrationOptions): Process<void> {
  return yield* dom.api(client, "virDomainMigrate", function* (call) {
    yield* dom.beginAsyncJob(call, "migration-out");
    const started: Disk[] = [];
    try {
      dom.setAsyncJobMask(ASYNC_JOB_MASK["migration-out"]);
      // Disks in a fixed order: the caller's record of destinations is user input.
      for (const d of dom.disks) {
        const dest = opts.dests[d.target];
        if (dest === undefined) continue;
        const args: Record<string, unknown> = { device: d.device, "job-id": d.device, target: dest, sync: "full", mode: "existing" };
        if (opts.bandwidthMiB) args.speed = opts.bandwidthMiB * MiB;
        check(yield* dom.qmp(call, "drive-mirror", args, true), "drive-mirror", d.device);
        started.push(d);
        for (;;) {
          if (dom.asyncJob?.abortRequested) throw new VirError("VIR_ERR_OPERATION_ABORTED", "migration out job: canceled by client");
          const j = yield* queryJob(dom, call, d, true);
          if (!j) throw new VirError("VIR_ERR_OPERATION_FAILED", `migration of disk ${d.target} failed`);
          if (j.offset === j.len) break;
          yield sleep(NBD_MIRROR_POLL_INTERVAL_NS);
        }
      }
      const endNs = dom.sim.now + opts.memoryPhaseNs;
      while (dom.sim.now < endNs) {
        yield* dom.monitorRoundTrip(call, "query-migrate", true);
        if (dom.asyncJob?.abortRequested) throw new VirError("VIR_ERR_OPERATION_ABORTED", "migration out job: canceled by client");
        yield sleep(Math.max(0, Math.min(MIGRATION_POLL_INTERVAL_NS, endNs - dom.sim.now)));
      }
    } finally {
      // qemuMigrationCancelDriveMirror: the copies are no longer needed on the source.
      try {
        for (const d of started) yield* dom.qmp(call, "block-job-cancel", { device: d.device, force: true }, true); // an already-gone job is fine
      } catch (e) {
        if (!(e instanceof VirError)) throw e; // QEMU gone, or the nested job timed out: nothing more to cancel
      } finally {
        dom.endAsyncJob(call);
      }
    }
  });
}
