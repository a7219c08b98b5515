/**
 * A `blocksim fuzz --workers N` thread: loaded once, it runs units of the
 * campaign until none is left unclaimed (cli/fuzz-units.ts); runs and the
 * first failing run are recorded in shared memory, and the main thread
 * shrinks and reports that run when every thread is done.
 */
import { workerData } from "node:worker_threads";
import { FuzzCampaign } from "../sim/fuzz/index.js";
import { campaignOf, runClaimedUnits, type WorkerJob } from "./fuzz-units.js";

const job = (workerData as { fuzzJob: WorkerJob }).fuzzJob;
runClaimedUnits(campaignOf(FuzzCampaign, job), job);
