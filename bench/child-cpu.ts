/**
 * CPU seconds (user + system) of every child process this one has waited
 * for so far: /proc/self/stat's cutime and cstime (Linux; 10 ms ticks, so
 * sum over many runs). Undefined where /proc is absent.
 */
import { existsSync, readFileSync } from "node:fs";

const TICK_S = 0.01;

export function childrenCpu(): number | undefined {
  if (!existsSync("/proc/self/stat")) return undefined;
  const stat = readFileSync("/proc/self/stat", "utf8");
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  return (Number(fields[13]) + Number(fields[14])) * TICK_S; // fields 16 and 17 of proc(5), counted from state
}
