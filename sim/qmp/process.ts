/**
 * The simulated QEMU process itself: running, or gone — it quit (QMP `quit`)
 * or it crashed (an assertion or a segmentation fault real QEMU 7.2 hits).
 * Once gone, the monitor answers nothing and sends no event, and the guest
 * issues no I/O; a run loop asks `exit` how the process ended.
 */
import { Signal } from "../scheduler/index.js";

/** How the process ended. A crash names the signal and what QEMU hit. */
export type QemuExit =
  | { kind: "quit" }
  | { kind: "crash"; signal: "SIGABRT" | "SIGSEGV"; reason: string };

/**
 * Thrown by a command handler when real QEMU dies on that command: the
 * monitor sends no reply and the process is marked crashed.
 */
export class QemuCrash extends Error {
  override name = "QemuCrash";
  constructor(readonly signal: "SIGABRT" | "SIGSEGV", readonly reason: string) {
    super(`QEMU crashed (${signal}): ${reason}`);
  }
}

export class QemuProcess {
  /** Undefined while the process runs. */
  exit: QemuExit | undefined = undefined;
  /** Virtual time at which it ended. */
  endedAtNs: number | undefined = undefined;
  /** Set by `quit`: the process exits once the command's reply is out. */
  exitAfterReply: QemuExit | undefined = undefined;
  /** Never notified: what a client waits on for a reply from a process that is gone. */
  readonly gone = new Signal<void>("a reply from QEMU, which has exited");
  private readonly listeners: ((e: QemuExit) => void)[] = [];

  get alive(): boolean {
    return this.exit === undefined;
  }

  /** Calls `fn` once, when the process ends. */
  onExit(fn: (e: QemuExit) => void): void {
    this.listeners.push(fn);
  }

  /** Ends the process at virtual time `nowNs` (first end wins). */
  end(e: QemuExit, nowNs: number): void {
    if (this.exit) return;
    this.exit = e;
    this.endedAtNs = nowNs;
    for (const fn of this.listeners) fn(e);
  }
}

/** One line for an exit, for reports: `quit`, or `qemu-crash (SIGSEGV): reason`. */
export function describeExit(e: QemuExit): string {
  return e.kind === "quit" ? "QEMU quit" : `qemu-crash (${e.signal}): ${e.reason}`;
}
