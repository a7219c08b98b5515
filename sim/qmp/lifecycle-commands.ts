/**
 * The node and VM lifecycle over QMP, as QEMU 7.2 has it (blockdev.c,
 * block.c, softmmu/runstate.c, cpus.c), each checked against real QEMU
 * (test/conformance/goldens):
 *
 *  - `stop` / `cont` / `query-status`: the VM's run state. `stop` sends STOP
 *    when the VM ran, and drains every node either way (do_vm_stop:
 *    bdrv_drain_all), so running jobs blip paused→running; guests issue
 *    nothing until `cont`, which sends RESUME only when the VM was stopped.
 *  - `eject`: takes the medium out of a BlockBackend (blockdev_remove_medium):
 *    refused while a job blocks EJECT on its root; the backend is drained
 *    (blk_drain), then lets go of the node, which closes if nothing else
 *    holds it (a drive_add node), and guest requests fail with ENOMEDIUM.
 *  - `blockdev-reopen`: each listed node and its children enter a drained
 *    section as their options are queued (bdrv_subtree_drained_begin), the
 *    reopen is prepared and committed, and the sections end: a running job
 *    on the node blips paused→running and carries on. Options are checked
 *    against those the node was opened with ("Cannot change the option",
 *    "cannot be reset to its default value"); what may change: read-only
 *    (refused for a node whose users write: "Read-only block node 'X' cannot
 *    support read-write users"), and a qcow2's `backing` (a node name or null). An empty list makes QEMU
 *    7.2 abort (bdrv_reopen_multiple asserts a non-empty queue).
 *  - `quit`: SHUTDOWN; then, as qemu_cleanup does, every node is drained
 *    (and stays drained), every job is cancelled by force and waited for,
 *    newest first (job_cancel_sync_all); the reply comes last and the
 *    process exits.
 *
 * Left out: tray and device models (a BlockBackend here has no device, so
 * it is removable with no tray, as QEMU's -drive if=none), `force` and
 * locked media, frozen backing chains and permission checks on reopen,
 * per-driver reopen options beyond those blocksim's drivers have.
 */
import { usersWrite, type BlockBackend, type BlockNode } from "../block/index.js";
import { QmpError, genericError } from "../jobs/errors.js";
import type { Process } from "../scheduler/index.js";
import { argChecker, type ArgCheck, type ArgSpec } from "./args.js";
import { namedBackend, type QemuContext } from "./context.js";
import type { Command } from "./monitor.js";
import { QemuCrash } from "./process.js";

/** The named BlockBackend `device` (or qdev `id`) names, with QEMU's errors. */
export function backendByName(ctx: QemuContext, device: unknown, id: unknown): BlockBackend {
  if ((device === undefined) === (id === undefined)) throw genericError("Need exactly one of 'device' and 'id'");
  const name = (device ?? id) as string;
  const blk = namedBackend(ctx, name);
  if (!blk) throw new QmpError("DeviceNotFound", `Device '${name}' not found`);
  return blk;
}

/**
 * Takes the node out of `blk` (QEMU blk_remove_bs): drains the backend's
 * requests, detaches, and closes the node if nothing else holds it.
 */
export function* removeMedium(ctx: QemuContext, blk: BlockBackend): Process<void> {
  const root = blk.root;
  if (!root) return;
  ctx.graph.drainedBeginPoll(root);
  blk.setRoot(null);
  ctx.graph.drainedEnd(root);
  ctx.graph.releaseNode(root);
}

function* stop(ctx: QemuContext): Process<void> {
  if (ctx.graph.vm.running) {
    ctx.graph.vm.running = false;
    ctx.sim.record("vm", "stop");
    ctx.emitEvent("STOP", {});
  }
  ctx.graph.drainAllBeginPoll();
  ctx.graph.drainAllEnd();
}

function cont(ctx: QemuContext): void {
  if (ctx.graph.vm.running) return;
  ctx.graph.vm.running = true;
  ctx.sim.record("vm", "cont");
  ctx.emitEvent("RESUME", {});
  ctx.sim.notify(ctx.graph.vm.resumed);
}

/** qemu_cleanup's block part: drain everything, then cancel every job by force and wait for each. */
function* quit(ctx: QemuContext): Process<void> {
  ctx.emitEvent("SHUTDOWN", { guest: false, reason: "host-qmp-quit" });
  ctx.graph.vm.running = false;
  ctx.graph.drainAllBeginPoll(); // never ended: nothing may run after this
  // job_cancel_sync_all: a job left concluded (auto-dismiss off) is still listed, and cancelling it again dismisses it.
  const jm = ctx.jm;
  for (let job = jm.jobs[0]; job; job = jm.jobs[0]) job.cancelSync(true);
  ctx.process.exitAfterReply = { kind: "quit" };
}

// ---- blockdev-reopen ----

/** The members every driver's options take (QAPI BlockdevOptions' base), in the schema's order. */
const BASE_OPTIONS: ArgSpec = {
  driver: { type: "str" },
  "node-name": { type: "str", optional: true },
  discard: { type: { enum: ["ignore", "unmap"] }, optional: true },
  cache: { type: "any", optional: true },
  "read-only": { type: "bool", optional: true },
  "auto-read-only": { type: "bool", optional: true },
  "force-share": { type: "bool", optional: true },
  "detect-zeroes": { type: { enum: ["off", "on", "unmap"] }, optional: true },
};

/** Each of blocksim's drivers' own members: `backing` only for qcow2 (a COW format), so it is unexpected for the others. */
const DRIVER_MEMBERS: Record<string, ArgSpec> = {
  "null-co": { size: { type: "int", optional: true }, "latency-ns": { type: "uint64", optional: true }, "read-zeroes": { type: "bool", optional: true } },
  raw: { file: { type: "any" } },
  qcow2: { file: { type: "any" }, backing: { type: "any", optional: true } },
  blkdebug: { image: { type: "any" }, "inject-error": { type: "any", optional: true } },
};
const DRIVER_SCHEMAS: Record<string, ArgCheck> = Object.fromEntries(Object.entries(DRIVER_MEMBERS).map(([driver, own]) => [driver, argChecker({ ...BASE_OPTIONS, ...own })]));

/** What the QAPI schema checks before the command runs: the driver, then that driver's members in order. */
function checkSchema(list: unknown[]): void {
  list.forEach((entry, i) => {
    if (typeof entry !== "object" || entry === null || Array.isArray(entry)) throw genericError(`Invalid parameter type for 'options[${i}]', expected: object`);
    const o = entry as Record<string, unknown>;
    if (o.driver === undefined) throw genericError(`Parameter 'options[${i}].driver' is missing`);
    if (typeof o.driver !== "string") throw genericError(`Invalid parameter type for 'options[${i}].driver', expected: string`);
    const check = DRIVER_SCHEMAS[o.driver];
    if (!check) throw genericError(`Parameter 'driver' does not accept value '${o.driver}'`);
    check(o, `options[${i}]`);
  });
}

/** Options QEMU 7.2 lets a reopen leave out although they were given (bdrv_reset_options_allowed's common options). */
const RESETTABLE = new Set(["node-name", "discard", "cache", "read-only", "auto-read-only", "detect-zeroes"]);
/** Options a reopen may change: bdrv_reopen_prepare absorbs them before it compares the rest with the old ones. */
const CHANGEABLE = new Set(["read-only", "auto-read-only", "discard", "cache", "detect-zeroes", "force-share"]);

/**
 * Keys in the order QEMU's QDict walks them: by bucket (its tdb_hash of the
 * key, modulo 512 buckets), which is the order its option checks name the
 * first offending one. Keys of one bucket: the one put in last first.
 */
export function qdictOrder(keys: readonly string[]): string[] {
  const bucket = (key: string): number => {
    let v = Math.imul(0x238f13af, key.length) >>> 0;
    for (let i = 0; i < key.length; i++) v = (v + ((key.charCodeAt(i) << ((i * 5) % 24)) >>> 0)) >>> 0;
    return ((Math.imul(1103515243, v) + 12345) >>> 0) % 512;
  };
  return keys.map((k, i) => ({ k, i, b: bucket(k) })).sort((x, y) => x.b - y.b || y.i - x.i).map((e) => e.k);
}

interface Reopen {
  node: BlockNode;
  readOnly: boolean;
  backing?: BlockNode | null;
}

/**
 * Checks one entry's options against what the node was opened with, in QEMU
 * 7.2 bdrv_reopen_prepare's order: an option given at open and left out now
 * ("cannot be reset to its default value", whatever its value), then every
 * option that is not one a reopen may change and differs from the open's
 * (driver and node-name too: "Cannot change the option"), each in QDict order.
 */
function prepare(ctx: QemuContext, node: BlockNode, o: Record<string, unknown>): Reopen {
  const opened = node.openOptions;
  for (const key of qdictOrder(Object.keys(opened))) {
    if (key === "driver" || key === "backing" || RESETTABLE.has(key) || o[key] !== undefined) continue;
    throw genericError(`Option '${key}' cannot be reset to its default value`);
  }
  for (const key of qdictOrder(Object.keys(o))) {
    if (key === "backing" || CHANGEABLE.has(key) || o[key] === undefined) continue;
    if (!sameOption(o[key], opened[key])) throw genericError(`Cannot change the option '${key}'`);
  }
  const r: Reopen = { node, readOnly: o["read-only"] === true };
  if (o.driver === "qcow2") {
    if (!("backing" in o)) {
      if (node.backing) throw genericError(`backing is missing for '${node.name}'`);
    } else if (o.backing === null) {
      r.backing = null;
    } else {
      const b = typeof o.backing === "string" ? ctx.graph.findNode(o.backing) : undefined;
      if (!b) throw genericError(`Cannot find device='' nor node-name='${String(o.backing)}'`);
      r.backing = b;
    }
  }
  return r;
}

/** Two option values name the same thing: equal, or a file given as a device name and as {driver: file, filename}. */
function sameOption(a: unknown, b: unknown): boolean {
  const file = (v: unknown) => (typeof v === "object" && v !== null && (v as { driver?: unknown }).driver === "file" ? (v as { filename?: unknown }).filename : v);
  return JSON.stringify(file(a)) === JSON.stringify(file(b));
}

function* reopen(ctx: QemuContext, a: Record<string, unknown>): Process<void> {
  const list = a.options as unknown[];
  if (list.length === 0) throw new QemuCrash("SIGABRT", "blockdev-reopen with an empty options list: bdrv_reopen_multiple: Assertion `bs_queue != NULL' failed");
  checkSchema(list);
  const drained: BlockNode[] = [];
  const queued: { node: BlockNode; o: Record<string, unknown> }[] = [];
  try {
    for (const entry of list) {
      const o = entry as Record<string, unknown>;
      if (typeof o["node-name"] !== "string") throw genericError("node-name not specified");
      const node = ctx.graph.findNode(o["node-name"]);
      if (!node) throw genericError(`Failed to find node with node-name='${o["node-name"]}'`);
      for (const n of node.chain()) {
        ctx.graph.drainedBeginPoll(n);
        drained.push(n);
      }
      queued.push({ node, o });
    }
    const plans = queued.map((q) => prepare(ctx, q.node, q.o));
    // QEMU refreshes the permissions of the reopened nodes after preparing them all: a node going
    // read-only under a user that writes (a backup's target, a guest disk) refuses the whole reopen.
    for (const p of plans) {
      if (p.readOnly && usersWrite(p.node)) throw genericError(`Read-only block node '${p.node.name}' cannot support read-write users`);
    }
    for (const p of plans) {
      p.node.setReadOnly(p.readOnly);
      if (p.backing !== undefined && p.node.backing !== p.backing) {
        try {
          ctx.graph.setBacking(p.node, p.backing);
        } catch (e) {
          throw e instanceof QmpError ? e : genericError((e as Error).message);
        }
      }
      ctx.sim.record("block", "reopen", { node: p.node.name, "read-only": p.readOnly, ...(p.backing !== undefined ? { backing: p.backing?.name ?? null } : {}) });
    }
  } finally {
    for (const n of drained.reverse()) ctx.graph.drainedEnd(n);
  }
}

const DEVICE_OR_ID: ArgSpec = { device: { type: "str", optional: true }, id: { type: "str", optional: true } };

export const LIFECYCLE_COMMANDS: Record<string, Command<QemuContext>> = {
  stop: { args: {}, run: (ctx) => stop(ctx) },
  cont: { args: {}, run: (ctx) => cont(ctx) },
  "query-status": {
    args: {},
    run: (ctx) => ({ status: ctx.graph.vm.running ? "running" : "paused", singlestep: false, running: ctx.graph.vm.running }),
  },
  quit: { args: {}, run: (ctx) => quit(ctx) },
  eject: {
    args: { ...DEVICE_OR_ID, force: { type: "bool", optional: true } },
    run: function* (ctx, a): Process<void> {
      const blk = backendByName(ctx, a.device, a.id);
      const root = blk.root;
      if (!root) return;
      const blocked = root.opBlocker("EJECT");
      if (blocked) throw genericError(blocked.message);
      yield* removeMedium(ctx, blk);
    },
  },
  "blockdev-reopen": {
    args: { options: { type: { list: "any" } } },
    run: (ctx, a) => reopen(ctx, a),
  },
};
