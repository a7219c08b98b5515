/**
 * A QMP monitor inside the simulation.
 *
 * Commands are served one at a time, in arrival order, like QEMU's monitor
 * dispatcher. A command's handler runs in the main loop: a job it enters runs
 * at once up to its next yield (so job-resume shows `running` before its
 * reply). The reply goes out one main-loop round after the handler returns
 * (replyRound; QEMU 7.2.22, like every 7.2 from 7.2.9 on (upstream
 * effd60c878), runs a command that is not a coroutine in a bottom half of
 * the iohandler context and wakes the QMP dispatcher coroutine, which
 * lives there too, with aio_co_wake; it writes the reply in the main
 * loop's next round): work already pending at that moment runs first (a
 * zero-latency backup's completion, conformance/backup_full.json; a job's
 * exit bottom half, always), work that round schedules comes after it
 * (mirror's READY after set-speed's reply, mirror_complete.json).
 * An IOThread's work goes on meanwhile (aio-context.ts `rescheduleSelf`).
 * Events are stamped with virtual time and interleave with replies in a
 * transcript shaped like the ../shared/conformance recordings.
 *
 * Once the QEMU process is gone (quit, or a command it crashes on: a
 * handler throws QemuCrash) nothing more crosses the socket: no event, and
 * a command waits for its reply for ever.
 */
import { awaitOp, notify, Signal, wait, type Effect, type Process, type Scheduler } from "../scheduler/index.js";
import { QmpError } from "../jobs/errors.js";
import type { JobManager } from "../jobs/manager.js";
import { argChecker, type ArgCheck, type ArgSpec } from "./args.js";
import { QemuCrash, type QemuProcess } from "./process.js";
import { timestamp, type QmpCommand, type QmpEvent, type QmpResponse, type TranscriptEntry } from "./types.js";

/**
 * A command: its arguments' schema and what it does (a value, or a process
 * when it must wait). It refuses by throwing a QmpError, or by returning
 * one: commands refused often (a job id that is gone) return theirs, as a
 * throw costs V8 a microsecond or more.
 */
export interface Command<C> {
  args: ArgSpec;
  run(ctx: C, args: Record<string, unknown>): unknown;
}

/** Commands by name, each with its argument check compiled: built once per command set, at module load. */
export type CommandTable<C> = ReadonlyMap<string, { run: Command<C>["run"]; checkArgs: ArgCheck }>;

export function commandTable<C>(commands: Readonly<Record<string, Command<C>>>): CommandTable<C> {
  return new Map(Object.entries(commands).map(([name, c]) => [name, { run: c.run, checkArgs: argChecker(c.args) }]));
}

export class Monitor<C extends { jm: JobManager; process?: QemuProcess }> {
  readonly transcript: TranscriptEntry[] = [];
  readonly events: QmpEvent[] = [];
  private busy = false;
  private readonly free = new Signal<void>("monitor free");
  private readonly eventListeners: ((e: QmpEvent) => void)[] = [];

  constructor(readonly sim: Scheduler, readonly ctx: C, readonly commands: CommandTable<C>) {
    ctx.jm.onEvent((e) => this.event(e.event, e.data));
  }

  /** Sends an event to the client (and the transcript). */
  event(name: string, data: Record<string, unknown>): void {
    if (this.ctx.process && !this.ctx.process.alive) return;
    const ev: QmpEvent = { event: name, data, timestamp: timestamp(this.sim.now) };
    this.events.push(ev);
    this.transcript.push({ event: name, data });
    for (const fn of this.eventListeners) fn(ev);
  }

  onEvent(fn: (e: QmpEvent) => void): void {
    this.eventListeners.push(fn);
  }

  /**
   * Waits until the monitor may dispatch: no command is running, and the
   * main loop is at its top level — QEMU dispatches commands from the
   * monitor's own context, which a nested poll (AIO_WAIT_WHILE) never runs.
   */
  private *acquire(): Process<void> {
    for (;;) {
      if (this.busy) yield wait(this.free);
      else if (this.sim.pollDepth > 0) yield wait(this.sim.pollDone);
      else break;
    }
    this.busy = true;
  }

  /**
   * Runs `fn` in the main loop between commands, as QEMU's own main-loop
   * work that is not a QMP command (a drained section a test harness or an
   * internal caller takes). A job it enters runs at once; a nested poll in it
   * runs everything due before it returns.
   */
  *mainLoop<T>(fn: () => T): Process<T> {
    yield* this.acquire();
    this.ctx.jm.mainLoopProcess = this.sim.running;
    try {
      return fn();
    } finally {
      this.ctx.jm.mainLoopProcess = undefined;
      this.busy = false;
      this.sim.notify(this.free);
    }
  }

  /** A client's round trip: waits for the monitor, runs the command, returns QMP's response. */
  *execute(cmd: QmpCommand): Process<QmpResponse> {
    // A free monitor (the usual case) is taken at once, without acquire's generator.
    if (this.busy || this.sim.pollDepth > 0) yield* this.acquire();
    else this.busy = true;
    const proc = this.ctx.process;
    if (proc && !proc.alive) {
      // QEMU is gone: nothing answers, and the clients queued behind this one wait for ever too.
      this.busy = false;
      this.sim.notify(this.free);
      return (yield wait(proc.gone)) as never;
    }
    try {
      this.transcript.push(cmd.arguments === undefined ? { cmd: cmd.execute } : { cmd: cmd.execute, args: cmd.arguments });
      this.sim.record("qmp", "command", { execute: cmd.execute });
      this.sim.loopWoken(); // the command's bytes on the monitor's socket
      let response: QmpResponse;
      this.ctx.jm.mainLoopProcess = this.sim.running;
      try {
        // Only a command that waits is a process: the others answer without a generator between them and the client.
        const out = this.dispatch(cmd);
        const value = isProcess(out) ? yield* out : out;
        response = value instanceof QmpError ? { error: { class: value.cls, desc: value.desc } } : { return: value ?? {} };
      } catch (e) {
        if (e instanceof QemuCrash && proc) {
          this.sim.record("qmp", "crash", { signal: e.signal, reason: e.reason });
          proc.end({ kind: "crash", signal: e.signal, reason: e.reason }, this.sim.now);
          this.transcript.push({ exit: { signal: e.signal } });
          this.busy = false;
          this.sim.notify(this.free); // clients queued behind this command now wait for ever too
          return (yield wait(proc.gone)) as never;
        }
        if (!(e instanceof QmpError)) throw e; // a simulator bug: fail the run loudly
        response = { error: { class: e.cls, desc: e.desc } };
      } finally {
        this.ctx.jm.mainLoopProcess = undefined;
      }
      yield this.replyRound();
      while (this.sim.pollDepth > 0) yield wait(this.sim.pollDone);
      this.transcript.push("error" in response ? { error: response.error } : { return: response.return });
      this.sim.record("qmp", "error" in response ? "error" : "return", "error" in response ? { ...response.error } : {});
      if (proc?.exitAfterReply) {
        this.sim.record("qmp", "exit", { ...proc.exitAfterReply });
        proc.end(proc.exitAfterReply, this.sim.now);
        this.transcript.push({ exit: { code: 0 } });
      }
      return cmd.id === undefined ? response : { ...response, id: cmd.id };
    } finally {
      this.busy = false;
      yield notify(this.free);
    }
  }

  /**
   * The wait for the main-loop round in which QEMU writes the reply (an
   * effect, not a generator: every command yields it). A command
   * that is not a coroutine runs in a bottom half of the iohandler context
   * (7.2.9 on); at its end it wakes the dispatcher coroutine, which lives
   * there too and runs in a later round of that context. The main loop
   * dispatches that context after the main context's bottom halves of the
   * same round, so every bottom half pending
   * by then (a job's exit that the command caused by entering a sleeping job
   * at once: job-cancel of a rate-limited job) runs before the reply — always,
   * whatever the strategy — and what those schedule runs after it. Other
   * work ready now (an I/O completion) may fall on either side. If a bottom
   * half polls (a job's exit finishing its whole transaction), the reply
   * then waits for the poll to end (the caller's loop after this wait).
   */
  private replyRound(): Effect {
    const bhs = this.sim.pendingBottomHalves();
    return awaitOp(bhs.length > 0 ? this.sim.afterBottomHalves(bhs) : this.sim.nextRound());
  }

  /** Checks and runs a command: its result, or the process that gives it. */
  private dispatch(cmd: QmpCommand): unknown {
    if (typeof cmd.execute !== "string") throw new QmpError("GenericError", "QMP input member 'execute' must be a string");
    const def = this.commands.get(cmd.execute);
    if (!def) throw new QmpError("CommandNotFound", `The command ${cmd.execute} has not been found`);
    return def.run(this.ctx, def.checkArgs(cmd.arguments));
  }
}

function isProcess(v: unknown): v is Process<unknown> {
  return typeof v === "object" && v !== null && typeof (v as Process).next === "function" && typeof (v as Process).throw === "function";
}
