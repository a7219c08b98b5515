/**
 * How virtual time moves while real clients talk to the simulated QEMU.
 *
 * - realtime[:S]: virtual time follows the wall clock, S times as fast
 *   (realtime:100 = 1 s of job time per 10 ms of wall time).
 * - deterministic[:Q]: in the spirit of QEMU's qtest accelerator. A command
 *   runs to its reply on virtual time alone; between commands virtual time
 *   stands still while any client is busy (a command in flight, part of a
 *   request received, input within the last grace period) and moves by Q
 *   per grace period while every client waits. `x-blocksim-clock-step`
 *   moves it explicitly.
 * - step: only `x-blocksim-clock-step` moves virtual time.
 */
import { parseDuration } from "../sim/scenario/units.js";

export type ClockMode =
  | { kind: "realtime"; scale: number }
  | { kind: "deterministic"; quantumNs: number; graceMs: number }
  | { kind: "step" };

export const DEFAULT_GRACE_MS = 5;
export const DEFAULT_QUANTUM_NS = 10_000_000;

export class ClockError extends Error {}

export function parseClock(spec: string, graceMs = DEFAULT_GRACE_MS): ClockMode {
  const [name, arg, ...rest] = spec.split(":");
  if (rest.length > 0) throw new ClockError(`--clock ${spec}: expected realtime[:SCALE], deterministic[:QUANTUM] or step`);
  if (name === "realtime") {
    const scale = arg === undefined ? 1 : Number(arg);
    if (!Number.isFinite(scale) || scale <= 0 || scale > 1e6) throw new ClockError(`--clock ${spec}: SCALE must be a number in (0, 1000000], e.g. realtime:100 for 1 s of job time per 10 ms`);
    return { kind: "realtime", scale };
  }
  if (name === "deterministic" || name === "qtest") {
    let quantumNs = DEFAULT_QUANTUM_NS;
    if (arg !== undefined) {
      let q = NaN;
      try { q = parseDuration(arg); } catch { /* reported below */ }
      if (!(q > 0 && q <= 3600e9)) throw new ClockError(`--clock ${spec}: QUANTUM must be a duration in (0, 1h], e.g. deterministic:10ms`);
      quantumNs = q;
    }
    return { kind: "deterministic", quantumNs, graceMs };
  }
  if (name === "step" && arg === undefined) return { kind: "step" };
  throw new ClockError(`--clock ${spec}: expected realtime[:SCALE], deterministic[:QUANTUM] or step`);
}

export function describeClock(c: ClockMode): string {
  if (c.kind === "realtime") return c.scale === 1 ? "realtime" : `realtime:${c.scale}`;
  if (c.kind === "deterministic") return `deterministic:${c.quantumNs}ns per ${c.graceMs} ms idle`;
  return "step";
}
