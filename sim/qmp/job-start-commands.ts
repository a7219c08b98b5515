/**
 * Commands that start mirror, stream and commit jobs (QEMU blockdev.c). None
 * of these goes through a transaction or a drained section: the job is
 * created and started at once (conformance/mirror_complete.json: created,
 * running, then the reply). Without a job-id, the id is the name of the
 * named backend using the node, or "" — which QEMU refuses as
 * "Invalid job ID ''".
 */
import type { BlockNode } from "../block/index.js";
import { baseGrowthNotModelled, createCommit } from "../jobs/drivers/commit.js";
import { checkMirror, createMirror, type MirrorCopyMode, type MirrorOptions, type MirrorSync } from "../jobs/drivers/mirror.js";
import { chainBetween, checkStream, createStream, insertStreamFilter } from "../jobs/drivers/stream.js";
import { genericError, QmpError } from "../jobs/errors.js";
import type { ErrorAction, Job } from "../jobs/job.js";
import { NotModelledError, type ArgSpec } from "./args.js";
import { deviceNode, nodeByName, type QemuContext } from "./context.js";
import type { Command } from "./monitor.js";
import { dropWithJob, targetForFile } from "./transaction.js";

const ON_ERROR = { type: { enum: ["report", "ignore", "enospc", "stop", "auto"] }, optional: true } as const;

const JOB_COMMON: ArgSpec = {
  "job-id": { type: "str", optional: true },
  device: { type: "str" },
  speed: { type: "int", optional: true },
  "auto-finalize": { type: "bool", optional: true },
  "auto-dismiss": { type: "bool", optional: true },
};

const MIRROR_COMMON: ArgSpec = {
  ...JOB_COMMON,
  sync: { type: { enum: ["full", "top", "none"] } },
  granularity: { type: "uint32", optional: true },
  "buf-size": { type: "int", optional: true },
  "on-source-error": ON_ERROR,
  "on-target-error": ON_ERROR,
  "filter-node-name": { type: "str", optional: true },
  "copy-mode": { type: { enum: ["background", "write-blocking"] }, optional: true },
};

function defaultId(ctx: QemuContext, node: BlockNode, a: Record<string, unknown>): string {
  return (a["job-id"] as string | undefined) ?? ctx.graph.backends().find((b) => b.root === node && b.name !== "")?.name ?? "";
}

// A negative speed is refused by the job's creation (createBlockJob), after its `created` event, as in QEMU 7.2.
const common = (a: Record<string, unknown>) => ({
  speedBytesPerSec: a.speed as number | undefined,
  autoFinalize: a["auto-finalize"] as boolean | undefined,
  autoDismiss: a["auto-dismiss"] as boolean | undefined,
});

/**
 * The mirror's granularity, as QEMU 7.2's blockdev_mirror_common checks it
 * before the op blockers (checkMirror has those, then buf-size and a mirror
 * into itself: goldens/mirror_check_order); the schema already took a
 * granularity as a uint32.
 */
function checkGranularity(a: Record<string, unknown>): void {
  const g = a.granularity as number | undefined;
  if (g !== undefined && g !== 0 && (g < 512 || g > 64 * 1048576)) throw genericError("Parameter 'granularity' expects a value in range [512B, 64MB]");
  if (g !== undefined && (g & (g - 1)) !== 0) throw genericError("Parameter 'granularity' expects a power of 2");
}

/**
 * QEMU 7.2 qmp_drive_mirror: sync=top of a node with no backing image under
 * its filters is a full mirror, decided before the target is made. Full, it
 * keeps zero_target onto an existing file, so everything is dirty from the
 * start (goldens/drive_mirror_top_without_backing: len 16 MiB where the
 * source allocates 8). blockdev-mirror keeps top (goldens/mirror_sync_top_without_backing).
 */
function driveMirrorSync(source: BlockNode, a: Record<string, unknown>): Record<string, unknown> {
  return a.sync === "top" && !source.skipFilters().backing ? { ...a, sync: "full" } : a;
}

function startMirror(
  ctx: QemuContext, args: Record<string, unknown>, made: boolean, target: (source: BlockNode, a: Record<string, unknown>) => BlockNode,
  syncOf: (source: BlockNode, a: Record<string, unknown>) => Record<string, unknown> = (_, a) => a,
): void {
  const source = deviceNode(ctx, args.device);
  // qmp_get_root_bs: before the target is looked up or made, and before any argument's check
  if (!ctx.graph.isRootNode(source)) throw genericError("Need a root block node");
  const a = syncOf(source, args);
  // drive-mirror onto a file it creates: the new file reads as zeroes, so QEMU 7.2 passes zero_target false
  // (qmp_drive_mirror: not mode existing, and bdrv_has_zero_init); blocksim reuses a file it knows, so only a new one counts
  const freshFile = made && !ctx.devices.has(a.target as string);
  const targetNode = target(source, a);
  let o: MirrorOptions;
  try {
    checkGranularity(a);
    o = {
      id: defaultId(ctx, source, a), source, target: targetNode, sync: a.sync as MirrorSync,
      granularityBytes: (a.granularity as number | undefined) || undefined, // 0: the default, as in QEMU
      onSourceError: a["on-source-error"] as ErrorAction | undefined,
      onTargetError: a["on-target-error"] as ErrorAction | undefined,
      copyMode: a["copy-mode"] as MirrorCopyMode | undefined,
      bufSizeBytes: a["buf-size"] as number | undefined,
      ...(freshFile ? { zeroTarget: false } : {}),
      ...common(a),
    };
    // QEMU's refusals come before mirror_start_job's drained section (goldens/mirror_refused_without_drain).
    checkMirror(ctx.graph, o);
  } catch (e) {
    if (made) ctx.graph.removeNode(targetNode);
    throw e;
  }
  const create = (): Job => {
    const job = createMirror(ctx, o);
    if (made) dropWithJob(ctx, job, targetNode);
    return job;
  };
  if (a["copy-mode"] !== "write-blocking") {
    create().start();
    return;
  }
  // QEMU mirror_start_job inserts mirror_top inside a drained section of the source, so no write is still in
  // flight below it when the job starts. blocksim models that drain for write-blocking mode, whose disabled
  // bitmap would miss such a write; in background mode the bitmap catches it and the drain is left out.
  return createDrained(ctx, source, create);
}

/** Creates a job inside a drained section of `source` (a nested poll: the handler is no coroutine, nor this function a generator), then starts it. */
function createDrained(ctx: QemuContext, source: BlockNode, create: () => Job): void {
  ctx.graph.drainedBeginPoll(source);
  let job: Job;
  try {
    job = create();
  } finally {
    ctx.graph.drainedEnd(source);
  }
  job.start();
}

/** The bottom of `top`'s backing chain (through filters). */
function bottom(top: BlockNode): BlockNode {
  let n = top;
  while (n.backing ?? n.file) n = (n.backing ?? n.file)!;
  return n;
}

/** The next node down a chain: backing or filtered child (QEMU bdrv_filter_or_cow_bs). */
const below = (n: BlockNode) => n.backing ?? n.file;

/**
 * QEMU bdrv_find_backing_image: the node below `from` (through filters)
 * whose image file is `file`. QMP's `top` and `base` (unlike `top-node` and
 * `base-node`) name image files, not nodes.
 */
function backingImage(from: BlockNode, file: string): BlockNode | undefined {
  for (let n = below(from); n; n = below(n)) if (n.device?.name === file) return n;
  return undefined;
}

/** The `base` image file of a stream or commit below `top`, or QEMU's refusal. */
function baseImage(top: BlockNode, file: string): BlockNode {
  const base = backingImage(top, file);
  if (!base) throw genericError(`Can't find '${file}' in the backing chain`);
  return base;
}

/** Refuses the operation on the first node from `from` down to `to` that blocks it (`to` excluded unless `inclusive`). */
function checkChain(from: BlockNode, to: BlockNode | null, op: "STREAM" | "COMMIT_TARGET", inclusive: boolean): void {
  for (let n: BlockNode | null = from; n; n = below(n)) {
    if (n === to && !inclusive) return;
    const blocked = n.opBlocker(op);
    if (blocked) throw genericError(blocked.message);
    if (n === to) return;
  }
}

export const JOB_START_COMMANDS: Record<string, Command<QemuContext>> = {
  "blockdev-mirror": {
    args: { ...MIRROR_COMMON, target: { type: "str" }, replaces: { type: "str", optional: true } },
    run: (ctx, a) => startMirror(ctx, a, false, () => nodeByName(ctx, a.target)),
  },
  "drive-mirror": {
    args: {
      ...MIRROR_COMMON, target: { type: "str" }, format: { type: "str", optional: true }, mode: { type: { enum: ["existing", "absolute-paths"] }, optional: true },
      // unmap: true (QEMU's default: zeroed source areas may be unmapped on the target) is what blocksim does, whose
      // copies carry content, not allocation. Not modelled: unmap false, naming the new node, replacing a node other than the source.
      unmap: { type: "bool", optional: true, unmodelledValues: [false] },
      "node-name": { type: "str", optional: true, unmodelled: true },
      replaces: { type: "str", optional: true, unmodelled: true },
    },
    run: (ctx, a) => startMirror(ctx, a, true, (source, args) => targetForFile(ctx, source, args), driveMirrorSync),
  },
  "block-stream": {
    args: {
      ...JOB_COMMON, base: { type: "str", optional: true }, "base-node": { type: "str", optional: true }, "backing-file": { type: "str", optional: true },
      "on-error": ON_ERROR, "filter-node-name": { type: "str", optional: true },
    },
    run: (ctx, a) => {
      const top = deviceNode(ctx, a.device);
      let base: BlockNode | null = null;
      if (a.base !== undefined) base = baseImage(top, a.base as string);
      if (a["base-node"] !== undefined) base = nodeByName(ctx, a["base-node"]);
      // QEMU qmp_block_stream: the whole chain from the device down to base must allow STREAM
      if (base === null || chainBetween(top, base).at(-1)?.children().includes(base)) checkChain(top, base, "STREAM", false);
      const filterNodeName = a["filter-node-name"] as string | undefined;
      return startStream(ctx, a, top, base, filterNodeName);
    },
  },
  "block-commit": {
    args: {
      ...JOB_COMMON,
      top: { type: "str", optional: true }, "top-node": { type: "str", optional: true },
      base: { type: "str", optional: true }, "base-node": { type: "str", optional: true },
      "backing-file": { type: "str", optional: true }, "on-error": ON_ERROR, "filter-node-name": { type: "str", optional: true },
    },
    run: (ctx, a) => {
      const active = deviceNode(ctx, a.device);
      // QEMU qmp_block_commit: the device must be a root node that allows COMMIT_SOURCE
      if (!ctx.graph.isRootNode(active)) throw genericError("Need a root block node");
      const srcBlocked = active.opBlocker("COMMIT_SOURCE");
      if (srcBlocked) throw genericError(srcBlocked.message);
      let top = active;
      if (a["top-node"] !== undefined) top = nodeByName(ctx, a["top-node"]);
      else if (a.top !== undefined && a.top !== active.device?.name) {
        const found = backingImage(active, a.top as string);
        if (!found) throw genericError(`Top image file ${String(a.top)} not found`);
        top = found;
      }
      let base: BlockNode;
      if (a["base-node"] !== undefined) base = nodeByName(ctx, a["base-node"]);
      else if (a.base !== undefined) base = baseImage(top, a.base as string);
      else base = bottom(top);
      if (top === base) throw genericError("cannot commit an image into itself");
      if (chainBetween(top, base).at(-1)?.children().includes(base)) checkChain(top, base, "COMMIT_TARGET", true);
      const id = defaultId(ctx, active, a);
      const onError = a["on-error"] as ErrorAction | undefined;
      const job = top === active
        ? createMirror(ctx, { id, source: top, target: base, sync: "top", onSourceError: onError, onTargetError: onError, commit: { intermediates: chainBetween(top, base).slice(1) }, ...common(a) })
        : createCommit(ctx, { id, device: active, top, base, onError, ...common(a) });
      // The job grows a smaller base to top's size in its run (commit_run, mirror_run: blk_truncate), past every refusal of the command
      const growth = base.sizeBytes < top.sizeBytes ? baseGrowthNotModelled(base) : undefined;
      if (growth) throw new NotModelledError(`block-commit growing base '${base.name}' from ${base.sizeBytes} to ${top.sizeBytes} bytes: ${growth}`);
      job.start();
    },
  },
};

/** Checks, inserts the copy-on-read filter in a drained section of `top` (a nested poll), creates and starts the stream. */
function startStream(ctx: QemuContext, a: Record<string, unknown>, top: BlockNode, base: BlockNode | null, filterNodeName: string | undefined): void {
  const o = { id: defaultId(ctx, top, a), top, base, filterNodeName, onError: a["on-error"] as ErrorAction | undefined, ...common(a) };
  let job: Job;
  try {
    checkStream(o);
    // QEMU inserts the copy-on-read filter in a drained section of top (bdrv_insert_node), then creates
    // the job: jobs on top blip, and the drained section's end re-enters them before the stream's `created`.
    ctx.graph.drainedBeginPoll(top);
    let filter: BlockNode;
    try {
      filter = insertStreamFilter(ctx.graph, top, filterNodeName);
    } finally {
      ctx.graph.drainedEnd(top);
    }
    job = createStream(ctx, { ...o, filter });
  } catch (e) {
    throw e instanceof QmpError || !(e instanceof Error) ? e : genericError(e.message);
  }
  job.start();
}
