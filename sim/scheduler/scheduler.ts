import type { AioContexts } from "./aio-context.js";
import type { ChoiceLog } from "./choice-log.js";
import {
  Interrupted,
  Kind,
  Signal,
  type Effect,
  type Operation,
  type OperationHost,
  type Process,
  type ProcHandle,
  type ProcState,
  type SpawnOptions,
} from "./effects.js";
import { TraceHash } from "./hash.js";
import { SlotHeap } from "./heap.js";
import { Streams } from "./prng.js";
import { FifoStrategy } from "./strategies/fifo.js";
import { Divergence, type Strategy } from "./strategies/strategy.js";

/** One observable record: what the trace keeps and the hash covers. */
export interface TraceRecord {
  /** Virtual time in ns. */
  t: number;
  /** Who: "sched", a process name, a device, a job id… */
  src: string;
  kind: string;
  data?: Record<string, unknown>;
}

export interface SchedulerOptions {
  /** Root seed of every named PRNG stream (default 0). */
  seed?: number | string;
  /** Who decides at choice points (default FIFO). */
  strategy?: Strategy;
  /** Keep the trace records (the hash is computed either way). */
  trace?: boolean;
  /** Livelock guard: the run stops after this many process resumptions and callbacks (default 50,000,000). */
  maxSteps?: number;
  /** Livelock guard: the run stops before any event later than this virtual time (default: none). */
  maxTimeNs?: number;
  /** Zeno guard: the run stops after this many steps without virtual time advancing (default 2,000,000). */
  maxInstantSteps?: number;
  /**
   * Called between loop steps every `everySteps` steps, for a view of a long
   * run from outside (the CLI's progress line). It only looks: it must not
   * spawn, wake or schedule anything, so the run is the same with or without it.
   */
  observer?: { everySteps: number; observe(nowNs: number, steps: number): void };
}

export type Outcome =
  | { kind: "ok" }
  | { kind: "failure"; timeNs: number; process: string; error: string; stack?: string }
  | { kind: "deadlock"; timeNs: number; waiting: { process: string; on: string }[] }
  | { kind: "step-budget"; timeNs: number; maxSteps: number }
  | { kind: "time-budget"; timeNs: number; maxTimeNs: number; nextEventNs: number }
  /** Virtual time stood still for `steps` steps: `spinning` ran most in the last of them. */
  | { kind: "zeno"; timeNs: number; steps: number; spinning: string[] }
  | { kind: "divergence"; timeNs: number; index: number; error: string };

export interface RunResult {
  outcome: Outcome;
  endTimeNs: number;
  steps: number;
  choices: ChoiceLog;
  /** 16 hex digits over every step and record, identical for identical runs on any machine. */
  hash: string;
  trace?: TraceRecord[];
}

/** What `runUnhashed()` gives: a run whose trace hash was not computed. */
export type UnhashedRunResult = Omit<RunResult, "hash"> & {
  /** Not computed: the run was made by runUnhashed(). */
  hash: undefined;
};

/** A callback scheduled at a virtual time (an I/O completion, a timer). */
export interface Timer {
  readonly label: string;
  /** Still pending. */
  readonly pending: boolean;
}

class Proc implements ProcHandle {
  state: ProcState = "ready";
  result: unknown = undefined;
  /** Incremented each time the process blocks; wakes carrying an older token are stale. */
  token = 0;
  resumeThrow = false;
  resumeValue: unknown = undefined;
  blockedOn: Effect | undefined = undefined;
  joiners: { proc: Proc; token: number }[] | undefined = undefined;
  /** Woken by a coroutine of its own context (runNext): it runs as soon as that one yields, before anything else. */
  wokenNext = false;
  /** Ready through `nextRound`: nothing made ready after it may run before it. */
  roundBarrier = false;
  /** Due from a coSleep: a timer of its context's loop (see Callback.loopOrdered). */
  loopOrdered = false;
  /** When it began a coSleep (-1: not in one), and how many timers its context armed at that instant before: see Scheduler.wakePhase. */
  coSleptNs = -1;
  coSleepSeq = 0;
  constructor(
    readonly id: number,
    readonly name: string,
    readonly slot: number,
    readonly gen: Process<unknown>,
    readonly daemon: boolean,
    readonly owner: number,
    /** The AioContext (event loop) it runs in: 0 is the main loop (see aio-context.ts). */
    public context: number,
    /** One of QEMU's coroutines (a job, its tasks), not an actor outside QEMU: see `orderedLoop`. */
    readonly coroutine: boolean,
  ) {}
}

class Callback implements Timer {
  pending = true;
  /**
   * For a bottom half: the pass of its context's bottom-half list it waits
   * for (-1 for a timer). See Scheduler.bottomHalf.
   */
  bottomHalfPass = -1;
  /** A process parked until this bottom half (and others) has run: see afterBottomHalves. */
  bottomHalfWaiter: BottomHalfWaiter | undefined = undefined;
  /**
   * A bottom half or timer its own AioContext's loop scheduled: that loop
   * runs these one at a time in a definite order (the ready list's), so of
   * those ready at once only the first of each context is a candidate at a
   * choice point.
   */
  loopOrdered = false;
  /** Never set on a callback (only a process waits for a round); here so both kinds of entry have the same fields. */
  readonly roundBarrier = false;
  /** When it was armed, and how many timers its context armed at that instant before (loop-ordered timers only): see Scheduler.wakePhase. */
  armedNs = 0;
  armSeq = 0;
  constructor(readonly label: string, readonly fn: () => void, readonly owner: number, readonly slot: number, readonly context: number) {}
}

type Entry = Proc | Callback;

/** A process parked by afterBottomHalves: how many of its bottom halves have not run yet. */
interface BottomHalfWaiter {
  readonly proc: Proc;
  readonly token: number;
  left: number;
}

const DEFAULT_MAX_STEPS = 50_000_000;
/** Timers of one arming instant that one run of a woken loop fires, at most (see Scheduler.wakePhase). */
const TIMERS_PER_RUN = 50;
const DEFAULT_MAX_INSTANT_STEPS = 2_000_000;
/** Steps watched after the Zeno bound to name the processes that spin. */
const ZENO_SAMPLE = 1_000;
/** The last virtual time that is an exact integer number of ns (~104 days). */
const MAX_TIME_NS = Number.MAX_SAFE_INTEGER;

/**
 * Unwinds nested polls once the run has an outcome (a deadlock inside a poll,
 * a budget, a divergence): run() catches it. Code that catches everything
 * must rethrow it, as it must Interrupted.
 */
export class PollAborted extends Error {
  override name = "PollAborted";
  constructor() {
    super("the run ended inside a nested poll");
  }
}

/** A strategy broke its contract: a bug in the harness, not in the simulated system, so it escapes run(). */
class StrategyError extends Error {
  override name = "StrategyError";
}

/**
 * The kernel: a virtual clock, an event queue and the processes it steps.
 *
 * Entries due at the current instant sit in a FIFO "ready" list; later ones in
 * a heap ordered by (time, sequence). When two or more entries are ready at
 * once, or a process calls `choose`, the strategy decides and the decision is
 * logged. Nothing here reads the wall clock or an unseeded random source.
 */
export class Scheduler implements OperationHost {
  /** Current virtual time, integer ns. */
  now = 0;
  readonly streams: Streams;
  readonly strategy: Strategy;

  private readonly heap = new SlotHeap();
  private readonly slots: (Entry | undefined)[] = [];
  private readonly freeSlots: number[] = [];
  /**
   * Slots due at the current instant, in FIFO order, at ready[readyHead..readyTail).
   * Never truncated (setting `length` drops the backing store, and the next
   * pushes reallocate it): emptied by resetting both indices.
   */
  private readonly ready: number[] = [];
  private readyHead = 0;
  private readyTail = 0;
  private seq = 0;
  private nextProcId = 1;
  private liveNonDaemon = 0;
  private spawnedNonDaemon = 0;
  private readonly procs: Proc[] = [];
  private current: Proc | undefined = undefined;
  private steps = 0;
  private readonly maxSteps: number;
  private readonly maxTimeNs: number;
  private readonly maxInstantSteps: number;
  private readonly observer: SchedulerOptions["observer"];
  /** The step count at which the observer looks next (never without one). */
  private nextObservation = Infinity;
  /** The step count when virtual time last advanced. */
  private instantStart = 0;
  /** Steps per process name once the Zeno bound is reached. */
  private spinCounts: Map<string, number> | undefined = undefined;
  private readonly choices: ChoiceLog = [];
  /** Undefined once runUnhashed() turned hashing off. */
  private hasher: TraceHash | undefined = new TraceHash();
  private readonly trace: TraceRecord[] | undefined;
  private outcome: Outcome | undefined = undefined;
  private ran = false;
  /** Set by advanceTo: the run stops at this time instead of ending. */
  private horizon: number | undefined = undefined;
  private readonly ownerOf = (i: number): number => this.ownerOfSlot(this.ready[this.readyHead + i]);
  /** The context of the callback being fired (0 outside callbacks). */
  private firingContext = 0;
  /**
   * Whether entries of a context may not run now (its AioContext lock is held
   * by another thread): set by aio-context.ts; entries of context 0 never ask.
   */
  private contextGate: ((context: number) => string | undefined) | undefined = undefined;
  /** Slots that came up while their context was gated, in arrival order. */
  private readonly gated: number[] = [];
  /**
   * This run's AioContexts, made on first use by `AioContexts.of`: a field,
   * not a module-level WeakMap entry (V8's young-generation collections keep
   * a WeakMap's values alive, and this one holds the whole world).
   */
  aioContexts: AioContexts | undefined = undefined;
  /** The last write id a device of this run stamped (sim/disk/device.ts; ids are unique per scheduler): a field for the same reason. */
  lastWriteId = 0;

  constructor(opts: SchedulerOptions = {}) {
    this.streams = new Streams(opts.seed ?? 0);
    this.strategy = opts.strategy ?? new FifoStrategy();
    this.trace = opts.trace ? [] : undefined;
    this.maxSteps = opts.maxSteps ?? DEFAULT_MAX_STEPS;
    this.maxTimeNs = opts.maxTimeNs ?? Infinity;
    this.maxInstantSteps = opts.maxInstantSteps ?? DEFAULT_MAX_INSTANT_STEPS;
    this.observer = opts.observer;
    if (this.observer) {
      if (!(this.observer.everySteps >= 1)) throw new RangeError(`observer.everySteps must be at least 1, got ${this.observer.everySteps}`);
      this.nextObservation = this.observer.everySteps;
    }
  }

  // ---- API for the layers above ----

  /** The process being stepped, if any (undefined inside callbacks). */
  get running(): ProcHandle | undefined {
    return this.current;
  }

  /**
   * Starts a process at the current instant.
   *
   * Bodies made in every run come from module-level generator functions or
   * class methods, not from a `function*` written inside a function: V8
   * gives each generator closure an initial map of its own on its first
   * call, and that map (in the old generation) keeps the closure and all it
   * captures — a whole simulated world — alive through every young-generation
   * collection until the next full one. (Fuzz runs left ~45 KB each that way.)
   */
  spawn(name: string, body: Process<any>, opts: SpawnOptions = {}): ProcHandle {
    if (!body || typeof (body as Process).next !== "function") {
      throw new TypeError(`spawn("${name}"): the body must be a generator object (call the generator function)`);
    }
    const slot = this.allocSlot();
    const id = this.nextProcId++;
    const p = new Proc(id, name, slot, body, !!opts.daemon, opts.owner ?? id, opts.context ?? this.currentContext, opts.coroutine ?? this.current?.coroutine ?? false);
    this.slots[slot] = p;
    this.procs.push(p);
    if (!p.daemon) {
      this.liveNonDaemon++;
      this.spawnedNonDaemon++;
    }
    if (p.coroutine && this.orderedLoop === p.context) p.loopOrdered = true; // aio_co_enter from a coroutine: its co_queue_wakeup
    this.pushReady(slot);
    this.record("sched", "spawn", { id, name });
    return p;
  }

  /**
   * The AioContext whose loop runs the code now: the running process's, or
   * the firing callback's; 0 (the main loop) otherwise.
   */
  get currentContext(): number {
    return this.current !== undefined ? this.current.context : this.firingContext;
  }

  /**
   * Installs the test that holds back entries of a gated context (a reason
   * string, or undefined to let it run). Held-back entries wait until
   * `ungate(context)`.
   */
  setContextGate(gate: (context: number) => string | undefined): void {
    this.contextGate = gate;
  }

  /** Moves a process to another AioContext: it runs in that loop from its next step. */
  moveToContext(proc: ProcHandle, context: number): void {
    (proc as Proc).context = context;
  }

  /** Puts the entries held back for `context` back in the ready list, in arrival order. */
  ungate(context: number): void {
    const g = this.gated;
    for (let i = 0; i < g.length; ) {
      if (this.slots[g[i]]!.context === context) {
        this.pushReady(g[i]);
        g.splice(i, 1);
      } else {
        i++;
      }
    }
  }

  /** Runs `fn` at absolute virtual time `timeNs` (>= now), as its own step, in `context` (default: the current one). */
  at(timeNs: number, label: string, fn: () => void, owner?: number, context?: number): Timer {
    return this.schedule(timeNs, label, fn, owner, context ?? this.currentContext, false);
  }

  private schedule(timeNs: number, label: string, fn: () => void, owner: number | undefined, context: number, loopOrdered: boolean, tie?: number): Timer {
    if (!Number.isSafeInteger(timeNs) || timeNs < this.now) {
      throw new RangeError(`timer "${label}": time ${timeNs} ns must be an integer >= now (${this.now} ns)`);
    }
    const slot = this.allocSlot();
    const cb = new Callback(label, fn, owner ?? this.current?.owner ?? 0, slot, context);
    cb.loopOrdered = loopOrdered;
    cb.armedNs = this.now;
    if (loopOrdered) cb.armSeq = this.armTimer(context);
    this.slots[slot] = cb;
    if (timeNs === this.now) this.pushReady(slot);
    else this.heap.push(slot, timeNs, tie ?? this.seq++);
    return cb;
  }

  /**
   * A timer in the timer list of AioContext `context` (default: the current
   * one), due at `timeNs`: as `at`, except that when the loop arms a timer
   * in its own list, its timers and bottom halves ready at once run in the
   * ready list's order, with no choice point between them (QEMU 7.2
   * timer_mod_ns_locked keeps a list sorted by deadline, a new timer after
   * those with an equal one, and timerlist_run_timers fires them in that
   * order). A timer armed from another thread stays a free entry: when it
   * lands in that list is the other thread's timing.
   */
  timerAt(timeNs: number, label: string, fn: () => void, context?: number, tie?: number): Timer {
    const ctx = context ?? this.currentContext;
    return this.schedule(timeNs, label, fn, undefined, ctx, ctx === this.currentContext, tie);
  }

  /**
   * A place among the timers due at one instant, taken now, for a deadline
   * computed from this moment but armed later (timerAt's `tie`): that timer
   * fires among those due with it as if armed now. QEMU's clock moves on
   * through what is one instant here, so a deadline is as early as the
   * moment it was derived from (a speed limit's slice that began before
   * another job's: goldens/backup_limit_slice_order_after_resume).
   */
  tieToken(): number {
    return this.seq++;
  }

  /**
   * Runs `fn` at the current instant as a bottom half of AioContext
   * `context` (default: the current one), in QEMU 7.2's order (util/async.c):
   * aio_bh_enqueue pushes a bottom half on the head of its context's list,
   * and aio_bh_poll, at the start of each pass of the loop, takes the whole
   * list as one slice and runs it from the head. So the bottom halves
   * scheduled between two passes run newest first, whoever scheduled them
   * (two jobs whose coroutines end in one pass: the later one's job_exit
   * runs first; golden txn_backups_exit_newest_first); one scheduled while
   * a slice runs waits for the next pass, after the slice. A nested poll's
   * aio_bh_poll goes on with the slice being run first (bh_slice_list is a
   * queue of slices), then takes the list: here the slice's bottom halves
   * sit ahead in the ready list, and the next ones behind them.
   *
   * In the ready list: a new bottom half goes right before the first one of
   * its context still waiting for the same pass (the newest), else at the
   * tail; the pass is taken (bhPass moves on) when one of its bottom halves
   * runs. A bottom half its own context's loop schedules runs in that order
   * whatever the strategy: one loop dispatches its bottom halves one after
   * another (loopOrdered). One scheduled from another thread (an IOThread's
   * job exit into the main loop) goes into the list the same way, but lands
   * when that thread gets there: a free entry.
   */
  bottomHalf(label: string, fn: () => void, owner?: number, context?: number): Timer {
    const slot = this.allocSlot();
    const ctx = context ?? this.currentContext;
    const cb = new Callback(label, fn, owner ?? this.current?.owner ?? 0, slot, ctx);
    const pass = this.bhPass[ctx] ?? 0;
    cb.bottomHalfPass = pass;
    cb.loopOrdered = ctx === this.currentContext;
    this.slots[slot] = cb;
    const r = this.ready;
    let i = this.readyHead;
    for (; i < this.readyTail; i++) {
      const e = this.slots[r[i]]!;
      if (e.context === ctx && (e as Callback).bottomHalfPass === pass) break;
    }
    if (i === this.readyTail) this.pushReady(slot);
    else {
      r[this.readyTail] = slot; // grow first: copyWithin never lengthens an array
      r.copyWithin(i + 1, i, this.readyTail);
      r[i] = slot;
      this.readyTail++;
      if (cb.loopOrdered) this.readyFlagged++;
    }
    return cb;
  }

  /**
   * Per AioContext: the pass of its bottom-half list that new bottom halves
   * join (QEMU's ctx->bh_list, not yet taken by aio_bh_poll).
   */
  private readonly bhPass: number[] = [];

  /** Per AioContext: the last moment something outside its loop woke it (loopWoken). */
  private readonly lastWakeNs: number[] = [];

  /**
   * Something outside the loop of AioContext `context` woke it: a QMP
   * command reaching the monitor, an I/O completion of the thread pool,
   * another thread's timer. QEMU's loop then computes its next timeout
   * anew, from that moment (see wakePhase).
   */
  loopWoken(context = 0): void {
    this.lastWakeNs[context] = this.now;
  }

  /**
   * A timer of the loop of `context`, armed at `armedNs` after `armSeq`
   * others of that loop at that instant, fires now. QEMU's main loop sleeps
   * until its first timer's deadline rounded up to whole milliseconds from
   * the moment it went to sleep (util/async.c aio_ctx_prepare:
   * qemu_timeout_ns_to_ms), then runs every timer expired by then, in one
   * run. Timers armed at one instant and due at one instant so fire in one
   * run, one pass of bottom halves after it (two jobs' last reads:
   * goldens/txn_backups_exit_newest_first) — even when something woke the
   * loop in between (golden txn_backups_exit_after_query), as long as the
   * CPU time spent arming them is small against the millisecond. After such
   * a wake the wake's phase is arbitrary, and timers armed long after the
   * first (two jobs' 64 reads each: golden cancel_two_on_one_source) most
   * likely fire in a later run: modelled as a new pass of bottom halves
   * every TIMERS_PER_RUN timers of one arming instant (about 10 us of CPU a
   * request: half a millisecond). Without a wake in between there is no
   * such split: the timeout computed after the last of them covers all.
   */
  private wakePhase(context: number, armedNs: number, armSeq: number): void {
    const woke = this.lastWakeNs[context];
    if (woke === undefined || !(armedNs < woke && woke < this.now)) return;
    const run = (this.timerRuns[context] ??= { firedNs: -1, armedNs: -1, first: 0 });
    if (run.firedNs !== this.now || run.armedNs !== armedNs) {
      run.firedNs = this.now;
      run.armedNs = armedNs;
      run.first = armSeq;
    } else if (armSeq - run.first >= TIMERS_PER_RUN) {
      run.first = armSeq;
      this.bhPass[context] = (this.bhPass[context] ?? 0) + 1;
    }
  }

  /** Per AioContext: the run of its timers being fired (wakePhase). */
  private readonly timerRuns: ({ firedNs: number; armedNs: number; first: number } | undefined)[] = [];

  /** Per AioContext: the instant it last armed a timer of its loop, and how many it armed then. */
  private readonly armed: ({ ns: number; count: number } | undefined)[] = [];

  /** Counts a timer the loop of `context` arms now; returns how many it armed at this instant before. */
  private armTimer(context: number): number {
    const a = (this.armed[context] ??= { ns: -1, count: 0 });
    if (a.ns !== this.now) {
      a.ns = this.now;
      a.count = 0;
    }
    return a.count++;
  }

  /** The bottom halves of AioContext `context` that have not run yet. */
  pendingBottomHalves(context = 0): Timer[] {
    const out: Timer[] = [];
    for (let i = this.readyHead; i < this.readyTail; i++) {
      const e = this.slots[this.ready[i]];
      if (e instanceof Callback && e.bottomHalfPass >= 0 && e.context === context) out.push(e);
    }
    for (const slot of this.gated) {
      const e = this.slots[slot];
      if (e instanceof Callback && e.bottomHalfPass >= 0 && e.context === context) out.push(e);
    }
    return out;
  }

  /**
   * An operation that parks the process until every one of `bhs` (bottom
   * halves from `pendingBottomHalves`) has run or was cancelled; right after
   * the last of them has run, the process is entered at once, in the same
   * step, so it comes before anything those bottom halves scheduled. This
   * is a coroutine woken into a context the main loop dispatches right after
   * its own bottom halves of one round (QMP's dispatcher in the iohandler
   * context): no strategy can put it before them, or a bottom half the
   * last of them scheduled before it; an IOThread's work ready by then may
   * go first (a logged choice, see wakeWaiter). (Left out: QEMU's rounds. A bottom
   * half that an earlier one of them scheduled belongs to the next round
   * in QEMU, but a strategy other than FIFO may run it before the process.)
   */
  afterBottomHalves(bhs: readonly Timer[]): Operation {
    const sched = this;
    return {
      start(_host: OperationHost, proc: ProcHandle, token: number): void {
        const waiter: BottomHalfWaiter = { proc: proc as Proc, token, left: 0 };
        for (const t of bhs) {
          const cb = t as Callback;
          if (!cb.pending) continue;
          if (cb.bottomHalfWaiter) throw new Error(`internal: bottom half "${cb.label}" already has a waiter`);
          cb.bottomHalfWaiter = waiter;
          waiter.left++;
        }
        if (waiter.left === 0) sched.wakeWaiter(waiter, false);
      },
      describe(): string {
        return `bottom halves ${bhs.map((t) => `"${t.label}"`).join(", ")} to run`;
      },
    };
  }

  /**
   * Makes a bottom-half waiter ready (first in the list), and with `enter`,
   * runs it at once. Work of other AioContexts (IOThreads) ready by then
   * races with it, as that thread goes on while the main loop moves to the
   * waiter's context: a logged choice lets it run first, nested here as in
   * a nested poll.
   */
  private wakeWaiter(w: BottomHalfWaiter, enter: boolean): void {
    const p = w.proc;
    if (p.token !== w.token || p.state !== "blocked") return;
    p.resumeThrow = false;
    p.resumeValue = undefined;
    p.state = "ready";
    this.pushReadyFront(p.slot);
    if (!enter) return;
    // Coroutines the last bottom half's coroutine woke (runNext) ran inside that bottom half in QEMU.
    for (let i = this.readyHead; i < this.readyTail; i++) {
      const e = this.slots[this.ready[i]];
      if (e instanceof Proc && e !== p && e.wokenNext) {
        this.runReadyNow(e);
        i = this.readyHead - 1; // the list changed: look again from its head
      }
    }
    const others: Entry[] = [];
    for (let i = this.readyHead; i < this.readyTail; i++) {
      const e = this.slots[this.ready[i]]!;
      if (e.context !== p.context && (this.contextGate === undefined || this.contextGate(e.context) === undefined)) others.push(e);
    }
    if (others.length > 0) {
      if (this.chooseLabelled("sched", "another thread before the bottom halves' waiter", 2) === 1) for (const e of others) this.runReadyNow(e);
    }
    if (p.state === "ready") this.enterNow(p);
  }

  /**
   * The current thread has let go of the lock of AioContext `context` and
   * takes it again without polling in between. The IOThread, woken
   * meanwhile, may take the lock in that window: QEMU's threads run in
   * parallel, blocksim's steps do not. When that loop has work ready (not
   * held back), a logged choice: the current thread goes on first (pick 0,
   * FIFO) and the IOThread's work waits for the lock, or the IOThread goes
   * first and runs everything it has ready by now, nested here, until it has
   * nothing more at this instant. `label` names the choice.
   */
  lockWindow(context: number, label: string): void {
    const tried = new Set<Entry>(); // one that cannot run here (on the stack already) is passed over
    const readyOf = (): Entry | undefined => {
      if (this.contextGate !== undefined && this.contextGate(context) !== undefined) return undefined;
      for (let i = this.readyHead; i < this.readyTail; i++) {
        const e = this.slots[this.ready[i]]!;
        if (e.context === context && e !== this.current && !tried.has(e)) return e;
      }
      return undefined;
    };
    if (readyOf() === undefined) return;
    if (this.chooseLabelled("sched", label, 2) !== 1) return;
    for (let e = readyOf(); e !== undefined; e = readyOf()) {
      tried.add(e);
      this.runReadyNow(e);
    }
  }

  /** Takes a ready entry out of the list and runs it now, nested in the current step (if it is still ready). */
  private runReadyNow(e: Entry): void {
    if (this.slots[e.slot] !== e) return;
    if (e instanceof Proc) {
      this.enterNow(e);
      return;
    }
    if (!e.pending) return;
    this.removeReady(e.slot);
    this.steps++;
    this.hasher?.int(this.now);
    this.hasher?.word(-e.owner - 1);
    const outer = this.current;
    this.current = undefined;
    try {
      this.fire(e);
    } finally {
      this.current = outer;
    }
  }

  /** Runs `fn` after `delayNs` ns of virtual time. */
  after(delayNs: number, label: string, fn: () => void, owner?: number): Timer {
    checkDelay(delayNs, `timer "${label}"`);
    return this.at(this.now + delayNs, label, fn, owner);
  }

  /** Cancels a pending timer; returns whether it was pending. */
  cancel(timer: Timer): boolean {
    const cb = timer as Callback;
    if (!cb.pending) return false;
    cb.pending = false;
    if (this.heap.has(cb.slot)) this.heap.remove(cb.slot);
    else if (this.gated.length > 0 && this.gated.includes(cb.slot)) this.gated.splice(this.gated.indexOf(cb.slot), 1);
    else this.removeReady(cb.slot);
    this.releaseSlot(cb.slot);
    const w = cb.bottomHalfWaiter;
    if (w) {
      cb.bottomHalfWaiter = undefined;
      if (--w.left === 0) this.wakeWaiter(w, false);
    }
    return true;
  }

  /**
   * Wakes every process waiting on `signal` with `value`, as the `notify`
   * effect does, for code that runs outside a process (timer callbacks,
   * main-loop work). Returns how many woke.
   */
  notify<T>(signal: Signal<T>, value?: T): number {
    const waiters = signal.waiters.splice(0);
    let woken = 0;
    for (const w of waiters) {
      const wp = w.proc as Proc;
      if (wp.token === w.token && wp.state === "blocked") {
        wp.resumeValue = value;
        this.makeReady(wp);
        woken++;
      }
    }
    return woken;
  }

  /**
   * Runs a process that was just made ready right now, nested inside the
   * current step, until it blocks or ends, then returns to the caller. This
   * is QEMU's aio_co_enter from the main loop: the coroutine runs at once,
   * up to its next yield. Returns whether it ran (it must be ready).
   */
  enterNow(proc: ProcHandle): boolean {
    const p = proc as Proc;
    if (p.state !== "ready" || this.current === p) return false;
    this.removeReady(p.slot);
    const outer = this.current;
    this.hasher?.word(0x3e7e);
    this.hasher?.word(p.id);
    this.steps++;
    const outerOrdered = this.orderedLoop, outerWakeups = this.coWakeups;
    this.step(p);
    this.orderedLoop = outerOrdered;
    this.coWakeups = outerWakeups;
    this.current = outer;
    return true;
  }

  /**
   * A nested event loop (QEMU's AIO_WAIT_WHILE around aio_poll): runs ready
   * entries and timers, advancing virtual time as needed, right here inside
   * the current step, until `cond()` is false; then returns to the caller,
   * who goes on with its step. Whatever is due runs inside: callbacks, and
   * processes other than the ones whose steps are on the stack (the caller's
   * own process, if any, stays running and cannot be woken meanwhile).
   * It checks `cond()` between rounds, as aio_poll does: a round runs as
   * many entries as were ready when it began (all due at the next event
   * time, if none was ready), so work that became ready together runs
   * together even if the first of it already ended the wait.
   * Same-instant choices are logged as at top level. If the run ends inside
   * (the poll can never end: a deadlock; a budget; a divergence) the poll
   * throws PollAborted up to run(). Returns at once if `cond()` is false.
   * With `onKick`, after the first check `cond()` is looked at again only
   * once someone called `kickPolls()` (QEMU's aio_wait_kick and the wake-ups
   * of a drain's poll): a condition that changes without a kick stays unseen.
   */
  pollWhile(what: string, cond: () => boolean, opts: { onKick?: boolean } = {}): void {
    if (!cond()) return;
    if (this.outcome !== undefined) throw new PollAborted();
    // The poll is the main thread's aio_poll(qemu_get_aio_context()): main-loop entries run inside it, and an
    // IOThread's entries due meanwhile run too — that thread goes on concurrently, the same order either way.
    // An IOThread polling its own loop would put the main loop's entries on its stack instead: not modelled.
    const from = this.currentContext;
    if (from !== 0) throw new Error(`internal: nested poll "${what}" from the event loop of AioContext ${from} (an IOThread): only the main loop's polls are modelled`);
    const outer = this.current;
    this.current = undefined; // the poll is the main loop: its callbacks run outside any process
    this.polls.push(what);
    this.hasher?.word(0x9011);
    this.record("sched", "poll", { what, depth: this.polls.length });
    try {
      this.loop(cond, opts.onKick === true);
    } finally {
      this.polls.pop();
      this.current = outer;
    }
    this.record("sched", "poll-end", { what, depth: this.polls.length + 1 });
    if (this.polls.length === 0 && this.pollDone.waiters.length > 0) this.notify(this.pollDone);
  }

  /** Tells every nested poll waiting for a kick to look at its condition again after this round. */
  kickPolls(): void {
    this.kickSeq++;
  }

  private kickSeq = 0;

  /** How many nested polls are running (0 at top level). */
  get pollDepth(): number {
    return this.polls.length;
  }

  /** Notified when the outermost nested poll returns: who must wait for the top level of the main loop waits on it. */
  readonly pollDone = new Signal<void>("the main loop's nested polls to end");

  /**
   * Moves a ready process to the front of the ready list, and it runs next,
   * with no choice point: QEMU 7.2 aio_co_wake from a coroutine of the same
   * context queues the woken one on the waker's co_queue_wakeup, which
   * qemu_aio_coroutine_enter enters as soon as the waker yields or ends,
   * inside the same dispatch (no bottom half, fd handler or other coroutine
   * in between; nor the QMP reply waiting for that bottom half, see
   * wakeWaiter).
   */
  runNext(proc: ProcHandle): void {
    const p = proc as Proc;
    if (p.state !== "ready") return;
    this.removeReady(p.slot);
    this.pushReadyFront(p.slot);
    p.wokenNext = true;
  }

  /** Resumes a process blocked on an Operation with `value` (ignored if the token is stale). */
  wake(proc: ProcHandle, token: number, value?: unknown): void {
    const p = proc as Proc;
    if (p.token !== token || p.state !== "blocked") return;
    p.resumeThrow = false;
    p.resumeValue = value;
    this.makeReady(p);
  }

  /**
   * Resumes a process blocked on an Operation with `value`, from a callback
   * of the loop (an I/O completion of the thread pool): a coroutine of the
   * callback's context is entered at once, up to its next yield, as QEMU
   * 7.2's thread_pool_completion_bh calls the request's callback, whose
   * aio_co_wake enters the coroutine there (util/thread-pool.c
   * thread_pool_co_cb); anything else is made ready, as wake() does.
   */
  wakeEnter(proc: ProcHandle, token: number, value?: unknown): void {
    const p = proc as Proc;
    if (p.token !== token || p.state !== "blocked") return;
    this.wake(proc, token, value);
    if (this.current === undefined && p.coroutine && p.context === this.firingContext && (p.state as ProcState) === "ready") this.enterNow(p);
  }

  /** Resumes a process blocked on an Operation by throwing `error` into it. */
  wakeThrow(proc: ProcHandle, token: number, error: unknown): void {
    const p = proc as Proc;
    if (p.token !== token || p.state !== "blocked") return;
    p.resumeThrow = true;
    p.resumeValue = error;
    this.makeReady(p);
  }

  /** How many records were made so far (the index the next one gets). */
  records = 0;

  /**
   * Adds an observable record: hashed (unless the run is unhashed), kept when
   * tracing. `data` must be plain JSON. `cause` is what a `failure` record is
   * about (the value the process threw), for whoever wraps this method to
   * watch records (the checker): neither hashed nor traced.
   */
  record(src: string, kind: string, data?: Record<string, unknown>, _cause?: unknown): void {
    this.records++;
    const h = this.hasher;
    if (h !== undefined) {
      h.word(0x7ec0);
      h.int(this.now);
      h.str(src);
      h.str(kind);
      if (data !== undefined) h.value(data);
    }
    if (this.trace) this.trace.push(data === undefined ? { t: this.now, src, kind } : { t: this.now, src, kind, data });
  }

  /** Whether trace records are being kept (so callers can skip building costly data). */
  get tracing(): boolean {
    return this.trace !== undefined;
  }

  /**
   * How many entries the trace holds so far (0 when not tracing): the index
   * the next one gets. Not `records`: the trace also holds the same-instant
   * choice entries, which are not records. Hashed or not, it costs nothing.
   */
  get traceLength(): number {
    return this.trace === undefined ? 0 : this.trace.length;
  }

  /** Every process spawned so far, in spawn order. */
  processes(): readonly ProcHandle[] {
    return this.procs;
  }

  /** What a blocked process waits for, as a deadlock report says it; undefined if it is not blocked. */
  waitingOn(proc: ProcHandle): string | undefined {
    const p = proc as Proc;
    return p.state === "blocked" ? describeBlock(p.blockedOn) : undefined;
  }

  /** Steps the simulation until it ends; never throws for a process's failure. */
  run(): RunResult {
    if (this.ran) throw new Error("Scheduler.run() may be called only once; make a new Scheduler to run again");
    this.ran = true;
    this.loopCatchingDivergence();
    return this.result();
  }

  /**
   * Like run(), without computing the trace hash (hashing is ~7 % of a fuzz
   * run): for runs whose hash nobody reads, such as a fuzz campaign's passing
   * runs (a failing case is run again, hashed, for its replay file).
   * Everything else — outcome, steps, choices, records, trace — is the same.
   */
  runUnhashed(): UnhashedRunResult {
    if (this.ran) throw new Error("Scheduler.runUnhashed() may be called only once, and not after run() or advanceTo()");
    this.ran = true;
    this.hasher = undefined;
    this.loopCatchingDivergence();
    return this.resultWith(undefined);
  }

  /**
   * Steps every entry due at or before `timeNs`, then moves the clock to
   * `timeNs`. For a simulation driven from outside (a live QMP server), which
   * spawns processes between calls: an empty queue is not a deadlock, and the
   * run does not end when its processes do. Returns the outcome once the run
   * has stopped (failure, budget, divergence), else undefined.
   */
  advanceTo(timeNs: number): Outcome | undefined {
    if (this.ran && this.horizon === undefined) throw new Error("Scheduler.advanceTo() cannot follow run()");
    if (!Number.isSafeInteger(timeNs) || timeNs < this.now) throw new RangeError(`advanceTo(${timeNs}): the time must be an integer >= now (${this.now} ns)`);
    this.ran = true;
    this.horizon = timeNs;
    this.loopCatchingDivergence();
    if (this.outcome === undefined && this.now < timeNs) this.now = timeNs;
    return this.outcome;
  }

  /** When the next queued entry is due (now if one is ready), or undefined when nothing is queued. */
  nextEventNs(): number | undefined {
    if (this.readyTail > this.readyHead || this.settling.length > 0) return this.now;
    return this.heap.size > 0 ? this.heap.peekTime() : undefined;
  }

  /** What the run gave so far: outcome (ok while it goes on), time, steps, choices, hash, trace. */
  result(): RunResult {
    if (this.hasher === undefined) throw new Error("Scheduler.result(): this run is unhashed (runUnhashed), it has no trace hash");
    return this.resultWith(this.hasher.hex());
  }

  private resultWith<H extends string | undefined>(hash: H): Omit<RunResult, "hash"> & { hash: H } {
    return {
      outcome: this.outcome ?? { kind: "ok" },
      endTimeNs: this.now,
      steps: this.steps,
      choices: this.choices,
      hash,
      ...(this.trace ? { trace: this.trace } : {}),
    };
  }

  // ---- the loop ----

  private loopCatchingDivergence(): void {
    try {
      this.loop();
    } catch (e) {
      if (e instanceof PollAborted) {
        // the outcome is set; the nested polls are unwound
      } else if (e instanceof Divergence) {
        if (this.outcome === undefined) this.outcome = { kind: "divergence", timeNs: this.now, index: e.index, error: e.message };
      } else throw e;
    }
  }

  /**
   * The event loop. At top level (`until` undefined) it runs until the
   * simulation ends (or, driven from outside, up to the horizon). Nested
   * (`pollWhile`) it runs while `until()` holds and then returns to its
   * caller; there it never ends the run for lack of live processes, ignores
   * the horizon (a nested poll is synchronous), leaves settling processes for
   * the top level (the instant is not quiet while someone polls), and ends
   * the run by throwing PollAborted when it would otherwise return with an
   * outcome.
   */
  private loop(until?: () => boolean, onKick = false): void {
    const heap = this.heap;
    const hasher = this.hasher;
    let round = 0; // nested only: entries left in the current round (-1: not sized yet)
    let seenKick = this.kickSeq - 1; // nested with onKick: the kicks seen when the condition was last checked (the first check is due)
    for (;;) {
      if (this.outcome !== undefined) {
        if (until !== undefined) throw new PollAborted();
        return;
      }
      if (until !== undefined && round === 0) {
        if (!onKick || this.kickSeq !== seenKick) {
          seenKick = this.kickSeq;
          if (!until()) return;
        }
        round = -1; // a new round: sized when its first entry is taken
      }
      let slot: number;
      const n = this.readyTail - this.readyHead;
      if (n === 0) {
        if (round > 0) {
          round = 0; // what was ready when the round began is gone (cancelled): the round is over
          continue;
        }
        const horizon = until === undefined ? this.horizon : undefined;
        if (until === undefined) {
          if (horizon === undefined && this.liveNonDaemon === 0 && this.spawnedNonDaemon > 0) return; // daemons and stray timers are abandoned
          if (this.settling.length > 0) {
            // The instant is quiet: processes waiting for that become ready, time stays.
            for (const s of this.settling.splice(0)) this.makeReady(this.slots[s] as Proc);
            continue;
          }
        }
        if (heap.size === 0) {
          if (until === undefined && (this.liveNonDaemon === 0 || horizon !== undefined)) return;
          this.outcome = this.deadlock();
          continue;
        }
        const t = heap.peekTime();
        if (horizon !== undefined && t > horizon) return;
        if (t > this.maxTimeNs) {
          this.outcome = { kind: "time-budget", timeNs: this.now, maxTimeNs: this.maxTimeNs, nextEventNs: t };
          continue;
        }
        if (this.steps >= this.maxSteps) {
          this.outcome = { kind: "step-budget", timeNs: this.now, maxSteps: this.maxSteps };
          continue;
        }
        if (t !== this.now) this.instantStart = this.steps;
        this.now = t;
        slot = heap.pop();
        const sizing = round === -1;
        if (sizing) round = 1;
        if (heap.size > 0 && heap.peekTime() === t) {
          // Several entries due at t: they form the ready list and the strategy picks.
          const ready = this.ready;
          let tail = 0;
          ready[tail++] = slot;
          do ready[tail++] = heap.pop();
          while (heap.size > 0 && heap.peekTime() === t);
          this.readyFlagged = 0; // the list was empty
          for (let i = 0; i < tail; i++) {
            const f = this.slots[ready[i]]!;
            if (f.loopOrdered) this.readyFlagged++;
          }
          this.readyHead = 0;
          this.readyTail = tail;
          if (sizing) round = tail;
          slot = this.pickReady(tail);
        }
        // else: the only entry due at t runs straight from the heap.
      } else {
        if (this.steps >= this.maxSteps) {
          this.outcome = { kind: "step-budget", timeNs: this.now, maxSteps: this.maxSteps };
          continue;
        }
        if (round === -1) round = n;
        if (n === 1) {
          slot = this.ready[this.readyHead];
          this.readyHead = this.readyTail = 0;
          this.readyFlagged = 0;
        } else {
          const head = this.slots[this.ready[this.readyHead]];
          slot = head instanceof Proc && head.wokenNext ? this.takeReady(0) : this.pickReady(n); // co_queue_wakeup: not a choice (runNext)
        }
      }
      const e = this.slots[slot]!;
      if (this.steps - this.instantStart >= this.maxInstantSteps && this.spinning(e)) continue; // the outcome is set: return, or unwind a nested poll
      // Without an IOThread the gate is unset and the entry is not even looked at.
      if (this.contextGate !== undefined && e.context !== 0) {
        const why = this.contextGate(e.context);
        if (why !== undefined) {
          // Its thread is stuck acquiring the AioContext lock: the entry waits for the release.
          this.gated.push(slot);
          this.record("sched", "gated", { context: e.context, entry: e instanceof Proc ? e.name : e.label, why });
          continue;
        }
      }
      this.steps++;
      if (this.steps >= this.nextObservation) {
        this.nextObservation = this.steps + this.observer!.everySteps;
        this.observer!.observe(this.now, this.steps);
      }
      if (round > 0) round--;
      if (e instanceof Proc) {
        if (hasher !== undefined) { hasher.int(this.now); hasher.word(e.id); }
        this.step(e);
      } else {
        if (hasher !== undefined) { hasher.int(this.now); hasher.word(-e.owner - 1); }
        this.fire(e);
      }
      this.orderedLoop = -1;
    }
  }

  /** A labelled choice point (choose(), or the kernel's own): asks the strategy, logs it and records it under `src`. */
  private chooseLabelled(src: string, label: string, n: number): number {
    const pick = this.strategy.choose(label, n, this.choices.length);
    if (!Number.isInteger(pick) || pick < 0 || pick >= n) {
      throw new StrategyError(`strategy ${this.strategy.name} picked ${pick} of ${n} options for choose("${label}")`);
    }
    this.choices.push([n, pick, label]);
    this.record(src, "choose", { label, n, pick });
    return pick;
  }

  /**
   * A choice point among the n entries at the head of the ready list: asks
   * the strategy which of the candidates runs, logs it, and takes it out.
   * Not every ready entry is a candidate, where QEMU leaves no choice: none
   * behind a round barrier (`nextRound`), nor the barrier while a main-loop
   * bottom half or timer is ahead of it (with only other threads' work ahead
   * it is the first candidate), and of one AioContext's own bottom
   * halves and timers (loopOrdered) only the first. With one candidate left
   * there is no choice point.
   */
  private pickReady(n: number): number {
    if (this.readyFlagged === 0) return this.pickAmong(n); // no barrier, no loop-ordered entry: all n are candidates
    const r = this.ready, h = this.readyHead, slots = this.slots;
    const cand = this.candidates;
    let m = 0, filtered = false, ordered = 0; // ordered: bit c set once context c's first loop-ordered entry is a candidate
    for (let i = 0; i < n; i++) {
      const e = slots[r[h + i]]!;
      if (e.loopOrdered) {
        const bit = e.context < 31 ? 1 << e.context : 0;
        if ((ordered & bit) !== 0) { filtered = true; continue; }
        ordered |= bit;
      } else if (e instanceof Proc && e.roundBarrier) {
        // The entries behind it drop off the end (the others keep their positions); while the main loop's own
        // bottom halves or timers are ahead of it, it is no candidate either: that round runs them first.
        if ((ordered & 1) === 0) {
          // Only other threads' work ahead of it: the reply's round comes first (FIFO), that work stays a candidate.
          if (m > 0 && this.othersOnly(cand, m, e.context)) {
            for (let k = m; k > 0; k--) cand[k] = cand[k - 1];
            cand[0] = i;
            m++;
            filtered = true;
          } else cand[m++] = i;
        } else filtered = true;
        break;
      }
      cand[m++] = i;
    }
    if (m === 1) return this.takeReady(cand[0]);
    const strategy = this.strategy;
    const index = this.choices.length;
    const pick = strategy.pickNext(m, filtered ? this.candidateOwnerOf : this.ownerOf, index);
    if (!Number.isInteger(pick) || pick < 0 || pick >= m) {
      throw new StrategyError(`strategy ${strategy.name} picked ${pick} of ${m} ready entries`);
    }
    this.choices.push([m, pick]);
    if (this.trace) this.trace.push({ t: this.now, src: "sched", kind: "choice", data: { n: m, pick } });
    return this.takeReady(cand[pick]);
  }

  /** Whether none of the first m candidates runs in `context`: all are other threads' work. */
  private othersOnly(cand: number[], m: number, context: number): boolean {
    for (let k = 0; k < m; k++) if (this.slots[this.ready[this.readyHead + cand[k]]]!.context === context) return false;
    return true;
  }

  /** A choice point where every one of the n entries at the head of the ready list is a candidate. */
  private pickAmong(n: number): number {
    const strategy = this.strategy;
    const index = this.choices.length;
    const pick = strategy.pickNext(n, this.ownerOf, index);
    if (!Number.isInteger(pick) || pick < 0 || pick >= n) {
      throw new StrategyError(`strategy ${strategy.name} picked ${pick} of ${n} ready entries`);
    }
    this.choices.push([n, pick]);
    if (this.trace) this.trace.push({ t: this.now, src: "sched", kind: "choice", data: { n, pick } });
    return this.takeReady(pick);
  }

  /** How many entries of the ready list are loopOrdered or a round barrier: while none is, a choice point scans nothing. */
  private readyFlagged = 0;

  /** Positions in the ready list of the candidates at the current choice point (reused). */
  private readonly candidates: number[] = [];
  private readonly candidateOwnerOf = (i: number): number => this.ownerOfSlot(this.ready[this.readyHead + this.candidates[i]]);

  /**
   * An operation that makes the process ready again at once, behind a round
   * barrier: whatever becomes ready after it cannot run before it; the main
   * loop's own bottom halves and timers ready already run before it; other
   * work ready already (an I/O completion, another thread's) may run on
   * either side (a logged choice). QEMU 7.2 writes a QMP reply when the main
   * loop dispatches the iohandler context, which glib does right after one
   * dispatch of the main AioContext (its pending bottom halves, fd handlers,
   * expired timers): what that dispatch schedules (a bottom half, an I/O's
   * completion) waits for the next round, after the reply. When only other
   * threads' work is ahead of it, the round is the first option (FIFO takes
   * it): the main loop is running, while an IOThread the command woke
   * (aio_co_schedule of a job that last ran there) must first wake up;
   * QEMU wrote job-pause's reply before io0 ran the job in 59 of 60 pauses
   * (golden iothread_pause_resume_reply_first).
   */
  nextRound(): Operation {
    return this.roundOp;
  }

  private readonly roundOp: Operation = {
    start: (_host: OperationHost, proc: ProcHandle, token: number): void => {
      this.wake(proc, token);
      if (proc.state === "ready") {
        (proc as Proc).roundBarrier = true;
        this.readyFlagged++;
      }
    },
    describe: (): string => "the next round of the main loop",
  };

  /**
   * Resumes a process and handles the effects it yields until it blocks or
   * ends. One resumption is one step; an effect handled without giving up the
   * processor (notify, spawn, choose, a join of an ended process, an error
   * thrown back in) costs another step before the process is resumed again,
   * so the step budget also stops a process that never blocks.
   */
  private step(p: Proc): void {
    if (p.coSleptNs >= 0) {
      if (p.loopOrdered) this.wakePhase(p.context, p.coSleptNs, p.coSleepSeq);
      p.coSleptNs = -1;
    }
    p.wokenNext = false;
    p.roundBarrier = false;
    this.coWakeups = 0;
    this.orderedLoop = p.coroutine || p.loopOrdered ? p.context : -1;
    p.loopOrdered = false;
    this.current = p;
    p.state = "running";
    p.blockedOn = undefined;
    let thrown = p.resumeThrow;
    let input = p.resumeValue;
    p.resumeThrow = false;
    p.resumeValue = undefined;
    for (;;) {
      let r: IteratorResult<Effect, unknown>;
      try {
        r = thrown ? p.gen.throw(input) : p.gen.next(input);
      } catch (err) {
        this.current = undefined;
        if (err instanceof Interrupted) this.end(p, "interrupted", undefined);
        else if (err instanceof Divergence || err instanceof StrategyError || err instanceof PollAborted) throw err;
        else this.fail(p.name, err, p);
        return;
      }
      thrown = false;
      if (r.done) {
        this.current = undefined;
        this.end(p, "done", r.value);
        return;
      }
      const eff = r.value;
      // Anything thrown while handling the effect (a bad delay, a malformed
      // effect, an Operation whose start() throws) is thrown back into the
      // process, so it is reported with the process's name.
      try {
        switch (eff?.k) {
          case Kind.Sleep:
          case Kind.CoSleep: {
            const ns = eff.ns;
            p.loopOrdered = eff.k === Kind.CoSleep;
            p.coSleptNs = p.loopOrdered ? this.now : -1;
            if (p.loopOrdered) p.coSleepSeq = this.armTimer(p.context);
            if (!isDelay(ns) || ns > MAX_TIME_NS - this.now) throw badSleep(p, ns, this.now);
            this.block(p, eff);
            if (ns === 0) this.pushReady(p.slot);
            else this.heap.push(p.slot, this.now + ns, this.seq++);
            return;
          }
          case Kind.Settle:
            this.block(p, eff);
            this.settling.push(p.slot);
            return;
          case Kind.Yield:
            p.state = "ready";
            this.current = undefined;
            this.pushReady(p.slot);
            return;
          case Kind.Wait: {
            const waiters = eff.signal.waiters;
            this.block(p, eff);
            waiters.push({ proc: p, token: p.token });
            return;
          }
          case Kind.Join: {
            const target = eff.proc as Proc;
            if (isEnded(target.state)) {
              input = target.result;
              break;
            }
            this.block(p, eff);
            (target.joiners ??= []).push({ proc: p, token: p.token });
            return;
          }
          case Kind.Await:
            this.block(p, eff);
            eff.op.start(this, p, p.token);
            return;
          case Kind.Notify:
            input = this.notify(eff.signal, eff.value);
            break;
          case Kind.Spawn:
            input = this.spawn(eff.name, eff.body, eff.opts);
            break;
          case Kind.Choose: {
            const n = eff.n;
            if (!Number.isInteger(n) || n < 1) {
              throw new RangeError(`process "${p.name}": choose("${eff.label}", ${String(n)}) needs a whole number of options >= 1`);
            }
            if (n === 1) {
              input = 0;
              break;
            }
            input = this.chooseLabelled(p.name, eff.label, n);
            break;
          }
          case Kind.Now:
            input = this.now;
            break;
          case Kind.Self:
            input = p;
            break;
          case Kind.Interrupt:
            if (eff.proc === p) throw new Error(`process "${p.name}" tried to interrupt itself; throw instead`);
            input = this.interrupt(eff.proc as Proc, eff.reason, p.name);
            break;
          default:
            throw new TypeError(`process "${p.name}" yielded ${describeValue(eff)}, which is not an effect (did you write \`yield sleep\` instead of \`yield sleep(ns)\`?)`);
        }
      } catch (err) {
        if (err instanceof Divergence || err instanceof StrategyError || err instanceof PollAborted) throw err;
        if (p.state !== "running") this.unblock(p);
        thrown = true;
        input = err;
      }
      // The process keeps the processor: resuming it again is another step.
      if (this.steps >= this.maxSteps) {
        this.current = undefined;
        p.state = "ready";
        p.resumeThrow = thrown;
        p.resumeValue = input;
        this.outcome = { kind: "step-budget", timeNs: this.now, maxSteps: this.maxSteps };
        return;
      }
      this.steps++;
    }
  }

  /** Undoes a block that failed halfway (an Operation's start() threw): the process runs on. */
  private unblock(p: Proc): void {
    if (p.state === "ready") this.removeReady(p.slot); // start() woke it before throwing
    p.token++; // drops anything start() registered
    p.state = "running";
    p.blockedOn = undefined;
    this.current = p;
  }

  private block(p: Proc, eff: Effect): void {
    p.state = "blocked";
    p.token++;
    p.blockedOn = eff;
    this.current = undefined;
  }

  private fire(cb: Callback): void {
    cb.pending = false;
    this.releaseSlot(cb.slot);
    if (cb.bottomHalfPass >= 0) {
      // aio_bh_poll takes the list: the bottom halves scheduled from now on wait for the next pass.
      if (cb.bottomHalfPass === (this.bhPass[cb.context] ?? 0)) this.bhPass[cb.context] = cb.bottomHalfPass + 1;
    } else if (cb.loopOrdered) this.wakePhase(cb.context, cb.armedNs, cb.armSeq);
    else {
      // An I/O completion of the thread pool (its completion bottom half: a pass of the list has begun), another
      // thread's timer: the loop was woken from outside.
      this.loopWoken(cb.context);
      this.bhPass[cb.context] = (this.bhPass[cb.context] ?? 0) + 1;
    }
    const outer = this.firingContext, outerOrdered = this.orderedLoop;
    this.firingContext = cb.context;
    this.orderedLoop = cb.loopOrdered ? cb.context : -1;
    try {
      cb.fn();
    } catch (err) {
      if (err instanceof Divergence || err instanceof PollAborted) throw err;
      this.fail(cb.label, err);
    } finally {
      this.firingContext = outer;
      this.orderedLoop = outerOrdered;
    }
    const w = cb.bottomHalfWaiter;
    if (w) {
      cb.bottomHalfWaiter = undefined;
      if (--w.left === 0 && this.outcome === undefined) this.wakeWaiter(w, true);
    }
  }

  private interrupt(target: Proc, reason: unknown, by: string): boolean {
    if (isEnded(target.state)) return false;
    this.record(by, "interrupt", { target: target.name, reason: reason === undefined ? null : String(reason) });
    target.resumeThrow = true;
    target.resumeValue = new Interrupted(reason);
    if (target.state === "blocked") {
      if (this.heap.has(target.slot)) this.heap.remove(target.slot);
      else if (target.blockedOn?.k === Kind.Settle) this.settling.splice(this.settling.indexOf(target.slot), 1);
      else this.removeReady(target.slot); // a zero sleep waits in the ready list
      target.loopOrdered = false; // woken by the interrupt, not by its timer
      target.token++; // invalidates signal, join and operation registrations
      this.makeReady(target);
    }
    return true;
  }

  /** What each running nested poll waits for, outermost first. */
  private readonly polls: string[] = [];

  /** Slots of processes blocked in `settle()`, in arrival order. */
  private readonly settling: number[] = [];

  private makeReady(p: Proc): void {
    p.state = "ready";
    const waker = this.current;
    if (waker !== undefined && waker.coroutine && p.coroutine && waker.context === p.context) {
      // aio_co_wake from a coroutine of the same context: QEMU 7.2 queues the woken one on the waker's
      // co_queue_wakeup, and qemu_aio_coroutine_enter enters those, in the order woken, as soon as the
      // waker yields (util/qemu-coroutine.c), before anything else of the loop.
      p.wokenNext = true;
      p.loopOrdered = true;
      this.insertReady(Math.min(this.readyHead + this.coWakeups++, this.readyTail), p.slot); // (one of them may have run meanwhile)
      return;
    }
    if (p.coroutine && this.orderedLoop === p.context) p.loopOrdered = true;
    this.pushReady(p.slot);
  }

  /** How many coroutines the running coroutine has woken into its co_queue_wakeup (at the head of the ready list) since it was entered. */
  private coWakeups = 0;

  /** Puts a slot at position `at` (readyHead..readyTail) of the ready list. */
  private insertReady(at: number, slot: number): void {
    if (at === this.readyTail) {
      this.pushReady(slot);
      return;
    }
    if (at === this.readyHead) {
      this.pushReadyFront(slot);
      return;
    }
    const e = this.slots[slot]!;
    if (e.loopOrdered || e.roundBarrier) this.readyFlagged++;
    const r = this.ready;
    r[this.readyTail] = slot; // grow first: copyWithin never lengthens an array
    r.copyWithin(at + 1, at, this.readyTail);
    r[at] = slot;
    this.readyTail++;
  }

  /**
   * The AioContext whose loop runs its own ordered work now (-1: none): a
   * loopOrdered bottom half or timer, a coroutine, or what they enter at
   * once. A coroutine such work wakes, spawns or lets join (aio_co_wake,
   * aio_co_enter from that loop or from one of its coroutines) runs in the
   * loop's order, not at a choice point among that loop's work; an actor
   * outside QEMU it wakes (a client reading an event) stays free.
   */
  private orderedLoop = -1;

  private end(p: Proc, state: "done" | "interrupted", value: unknown): void {
    p.state = state;
    p.result = value;
    if (!p.daemon) this.liveNonDaemon--;
    this.record("sched", state === "done" ? "end" : "interrupted", { id: p.id, name: p.name });
    if (p.joiners) {
      for (const j of p.joiners) {
        if (j.proc.token === j.token && j.proc.state === "blocked") {
          j.proc.resumeValue = value;
          this.makeReady(j.proc);
        }
      }
      p.joiners = undefined;
    }
    this.releaseSlot(p.slot);
  }

  private fail(name: string, err: unknown, p?: Proc): void {
    const error = err instanceof Error ? `${err.name === "Error" ? "" : err.name + ": "}${err.message}` : String(err);
    if (p) {
      p.state = "failed";
      if (!p.daemon) this.liveNonDaemon--;
    }
    this.record("sched", "failure", { process: name, error }, err);
    this.outcome = {
      kind: "failure",
      timeNs: this.now,
      process: name,
      error,
      ...(err instanceof Error && err.stack ? { stack: err.stack } : {}),
    };
  }

  /**
   * Past the Zeno bound: counts who runs for ZENO_SAMPLE more steps, then
   * ends the run naming them. Returns whether the run ended.
   */
  private spinning(e: Entry): boolean {
    const counts = (this.spinCounts ??= new Map());
    const name = e instanceof Proc ? e.name : (this.procs[e.owner - 1]?.name ?? e.label);
    counts.set(name, (counts.get(name) ?? 0) + 1);
    const steps = this.steps - this.instantStart;
    if (steps < this.maxInstantSteps + ZENO_SAMPLE) return false;
    const spinning = [...counts].sort((a, b) => b[1] - a[1] || (a[0] < b[0] ? -1 : 1)).map(([n]) => n);
    this.outcome = { kind: "zeno", timeNs: this.now, steps, spinning };
    return true;
  }

  private deadlock(): Outcome {
    const waiting = this.procs
      .filter((p) => p.state === "blocked" && !p.daemon && (this.gated.length === 0 || !this.gated.includes(p.slot)))
      .map((p) => ({ process: p.name, on: describeBlock(p.blockedOn) }));
    for (const slot of this.gated) {
      const e = this.slots[slot]!;
      if (e instanceof Proc && e.daemon) continue;
      waiting.push({ process: e instanceof Proc ? e.name : `timer "${e.label}"`, on: this.contextGate?.(e.context) ?? "its AioContext" });
    }
    // A nested poll that can never end is QEMU hanging in AIO_WAIT_WHILE.
    for (const w of this.polls) waiting.push({ process: "main loop", on: `nested poll: ${w}` });
    return { kind: "deadlock", timeNs: this.now, waiting };
  }

  // ---- slots and the ready list ----

  private allocSlot(): number {
    return this.freeSlots.length > 0 ? this.freeSlots.pop()! : this.slots.length;
  }

  private releaseSlot(slot: number): void {
    this.slots[slot] = undefined;
    this.freeSlots.push(slot);
  }

  private ownerOfSlot(slot: number): number {
    return this.slots[slot]!.owner;
  }

  private pushReady(slot: number): void {
    const e = this.slots[slot]!;
    if (e.loopOrdered || e.roundBarrier) this.readyFlagged++;
    this.ready[this.readyTail++] = slot;
  }

  private pushReadyFront(slot: number): void {
    const e = this.slots[slot]!;
    if (e.loopOrdered || e.roundBarrier) this.readyFlagged++;
    if (this.readyHead > 0) this.ready[--this.readyHead] = slot;
    else {
      this.ready[this.readyTail] = slot; // grow first: copyWithin never lengthens an array
      this.ready.copyWithin(1, 0, this.readyTail);
      this.ready[0] = slot;
      this.readyTail++;
    }
  }

  /** Removes and returns the i-th ready entry, keeping the others in order. */
  private takeReady(i: number): number {
    const r = this.ready, h = this.readyHead;
    const slot = r[h + i];
    const e = this.slots[slot]!;
    if (e.loopOrdered || e.roundBarrier) this.readyFlagged--;
    for (let j = h + i; j > h; j--) r[j] = r[j - 1];
    this.readyHead = h + 1;
    if (this.readyHead === this.readyTail) {
      this.readyHead = this.readyTail = 0;
    } else if (h > 4096 && h * 2 > this.readyTail) {
      // Processes that keep yielding never empty the list: slide it back to the start.
      r.copyWithin(0, this.readyHead, this.readyTail);
      this.readyTail -= this.readyHead;
      this.readyHead = 0;
    }
    return slot;
  }

  private removeReady(slot: number): void {
    const r = this.ready;
    for (let i = this.readyHead; i < this.readyTail; i++) {
      if (r[i] === slot) {
        const e = this.slots[slot]!;
        if (e.loopOrdered || e.roundBarrier) this.readyFlagged--;
        r.copyWithin(i, i + 1, this.readyTail);
        this.readyTail--;
        return;
      }
    }
  }
}

function badSleep(p: Proc, ns: unknown, nowNs: number): RangeError {
  if (isDelay(ns)) {
    return new RangeError(`process "${p.name}" asked to sleep ${ns} ns at ${nowNs} ns: the end time is past ${MAX_TIME_NS} ns, the last exact integer`);
  }
  return new RangeError(`process "${p.name}" asked to sleep ${typeof ns === "string" ? JSON.stringify(ns) : String(ns)} ns: a delay must be a non-negative integer number of nanoseconds`);
}

function isDelay(ns: unknown): ns is number {
  return typeof ns === "number" && Number.isSafeInteger(ns) && ns >= 0;
}

/** Throws a RangeError naming `who` unless `ns` is a non-negative integer. */
export function checkDelay(ns: unknown, who: string): asserts ns is number {
  if (!isDelay(ns)) {
    throw new RangeError(`${who}: delay ${String(ns)} ns must be a non-negative integer number of nanoseconds`);
  }
}

function isEnded(s: ProcState): boolean {
  return s === "done" || s === "interrupted" || s === "failed";
}

function describeBlock(eff: Effect | undefined): string {
  switch (eff?.k) {
    case Kind.Wait: return `signal "${eff.signal.name}"`;
    case Kind.Join: return `process "${eff.proc.name}" to end`;
    case Kind.Await: return eff.op.describe();
    case Kind.Sleep: return `sleep(${eff.ns})`;
    case Kind.Settle: return "the instant to settle";
    default: return "nothing known";
  }
}

function describeValue(v: unknown): string {
  if (typeof v === "function") return `a function${v.name ? ` (${v.name})` : ""}`;
  try {
    return JSON.stringify(v) ?? String(v);
  } catch {
    return String(v);
  }
}
