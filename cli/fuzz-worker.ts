/** A `blocksim fuzz --workers N` thread: runs one unit of the campaign and reports back. */
import { parentPort, workerData } from "node:worker_threads";
import { fuzzCheck } from "../sim/fuzz/index.js";

const job = (workerData as { fuzzJob: { seed: number; numRuns: number; profile: string; replayFile: string; timeMs?: number } }).fuzzJob;
let runs = 0, violations = 0;
const flush = () => {
  if (runs > 0) parentPort!.postMessage({ kind: "runs", runs, violations });
  runs = 0;
  violations = 0;
};
const failure = fuzzCheck({
  seed: job.seed, numRuns: job.numRuns, profile: job.profile, replayFile: job.replayFile, interruptAfterMs: job.timeMs,
  onRun: (r) => {
    runs++;
    if (r.violations.length > 0 || r.outcome.kind === "qemu-crash") violations++;
    if (runs >= 20) flush();
  },
});
flush();
parentPort!.postMessage({ kind: "done", failure });
