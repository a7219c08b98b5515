/**
 * Commands that start mirror, stream and commit jobs (QEMU blockdev.c). None
 * of these goes through a transaction or a drained section: the job is
 * created and started at once (conformance/mirror_complete.json: created,
 * running, then the reply). Without a job-id, the id is the name of the
 * named backend using the node, or "" — which QEMU refuses as
 * "Invalid job ID ''".
 */
import type { BlockNode } from "../block/index.js";
import { createCommit } from "../jobs/drivers/commit.js";
import { createMirror, type MirrorSync } from "../jobs/drivers/mirror.js";
import { chainBetween, createStream } from "../jobs/drivers/stream.js";
import { genericError } from "../jobs/errors.js";
import type { ErrorAction, Job } from "../jobs/job.js";
import type { ArgSpec } from "./args.js";
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
  granularity: { type: "size", optional: true },
  "buf-size": { type: "size", optional: true },
  "on-source-error": ON_ERROR,
  "on-target-error": ON_ERROR,
  "filter-node-name": { type: "str", optional: true },
  // QEMU 7.2 also has write-blocking (active mirroring); blocksim's mirror copies in the background only.
  "copy-mode": { type: { enum: ["background"], unmodelled: ["write-blocking"] }, optional: true },
};

function defaultId(ctx: QemuContext, node: BlockNode, a: Record<string, unknown>): string {
  return (a["job-id"] as string | undefined) ?? ctx.graph.backends().find((b) => b.root === node && b.name !== "")?.name ?? "";
}

function checkSpeed(a: Record<string, unknown>): number | undefined {
  const speed = a.speed as number | undefined;
  if (speed !== undefined && speed < 0) throw genericError("Parameter 'speed' expects a non-negative value");
  return speed;
}

const common = (a: Record<string, unknown>) => ({
  speedBytesPerSec: checkSpeed(a),
  autoFinalize: a["auto-finalize"] as boolean | undefined,
  autoDismiss: a["auto-dismiss"] as boolean | undefined,
});

function startMirror(ctx: QemuContext, a: Record<string, unknown>, made: boolean, target: (source: BlockNode) => BlockNode): void {
  const source = deviceNode(ctx, a.device);
  const targetNode = target(source);
  const create = () => createMirror(ctx, {
    id: defaultId(ctx, source, a), source, target: targetNode, sync: a.sync as MirrorSync,
    granularityBytes: a.granularity as number | undefined,
    onSourceError: a["on-source-error"] as ErrorAction | undefined,
    onTargetError: a["on-target-error"] as ErrorAction | undefined,
    ...common(a),
  });
  let job: Job;
  try {
    job = create();
  } catch (e) {
    if (made) ctx.graph.removeNode(targetNode);
    throw e;
  }
  if (made) dropWithJob(ctx, job, targetNode);
  job.start();
}

/** The bottom of `top`'s backing chain. */
function bottom(top: BlockNode): BlockNode {
  let n = top;
  while (n.backing) n = n.backing;
  return n;
}

export const JOB_START_COMMANDS: Record<string, Command<QemuContext>> = {
  "blockdev-mirror": {
    args: { ...MIRROR_COMMON, target: { type: "str" }, replaces: { type: "str", optional: true } },
    run: (ctx, a) => startMirror(ctx, a, false, () => nodeByName(ctx, a.target)),
  },
  "drive-mirror": {
    args: {
      ...MIRROR_COMMON, target: { type: "str" }, format: { type: "str", optional: true }, mode: { type: { enum: ["existing", "absolute-paths"] }, optional: true },
      // In QEMU 7.2's drive-mirror, not modelled: discard handling, naming the new node, replacing a node other than the source.
      unmap: { type: "bool", optional: true, unmodelled: true },
      "node-name": { type: "str", optional: true, unmodelled: true },
      replaces: { type: "str", optional: true, unmodelled: true },
    },
    run: (ctx, a) => startMirror(ctx, a, true, (source) => targetForFile(ctx, source, a)),
  },
  "block-stream": {
    args: { ...JOB_COMMON, base: { type: "str", optional: true }, "base-node": { type: "str", optional: true }, "backing-file": { type: "str", optional: true }, "on-error": ON_ERROR },
    run: (ctx, a) => {
      const top = deviceNode(ctx, a.device);
      const baseName = (a["base-node"] ?? a.base) as string | undefined;
      const base = baseName === undefined ? null : nodeByName(ctx, baseName);
      createStream(ctx, { id: defaultId(ctx, top, a), top, base, onError: a["on-error"] as ErrorAction | undefined, ...common(a) }).start();
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
      const topName = (a["top-node"] ?? a.top) as string | undefined;
      const top = topName === undefined ? active : nodeByName(ctx, topName);
      const baseName = (a["base-node"] ?? a.base) as string | undefined;
      const base = baseName === undefined ? bottom(top) : nodeByName(ctx, baseName);
      if (top === base) throw genericError("cannot commit an image into itself");
      const id = defaultId(ctx, active, a);
      const onError = a["on-error"] as ErrorAction | undefined;
      if (top === active) {
        const intermediates = chainBetween(top, base).slice(1);
        createMirror(ctx, { id, source: top, target: base, sync: "top", onSourceError: onError, onTargetError: onError, commit: { intermediates }, ...common(a) }).start();
      } else {
        createCommit(ctx, { id, top, base, onError, ...common(a) }).start();
      }
    },
  },
};
