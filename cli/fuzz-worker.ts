/**
 * A `blocksim fuzz --workers N` thread: loaded once, it runs units of the
 * campaign until none is left unclaimed (cli/fuzz-units.ts), reporting each
 * finished unit to the main thread; runs are counted in shared memory.
 */
import { parentPort, workerData } from "node:worker_threads";
import { fuzzCheck } from "../sim/fuzz/index.js";
import { runClaimedUnits, type WorkerJob } from "./fuzz-units.js";

runClaimedUnits(fuzzCheck, (workerData as { fuzzJob: WorkerJob }).fuzzJob, (index, failure) => parentPort!.postMessage({ index, failure }));
