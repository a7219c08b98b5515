/**
 * Which AioContext a node lives in, and moving a node there.
 *
 * Stands for (QEMU 7.2 block.c): bdrv_get_aio_context (`nodeContext`),
 * bdrv_try_change_aio_context with
 * bdrv_change_aio_context and the parents' change_aio_ctx callbacks
 * (`changeAioContext`): the whole connected part of the graph moves
 * together — children, parent nodes, BlockBackends and jobs (a job drags
 * its other nodes along, blockjob.c child_job_change_aio_ctx, and its
 * coroutine follows, child_job_set_aio_ctx) — inside drained sections on
 * every node moved, so a running job on them blips paused→running. A
 * BlockBackend attached to a guest device refuses (blk_root_change_aio_ctx:
 * "Cannot change iothread of active block backend").
 *
 * A block job's filter, opened in the main loop, pulls its source there
 * (`attachInMainLoop`: bdrv_attach_child_common moving the child to the new
 * parent's context) unless a guest device pins it.
 *
 * Leaves out: the transaction with per-node undo (a refusal is found before
 * anything moves, so there is nothing to undo), the `ignore` child lists,
 * and the general rule by which a newly attached child and its parent
 * settle on one context (blockdev-add of an overlay, a job's target): a
 * node never moved explicitly lives in its child's context (backing or
 * file), or the main loop when it has none.
 */
import { AioContexts, type AioContext, type Process } from "../scheduler/index.js";
import type { BlockBackend } from "./backend.js";
import type { BlockGraph } from "./graph.js";
import type { DrainParent } from "./links.js";
import type { BlockNode } from "./node.js";

const NODE_CONTEXT = new WeakMap<BlockNode, AioContext>();
const BACKEND_CONTEXT = new WeakMap<BlockBackend, AioContext>();
/** BlockBackends attached to a guest device (they refuse to move). */
const DEVICE_BACKENDS = new WeakSet<BlockBackend>();

/** The context `node` lives in. */
export function nodeContext(node: BlockNode): AioContext {
  for (let n: BlockNode | null = node; n !== null; n = n.childLink?.child ?? null) {
    const c = NODE_CONTEXT.get(n);
    if (c !== undefined) return c;
  }
  return AioContexts.of(node.graph.sim).main;
}

/** The context a BlockBackend's user (a guest device) runs in: its root's. */
export function backendContext(blk: BlockBackend): AioContext {
  return BACKEND_CONTEXT.get(blk) ?? (blk.root ? nodeContext(blk.root) : AioContexts.of(blk.graph.sim).main);
}

/** Marks a backend as a guest device's: from now on its node cannot move to another context. */
export function attachDevice(blk: BlockBackend): void {
  DEVICE_BACKENDS.add(blk);
}

/** The connected part of the graph around `node`: nodes, backends and users (jobs). */
export function component(node: BlockNode): { nodes: BlockNode[]; backends: BlockBackend[]; users: DrainParent[] } {
  const nodes: BlockNode[] = [], backends: BlockBackend[] = [], users: DrainParent[] = [];
  const seen = new Set<unknown>();
  const todo: BlockNode[] = [node];
  const visit = (n: BlockNode | null) => {
    if (n !== null && !seen.has(n)) {
      seen.add(n);
      todo.push(n);
    }
  };
  seen.add(node);
  while (todo.length > 0) {
    const n = todo.shift()!;
    nodes.push(n);
    visit(n.childLink?.child ?? null);
    for (const l of n.parentLinks) {
      if (seen.has(l.parent)) continue;
      if (l.parentIsNode) {
        visit(l.parent as BlockNode);
      } else {
        seen.add(l.parent);
        if (l.role === "root") backends.push(l.parent as BlockBackend);
        else {
          const u = l.parent as DrainParent;
          users.push(u);
          for (const m of u.aioNodes?.() ?? []) visit(m);
        }
      }
    }
  }
  return { nodes, backends, users };
}

/**
 * Moves `node` and everything connected to it into `ctx`, each node inside a
 * drained section. Throws an Error with QEMU's message when a guest device's
 * backend refuses (nothing has moved then); `allow` is a backend whose
 * device asks for the move itself (realize with iothread=).
 */
export function* changeAioContext(graph: BlockGraph, node: BlockNode, ctx: AioContext, allow?: BlockBackend): Process<void> {
  if (nodeContext(node) === ctx) return;
  const part = checkMove(graph, node, ctx, allow);
  // A drain waits, and what runs meanwhile may finish a job and drop its filter from the graph.
  const drained: BlockNode[] = [];
  for (const n of part.nodes) {
    if (!graph.contains(n)) continue;
    graph.drainedBeginPoll(n);
    drained.push(n);
  }
  setContext(part, ctx);
  endDrains(graph, drained);
}

/** Ends the drained sections begun on `nodes`, last first, on those still in the graph. */
function endDrains(graph: BlockGraph, nodes: BlockNode[]): void {
  for (const n of nodes.slice().reverse()) if (graph.contains(n)) graph.drainedEnd(n);
}

/**
 * Brings `node` into `ctx` as a new user attaches it (bdrv_root_attach_child
 * moving the child to its parent's context: a new job's other nodes join its
 * main node's context, as blockdev-backup moves the target to the source's).
 * No drained section: the caller attaches idle nodes. Throws like changeAioContext.
 */
export function adoptContext(graph: BlockGraph, node: BlockNode, ctx: AioContext): void {
  if (nodeContext(node) === ctx) return;
  setContext(checkMove(graph, node, ctx, undefined), ctx);
}

/**
 * A block job's start opens its filter node in the main loop and puts it
 * above its source (QEMU 7.2 bdrv_attach_child_common, reached from
 * bdrv_cbw_append, the bdrv_append of mirror_top and commit_top, and the
 * stream's bdrv_insert_node): the source's part of the graph moves into the
 * filter's context, the main loop, each node inside a drained section, unless
 * a guest device's BlockBackend refuses; then the filter goes to the source's
 * IOThread instead (here it inherits it: nothing moves). So a job on a node
 * that only x-blockdev-set-iothread put in an IOThread runs in the main loop
 * (real QEMU 7.2: golden iothread_move_back), and one under a guest device
 * in an IOThread runs there. `node` is the job's main node.
 */
export function attachInMainLoop(graph: BlockGraph, node: BlockNode): void {
  const aio = AioContexts.of(graph.sim);
  if (!aio.active || nodeContext(node).isMain) return;
  aio.checkAlive(nodeContext(node), `attaching a filter above node '${node.name}'`);
  const part = component(node);
  if (part.backends.some((b) => DEVICE_BACKENDS.has(b))) return;
  graph.sim.record("aio", "change-context", { node: node.name, to: aio.main.name, nodes: part.nodes.map((n) => n.name), why: "filter opened in the main loop" });
  const drained: BlockNode[] = [];
  for (const n of part.nodes) {
    if (!graph.contains(n)) continue; // a job that finished inside an earlier drain's poll dropped its filter
    graph.drainedBeginPoll(n);
    drained.push(n);
  }
  setContext(part, aio.main);
  endDrains(graph, drained);
}

function checkMove(graph: BlockGraph, node: BlockNode, ctx: AioContext, allow: BlockBackend | undefined): ReturnType<typeof component> {
  AioContexts.of(graph.sim).checkAlive(ctx, `moving node '${node.name}'`);
  const part = component(node);
  for (const b of part.backends) {
    if (b !== allow && DEVICE_BACKENDS.has(b)) throw new Error(ACTIVE_BACKEND);
  }
  graph.sim.record("aio", "change-context", { node: node.name, to: ctx.name, nodes: part.nodes.map((n) => n.name) });
  return part;
}

function setContext(part: ReturnType<typeof component>, ctx: AioContext): void {
  for (const n of part.nodes) NODE_CONTEXT.set(n, ctx);
  for (const b of part.backends) BACKEND_CONTEXT.set(b, ctx);
  for (const u of part.users) u.setAioContext?.(ctx);
}

/** QEMU's refusal when a guest device's BlockBackend would have to move. */
export const ACTIVE_BACKEND = "Cannot change iothread of active block backend";
