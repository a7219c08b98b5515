/**
 * Drained sections, as QEMU 7.2's block/io.c has them.
 *
 * The rule modelled. `drainedBegin(N)`:
 *  1. quiesces N: N's quiesce counter goes up by one and every parent link of
 *     N, newest first (QEMU keeps parents newest at the head of the list and
 *     walks it from there), delivers one drained_begin — a parent node is
 *     quiesced the same way in turn (so the drain climbs to every ancestor:
 *     overlays above a backing node, filters above their child), a
 *     BlockBackend starts queuing (if it queues), a job's DrainParent is
 *     told to pause. Children are not quiesced (7.2's subtree drain is not
 *     modelled).
 *  2. polls, in virtual time, until N is idle: N has no request in flight,
 *     and no parent is busy — a parent node is busy by the same rule
 *     (recursively), a BlockBackend while it has requests in flight (parked
 *     ones do not count), a DrainParent while its drainedPoll() says so. The
 *     poll is re-evaluated whenever a node or backend runs out of requests
 *     and whenever someone calls `graph.kick()`.
 * `drainedEnd(N)` delivers drained_end to every parent link (recursively, a
 * parent node ends before N), then decrements N's counter (the order of
 * 5cb2737e92). Parents resume at once (a job is entered from the main loop
 * and runs up to its next yield). It then polls only while drivers'
 * drain_end callbacks it started are pending (QEMU 7.2 bdrv_drained_end's
 * BDRV_POLL_WHILE on drained_end_counter): raw, qcow2, null-co and the job
 * filters have none, so it returns at once; a node given one with
 * setDriverDrainEnd (as QEMU's nbd, qed and the unit tests' bdrv_test have)
 * makes it poll once, at the very end, after every parent has left the
 * section — so a job that finished on resuming also exits inside.
 *
 * Where the poll happens. From a coroutine (a job, a test process),
 * `drainedBegin` parks the caller until the node is idle (QEMU bounces such
 * a drain to the main loop with bdrv_co_yield_to_drain). From the main loop
 * (a job's clean, a monitor command, a harness's drain step),
 * `drainedBeginPoll` is a nested poll (Scheduler.pollWhile): the call does
 * not return until the node is idle, and whatever is due meanwhile runs
 * inside it — other jobs' exits and finalizations, I/O completions, timers,
 * guest requests — while no QMP command is dispatched.
 *
 * Nesting adds up, everywhere. Each link counts what it has delivered; when
 * a link is attached to a quiesced node (a job attaching, setBacking,
 * replaceNode, setRoot), the node's count is replayed as drained_begin calls
 * on the new parent before the link moves, and the old node's count is
 * ended after it moves.
 *
 * Drain-all (bdrv_drain_all_begin): every node is quiesced once without
 * passing on to parent nodes (each is drained itself), so a job attached to
 * two nodes is told twice; then it polls until every node and every non-node
 * parent is idle. Nodes created during a drain-all start quiesced by it.
 *
 * Limits: a coroutine's drain yields to a bottom half that enters it again
 * (`yieldToDrain`, the bounce) and then parks right there until the node is
 * idle, rather than the bottom half polling for it. Interrupting a drainer while
 * it polls leaves the section begun; it must still be ended. Left out:
 * subtree drains, aio_disable_external (the BlockBackend's queueing stands
 * for it). A node in an IOThread: the main loop's poll drops the node's
 * AioContext lock once if it holds it (BDRV_POLL_WHILE), and that
 * IOThread's entries run meanwhile, as the thread goes on concurrently.
 */
import { awaitOp, coScheduleSelf, type Operation, type OperationHost, type ProcHandle, type Process, type Scheduler } from "../scheduler/index.js";
import type { BlockGraph } from "./graph.js";
import type { DrainParent, ParentLink } from "./links.js";
import type { BlockNode } from "./node.js";

/** Who holds a drained section of a node across main-loop turns, by node (for reports: see `sectionHolders`). */
const holders = new WeakMap<BlockNode, string[]>();

/**
 * Notes that `who` holds a drained section of `node` beyond the call that
 * began it (a completed mirror or active commit, from its run's end until its
 * exit), so that a request queued behind it can say what it waits for.
 */
export function holdSection(node: BlockNode, who: string): void {
  const list = holders.get(node);
  if (list) list.push(who);
  else holders.set(node, [who]);
}

export function releaseSection(node: BlockNode, who: string): void {
  const list = holders.get(node);
  const i = list ? list.indexOf(who) : -1;
  if (i >= 0) list!.splice(i, 1);
}

/** The holders of sections on `node` and the nodes below it (a section there quiesces `node` too). */
export function sectionHolders(node: BlockNode): string[] {
  return node.chain().flatMap((n) => holders.get(n) ?? []);
}

/** Raises `node`'s counter and tells every parent (recursively through parent nodes). */
export function quiesce(node: BlockNode): void {
  node.quiesceCount++;
  for (const l of node.parentLinks.slice()) deliverBegin(l);
}

/**
 * What a drained_end is still waiting for: drivers' drain_end callbacks it
 * started that have not run yet (QEMU's drained_end_counter).
 */
export interface DrainEndCounter {
  pending: number;
}

const driverDrainEnd = new WeakMap<BlockNode, () => void>();

/**
 * Gives `node` a driver drain_end callback (QEMU's .bdrv_co_drain_end, which
 * nbd, qed and the unit tests' bdrv_test have; raw, qcow2, null-co and the
 * job filters do not). It runs as its own main-loop entry after each
 * section on the node ends, and the drained_end that ended it polls until it
 * has run.
 */
export function setDriverDrainEnd(node: BlockNode, fn: () => void): void {
  driverDrainEnd.set(node, fn);
}

function invokeDrainEnd(node: BlockNode, counter: DrainEndCounter | undefined): void {
  const fn = driverDrainEnd.get(node);
  if (!fn) return;
  if (counter) counter.pending++;
  node.graph.sim.at(node.graph.sim.now, `drain_end of node "${node.name}"`, () => {
    fn();
    if (counter) counter.pending--;
  });
}

/** Tells every parent that one section ended, then lowers `node`'s counter; the node's own driver is told first. */
export function unquiesce(node: BlockNode, counter?: DrainEndCounter): void {
  invokeDrainEnd(node, counter);
  for (const l of node.parentLinks.slice()) deliverEnd(l, counter);
  node.quiesceCount--;
}

/** Drain-all's quiesce: parent nodes are left to their own. */
export function quiesceForAll(node: BlockNode): void {
  node.quiesceCount++;
  node.allQuiesce++;
  for (const l of node.parentLinks.slice()) if (!l.parentIsNode) deliverBegin(l);
}

export function unquiesceForAll(node: BlockNode, counter?: DrainEndCounter): void {
  invokeDrainEnd(node, counter);
  for (const l of node.parentLinks.slice()) if (!l.parentIsNode) deliverEnd(l, counter);
  node.quiesceCount--;
  node.allQuiesce--;
}

/** How many drained_begin calls a link to `node` should have delivered. */
export function owed(link: ParentLink, node: BlockNode | null): number {
  if (node === null) return 0;
  return link.parentIsNode ? node.quiesceCount - node.allQuiesce : node.quiesceCount;
}

/** Delivers one drained_begin through `link`. */
export function deliverBegin(link: ParentLink): void {
  link.quiesced++;
  if (link.parentIsNode) quiesce(link.parent as BlockNode);
  else (link.parent as DrainParent).drainedBegin();
}

/** Delivers one drained_end through `link`. */
export function deliverEnd(link: ParentLink, counter?: DrainEndCounter): void {
  if (link.quiesced <= 0) throw new Error(`internal: drained_end through a link that delivered no drained_begin (${link.role} link of ${nameOf(link.parent)})`);
  link.quiesced--;
  if (link.parentIsNode) unquiesce(link.parent as BlockNode, counter);
  else (link.parent as DrainParent).drainedEnd();
}

/**
 * Why `node` is not yet drained, or undefined when it is: its own requests,
 * then each parent, newest first (parent nodes recursively unless
 * `ignoreNodeParents`, as drain-all polls every node itself).
 */
export function whyBusy(node: BlockNode, ignoreNodeParents: boolean): string | undefined {
  if (node.inFlight > 0) return `node "${node.name}" has ${node.inFlight} request${node.inFlight === 1 ? "" : "s"} in flight`;
  for (const l of node.parentLinks) {
    if (l.parentIsNode) {
      if (ignoreNodeParents) continue;
      const why = whyBusy(l.parent as BlockNode, false);
      if (why !== undefined) return why;
    } else if ((l.parent as DrainParent).drainedPoll()) {
      return `parent "${nameOf(l.parent)}" of node "${node.name}" is busy`;
    }
  }
  return undefined;
}

/** A process polling for a drain to settle; woken by `recheck`. */
export class DrainWait implements Operation {
  private proc: ProcHandle | undefined;
  private token = 0;
  private host: OperationHost | undefined;
  constructor(
    private readonly graph: BlockGraph,
    private readonly what: string,
    /** Why the drain is not done, or undefined. */
    readonly why: () => string | undefined,
  ) {}

  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.host = host;
    this.proc = proc;
    this.token = token;
    this.graph.pendingDrains.push(this);
  }

  /** @internal */
  wake(): void {
    this.host!.wake(this.proc!, this.token);
  }

  describe(): string {
    return `${this.what}: ${this.why() ?? "settled"}`;
  }
}

/**
 * The bounce of a drain begun from a coroutine (QEMU bdrv_co_yield_to_drain):
 * the coroutine yields, and a bottom half of its AioContext enters it again
 * at once, from where it goes on to drain (before the reply to a QMP command
 * that entered the coroutine).
 */
export function* yieldToDrain(sim: Scheduler, what: string): Process<void> {
  yield* coScheduleSelf(sim, `drain bounce: ${what}`, `the bottom half of a drain bounce (${what})`);
}

/** Parks the calling process until `why()` is undefined (returns at once if it already is). */
export function* pollUntilIdle(graph: BlockGraph, what: string, why: () => string | undefined): Process<void> {
  while (why() !== undefined) {
    const w = new DrainWait(graph, what, why);
    try {
      yield awaitOp(w);
    } catch (e) {
      const i = graph.pendingDrains.indexOf(w);
      if (i >= 0) graph.pendingDrains.splice(i, 1);
      throw e;
    }
  }
}

/** Wakes every pending drain whose condition now holds; each re-checks when it runs. */
export function recheck(graph: BlockGraph): void {
  const list = graph.pendingDrains;
  for (let i = 0; i < list.length; ) {
    if (list[i].why() === undefined) {
      const [w] = list.splice(i, 1);
      w.wake();
    } else {
      i++;
    }
  }
}

function nameOf(p: unknown): string {
  return (p as { name?: string }).name || "(anonymous)";
}
