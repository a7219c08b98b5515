// `npx blocksim …` runs blocksim as the child of a shell that npm starts
// (npm → sh -c → node). npm forwards SIGTERM and SIGINT to that shell only,
// and nothing forwards SIGHUP, so killing npm left blocksim running on and
// writing its output. A run holds the main thread for its whole length, so
// JavaScript there cannot watch for signals: a small worker thread checks
// four times a second that the shell and npm are both still there and, once
// one is gone, ends the process with SIGTERM — never while an output file is
// between its temporary file and its rename. It starts before anything else
// is loaded (loading the sources through tsx can take seconds, and npm may
// be gone by then). Only when npm's shell is the parent, on Linux (/proc).
import { readFileSync } from "node:fs";
import { Worker } from "node:worker_threads";

/**
 * Where sim/scenario/output-file.ts finds the cell it shares with the
 * worker: 0 idle, 1 an output file is being written, 2 the process is
 * ending. (A global, because the bundle or the sources are loaded after this.)
 */
export const OUTPUT_GUARD = Symbol.for("blocksim.output-guard");

/** The parent of a process, from /proc (undefined when it is gone or there is no /proc). */
function parentOf(pid) {
  try {
    const stat = readFileSync(`/proc/${pid}/stat`, "utf8");
    return Number(stat.slice(stat.lastIndexOf(")") + 2).split(" ")[1]);
  } catch {
    return undefined;
  }
}

function commandOf(pid) {
  try {
    return readFileSync(`/proc/${pid}/comm`, "utf8").trim();
  } catch {
    return undefined;
  }
}

const WATCH = `
const { workerData: { cell, shell, npm } } = require("node:worker_threads");
const { readFileSync } = require("node:fs");
${parentOf.toString()}
const timer = setInterval(() => {
  if (parentOf(process.pid) === shell && parentOf(shell) === npm) return;
  // Wait out an output file being written (1), then hold the cell (2) so no new one starts.
  while (Atomics.compareExchange(cell, 0, 0, 2) !== 0) Atomics.wait(cell, 0, 1, 100);
  process.kill(process.pid, "SIGTERM");
  // Still here: a command handles SIGTERM itself (serve, record) and may write on its way out.
  clearInterval(timer);
  Atomics.store(cell, 0, 0);
  Atomics.notify(cell, 0);
}, 250);
`;

/** Ends this process when the npm that started it (or npm's shell) is gone. */
export function guardAgainstOrphaning() {
  if (process.env.npm_lifecycle_event === undefined || process.platform !== "linux") return;
  const shell = process.ppid;
  if (!/^(sh|dash|bash|ash|zsh)$/.test(commandOf(shell) ?? "")) return;
  const npm = parentOf(shell);
  if (npm === undefined) return;
  const cell = new Int32Array(new SharedArrayBuffer(4));
  globalThis[OUTPUT_GUARD] = cell;
  new Worker(WATCH, { eval: true, workerData: { cell, shell, npm } }).unref();
}
