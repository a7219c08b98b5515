/**
 * Client processes: management applications calling the domain's APIs,
 * each on its own thread (a process here), any number of them at once.
 *
 * - poller: calls virDomainGetBlockJobInfo, waits for the answer, sleeps
 *   `intervalNs`, and again (a serial polling loop, as `virsh blockjob` and
 *   the client code cefe0ba3d's message mentions do). Every answer is kept.
 * - aborter: at `atNs`, virDomainBlockJobAbort (synchronous unless asked).
 * - starter: runs a list of timed steps (any API), in order.
 * A failed call (VirError) is recorded and the client goes on.
 */
import { sleep, now, type Process } from "../scheduler/index.js";
import { getBlockJobInfo, blockJobAbort, type AbortFlags, type BlockJobInfo } from "./api.js";
import type { Domain } from "./domain.js";
import { VirError } from "./errors.js";

/** One answer a poller got. */
export interface PollSample {
  /** When the call was made and when it returned, ns. */
  callNs: number;
  returnNs: number;
  /** The job's progress, null for "no job", or the error text. */
  info: BlockJobInfo | null;
  error?: string;
}

export interface PollerOptions {
  disk: string;
  intervalNs: number;
  /** First call at this time (default: now). */
  startNs?: number;
  /** No call is started at or after this time. */
  untilNs?: number;
  /** Stop after this many calls. */
  count?: number;
  /** Stop after the first "no job" answer that follows a job having been seen. */
  stopWhenGone?: boolean;
}

function* sleepUntil(tNs: number): Process<void> {
  const t = (yield now()) as number;
  if (tNs > t) yield sleep(tNs - t);
}

export function* poller(dom: Domain, client: string, o: PollerOptions): Process<PollSample[]> {
  const samples: PollSample[] = [];
  if (o.startNs !== undefined) yield* sleepUntil(o.startNs);
  let seen = false;
  for (let i = 0; o.count === undefined || i < o.count; i++) {
    const callNs = (yield now()) as number;
    if (o.untilNs !== undefined && callNs >= o.untilNs) break;
    try {
      const info = yield* getBlockJobInfo(dom, client, o.disk);
      samples.push({ callNs, returnNs: (yield now()) as number, info });
      if (info) seen = true;
      else if (seen && o.stopWhenGone) break;
    } catch (e) {
      if (!(e instanceof VirError)) throw e;
      samples.push({ callNs, returnNs: (yield now()) as number, info: null, error: e.message });
    }
    yield sleep(o.intervalNs);
  }
  return samples;
}

export interface AborterResult {
  callNs: number;
  returnNs: number;
  error?: string;
}

export function* aborter(dom: Domain, client: string, o: { disk: string; atNs: number; flags?: AbortFlags }): Process<AborterResult> {
  yield* sleepUntil(o.atNs);
  const callNs = (yield now()) as number;
  try {
    yield* blockJobAbort(dom, client, o.disk, o.flags);
    return { callNs, returnNs: (yield now()) as number };
  } catch (e) {
    if (!(e instanceof VirError)) throw e;
    return { callNs, returnNs: (yield now()) as number, error: e.message };
  }
}

/** A step of a starter: at `atNs` (absolute), run `op`. */
export interface Step {
  atNs: number;
  op: (dom: Domain, client: string) => Process<unknown>;
}

export function* starter(dom: Domain, client: string, steps: readonly Step[]): Process<{ errors: string[] }> {
  const errors: string[] = [];
  for (const s of steps) {
    yield* sleepUntil(s.atNs);
    try {
      yield* s.op(dom, client);
    } catch (e) {
      if (!(e instanceof VirError)) throw e;
      errors.push(e.message);
    }
  }
  return { errors };
}
