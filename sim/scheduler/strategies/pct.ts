import { below, Streams } from "../prng.js";
import type { Strategy } from "./strategy.js";

export interface PctOptions {
  /** Bug depth d: d-1 priority change points (default 3). */
  depth?: number;
  /** Expected number of choice points k; change points are drawn from 1..k (default 1000). */
  expectedChoices?: number;
}

/**
 * Probabilistic Concurrency Testing (Burckhardt et al., ASPLOS 2010). Each
 * actor gets a random priority when first seen (all above d); the highest
 * priority ready actor runs; at each of d-1 randomly placed choice points the
 * actor that was picked drops to priority d-i, below every initial priority.
 * A bug of depth d is found with probability at least 1/(n k^(d-1)).
 */
export class PctStrategy implements Strategy {
  readonly name = "pct";
  private readonly rng;
  private readonly env;
  private readonly priority = new Map<number, number>();
  private readonly changeAt: number[];
  readonly depth: number;

  constructor(seed: number | string, opts: PctOptions = {}) {
    const streams = new Streams(seed);
    this.rng = streams.get("strategy/pct");
    this.env = streams.get("strategy/choose");
    this.depth = opts.depth ?? 3;
    const k = opts.expectedChoices ?? 1000;
    if (!Number.isInteger(this.depth) || this.depth < 1) throw new Error(`pct: depth must be an integer >= 1, got ${opts.depth}`);
    if (!Number.isInteger(k) || k < 1) throw new Error(`pct: expectedChoices must be an integer >= 1, got ${opts.expectedChoices}`);
    this.changeAt = [];
    for (let i = 1; i < this.depth; i++) this.changeAt.push(1 + below(this.rng, k));
  }

  private prio(owner: number): number {
    let p = this.priority.get(owner);
    if (p === undefined) {
      p = this.depth + this.rng(); // distinct with probability 1; ties go to the older entry
      this.priority.set(owner, p);
    }
    return p;
  }

  pickNext(n: number, ownerOf: (i: number) => number, index: number): number {
    let best = 0, bestPrio = this.prio(ownerOf(0));
    for (let i = 1; i < n; i++) {
      const p = this.prio(ownerOf(i));
      if (p > bestPrio) { best = i; bestPrio = p; }
    }
    for (let i = 0; i < this.changeAt.length; i++) {
      if (this.changeAt[i] === index + 1) this.priority.set(ownerOf(best), this.depth - 1 - i);
    }
    return best;
  }

  choose(_label: string, n: number): number {
    return below(this.env, n);
  }
}
