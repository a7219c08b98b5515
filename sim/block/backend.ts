/**
 * BlockBackends: the users of a node that issue requests — the guest's
 * virtual disk, or a job. Each carries an issuer label into every request,
 * so the trace and invariants can tell job I/O from guest I/O.
 *
 * A backend is a parent of its root node, so drains reach it. While it is
 * quiesced, a backend with `queueWhenDrained` (the guest's) parks new
 * requests in a FIFO and releases them, none lost and in order, when its
 * last drained section ends; a released request counts as in flight from
 * that instant, so a drain that begins before it runs still waits for it.
 * A backend without it (a job's: QEMU disables request queuing on job
 * backends) lets requests through, because a job must be able to finish
 * what it started to reach its pause point.
 */
import { IoError, Waiters, type Content } from "../disk/index.js";
import { awaitOp, type Process } from "../scheduler/index.js";
import type { BlockGraph } from "./graph.js";
import { BlockAcctStats } from "./accounting.js";
import { sectionHolders } from "./drain.js";
import { ParentLink, type DrainParent } from "./links.js";
import type { BlockNode, BlockRequest, RequestOwner } from "./node.js";

/** A request as a backend's user states it; the issuer defaults to the backend's. */
export interface BackendRequest {
  op: BlockRequest["op"];
  offset?: number;
  bytes?: number;
  issuer?: string;
  data?: Content;
}

/** How to build a backend with `graph.createBackend`. */
export interface BackendOptions {
  /** The device name the guest sees ("drive0"); "" (default) for an anonymous backend such as a job's. */
  name?: string;
  /** Issuer label of its requests ("guest", "job:mirror0"). */
  issuer: string;
  /** The node it uses; null or omitted for no medium. */
  root?: BlockNode | null;
  /** Park new requests while drained (default false; true for a guest). */
  queueWhenDrained?: boolean;
  /**
   * What it takes from its node and lets others do (QEMU blk_new's perm and
   * shared_perm; see permissions.ts), checked when it is attached. `user`:
   * how QEMU names it in a conflict (default "block device 'NAME'", or "an
   * unnamed block device"). Omitted: it takes nothing and shares all.
   */
  perms?: { perm: number; shared: number; user?: string };
}

/** A user of a node; issue requests with `yield* blk.write(...)`. */
export class BlockBackend implements DrainParent, RequestOwner {
  readonly name: string;
  readonly issuer: string;
  readonly queueWhenDrained: boolean;
  /** What its device's requests added up to (query-blockstats; counted by the device, not here: accounting.ts). */
  readonly acct = new BlockAcctStats();
  /** Requests past the queue and not yet finished. */
  inFlight = 0;
  /** Drained sections reaching this backend (QEMU's blk->quiesce_counter). */
  quiesceCount = 0;
  /** @internal */ readonly link: ParentLink;
  private readonly queue: Waiters;
  private readonly label: string;

  /** @internal use graph.createBackend. */
  constructor(readonly graph: BlockGraph, opts: BackendOptions) {
    this.name = opts.name ?? "";
    this.issuer = opts.issuer;
    this.queueWhenDrained = opts.queueWhenDrained ?? false;
    this.link = new ParentLink("root", this, null);
    this.label = this.name !== "" ? this.name : `blk(${this.issuer})`;
    this.queue = new Waiters(() => {
      const held = this.root ? sectionHolders(this.root) : [];
      return `${this.label}: its node to leave the drained section (${this.queue.length} request${this.queue.length === 1 ? "" : "s"} queued)${held.length > 0 ? `, which ${held.join(" and ")}` : ""}`;
    });
  }

  /** The node requests go to, or null. */
  get root(): BlockNode | null {
    return this.link.child;
  }

  /** Requests parked until the drained section ends. */
  get queued(): number {
    return this.queue.length;
  }

  /** Points the backend at another node (or none), settling drains as QEMU does. */
  setRoot(node: BlockNode | null): void {
    this.graph.retarget(this.link, node);
  }

  /** Issues any request through the root node; resumes like the typed helpers below. */
  io(r: BackendRequest): Process<unknown> {
    const offset = r.op === "flush" ? 0 : r.offset ?? NaN;
    const bytes = r.op === "flush" ? 0 : r.bytes ?? NaN;
    const issuer = r.issuer ?? this.issuer;
    return this.issue(r.data === undefined ? { op: r.op, offset, bytes, issuer } : { op: r.op, offset, bytes, issuer, data: r.data });
  }

  /** Reads; resumes with the content in the root's cluster size. */
  read(offset: number, bytes: number): Process<Content> {
    return this.issue({ op: "read", offset, bytes, issuer: this.issuer }) as Process<Content>;
  }

  /** Writes; resumes with the write id stamped (0 when it copied `data` or the node dropped it). */
  write(offset: number, bytes: number, data?: Content): Process<number> {
    const issuer = this.issuer;
    return this.issue(data === undefined ? { op: "write", offset, bytes, issuer } : { op: "write", offset, bytes, issuer, data }) as Process<number>;
  }

  writeZeroes(offset: number, bytes: number): Process<void> {
    return this.issue({ op: "write-zeroes", offset, bytes, issuer: this.issuer }) as Process<void>;
  }

  discard(offset: number, bytes: number): Process<void> {
    return this.issue({ op: "discard", offset, bytes, issuer: this.issuer }) as Process<void>;
  }

  flush(): Process<void> {
    return this.issue({ op: "flush", offset: 0, bytes: 0, issuer: this.issuer }) as Process<void>;
  }

  /**
   * The request path: parked while drained (if this backend queues), counted
   * in flight, then through the root node, which tells requestDone when it
   * has finished. Not itself a generator unless it parks: the request
   * starts, and is counted, when the helper is called, so run it at once
   * (`yield* blk.write(…)`), as every caller does.
   */
  private issue(req: BlockRequest): Process<unknown> {
    if (this.queueWhenDrained && this.quiesceCount > 0) return this.issueParked(req);
    this.inFlight++;
    return this.toRoot(req);
  }

  private *issueParked(req: BlockRequest): Process<unknown> {
    const ticket = this.queue.ticket();
    this.graph.sim.record(this.label, "queued", { op: req.op, offset: req.offset, bytes: req.bytes, issuer: req.issuer });
    try {
      yield awaitOp(ticket);
    } catch (e) {
      if (!this.queue.cancel(ticket)) this.finished(); // released, then interrupted before it ran
      throw e;
    }
    return yield* this.toRoot(req); // released: drainedEnd counted it in flight
  }

  /** A request counted in flight goes to the root node (ENOMEDIUM without one). */
  private toRoot(req: BlockRequest): Process<unknown> {
    const root = this.link.child;
    if (root === null) {
      this.finished();
      throw new IoError("ENOMEDIUM", this.label, req.op, req.offset, req.bytes);
    }
    const g = this.graph;
    if (g.observed) g.emit({ type: "submit", backend: this, req, timeNs: g.sim.now });
    return root.io(req, this);
  }

  /** @internal the root node finished a request of this backend. */
  requestDone(req: BlockRequest, error: unknown): void {
    this.finished();
    const g = this.graph;
    if (g.observed) g.emit({ type: "complete", backend: this, req, timeNs: g.sim.now, error });
  }

  /**
   * QEMU blk_drain: a drained section of the root node (a nested poll from
   * the main loop until the node and its users are idle, this backend's own
   * requests included), ended at once. Every parent of the node — a job
   * above it — is paused and resumed by it. Without a medium: nothing.
   */
  drain(): void {
    const root = this.root;
    if (!root) return;
    this.graph.drain(root);
  }

  /**
   * Drops the last reference (QEMU 7.2 blk_unref → blk_delete →
   * blk_remove_bs): blk_unref drains, blk_remove_bs drains again, then the
   * root link goes and the backend is forgotten — two drained sections of
   * its node, so a job above that node blips paused/running twice. How a
   * job lets go of a BlockBackend of its own (the stream's, in its clean).
   */
  unref(): void {
    this.drain();
    this.drain();
    this.graph.removeBackend(this);
  }

  // ---- DrainParent ----

  /** @internal */
  drainedBegin(): void {
    this.quiesceCount++;
  }

  /** @internal releases parked requests, oldest first, when the last drained section ends. */
  drainedEnd(): void {
    if (--this.quiesceCount > 0 || this.queue.length === 0) return;
    const n = this.queue.length;
    this.inFlight += n;
    this.graph.sim.record(this.label, "released", { count: n });
    this.queue.wakeAll();
  }

  /** @internal */
  drainedPoll(): boolean {
    return this.inFlight > 0;
  }

  private finished(): void {
    if (--this.inFlight === 0) this.graph.onIdle();
  }
}
