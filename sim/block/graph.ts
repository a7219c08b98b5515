/**
 * The block graph: nodes by name, the links between nodes and their users,
 * the structural changes jobs make (setBacking for stream/commit, node
 * replacement for a mirror pivot), drained sections (rule in drain.ts) and
 * an observer hook for invariant checkers.
 *
 * Node lifetime (QEMU's bdrv_ref/bdrv_unref, counted here as links rather
 * than a number): a node is held by the monitor (blockdev-add) and by each
 * parent link — parent nodes, BlockBackends, jobs. `releaseNode` is
 * bdrv_unref's close path: a node that neither the monitor nor any user
 * holds any more is closed, and lets go of its own child in turn.
 *
 * Names follow QEMU's rules and messages: a node name starts with a letter,
 * continues with letters, digits, '-', '.', '_', is at most 31 characters,
 * and is unique among nodes and named BlockBackends.
 */
import type { Device } from "../disk/index.js";
import { AioContexts, type Process, type Scheduler } from "../scheduler/index.js";
import { blockerReason } from "./op-blockers.js";
import { nodeContext, returnToMainLoop } from "./aio-context.js";
import { BlockBackend, type BackendOptions } from "./backend.js";
import {
  deliverBegin, deliverEnd, owed, pollUntilIdle, quiesce, quiesceForAll, recheck, unquiesce, unquiesceForAll, whyBusy,
  type DrainWait,
} from "./drain.js";
import { ParentLink, type DrainParent } from "./links.js";
import { checkPermissions, setLinkPerms } from "./permissions.js";
import { BlockNode, type BlockRequest, type NodeConfig, type NodeDriverConfig } from "./node.js";
import { VmRunState } from "./run-state.js";

/** A drained section of one node, in virtual ns; endNs is absent while it is open. */
export interface DrainedSpan {
  node: string;
  beginNs: number;
  endNs?: number;
}

/** What an observer sees: requests passing BlockBackends, and drained sections. */
export type BlockEvent =
  | { type: "submit"; backend: BlockBackend; req: BlockRequest; timeNs: number }
  | { type: "complete"; backend: BlockBackend; req: BlockRequest; timeNs: number; error: unknown }
  | { type: "drained-begin" | "drained" | "drained-end"; node: BlockNode; timeNs: number }
  | { type: "drain-all-begin" | "drain-all" | "drain-all-end"; timeNs: number };

const NODE_NAME = /^[A-Za-z][A-Za-z0-9\-._]*$/;
const TRACE_SRC = "block";

/** All nodes and backends of one simulation. */
export class BlockGraph {
  /** Drain-all sections in force. */
  drainAllCount = 0;
  /** Whether the guest's vCPUs run (QMP stop/cont); guests issue nothing while stopped. */
  readonly vm = new VmRunState();
  /** @internal drains waiting to settle. */
  readonly pendingDrains: DrainWait[] = [];
  private readonly nodeList: BlockNode[] = [];
  private readonly byName = new Map<string, BlockNode>();
  private readonly backendList: BlockBackend[] = [];
  private readonly deviceUser = new Map<Device, BlockNode>();
  private readonly directDrains = new Map<BlockNode, number>();
  private observers: ((ev: BlockEvent) => void)[] = [];

  private implicitSeq = 0;

  constructor(readonly sim: Scheduler) {}

  // ---- nodes ----

  /** Creates a node (and its backing or file link). Errors name the field and what was expected. */
  createNode(config: NodeConfig): BlockNode {
    if (config === null || typeof config !== "object") throw new TypeError(`node config: expected an object, got ${String(config)}`);
    this.checkNodeName(config.name);
    return this.addNode(config, config.name);
  }

  /**
   * The checks createNode makes before a node named `name` (undefined: an implicit one) opens on `dev`:
   * QEMU 7.2 assigns the node name and opens (and locks) the image file before its driver reads the image.
   */
  checkOpen(name: string | undefined, dev: Device): void {
    if (name !== undefined) this.checkNodeName(name);
    const user = this.deviceUser.get(dev);
    if (user) throw new Error(`node "${name ?? "(implicit)"}": device "${dev.name}" is already used by node "${user.name}"`);
  }

  /**
   * Creates a node the user did not name (a filter a job inserts), with
   * QEMU's implicit naming "#block<n>", which no user-given name can clash with.
   */
  createImplicitNode(config: NodeDriverConfig): BlockNode {
    if (config === null || typeof config !== "object") throw new TypeError(`node config: expected an object, got ${String(config)}`);
    // The name goes alongside the config, not into a copy of it: spreading a config costs more than the rest of the node.
    return this.addNode(config, `#block${++this.implicitSeq}`);
  }

  private addNode(config: NodeDriverConfig, name: string): BlockNode {
    const who = `node "${name}"`;
    switch (config.driver) {
      case "raw":
      case "qcow2": {
        const dev = config.device;
        if (!dev || typeof dev.io !== "function") throw new TypeError(`${who}: driver ${config.driver} needs a device (a Device)`);
        const user = this.deviceUser.get(dev);
        if (user) throw new Error(`${who}: device "${dev.name}" is already used by node "${user.name}"`);
        if (config.driver === "qcow2" && config.backing) this.own(config.backing, `${who}: backing`);
        break;
      }
      case "null-co": {
        if (!Number.isSafeInteger(config.sizeBytes) || config.sizeBytes < 0) {
          throw new RangeError(`${who}: sizeBytes must be a whole number >= 0, got ${String(config.sizeBytes)}`);
        }
        const cs = config.clusterSizeBytes;
        if (cs !== undefined && (!Number.isSafeInteger(cs) || cs < 512 || (cs & (cs - 1)) !== 0)) {
          throw new RangeError(`${who}: clusterSizeBytes must be a power of two >= 512, got ${String(cs)}`);
        }
        const lat = config.latencyNs;
        if (lat !== undefined && (!Number.isSafeInteger(lat) || lat < 0)) {
          throw new RangeError(`${who}: latencyNs must be a whole number of ns >= 0, got ${String(lat)}`);
        }
        break;
      }
      case "filter":
        this.own(config.file, `${who}: file`);
        if (config.target) this.own(config.target, `${who}: target`);
        break;
      default:
        throw new TypeError(`${who}: driver must be one of raw, qcow2, null-co, filter, got ${JSON.stringify((config as { driver: unknown }).driver)}`);
    }
    const node = new BlockNode(this, name, config);
    node.quiesceCount = node.allQuiesce = this.drainAllCount;
    this.nodeList.push(node);
    this.byName.set(node.name, node);
    if (node.device) this.deviceUser.set(node.device, node);
    if (config.driver === "qcow2") {
      node.childLink = new ParentLink("backing", node, null);
      if (config.backing) this.retarget(node.childLink, config.backing);
    } else if (config.driver === "filter") {
      node.childLink = new ParentLink("file", node, null);
      this.retarget(node.childLink, config.file);
      // copy-before-write opens its file child, then its target (cbw_open)
      if (config.target) {
        node.targetLink = new ParentLink("target", node, null);
        this.retarget(node.targetLink, config.target);
      }
    }
    return node;
  }

  /** The node called `name`; throws if there is none. */
  node(name: string): BlockNode {
    const n = this.byName.get(name);
    if (!n) throw new Error(`Cannot find node '${name}'`);
    return n;
  }

  /** The node called `name`, or undefined. */
  findNode(name: string): BlockNode | undefined {
    return this.byName.get(name);
  }

  /** Every node, in creation order. */
  nodes(): readonly BlockNode[] {
    return this.nodeList;
  }

  /** Removes a node nobody uses (QMP blockdev-del); drops its own child link. */
  removeNode(node: BlockNode): void {
    this.own(node, "removeNode");
    if (node.parentLinks.length > 0) throw new Error(`Node ${node.name} is in use`);
    const children = [node.childLink?.child, node.targetLink?.child];
    if (node.childLink) this.retarget(node.childLink, null);
    if (node.targetLink) this.retarget(node.targetLink, null);
    this.nodeList.splice(this.nodeList.indexOf(node), 1);
    this.byName.delete(node.name);
    if (node.device) this.deviceUser.delete(node.device);
    this.directDrains.delete(node);
    for (const c of children) if (c) returnToMainLoop(this, c);
  }

  /**
   * Lets go of a reference to `node` (QEMU bdrv_unref): if neither the
   * monitor nor any parent holds it any more, it is closed and its own child
   * is released in turn. Returns the nodes closed, top first.
   */
  releaseNode(node: BlockNode): BlockNode[] {
    const closed: BlockNode[] = [];
    for (let n: BlockNode | null = node; n && !n.monitorOwned && n.parentLinks.length === 0 && this.byName.get(n.name) === n;) {
      const child: BlockNode | null = n.childLink?.child ?? null;
      this.removeNode(n);
      this.sim.record(TRACE_SRC, "close", { node: n.name });
      closed.push(n);
      n = child;
    }
    return closed;
  }

  /**
   * Whether every user of `node` is a BlockBackend (QEMU bdrv_is_root_node):
   * no parent node, and no job holding it. Mirror and commit want one.
   */
  isRootNode(node: BlockNode): boolean {
    return node.parentLinks.every((l) => l.role === "root");
  }

  /**
   * Whether a BlockBackend uses `node` (QEMU bdrv_has_blk): a named or
   * anonymous backend's root, or a job that holds it through its own backend.
   */
  hasBlk(node: BlockNode): boolean {
    return node.parentLinks.some((l) => l.role === "root" || (l.role === "user" && l.blk));
  }

  /**
   * Makes `backing` the backing node of `node` (null drops it): how stream and
   * commit finish. Drains are settled on the link (see drain.ts).
   */
  setBacking(node: BlockNode, backing: BlockNode | null): void {
    this.own(node, "setBacking");
    if (node.driver !== "qcow2") throw new Error(`Driver '${node.driver}' of node '${node.name}' does not support backing files`);
    if (backing) {
      this.own(backing, "setBacking: backing");
      if (backing === node || reaches(backing, node)) {
        throw new Error(`Making '${backing.name}' a backing child of '${node.name}' would create a cycle`);
      }
    }
    this.retarget(node.childLink!, backing);
  }

  /**
   * Moves every parent of `from` — parent nodes and BlockBackends, not
   * registered users such as jobs, which manage their own links — to `to`:
   * a mirror pivot. A parent that `to` itself reaches is skipped, as that
   * would make a cycle (QEMU's should_update_child). Returns the links moved.
   */
  replaceNode(from: BlockNode, to: BlockNode): ParentLink[] {
    this.own(from, "replaceNode: from");
    this.own(to, "replaceNode: to");
    if (from === to) return [];
    const moved: ParentLink[] = [];
    for (const l of from.parentLinks.slice()) {
      if (l.role === "user") continue;
      if (l.parentIsNode) {
        const p = l.parent as BlockNode;
        if (p === to || reaches(to, p)) continue;
      }
      this.retarget(l, to);
      moved.push(l);
    }
    return moved;
  }

  /**
   * Takes a filter out of the graph (QEMU 7.2 bdrv_drop_filter →
   * bdrv_replace_node_common with detach_subchain): inside one drained
   * section of the filter — a nested poll from the main loop — its users
   * move down to its child; a user that moves to a child not drained ends
   * the filter's section at once (a backup above resumes before the
   * section closes). Then the filter lets go of its child: QEMU does that
   * inside the section, the model just after it, which is the same unless
   * the child is itself drained (then only the filter's own count, never a
   * user's, differs meanwhile). The filter node stays until its last
   * holder lets go (`removeNode`/`releaseNode`). How the backup's
   * copy-before-write and the stream's copy-on-read filter go.
   */
  dropFilter(filter: BlockNode): void {
    this.own(filter, "dropFilter");
    if (filter.driver !== "filter" || !filter.file) throw new Error(`dropFilter: node "${filter.name}" is not a filter with a child`);
    this.drainedBeginPoll(filter);
    try {
      // The child as it is after the poll: a job finishing inside may have dropped a filter below.
      const child = filter.file;
      if (!child) throw new Error(`dropFilter: filter "${filter.name}" lost its child while it was drained`);
      this.replaceNode(filter, child);
    } finally {
      this.drainedEnd(filter);
    }
    this.retarget(filter.childLink!, null);
  }

  // ---- backends and users ----

  /** Creates a BlockBackend, optionally on a node. */
  createBackend(opts: BackendOptions): BlockBackend {
    if (opts === null || typeof opts !== "object") throw new TypeError(`backend options: expected an object, got ${String(opts)}`);
    if (typeof opts.issuer !== "string" || opts.issuer === "") {
      throw new TypeError(`backend${opts.name ? ` "${opts.name}"` : ""}: issuer must be a non-empty label, got ${JSON.stringify(opts.issuer)}`);
    }
    const name = opts.name ?? "";
    if (name !== "") {
      if (this.backendList.some((b) => b.name === name)) throw new Error(`Device with id '${name}' already exists`);
      if (this.byName.has(name)) throw new Error(`Device name '${name}' conflicts with an existing node name`);
    }
    const blk = new BlockBackend(this, opts);
    if (opts.root) this.own(opts.root, `backend "${blk.name || blk.issuer}": root`);
    if (opts.perms) {
      const perms = { perm: opts.perms.perm, shared: opts.perms.shared, user: opts.perms.user ?? (name !== "" ? `block device '${name}'` : "an unnamed block device"), childName: "root" };
      if (opts.root) checkPermissions(opts.root, { node: opts.root, perms }); // blk_insert_bs: refused before anything moves
      setLinkPerms(blk.link, perms);
    }
    this.backendList.push(blk);
    if (opts.root) this.retarget(blk.link, opts.root);
    return blk;
  }

  /** Detaches and forgets a backend; parked requests are released and fail with ENOMEDIUM. */
  removeBackend(blk: BlockBackend): void {
    const i = this.backendList.indexOf(blk);
    if (i < 0) throw new Error(`backend "${blk.name || blk.issuer}" does not belong to this graph`);
    const root = blk.link.child;
    this.retarget(blk.link, null);
    this.backendList.splice(i, 1);
    if (root) returnToMainLoop(this, root);
  }

  /** Every backend, in creation order. */
  backends(): readonly BlockBackend[] {
    return this.backendList;
  }

  /**
   * Registers a user (a job) as a parent of `node`, so drains reach it. If the
   * node is quiesced, the parent gets one drainedBegin per section in force,
   * at once. Detach with `detachParent` (which ends them). `blk`: the user
   * holds the node through a BlockBackend of its own (see hasBlk).
   */
  attachParent(node: BlockNode, parent: DrainParent, opts: { blk?: boolean } = {}): ParentLink {
    this.own(node, "attachParent");
    for (const fn of ["drainedBegin", "drainedEnd", "drainedPoll"] as const) {
      if (typeof parent?.[fn] !== "function") throw new TypeError(`attachParent("${node.name}"): the parent must have a ${fn}() method`);
    }
    const link = new ParentLink("user", parent, null);
    link.blk = opts.blk === true;
    this.retarget(link, node);
    return link;
  }

  /** Removes a user's link, delivering drainedEnd for every section it was told of. */
  detachParent(link: ParentLink): void {
    if (link.role !== "user") throw new Error(`detachParent: only user links can be detached this way, not a ${link.role} link`);
    const node = link.child;
    this.retarget(link, null);
    if (node) returnToMainLoop(this, node);
  }

  // ---- drained sections ----

  /**
   * Begins a drained section on `node` from a coroutine and waits, in virtual
   * time, until it is drained (the caller yields meanwhile, as QEMU's
   * bdrv_co_yield_to_drain does). Use with `yield*`.
   */
  *drainedBegin(node: BlockNode): Process<void> {
    this.quiesceSection(node);
    yield* pollUntilIdle(this, `drained_begin("${node.name}")`, () => whyBusy(node, false));
    this.drained(node);
  }

  /**
   * Begins a drained section on `node` from the main loop: a nested poll, so
   * whatever is due (other jobs' exits, completions, timers) runs inside this
   * call until the node is drained (QEMU bdrv_drained_begin's BDRV_POLL_WHILE).
   */
  drainedBeginPoll(node: BlockNode): void {
    this.quiesceSection(node);
    this.pollOnNode(node, `drained_begin("${node.name}")`, () => whyBusy(node, false) !== undefined, true);
    this.drained(node);
  }

  /**
   * BDRV_POLL_WHILE(node, cond) from the main loop: AIO_WAIT_WHILE on the
   * node's AioContext, which drops that context's lock once around the poll
   * when the main loop holds it (a job's exit holds its job's), so the
   * IOThread can run meanwhile. A lock taken twice stays held.
   */
  private pollOnNode(node: BlockNode, what: string, cond: () => boolean, onKick: boolean): void {
    if (!cond()) return;
    const aio = AioContexts.of(this.sim);
    const ctx = aio.active ? nodeContext(node) : undefined;
    const drop = ctx !== undefined && !ctx.isMain && ctx.holder === aio.main && aio.current() === aio.main;
    if (drop) aio.release(ctx);
    try {
      this.sim.pollWhile(what, cond, { onKick });
    } finally {
      if (drop) aio.acquire(ctx);
    }
  }

  private quiesceSection(node: BlockNode): void {
    this.own(node, "drainedBegin");
    this.directDrains.set(node, (this.directDrains.get(node) ?? 0) + 1);
    quiesce(node);
    this.sim.record(TRACE_SRC, "drained-begin", { node: node.name, quiesce: node.quiesceCount });
    if (this.observers.length > 0) this.emit({ type: "drained-begin", node, timeNs: this.sim.now });
  }

  private drained(node: BlockNode): void {
    this.sim.record(TRACE_SRC, "drained", { node: node.name });
    if (this.observers.length > 0) this.emit({ type: "drained", node, timeNs: this.sim.now });
  }

  /**
   * Ends one drained section on `node`; parked guest requests go once the
   * node's last section ends. Polls only while drivers' drain_end callbacks
   * it started are pending (see drain.ts); with none it returns at once.
   */
  drainedEnd(node: BlockNode): void {
    this.own(node, "drainedEnd");
    const n = this.directDrains.get(node) ?? 0;
    if (n === 0) throw new Error(`drainedEnd("${node.name}"): no drained section begun on this node is in force`);
    if (n === 1) this.directDrains.delete(node);
    else this.directDrains.set(node, n - 1);
    const counter = { pending: 0 };
    unquiesce(node, counter);
    this.sim.record(TRACE_SRC, "drained-end", { node: node.name, quiesce: node.quiesceCount });
    if (this.observers.length > 0) this.emit({ type: "drained-end", node, timeNs: this.sim.now });
    // Most sections end with no driver callback pending: no poll, and no poll label or condition built.
    if (counter.pending > 0) this.pollOnNode(node, `drained_end("${node.name}")`, () => counter.pending > 0, false);
  }

  /** Drains every node (bdrv_drain_all_begin) from a coroutine and waits until all are idle. Use with `yield*`. */
  *drainAllBegin(): Process<void> {
    this.quiesceAll();
    yield* pollUntilIdle(this, "drain_all_begin", () => this.whyAnyBusy());
    this.drainedAll();
  }

  /**
   * QEMU bdrv_drain from the main loop: a drained section of `node` begun and
   * ended at once, so its parents (a job above it) pause and resume.
   */
  drain(node: BlockNode): void {
    this.drainedBeginPoll(node);
    this.drainedEnd(node);
  }

  /** The same from the main loop: a nested poll until every node is idle (bdrv_drain_all_begin's AIO_WAIT_WHILE). */
  drainAllBeginPoll(): void {
    this.quiesceAll();
    this.sim.pollWhile("drain_all_begin", () => this.whyAnyBusy() !== undefined, { onKick: true });
    this.drainedAll();
  }

  private quiesceAll(): void {
    this.drainAllCount++;
    for (const n of this.nodeList.slice()) quiesceForAll(n);
    this.sim.record(TRACE_SRC, "drain-all-begin", { count: this.drainAllCount });
    if (this.observers.length > 0) this.emit({ type: "drain-all-begin", timeNs: this.sim.now });
  }

  private whyAnyBusy(): string | undefined {
    for (const n of this.nodeList) {
      const why = whyBusy(n, true);
      if (why !== undefined) return why;
    }
    return undefined;
  }

  private drainedAll(): void {
    this.sim.record(TRACE_SRC, "drain-all", {});
    if (this.observers.length > 0) this.emit({ type: "drain-all", timeNs: this.sim.now });
  }

  /** Ends one drain-all section. */
  drainAllEnd(): void {
    if (this.drainAllCount === 0) throw new Error("drainAllEnd: no drain-all section is in force");
    const counter = { pending: 0 };
    for (const n of this.nodeList.slice()) if (n.allQuiesce > 0) unquiesceForAll(n, counter);
    this.drainAllCount--;
    this.sim.record(TRACE_SRC, "drain-all-end", { count: this.drainAllCount });
    if (this.observers.length > 0) this.emit({ type: "drain-all-end", timeNs: this.sim.now });
    this.sim.pollWhile("drain_all_end", () => counter.pending > 0);
  }

  /** Parents call this when they stop being busy, so pending drains look again. */
  kick(): void {
    if (this.pendingDrains.length > 0) recheck(this);
    if (this.sim.pollDepth > 0) this.sim.kickPolls();
  }

  /** Whether a drainedBegin on `node` would find nothing to wait for right now. */
  isIdle(node: BlockNode): boolean {
    return whyBusy(node, false) === undefined;
  }

  // ---- observers ----

  /** Calls `fn` for every BlockEvent; returns the unsubscribe function. Observers must not change the simulation. */
  observe(fn: (ev: BlockEvent) => void): () => void {
    this.observers = [...this.observers, fn];
    return () => {
      this.observers = this.observers.filter((f) => f !== fn);
    };
  }

  /**
   * The drained sections taken from now on, as spans into `into` (a report's drain bars): a
   * drained_end closes the newest open section of its node.
   */
  recordDrainedSections(into: DrainedSpan[]): void {
    this.observe((ev) => {
      if (ev.type === "drained-begin") into.push({ node: ev.node.name, beginNs: ev.timeNs });
      else if (ev.type === "drained-end") {
        for (let i = into.length - 1; i >= 0; i--) {
          if (into[i].node === ev.node.name && into[i].endNs === undefined) {
            into[i].endNs = ev.timeNs;
            break;
          }
        }
      }
    });
  }

  /** @internal */
  get observed(): boolean {
    return this.observers.length > 0;
  }

  /** @internal */
  emit(ev: BlockEvent): void {
    for (const fn of this.observers) fn(ev);
  }

  // ---- internals ----

  /** @internal a node or backend ran out of requests. */
  onIdle(): void {
    if (this.pendingDrains.length > 0) recheck(this);
    if (this.sim.pollDepth > 0) this.sim.kickPolls();
  }

  /**
   * @internal Points `link` at `node`, settling drains as QEMU's
   * bdrv_replace_child_noperm does: drained_begin calls owed by the new
   * child first, the move, then drained_end for what the old child no
   * longer owes.
   */
  retarget(link: ParentLink, node: BlockNode | null): void {
    const old = link.child;
    if (old === node) return;
    const target = owed(link, node);
    while (link.quiesced < target) deliverBegin(link);
    if (old) old.parentLinks.splice(old.parentLinks.indexOf(link), 1);
    if (old && link.backingBlocker) old.unblockAllOps(link.backingBlocker);
    link.backingBlocker = undefined;
    link.child = node;
    if (node) prepend(node.parentLinks, link); // newest first, as QEMU inserts parents at the list head
    if (link.parentIsNode) reorderChild(link);
    if (node && link.role === "backing") blockBackingNode(link, node);
    const counter = { pending: 0 };
    while (link.quiesced > target) deliverEnd(link, counter);
    this.onIdle();
    // bdrv_parent_drained_end_single; nearly always nothing is pending, so no poll label or condition is built
    if (counter.pending > 0) this.sim.pollWhile(`drained_end of a moved ${link.role} link`, () => counter.pending > 0);
  }

  /** Whether `node` is (still) a node of this graph. */
  contains(node: BlockNode): boolean {
    return node.graph === this && this.byName.get(node.name) === node;
  }

  private own(node: BlockNode, who: string): void {
    if (!(node instanceof BlockNode) || node.graph !== this || this.byName.get(node.name) !== node) {
      throw new Error(`${who}: ${node instanceof BlockNode ? `node "${node.name}" is not in this graph` : "expected a BlockNode"}`);
    }
  }

  private checkNodeName(name: unknown): void {
    if (typeof name !== "string" || !NODE_NAME.test(name)) throw new Error(`Invalid node-name: '${String(name)}'`);
    if (name.length > 31) throw new Error("Node name too long");
    if (this.byName.has(name)) throw new Error(`Duplicate nodes with node-name='${name}'`);
    if (this.backendList.some((b) => b.name === name)) throw new Error(`node-name=${name} is conflicting with a device id`);
  }
}

/**
 * QEMU 7.2 bdrv_backing_attach: a node attached as a backing (COW) child is
 * blocked for every operation but those a backing chain needs (commit into
 * it, stream through it, backup from or to it), with a reason naming its
 * parent as it is named now; bdrv_backing_detach unblocks it (retarget).
 */
function blockBackingNode(link: ParentLink, node: BlockNode): void {
  const reason = blockerReason(`node is used as backing hd of '${(link.parent as BlockNode).deviceOrNodeName()}'`);
  link.backingBlocker = reason;
  node.blockAllOps(reason);
  for (const op of BACKING_CHAIN_OPS) node.unblockOp(op, reason);
}

const BACKING_CHAIN_OPS = ["COMMIT_TARGET", "STREAM", "BACKUP_SOURCE", "BACKUP_TARGET"] as const;

/** Puts a node's child link first among its children, or drops it when it points nowhere (bdrv_child_cb_detach/attach). */
function reorderChild(link: ParentLink): void {
  const order = (link.parent as BlockNode).childOrder;
  const i = order.indexOf(link);
  if (i >= 0) order.splice(i, 1);
  if (link.child) prepend(order, link);
}

/** Puts `item` first: Array.prototype.unshift is a builtin call costing ~5× this loop over a node's few parents. */
function prepend<T>(list: T[], item: T): void {
  list.push(item);
  for (let i = list.length - 1; i > 0; i--) list[i] = list[i - 1];
  list[0] = item;
}

/**
 * Whether `target` is `from` or below it through any child link: backing,
 * file, and a copy-before-write filter's target (QEMU's should_update_child
 * and bdrv_recurse_has_child search every child). A libvirt incremental
 * backup's target has the source as its backing node, so the filter reaches
 * the source's other parent through its target.
 */
function reaches(from: BlockNode, target: BlockNode): boolean {
  const seen = new Set<BlockNode>([from]);
  const queue = [from];
  for (let n = queue.shift(); n; n = queue.shift()) {
    if (n === target) return true;
    for (const l of n.childOrder) {
      const c = l.child;
      if (c && !seen.has(c)) {
        seen.add(c);
        queue.push(c);
      }
    }
  }
  return false;
}
