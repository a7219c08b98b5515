/** QMP's wire shapes, as plain data. */
import type { ErrorClass } from "../jobs/errors.js";

/** A command as a client sends it. */
export interface QmpCommand {
  execute: string;
  arguments?: Record<string, unknown>;
  id?: unknown;
}

export type QmpResponse =
  | { return: unknown; id?: unknown }
  | { error: { class: ErrorClass; desc: string }; id?: unknown };

/** An asynchronous event, stamped with virtual time as QEMU stamps wall time. */
export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp: { seconds: number; microseconds: number };
}

/** One line of a transcript in wire order (the shape of ../shared/conformance recordings). */
export type TranscriptEntry =
  | { cmd: string; args?: Record<string, unknown> }
  | { return: unknown }
  | { error: { class: ErrorClass; desc: string } }
  | { event: string; data: Record<string, unknown> }
  /** The QEMU process ended: exit code 0 after `quit`, or the signal it died of. */
  | { exit: { code: number } | { signal: string } }
  /**
   * QEMU hung on `cmd`: no reply came (a recording: within the spec's reply time-out, after which the
   * recorder killed QEMU; the simulator: never, the run ended with the command unanswered).
   */
  | { hang: { cmd: string } };

export function timestamp(nowNs: number): QmpEvent["timestamp"] {
  return { seconds: Math.floor(nowNs / 1e9), microseconds: Math.floor((nowNs % 1e9) / 1000) };
}

export function isError(r: QmpResponse): r is { error: { class: ErrorClass; desc: string } } {
  return "error" in r;
}
