/**
 * Which AioContext a node lives in, and moving a node there.
 *
 * Stands for (QEMU 7.2 block.c): bdrv_get_aio_context (`nodeContext`),
 * bdrv_try_change_aio_context with bdrv_change_aio_context and the
 * parents' change_aio_ctx callbacks (`changeAioContext`, the walk in
 * `ContextChange`): the whole connected part of the graph moves together —
 * children, parent nodes, BlockBackends and jobs (a job drags its other
 * nodes along, blockjob.c child_job_change_aio_ctx, and its coroutine
 * follows, child_job_set_aio_ctx) — inside drained sections on every node
 * moved, begun in the walk's order and ended in the reverse, so a running
 * job on them blips paused→running and two jobs pause in the order the
 * walk reaches them. A BlockBackend attached to a guest device refuses
 * (blk_root_change_aio_ctx: "Cannot change iothread of active block
 * backend"); the sections begun by then end again (tran_abort).
 *
 * A block job's filter, opened in the main loop, pulls its source there
 * (`attachInMainLoop`: bdrv_attach_child_common moving the child to the new
 * parent's context) unless a guest device pins it; a node a parent lets go
 * of goes back to the main loop (`returnToMainLoop`, bdrv_root_unref_child).
 *
 * Leaves out: the general rule by which a newly attached child and its
 * parent settle on one context (blockdev-add of an overlay): a node never
 * moved explicitly lives in its child's context (backing or file), or the
 * main loop when it has none.
 */
import { AioContexts, type AioContext } from "../scheduler/index.js";
import type { BlockBackend } from "./backend.js";
import type { BlockGraph } from "./graph.js";
import type { DrainParent, ParentLink } from "./links.js";
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

/** Whether a guest device uses the backend (QEMU blk_get_attached_dev: query-blockstats lists it even unnamed). */
export function deviceAttached(blk: BlockBackend): boolean {
  return DEVICE_BACKENDS.has(blk);
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
    visit(n.targetLink?.child ?? null);
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
 * drained section (QEMU 7.2 bdrv_try_change_aio_context). Throws an Error
 * with QEMU's message when a guest device's backend refuses (the sections
 * begun by then end again, and nothing has moved); `allow` is a backend
 * whose device asks for the move itself (realize with iothread=). The walk
 * stops at nodes already in `ctx`, so a guest device there does not refuse:
 * a new user attaching a node moves it so too (bdrv_root_attach_child: a new
 * job's other nodes join its main node's context, as blockdev-backup moves
 * the target to the source's). The walk is synchronous: no choice point.
 */
export function changeAioContext(graph: BlockGraph, node: BlockNode, ctx: AioContext, allow?: BlockBackend): void {
  if (nodeContext(node) === ctx) return;
  const aio = AioContexts.of(graph.sim);
  aio.checkAlive(ctx, `moving node '${node.name}'`);
  // A caller holding the old context's lock (x-blockdev-set-iothread) has it let go of around the commit.
  const old = nodeContext(node);
  new ContextChange(graph, ctx, allow, { node }).run(node, (commit) => aio.withoutLock(old, commit));
}

/**
 * A node one of whose parents let go of it goes back to the main loop with
 * everything connected to it (QEMU 7.2 bdrv_root_unref_child, which tries
 * bdrv_try_change_aio_context to the main context and ignores a refusal): a
 * job's nodes as its clean or free detaches them, a BlockBackend's root, a
 * closed node's children. So when one of two backups in an IOThread ends,
 * the other is drained, pauses and resumes, and runs in the main loop
 * after (goldens/iothread_move_pause_order); a guest device's backend in
 * the part keeps it where it is.
 */
export function returnToMainLoop(graph: BlockGraph, node: BlockNode): void {
  const aio = AioContexts.of(graph.sim);
  if (!aio.active || !graph.contains(node) || nodeContext(node).isMain) return;
  // The caller (a job's finalization) holds the old context's lock; bdrv_try_change_aio_context lets go of it
  // around its commit and takes it back at once: the IOThread, woken by the sections ending, races for it.
  const old = nodeContext(node);
  try {
    new ContextChange(graph, aio.main, undefined, { node, why: "a parent let go of it" }).run(node, (commit) => aio.withoutLock(old, commit));
  } catch (e) {
    if (!(e instanceof Error && e.message === ACTIVE_BACKEND)) throw e;
  }
}

/**
 * One AioContext change, as 7.2's block.c walks it (bdrv_change_aio_context):
 * from a node still in another context, first every parent link, newest
 * first — a parent node is walked the same way, a job walks its own links
 * to its nodes, newest first (child_job_change_aio_ctx), a BlockBackend
 * refuses if a guest device uses it — then every child link in the node's
 * order, then the node's drained section begins (a nested poll from the
 * main loop: a sleeping job in the main loop pauses inside it, one in an
 * IOThread is waited for). Each link is walked once, but a node is walked
 * again when reached again before its own section began (its context
 * changes only at the end), so it is drained twice and the first node
 * drained is the deepest the walk reaches. Each section, job and backend
 * adds an action; at the end the actions run newest first, twice (QEMU
 * 7.2's tran_commit runs every commit, then every clean, since 6.2's
 * "transactions: Invoke clean() after everything else"): first each node,
 * job and backend takes the new context, then each node's section ends, so
 * a job resumes once the last section that reached it ends, with every
 * context already changed. (The order of old, a commit then a clean per
 * action, showed only in the trace: a job's own links, walked before its
 * action is added, drain all of its nodes but the one the walk came from,
 * so the section that resumes it always ends after its commit.) The walk is
 * synchronous: no choice point inside it but what the polls of its drains
 * run.
 */
class ContextChange {
  private readonly visited = new Set<ParentLink>();
  private readonly actions: ({ node: BlockNode } | { user: DrainParent } | { backend: BlockBackend })[] = [];
  constructor(
    private readonly graph: BlockGraph,
    private readonly ctx: AioContext,
    private readonly allow: BlockBackend | undefined,
    /** What the move's trace record names: the node asked to move, and why when no command asked. */
    private readonly label: { node: BlockNode; why?: string },
  ) {}

  /** Marks a link as walked already (the new child a parent is attaching). */
  ignore(link: ParentLink): void {
    this.visited.add(link);
  }

  /**
   * Walks from `node`, then commits; `aroundCommit` runs the commit (default:
   * as it is). The move's trace record comes once the walk succeeded, before
   * the commit: a refused move records none.
   */
  run(node: BlockNode, aroundCommit: (commit: () => void) => void = (commit) => commit()): void {
    try {
      this.walkNode(node);
    } catch (e) {
      // tran_abort: each drained section ends again, newest first
      for (const a of this.actions.slice().reverse()) if ("node" in a && this.graph.contains(a.node)) this.graph.drainedEnd(a.node);
      throw e;
    }
    const { node: asked, why } = this.label;
    const nodes = component(asked).nodes.map((n) => n.name);
    this.graph.sim.record("aio", "change-context", why === undefined ? { node: asked.name, to: this.ctx.name, nodes } : { node: asked.name, to: this.ctx.name, nodes, why });
    aroundCommit(() => {
      const newestFirst = this.actions.slice().reverse();
      // tran_commit: every action's commit first (each node, job and backend takes the new context)…
      for (const a of newestFirst) {
        if ("node" in a) NODE_CONTEXT.set(a.node, this.ctx);
        else if ("user" in a) a.user.setAioContext?.(this.ctx);
        else BACKEND_CONTEXT.set(a.backend, this.ctx);
      }
      // …then every clean: the drained sections end, newest first
      for (const a of newestFirst) if ("node" in a && this.graph.contains(a.node)) this.graph.drainedEnd(a.node);
    });
  }

  private walkNode(n: BlockNode): void {
    // a job that finished inside an earlier drain's poll may have dropped its filter from the graph
    if (!this.graph.contains(n) || nodeContext(n) === this.ctx) return;
    for (const l of n.parentLinks.slice()) this.walkParent(l);
    for (const l of n.childOrder.slice()) this.walkChild(l);
    if (!this.graph.contains(n)) return;
    this.graph.drainedBeginPoll(n);
    this.actions.push({ node: n });
  }

  private walkParent(l: ParentLink): void {
    if (this.visited.has(l)) return;
    this.visited.add(l);
    if (l.parentIsNode) this.walkNode(l.parent as BlockNode);
    else if (l.role === "root") {
      const b = l.parent as BlockBackend;
      if (b !== this.allow && DEVICE_BACKENDS.has(b)) throw new Error(ACTIVE_BACKEND);
      this.actions.push({ backend: b });
    } else {
      const u = l.parent as DrainParent;
      for (const m of u.aioLinks?.() ?? []) this.walkChild(m);
      this.actions.push({ user: u });
    }
  }

  private walkChild(l: ParentLink): void {
    if (this.visited.has(l)) return;
    this.visited.add(l);
    if (l.child) this.walkNode(l.child);
  }
}

/**
 * A block job's start opens its filter node in the main loop and puts it
 * above its source (QEMU 7.2 bdrv_attach_child_common, reached from
 * bdrv_cbw_append, the bdrv_append of mirror_top and commit_top, and the
 * stream's bdrv_insert_node): the source's part of the graph moves into the
 * filter's context, the main loop, by the walk of changeAioContext (from
 * the source; QEMU's walk did not see the filter, which links its child
 * after the move, but here the filter already stands where the source's
 * users were, and the walk reaches them through it), unless a guest
 * device's BlockBackend refuses (the sections the walk began end again); then the filter goes to the source's IOThread instead (here it
 * inherits it: nothing moves). So a job on a node that only
 * x-blockdev-set-iothread put in an IOThread runs in the main loop (real
 * QEMU 7.2: golden iothread_move_back), and one under a guest device in an
 * IOThread runs there. `node` is the job's main node.
 */
export function attachInMainLoop(graph: BlockGraph, node: BlockNode): void {
  const aio = AioContexts.of(graph.sim);
  if (!aio.active || nodeContext(node).isMain) return;
  aio.checkAlive(nodeContext(node), `attaching a filter above node '${node.name}'`);
  const change = new ContextChange(graph, aio.main, undefined, { node, why: "filter opened in the main loop" });
  // The filter already stands where the source's users were (the drivers insert it first): the walk goes
  // from the source up through it to them, as QEMU's went from the source to its users; not to the target,
  // which the filter links after.
  const file = node.driver === "filter" ? node.file : null;
  if (node.targetLink) change.ignore(node.targetLink);
  try {
    change.run(file ?? node);
  } catch (e) {
    if (!(e instanceof Error && e.message === ACTIVE_BACKEND)) throw e;
  }
}

/** QEMU's refusal when a guest device's BlockBackend would have to move. */
export const ACTIVE_BACKEND = "Cannot change iothread of active block backend";
