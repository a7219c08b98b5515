/**
 * Effects: the plain-data requests a process yields to the scheduler.
 *
 * A process is a generator; `yield sleep(10)` suspends it and the scheduler
 * resumes it with the effect's result. Effects carry a small integer `k` so the
 * kernel dispatches on a number, and are built by plain functions (not `yield*`
 * helpers, which cost ~60 ns and a frame each).
 */

export enum Kind {
  Sleep = 1,
  Yield = 2,
  Wait = 3,
  Join = 4,
  Await = 5,
  Settle = 6,
  CoSleep = 7,
  // Inline effects: handled without giving up the processor.
  Notify = 10,
  Spawn = 11,
  Choose = 12,
  Now = 13,
  Interrupt = 14,
  Self = 15,
}

/** A process body: yields effects, is resumed with their results, returns T. */
export type Process<T = any> = Generator<Effect, T, any>;

/** A broadcast signal: `notify` wakes every process waiting at that moment. */
export class Signal<T = unknown> {
  /** @internal waiting processes with the wake token they blocked with. */
  readonly waiters: { proc: ProcHandle; token: number }[] = [];
  constructor(readonly name: string) {}
}

/** What `spawn` returns and `join`/`interrupt` take. */
export interface ProcHandle {
  readonly id: number;
  readonly name: string;
  /** "ready" | "running" | "blocked" | "done" | "interrupted" | "failed" */
  readonly state: ProcState;
  /** The return value once state is "done". */
  readonly result: unknown;
  /** The AioContext it runs in (0: the main loop). */
  readonly context: number;
}

export type ProcState = "ready" | "running" | "blocked" | "done" | "interrupted" | "failed";

/**
 * An operation that completes later, started by the kernel on the process's
 * behalf (the disk's `io` is one). `start` must eventually call
 * `kernel.wake(proc, token, value)` or `kernel.wakeThrow(proc, token, error)`;
 * wakes with a stale token (the process was interrupted meanwhile) are ignored.
 */
export interface Operation {
  start(kernel: OperationHost, proc: ProcHandle, token: number): void;
  /** For deadlock reports and traces: what the process is waiting on. */
  describe(): string;
}

/** The part of the kernel an Operation may use. */
export interface OperationHost {
  readonly now: number;
  wake(proc: ProcHandle, token: number, value?: unknown): void;
  wakeThrow(proc: ProcHandle, token: number, error: unknown): void;
}

export interface SpawnOptions {
  /** A daemon (a guest, a monitor loop) does not keep the run alive and is never reported as deadlocked. */
  daemon?: boolean;
  /** The actor this process belongs to, for priority-based strategies (default: its own id). */
  owner?: number;
  /** The AioContext it runs in (default: the spawner's; 0 is the main loop). */
  context?: number;
  /** One of QEMU's coroutines, not an actor outside QEMU (default: a coroutine's spawn is one, others are not). */
  coroutine?: boolean;
}

export type Effect =
  | { readonly k: Kind.Sleep | Kind.CoSleep; readonly ns: number }
  | { readonly k: Kind.Yield }
  | { readonly k: Kind.Wait; readonly signal: Signal<any> }
  | { readonly k: Kind.Join; readonly proc: ProcHandle }
  | { readonly k: Kind.Await; readonly op: Operation }
  | { readonly k: Kind.Settle }
  | { readonly k: Kind.Notify; readonly signal: Signal<any>; readonly value: unknown }
  | { readonly k: Kind.Spawn; readonly name: string; readonly body: Process<any>; readonly opts?: SpawnOptions }
  | { readonly k: Kind.Choose; readonly label: string; readonly n: number }
  | { readonly k: Kind.Now }
  | { readonly k: Kind.Interrupt; readonly proc: ProcHandle; readonly reason: unknown }
  | { readonly k: Kind.Self };

const YIELD: Effect = { k: Kind.Yield };
const NOW: Effect = { k: Kind.Now };
const SELF: Effect = { k: Kind.Self };
const SETTLE: Effect = { k: Kind.Settle };

/** Suspends for `ns` nanoseconds of virtual time (a non-negative integer). Resumes with undefined. */
export const sleep = (ns: number): Effect => ({ k: Kind.Sleep, ns });
/**
 * A coroutine's sleep on a QEMU timer (qemu_co_sleep_ns: a timer in the list
 * of the AioContext it runs in, whose callback enters it at once): as
 * `sleep`, except that at its deadline it runs in its loop's order, with the
 * timers and bottom halves of that context ready at once (see
 * `Scheduler.timerAt`), not at a choice point among them. Sleeps of actors
 * outside QEMU (a client, a guest, libvirt) are `sleep`.
 */
export const coSleep = (ns: number): Effect => ({ k: Kind.CoSleep, ns });
/** Lets every other process ready at this instant run first; a choice point. */
export const yieldNow = (): Effect => YIELD;
/**
 * Blocks until nothing else is ready at this instant, then resumes (time does
 * not advance). Models work that a main loop does only once its pending
 * callbacks and coroutines at this moment have run — e.g. QEMU's monitor
 * sending a command's reply. Processes settling together resume in FIFO order.
 */
export const settle = (): Effect => SETTLE;
/** Blocks until `signal` is notified; resumes with the notified value. */
export const wait = <T>(signal: Signal<T>): Effect => ({ k: Kind.Wait, signal });
/** Wakes all current waiters of `signal` with `value`; resumes at once with how many woke. */
export const notify = <T>(signal: Signal<T>, value?: T): Effect => ({ k: Kind.Notify, signal, value });
/** Starts a child process at this instant; resumes at once with its handle. */
export const spawn = (name: string, body: Process<any>, opts?: SpawnOptions): Effect =>
  ({ k: Kind.Spawn, name, body, opts });
/** Blocks until `proc` has ended; resumes with its return value (undefined if interrupted). */
export const join = (proc: ProcHandle): Effect => ({ k: Kind.Join, proc });
/** Blocks on an Operation (e.g. an I/O request); resumes with its result or throws its error. */
export const awaitOp = (op: Operation): Effect => ({ k: Kind.Await, op });
/** An environment choice among `n` options, decided by the strategy and logged; resumes with 0..n-1. */
export const choose = (label: string, n: number): Effect => ({ k: Kind.Choose, label, n });
/** Resumes at once with the current virtual time in ns. */
export const now = (): Effect => NOW;
/** Resumes at once with the calling process's handle. */
export const self = (): Effect => SELF;
/**
 * Re-enters `proc` with an `Interrupted` error at its current yield point (it
 * may catch it to clean up). Resumes the caller at once with whether `proc` was
 * still alive.
 */
export const interrupt = (proc: ProcHandle, reason?: unknown): Effect => ({ k: Kind.Interrupt, proc, reason });

/** Thrown into an interrupted process. */
export class Interrupted extends Error {
  constructor(readonly reason: unknown) {
    super(`interrupted${reason === undefined ? "" : `: ${String(reason)}`}`);
    this.name = "Interrupted";
  }
}
