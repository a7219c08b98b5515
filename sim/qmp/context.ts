/** What every QMP command works on: one simulated QEMU process. */
import type { BlockBackend, BlockGraph, BlockNode } from "../block/index.js";
import type { Device } from "../disk/index.js";
import { genericError, QmpError } from "../jobs/errors.js";
import type { JobManager } from "../jobs/manager.js";
import type { Scheduler } from "../scheduler/index.js";
import type { QemuProcess } from "./process.js";
import type { Behaviour } from "./profiles.js";

export interface QemuContext {
  sim: Scheduler;
  graph: BlockGraph;
  jm: JobManager;
  behaviour: Behaviour;
  /** Simulated devices by name: what `file`/`filename` arguments refer to. */
  devices: Map<string, Device>;
  /** Names of the file nodes below raw and qcow2 nodes, by device (query-blockstats; sim/qmp/stats-commands.ts). */
  fileNodeNames: Map<Device, string>;
  /** The process: running, quit or crashed. */
  process: QemuProcess;
  /** Sends a QMP event that is not a job's (SHUTDOWN, STOP, RESUME). */
  emitEvent(name: string, data: Record<string, unknown>): void;
}

/** A node by name, or QEMU's error for an unknown one. */
export function nodeByName(ctx: QemuContext, name: unknown): BlockNode {
  const node = typeof name === "string" ? ctx.graph.findNode(name) : undefined;
  if (!node) throw genericError(`Cannot find device='${String(name)}' nor node-name='${String(name)}'`);
  return node;
}

/** The BlockBackend named `name` (QEMU blk_by_name; a job's or a guest disk's own backend has no name), or undefined. */
export function namedBackend(ctx: QemuContext, name: unknown): BlockBackend | undefined {
  return ctx.graph.backends().find((b) => b.name !== "" && b.name === name);
}

/** A node or backend name as a command's `device` argument means it: the backend's root, or the node. */
export function deviceNode(ctx: QemuContext, name: unknown): BlockNode {
  return lookupNode(ctx, name, name);
}

/**
 * QEMU 7.2 bdrv_lookup_bs(device, node_name): the root of the BlockBackend
 * named `device`, else the node named `nodeName`; the error shows each
 * argument as given, or empty when absent.
 */
export function lookupNode(ctx: QemuContext, device: unknown, nodeName: unknown): BlockNode {
  if (device !== undefined) {
    const blk = namedBackend(ctx, device);
    if (blk) {
      if (!blk.root) throw new QmpError("GenericError", `Device '${String(device)}' has no medium`);
      return blk.root;
    }
  }
  const node = typeof nodeName === "string" ? ctx.graph.findNode(nodeName) : undefined;
  if (node) return node;
  throw genericError(`Cannot find device='${device === undefined ? "" : String(device)}' nor node-name='${nodeName === undefined ? "" : String(nodeName)}'`);
}
