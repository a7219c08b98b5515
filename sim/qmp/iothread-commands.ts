/**
 * IOThreads over QMP: object-add and object-del with qom-type `iothread`,
 * and x-blockdev-set-iothread, with QEMU 7.2's messages (checked against a
 * real 7.2: test/conformance/goldens/iothread_*.json and the command tests).
 * x-blockdev-set-iothread holds the node's old context's lock around the
 * move, as 7.2's handler does; the move lets go of it around its commit.
 *
 * object-add takes the iothread's polling properties (poll-max-ns,
 * poll-grow, poll-shrink, aio-max-batch) and ignores them. object-del of an
 * iothread that nodes still live in succeeds, as in QEMU 7.2, which then
 * frees the context under them: blocksim keeps it as deleted and fails the
 * run at its next use (a use-after-free). Other qom-types QEMU knows are
 * refused as not modelled.
 */
import { ACTIVE_BACKEND, changeAioContext, nodeContext } from "../block/index.js";
import { genericError } from "../jobs/errors.js";
import { AioContexts } from "../scheduler/index.js";
import type { ArgSpec } from "./args.js";
import type { QemuContext } from "./context.js";
import type { Command } from "./monitor.js";

/** QEMU's id_wellformed: a letter, then letters, digits, '-', '.' or '_'. */
const IDENTIFIER = /^[A-Za-z][A-Za-z0-9._-]*$/;
const MAX_I64 = "9223372036854775807";

/** The qom-types blocksim knows by name; only iothread is modelled. */
const QOM_TYPES = ["iothread", "memory-backend-ram", "memory-backend-file", "memory-backend-memfd", "throttle-group", "secret", "rng-random", "rng-builtin", "main-loop", "filter-buffer", "input-linux", "tls-creds-x509"] as const;

const OBJECT_ADD: ArgSpec = {
  "qom-type": { type: { enum: QOM_TYPES } },
  id: { type: "str" },
  "poll-max-ns": { type: "int", optional: true },
  "poll-grow": { type: "int", optional: true },
  "poll-shrink": { type: "int", optional: true },
  "aio-max-batch": { type: "int", optional: true },
};

function objectAdd(ctx: QemuContext, a: Record<string, unknown>): void {
  if (a["qom-type"] !== "iothread") throw genericError(`blocksim models only qom-type 'iothread', not '${String(a["qom-type"])}'`);
  const id = a.id as string;
  if (!IDENTIFIER.test(id)) throw genericError("Parameter 'id' expects an identifier");
  for (const p of ["poll-max-ns", "poll-grow", "poll-shrink", "aio-max-batch"]) {
    if (a[p] !== undefined && (a[p] as number) < 0) throw genericError(`${p} value must be in range [0, ${MAX_I64}]`);
  }
  const aio = AioContexts.of(ctx.sim);
  if (aio.get(id) !== undefined) throw genericError(`attempt to add duplicate property '${id}' to object (type 'container')`);
  aio.create(id);
}

function objectDel(ctx: QemuContext, a: Record<string, unknown>): void {
  const aio = AioContexts.of(ctx.sim);
  const io = aio.get(a.id as string);
  if (!io) throw genericError(`object '${String(a.id)}' not found`);
  aio.remove(io);
}

function setIothread(ctx: QemuContext, a: Record<string, unknown>): void {
  const name = a["node-name"] as string;
  const iothread = a.iothread;
  if (iothread !== null && typeof iothread !== "string") throw genericError("Invalid parameter type for 'iothread', expected: StrOrNull");
  const node = ctx.graph.findNode(name);
  if (!node) throw genericError(`Failed to find node with node-name='${name}'`);
  if (a.force !== true && ctx.graph.hasBlk(node)) {
    throw genericError(`Node ${name} is associated with a BlockBackend and could be in use (use force=true to override this check)`);
  }
  const aio = AioContexts.of(ctx.sim);
  const target = iothread === null ? aio.main : aio.get(iothread);
  if (!target) throw genericError(`Cannot find iothread ${String(iothread)}`);
  // QEMU 7.2 holds the node's old context around the move (aio_context_acquire(old_context)): the IOThread
  // runs only in the walk's polls and in the window bdrv_try_change_aio_context opens around its commit.
  // aio.acquire throws if another thread holds that lock, where QEMU's would block until it is free; no QMP
  // sequence gets there. An IOThread holds its own lock only within one step of its loop (co_schedule_bh_cb
  // around entering a job's coroutine up to its next yield, a completion), and blocksim's steps never
  // overlap, so the command runs before or after that step, as QEMU's does once the lock is free; the lock
  // window of a move (withoutLock) runs the IOThread's ready work with the lock free. Every other taker of
  // an IOThread's lock is the main loop (job_exit, a transaction's apply or abort, a drain's or
  // job_finish_sync's poll taking it back), which dispatches no command while it holds one, and the lock is
  // recursive for it here. (An instrumented acquire found the lock free or the main loop's in the
  // tests, the shipped scenarios and races, and 478 generated iothread-world specs, seeds 1-239 alone and
  // with the mirror, device and lifecycle worlds, each under FIFO, 4 random and 2 PCT schedules.)
  const old = nodeContext(node);
  aio.acquire(old);
  try {
    changeAioContext(ctx.graph, node, target);
  } catch (e) {
    if (e instanceof Error && e.message === ACTIVE_BACKEND) throw genericError(e.message);
    throw e;
  } finally {
    aio.release(old);
  }
}

export const IOTHREAD_COMMANDS: Readonly<Record<string, Command<QemuContext>>> = {
  "object-add": { args: OBJECT_ADD, run: objectAdd },
  "object-del": { args: { id: { type: "str" } }, run: objectDel },
  "x-blockdev-set-iothread": {
    args: { "node-name": { type: "str" }, iothread: { type: "any" }, force: { type: "bool", optional: true } },
    run: setIothread,
  },
};
