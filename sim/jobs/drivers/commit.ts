/**
 * Intermediate commit (QEMU block/commit.c): copies what is allocated in
 * `top` and the nodes between it and `base` into `base`, in 512 KiB chunks,
 * rate limited; prepare then drops the committed nodes, so the node above
 * `top` takes `base` as its backing. It finishes by itself (no ready).
 * on-error as for stream, but ignore just goes on. A commit of the active
 * layer is a different job: see mirror.ts (createMirror with `commit`).
 * Blockers: all ops on the active layer (`device`, the job's main node, as
 * QEMU's commit_start creates the job on it), on every node from top to
 * base, and on base; top and base are held through the job's own
 * BlockBackends (blockdev-del says "Node X is in use"). The base's goes in
 * prepare, the top's in clean (commit_prepare, commit_clean); the blockers
 * and the job's links stay until the job is freed (block_job_free), so a
 * commit that sits concluded (auto-dismiss off) keeps device, top and base
 * busy: "Node 'mid' is busy: block device is in use by block job: commit"
 * (goldens/blockdev_del_concluded_job_nodes, gen_snapshot_64). Only an abort
 * drops them at once (commit_abort).
 * QEMU's commit_top filter above `top` is not modelled.
 * A base smaller than `top` grows to its size before the copy (growBase).
 */
import { IoError, type Errno } from "../../disk/index.js";
import { clearLinkPerms, PERM_ALL, setLinkPerms, type BlockGraph, type BlockNode, type ParentLink } from "../../block/index.js";
import type { Process } from "../../scheduler/index.js";
import { createBlockJob, type BlockJobOptions, type JobNodes } from "../block-job.js";
import { COMMIT_TOP_CHILD, commitPerms } from "../node-perms.js";
import { genericError } from "../errors.js";
import type { ErrorAction, Job, JobDriver } from "../job.js";
import type { JobManager } from "../manager.js";
import { chainBetween, STREAM_CHUNK } from "./stream.js";

export interface CommitOptions extends BlockJobOptions {
  /** The active layer the command named (default: top's overlay). */
  device?: BlockNode;
  top: BlockNode;
  base: BlockNode;
  onError?: ErrorAction;
}

export class CommitDriver implements JobDriver {
  readonly type = "commit" as const;
  nodes!: JobNodes;

  /** The base was read-only: the job reopened it read-write and its clean reopens it read-only (commit_start, commit_clean). */
  baseReadOnly = false;

  constructor(readonly graph: BlockGraph, readonly opts: CommitOptions, readonly overlay: BlockNode) {}

  *run(job: Job): Process<number> {
    const { top, base } = this.opts;
    const issuer = job.traceName;
    job.progressSetRemaining(top.sizeBytes);
    // A smaller base grows to top's size first, after len is set (QEMU 7.2 commit_run's blk_truncate)
    if (base.sizeBytes < top.sizeBytes) {
      const refused = growBase(base, top.sizeBytes);
      if (refused) return job.fail(refused);
    }
    let delayNs = 0;
    for (let offset = 0; offset < top.sizeBytes;) {
      yield* job.sleepNs(delayNs);
      if (job.isCancelled) return 0;
      delayNs = 0;
      // bdrv_is_allocated_above reads the qcow2 tables QEMU's caches lack first (each image's first status)
      if (top.statusNeedsTables(base)) yield* top.loadStatusTables(offset, Math.min(STREAM_CHUNK, top.sizeBytes - offset), base, issuer);
      const a = top.allocationAbove(base, offset, Math.min(STREAM_CHUNK, top.sizeBytes - offset));
      if (a.allocated) {
        if (!job.mayIssueIo) job.checkMayIssueIo(`commit copy ${offset}+${a.bytes}`);
        try {
          const data = yield* top.read(offset, a.bytes, issuer);
          yield* base.write(offset, a.bytes, issuer, data);
        } catch (e) {
          if (!(e instanceof IoError)) throw e;
          const action = job.requestFailed(this.opts.onError ?? "report", e);
          if (action === "report") return job.fail(e.errno);
          if (action === "stop") continue; // retry this chunk after the resume
        }
        delayNs = job.accountCopy(a.bytes);
      }
      offset += a.bytes;
      job.progressUpdate(a.bytes);
    }
    return 0;
  }

  /** QEMU commit_prepare: the base's BlockBackend goes (its job link stays: nothing taken, all shared), then the chain drops top..base. */
  prepare(): number {
    this.nodes.releaseBlk(this.opts.base, { perm: 0, shared: PERM_ALL, childName: "base" });
    clearLinkPerms(this.overlayLink());
    this.graph.setBacking(this.overlay, this.opts.base);
    return 0;
  }

  /** QEMU commit_abort: the base's BlockBackend and every blocker and job link go before the filter does. */
  abort(): void {
    this.nodes.removeAll();
  }

  /** QEMU commit_clean: the base back to read-only if it was, the top's BlockBackend goes; the blockers stay (see free). */
  clean(): void {
    this.nodes.releaseBlk(this.opts.top);
    clearLinkPerms(this.overlayLink());
    if (this.baseReadOnly) this.opts.base.setReadOnly(true);
  }

  /** QEMU block_job_free: the blockers and job links go. */
  free(): void {
    this.nodes.removeAll();
  }

  /** The overlay's backing link: QEMU's commit_top filter sits on it while the job runs (see COMMIT_TOP_CHILD). */
  overlayLink(): ParentLink {
    return this.overlay.childLink!;
  }
}

/** Checks and creates an intermediate commit in state `created`. `top` must have an overlay. */
export function createCommit(env: { jm: JobManager; graph: BlockGraph }, o: CommitOptions): Job {
  const overlay = o.top.parents().find((l) => l.role === "backing")?.parent as BlockNode | undefined;
  if (!overlay) throw genericError(`Top image '${o.top.name}' has no overlay: commit it as the active layer`);
  const chain = chainBetween(o.top, o.base);
  if (!chain.at(-1)?.children().includes(o.base)) throw genericError(`Base '${o.base.name}' not found`);
  const device = o.device ?? overlay;
  // QEMU qmp_block_commit: COMMIT_SOURCE on the device (the root), COMMIT_TARGET from top down to base. A
  // backing node allows COMMIT_TARGET, not COMMIT_SOURCE: top itself is usually one.
  const blocked = device.opBlocker("COMMIT_SOURCE") ?? [...chain, o.base].map((n) => n.opBlocker("COMMIT_TARGET")).find((b) => b);
  if (blocked) throw genericError(blocked.message);
  const driver = new CommitDriver(env.graph, o, overlay);
  setLinkPerms(driver.overlayLink(), { ...COMMIT_TOP_CHILD, user: `node '${overlay.name}'` });
  // A read-only base (libvirt opens backing images so) is reopened read-write for the job, not refused (commit_start).
  driver.baseReadOnly = reopenForWriting(o.base);
  return createBlockJob(env, driver, o, [device, ...chain, o.base], () => {
    clearLinkPerms(driver.overlayLink());
    if (driver.baseReadOnly) o.base.setReadOnly(true);
  }, [o.top, o.base], commitPerms(o.top, chain, o.base));
}

/**
 * QEMU commit_start / commit_active_start: a read-only base is reopened read-write before the job takes its
 * write permission (goldens/commit_read_only_base). Returns whether it was read-only.
 */
export function reopenForWriting(base: BlockNode): boolean {
  if (!base.readOnly) return false;
  base.setReadOnly(false);
  return true;
}

/**
 * Why a base smaller than what is committed into it cannot grow in the model (a commit's blk_truncate, see
 * growBase), or undefined: it grows, or QEMU refuses in the job's run as growBase does. Checked when the
 * command starts the job: the sizes cannot change while it runs (the job blocks RESIZE on top and base).
 */
export function baseGrowthNotModelled(base: BlockNode): string | undefined {
  if (base.truncateUnsupported) return undefined; // ENOTSUP in the run
  if (base.driver === "filter" || !base.device) return `it is a ${base.formatName} node (only raw and qcow2 nodes on an image file grow)`;
  const dev = base.device;
  if (!dev.sparse) return `its device '${dev.name}' is a disk (only image files, sparse: true, grow)`;
  if (dev.sizeBytes % dev.clusterSizeBytes !== 0 && dev.isWritten(dev.clusters - 1)) {
    return `its last ${dev.clusterSizeBytes}-byte cluster is partial and written (its version would cover the new bytes, which QEMU reads as zeroes)`;
  }
  if (base.parents().some((l) => l.role === "file" || l.role === "target")) return "a node sits on it through its file (whose size is not followed)";
  return undefined;
}

/**
 * QEMU 7.2 commit_run's (and an active commit's mirror_run's) blk_truncate of a base smaller than the top up
 * to the top's size: bdrv_co_truncate down through the base's file links, as block_resize's truncation, with
 * no Error (the job reports strerror): a null-co node has no truncate, ENOTSUP ("Operation not supported").
 * Else the base's image file grows, its new clusters holes, and its dirty bitmaps with it; a base that
 * baseGrowthNotModelled refuses never gets here. goldens/block_resize_chain_jobs.
 */
export function growBase(base: BlockNode, sizeBytes: number): Errno | undefined {
  if (base.truncateUnsupported) return "ENOTSUP";
  base.resize(sizeBytes);
  return undefined;
}
