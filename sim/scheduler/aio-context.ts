/**
 * AioContexts: QEMU's event loops, one for the main loop and one per
 * IOThread, each its own loop in virtual time.
 *
 * Every kernel process and timer carries the number of the context it runs
 * in (0, the main loop, unless said otherwise; a process or timer created by
 * code running in a context inherits it). Entries of different contexts due
 * at one instant are already a choice point of the kernel — the real
 * concurrency between the main thread and the IOThreads; inside one context
 * the kernel's rules stand (a coroutine entered from its own loop runs at
 * once, up to its next yield).
 *
 * Stands for (QEMU 7.2):
 * - util/async.c: aio_context_new (`create`), qemu_get_current_aio_context
 *   (`current`), aio_co_enter / aio_co_wake (`coEnter`: from the coroutine's
 *   own context it runs at once, or right after the running coroutine
 *   yields; from another context it is aio_co_schedule'd into its loop — a
 *   ready entry of that context, never run at once), aio_bh_schedule_oneshot
 *   (a timer with an explicit context, see `Scheduler.at`),
 *   aio_co_reschedule_self (`rescheduleSelf`: a coroutine running in one
 *   loop moves itself to another through a bottom half of the loop it is
 *   in, which then aio_co_schedule's it; so the move waits for that loop's
 *   next round, it is not done at once);
 * - aio_context_acquire / aio_context_release (`acquire`, `release`): a
 *   recursive lock per context, held by a thread (named by its home
 *   context). While another thread holds it, the context's own loop is
 *   stuck taking it (co_schedule_bh_cb, the completion handlers): the kernel
 *   holds back every entry of that context until the release (`gated` in
 *   the trace; a deadlock names the lock);
 * - include/block/aio-wait.h AIO_WAIT_WHILE and util/aio-wait.c
 *   aio_wait_kick (`waitWhile`): polling from the main loop for a condition
 *   on an IOThread's work releases that context's lock once around the poll
 *   (a lock taken twice stays held: the IOThread stays stuck) and is woken by
 *   `kick` from whichever context makes the condition change; polled in the
 *   context's own thread, any event of that loop re-evaluates it.
 *
 * Leaves out: real parallelism inside one instant (an IOThread's step and a
 * main-loop step never overlap; the lock matters only when held across a
 * yield), aio_poll's fd and timer lists, polling modes (poll-max-ns and
 * friends are accepted and ignored), the job lock of 7.2 (job_mutex), and
 * the global lock (BQL) the main loop holds.
 */
import type { ProcHandle, Process } from "./effects.js";
import { awaitOp, type Operation, type OperationHost } from "./effects.js";
import type { Scheduler } from "./scheduler.js";
import { UseAfterFree } from "./use-after-free.js";

/** One event loop: the main loop's, or an IOThread's. */
export class AioContext {
  /** The thread holding the lock (by its home context), and how many times. */
  holder: AioContext | undefined = undefined;
  depth = 0;
  /** The IOThread object was deleted (object-del); any later use is a use-after-free. */
  deleted = false;
  constructor(
    /** The number processes and timers carry (0: main loop). */
    readonly id: number,
    /** "main", or the IOThread's id. */
    readonly name: string,
  ) {}

  get isMain(): boolean {
    return this.id === 0;
  }
}

/**
 * aio_co_schedule(own context, self) then yield, from the running coroutine:
 * a bottom half of its AioContext enters it again at once. Being a bottom
 * half, it runs before the reply to a QMP command that entered the
 * coroutine (the monitor waits for pending bottom halves), and no strategy
 * orders it after that reply. How a drain begun from a coroutine bounces
 * (bdrv_co_yield_to_drain) and how blkdebug returns an error (rule_check).
 * `label` names the bottom half, `what` the wait in a deadlock report.
 */
export function* coScheduleSelf(sim: Scheduler, label: string, what: string): Process<void> {
  yield awaitOp(new CoScheduled(sim, label, what));
}

class CoScheduled implements Operation {
  constructor(private readonly sim: Scheduler, private readonly label: string, private readonly what: string) {}
  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.sim.bottomHalf(this.label, () => {
      host.wake(proc, token);
      this.sim.enterNow(proc);
    }, undefined, proc.context);
  }
  describe(): string {
    return this.what;
  }
}

/**
 * aio_co_schedule(own context, self) then yield (QEMU 7.2 util/async.c): the
 * coroutine goes on its context's scheduled_coroutines and the context's one
 * co_schedule_bh is scheduled, unless it is pending already; that bottom half
 * enters every coroutine scheduled by then, in the order they were scheduled
 * (co_schedule_bh_cb reverses the list it takes), one after another. So two
 * requests blkdebug fails in one pass come back in the order they failed,
 * where two oneshot bottom halves (coScheduleSelf) would run newest first.
 * `what` names the wait in a deadlock report.
 */
export function* aioCoScheduleSelf(sim: Scheduler, what: string): Process<void> {
  yield awaitOp(new AioCoScheduled(sim, what));
}

class AioCoScheduled implements Operation {
  constructor(private readonly sim: Scheduler, private readonly what: string) {}
  start(host: OperationHost, proc: ProcHandle, token: number): void {
    AioContexts.of(this.sim).coSchedule(proc.context, { host, proc, token, moveTo: undefined });
  }
  describe(): string {
    return this.what;
  }
}

/** A coroutine on a context's scheduled list: woken, moved to the context if it comes from another, and entered. */
interface CoScheduledEntry {
  host: OperationHost;
  proc: ProcHandle;
  token: number;
  moveTo: number | undefined;
}

/** A process parked in AIO_WAIT_WHILE until kicked. */
class WaitKick implements Operation {
  host: OperationHost | undefined;
  proc: ProcHandle | undefined;
  token = 0;
  constructor(readonly what: string, readonly why: () => string | undefined) {}
  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.host = host;
    this.proc = proc;
    this.token = token;
  }
  describe(): string {
    return `${this.what}: ${this.why() ?? "settled"}`;
  }
}

/** A coroutine yielded in aio_co_reschedule_self until the bottom half schedules it into its new loop. */
class Rescheduling implements Operation {
  host: OperationHost | undefined;
  proc: ProcHandle | undefined;
  token = 0;
  constructor(readonly to: AioContext) {}
  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.host = host;
    this.proc = proc;
    this.token = token;
  }
  describe(): string {
    return `aio_co_reschedule_self into the loop of ${this.to.name}`;
  }
}

/** The contexts of one simulated QEMU process, kept per scheduler. */
export class AioContexts {
  readonly main = new AioContext(0, "main");
  private readonly byId: AioContext[] = [this.main];
  private readonly byName = new Map<string, AioContext>();
  private readonly waiters: WaitKick[] = [];
  /** Per context: the coroutines aio_co_schedule'd into it whose co_schedule_bh has not run yet (aioCoScheduleSelf). */
  private readonly coScheduled: (CoScheduledEntry[] | undefined)[] = [];
  /** Whether any IOThread was ever created: until then every check takes the main-loop path. */
  private any = false;

  /** The registry of `sim`, created on first use. */
  static of(sim: Scheduler): AioContexts {
    return (sim.aioContexts ??= new AioContexts(sim));
  }

  private constructor(readonly sim: Scheduler) {}

  /** Whether any IOThread exists or existed: a run without one pays nothing for the machinery. */
  get active(): boolean {
    return this.any;
  }

  /** A new IOThread's context (aio_context_new, iothread_run). Throws on a duplicate name. */
  create(name: string): AioContext {
    if (this.byName.has(name)) throw new Error(`iothread '${name}' exists`);
    const ctx = new AioContext(this.byId.length, name);
    this.byId.push(ctx);
    this.byName.set(name, ctx);
    if (!this.any) {
      this.any = true;
      this.sim.setContextGate((id) => this.gate(id));
    }
    this.sim.record("aio", "context-new", { context: ctx.id, name });
    return ctx;
  }

  /** The IOThread is gone (object-del): its loop stops; the context stays known so later uses are caught. */
  remove(ctx: AioContext): void {
    this.byName.delete(ctx.name);
    ctx.deleted = true;
    this.sim.record("aio", "context-deleted", { context: ctx.id, name: ctx.name });
  }

  /** The live IOThread context of that name. */
  get(name: string): AioContext | undefined {
    return this.byName.get(name);
  }

  /** Live IOThread contexts, in creation order. */
  iothreads(): AioContext[] {
    return this.byId.filter((c) => !c.isMain && !c.deleted);
  }

  byNumber(id: number): AioContext {
    return this.byId[id];
  }

  /** qemu_get_current_aio_context: the context whose thread runs the code now. */
  current(): AioContext {
    return this.any ? this.byId[this.sim.currentContext] : this.main;
  }

  /** Fails loudly if `ctx` belongs to a deleted IOThread (QEMU would touch freed memory). */
  checkAlive(ctx: AioContext, what: string): void {
    if (ctx.deleted) throw new UseAfterFree(`use after free: ${what} in the AioContext of iothread '${ctx.name}', which was deleted`);
  }

  /**
   * aio_co_schedule(ctx, co): the coroutine goes on the context's scheduled
   * list, and the context's one co_schedule_bh is scheduled unless it is
   * pending already; that bottom half enters every coroutine on the list by
   * then, in the order they were scheduled (co_schedule_bh_cb). From another
   * thread the bottom half is a free entry of that loop (it runs when the
   * thread gets there), but the coroutines it carries keep their order: two
   * jobs the main loop wakes into io0 one after the other run there in that
   * order (goldens/iothread_move_pause_order).
   */
  coSchedule(ctx: number, entry: CoScheduledEntry): void {
    let batch = this.coScheduled[ctx];
    if (batch === undefined) {
      const taken: CoScheduledEntry[] = (batch = this.coScheduled[ctx] = []);
      const sim = this.sim;
      sim.bottomHalf("co_schedule_bh", () => {
        this.coScheduled[ctx] = undefined; // the list is taken: a coroutine scheduled from now on schedules the bottom half again
        for (const w of taken) {
          w.host.wake(w.proc, w.token);
          if (w.proc.state !== "ready") continue; // interrupted meanwhile: a stale wake
          if (w.moveTo !== undefined) sim.moveToContext(w.proc, w.moveTo);
          sim.enterNow(w.proc);
        }
      }, undefined, ctx);
    }
    batch.push(entry);
  }

  /** A coroutine aio_co_schedule'd into `ctx` from another thread: the context must be alive; the trace says so. */
  private noteCoSchedule(ctx: AioContext, proc: ProcHandle): void {
    this.checkAlive(ctx, `aio_co_schedule of ${proc.name}`);
    this.sim.record("aio", "co-schedule", { context: ctx.id, proc: proc.name });
  }

  /**
   * aio_co_wake(co) of a parked coroutine, into `ctx`, the context it last
   * ran in: in that context it is woken and runs at once (from the loop) or
   * right after the running coroutine yields (from a coroutine); from
   * another thread it is aio_co_schedule'd there (`coSchedule`).
   */
  coWake(ctx: AioContext, host: OperationHost, proc: ProcHandle, token: number, fromCoroutine: boolean): void {
    if (this.any && this.current() !== ctx) {
      this.noteCoSchedule(ctx, proc);
      this.coSchedule(ctx.id, { host, proc, token, moveTo: undefined });
      return;
    }
    host.wake(proc, token);
    if (proc.state === "ready") this.coEnter(ctx, proc, fromCoroutine);
  }

  /**
   * aio_co_enter(ctx, co) for a process just made ready: in its own context
   * it runs at once (from the loop) or right after the running coroutine
   * yields (from a coroutine); from another context it stays a ready entry
   * of its own loop (aio_co_schedule). Returns which.
   */
  coEnter(ctx: AioContext, proc: ProcHandle, fromCoroutine: boolean): "entered" | "next" | "scheduled" {
    if (this.any && this.current() !== ctx) {
      this.noteCoSchedule(ctx, proc);
      return "scheduled";
    }
    if (fromCoroutine) {
      this.sim.runNext(proc);
      return "next";
    }
    this.sim.enterNow(proc);
    return "entered";
  }

  /**
   * aio_co_reschedule_self(to), from the running coroutine: a bottom half of
   * the current loop schedules it into `to`'s loop, and it stays yielded
   * until then (QEMU goes through the bottom half because the other thread
   * must not enter the coroutine before it has yielded here). Nothing to do
   * when already in `to`.
   *
   * From the main loop the bottom half runs in its next round, the round in
   * which a pending QMP reply goes out too (glib dispatches the main
   * AioContext's bottom halves, then the iohandler context of the QMP
   * dispatcher): the IOThread the coroutine goes to is woken only then, so
   * the reply usually comes first (golden iothread_job_nodes, 5 of 5 runs;
   * other recordings showed both orders), and which of the two comes first
   * stays a choice point.
   */
  *rescheduleSelf(to: AioContext): Process<void> {
    const from = this.current();
    if (from === to) return;
    const move = new Rescheduling(to);
    this.sim.bottomHalf(`aio_co_reschedule_self to ${to.name}`, () => {
      const { host, proc, token } = move;
      if (proc === undefined || proc.state !== "blocked") return; // interrupted meanwhile
      this.noteCoSchedule(to, proc);
      this.coSchedule(to.id, { host: host!, proc, token, moveTo: to.id });
    }, undefined, from.id);
    yield awaitOp(move);
  }

  // ---- the lock ----

  /** aio_context_acquire from the current thread (recursive). Fails loudly on a lock another thread holds: that thread would block, which the callers here never do inside a step. */
  acquire(ctx: AioContext): void {
    if (!this.any || ctx.isMain) return;
    const me = this.current();
    if (ctx.holder !== undefined && ctx.holder !== me) {
      throw new Error(`internal: thread of ${me.name} acquires the AioContext lock of ${ctx.name}, held by ${ctx.holder.name}`);
    }
    ctx.holder = me;
    ctx.depth++;
    this.sim.record("aio", "acquire", { context: ctx.id, by: me.name, depth: ctx.depth });
  }

  /** aio_context_release: at depth 0 the context's loop may run again. */
  release(ctx: AioContext): void {
    if (!this.any || ctx.isMain) return;
    if (ctx.depth <= 0) throw new Error(`internal: release of the AioContext lock of ${ctx.name}, not held`);
    ctx.depth--;
    this.sim.record("aio", "release", { context: ctx.id, depth: ctx.depth });
    if (ctx.depth === 0) {
      ctx.holder = undefined;
      this.sim.ungate(ctx.id);
    }
  }

  /**
   * Runs `body` with the current thread's hold on `ctx` let go (once), if it
   * holds it, and takes the lock back right after, without polling: the
   * IOThread, woken by what `body` did, may take the lock in between, or
   * wait for it until the current thread lets go again (a logged choice,
   * Scheduler.lockWindow; FIFO: it waits). QEMU 7.2's
   * bdrv_try_change_aio_context lets go of the old context its caller
   * holds around the commit that moves the nodes and ends their drained
   * sections, then takes it again.
   */
  withoutLock(ctx: AioContext, body: () => void): void {
    const me = this.current();
    if (!this.any || ctx.isMain || ctx === me || ctx.holder !== me || ctx.depth === 0) {
      body();
      return;
    }
    this.release(ctx);
    try {
      body();
      if (ctx.depth === 0) this.sim.lockWindow(ctx.id, `the thread of ${ctx.name} takes its AioContext lock before the ${me.isMain ? "main loop" : `thread of ${me.name}`} takes it back`);
    } finally {
      this.acquire(ctx);
    }
  }

  /** The kernel's question: may entries of context `id` run? A reason when they may not. */
  private gate(id: number): string | undefined {
    const ctx = this.byId[id];
    if (ctx.holder === undefined || ctx.holder === ctx) return undefined;
    return `the AioContext lock of ${ctx.name}, held ${ctx.depth} time${ctx.depth === 1 ? "" : "s"} by the ${ctx.holder.isMain ? "main loop" : `thread of ${ctx.holder.name}`}`;
  }

  // ---- AIO_WAIT_WHILE ----

  /**
   * AIO_WAIT_WHILE(ctx, cond): waits, in virtual time, until `why()` is
   * undefined. From the main loop on an IOThread's context whose lock the
   * caller holds, the lock is released once around each poll and taken
   * again after. Wake-ups come from `kick()`. With `kicks` false (a
   * historical profile) the main loop's poll is woken only by its own
   * loop's events: `kick` from an IOThread does not reach it.
   */
  *waitWhile(ctx: AioContext, what: string, why: () => string | undefined): Process<void> {
    const held = this.any && !ctx.isMain && ctx.holder === this.current() && this.current() !== ctx;
    while (why() !== undefined) {
      const w = new WaitKick(what, why);
      if (held) this.release(ctx);
      this.waiters.push(w);
      try {
        yield awaitOp(w);
      } finally {
        const i = this.waiters.indexOf(w);
        if (i >= 0) this.waiters.splice(i, 1);
        if (held) this.acquire(ctx);
      }
    }
  }

  /** aio_wait_kick: every poller whose condition now holds wakes and re-checks. */
  kick(): void {
    const list = this.waiters;
    for (let i = 0; i < list.length; ) {
      const w = list[i];
      if (w.why() === undefined) {
        list.splice(i, 1);
        w.host!.wake(w.proc!, w.token);
      } else {
        i++;
      }
    }
  }
}
