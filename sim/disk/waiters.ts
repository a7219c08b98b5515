/**
 * Parking processes and waking them from anywhere: a process step, a timer
 * callback or an I/O completion.
 *
 * The kernel's Signal is notified only by a process yielding `notify`, but the
 * disk and block layers must wake waiters from completion callbacks (a drain
 * waits for the last request to finish). So waiting is an Operation: the
 * process yields `awaitOp(ticket)`, the ticket remembers (process, token), and
 * `wakeAll` resumes the tickets in the order they were parked.
 */
import { awaitOp, type Effect, type Operation, type OperationHost, type ProcHandle } from "../scheduler/index.js";

/** One parked process. Keep it to `cancel` it if the wait is interrupted. */
export class Ticket implements Operation {
  /** @internal */ proc: ProcHandle | undefined = undefined;
  /** @internal */ token = 0;
  /** @internal */ host: OperationHost | undefined = undefined;
  /** @internal */ parked = false;
  constructor(private readonly list: Waiters) {}

  start(host: OperationHost, proc: ProcHandle, token: number): void {
    this.host = host;
    this.proc = proc;
    this.token = token;
    this.parked = true;
    this.list.park(this);
  }

  describe(): string {
    return this.list.describe();
  }
}

/** A FIFO of parked processes. */
export class Waiters {
  private tickets: Ticket[] = [];
  /** `what` (or a function computing it) says what the parked processes wait for, in deadlock reports. */
  constructor(private readonly what: string | (() => string)) {}

  /** A fresh ticket; park on it with `yield awaitOp(ticket)` or use `wait()`. */
  ticket(): Ticket {
    return new Ticket(this);
  }

  /** The effect that parks the calling process on a fresh ticket. */
  wait(): Effect {
    return awaitOp(new Ticket(this));
  }

  /** How many processes are parked. */
  get length(): number {
    return this.tickets.length;
  }

  /** Wakes every parked process with `value`, oldest first; returns how many. */
  wakeAll(value?: unknown): number {
    const list = this.tickets;
    if (list.length === 0) return 0;
    this.tickets = [];
    for (const t of list) this.release(t, value);
    return list.length;
  }

  /** Wakes the oldest parked process; returns whether there was one. */
  wakeFirst(value?: unknown): boolean {
    const t = this.tickets.shift();
    if (!t) return false;
    this.release(t, value);
    return true;
  }

  /** Removes a ticket without waking it (its process was interrupted). Returns whether it was parked. */
  cancel(ticket: Ticket): boolean {
    const i = this.tickets.indexOf(ticket);
    if (i < 0) return false;
    this.tickets.splice(i, 1);
    ticket.parked = false;
    return true;
  }

  /** @internal */
  park(t: Ticket): void {
    this.tickets.push(t);
  }

  /** @internal */
  describe(): string {
    return typeof this.what === "string" ? this.what : this.what();
  }

  private release(t: Ticket, value: unknown): void {
    t.parked = false;
    t.host!.wake(t.proc!, t.token, value);
  }
}
