import { below, Streams } from "../prng.js";
import type { Strategy } from "./strategy.js";

/**
 * Uniformly random choices. Scheduling and environment choices draw from two
 * named streams of the seed, so adding `choose` calls does not reshuffle the
 * schedule (which keeps shrunk replays stable).
 */
export class RandomStrategy implements Strategy {
  readonly name = "random";
  private readonly sched;
  private readonly env;
  constructor(seed: number | string) {
    const streams = new Streams(seed);
    this.sched = streams.get("strategy/schedule");
    this.env = streams.get("strategy/choose");
  }
  pickNext(n: number): number {
    return below(this.sched, n);
  }
  choose(_label: string, n: number): number {
    return below(this.env, n);
  }
}
