/**
 * A strategy answers the scheduler's two questions at a choice point: which of
 * the n entries ready at this instant runs next, and which option an
 * environment `choose` takes. The scheduler records every answer in the
 * choice log, whatever the strategy, so any run can be replayed.
 */
export interface Strategy {
  readonly name: string;
  /**
   * Picks 0..n-1 among the ready entries, in FIFO order. `ownerOf(i)` is the
   * actor (process) id behind entry i. `index` counts choice points so far.
   */
  pickNext(n: number, ownerOf: (i: number) => number, index: number): number;
  /** Picks 0..n-1 for `choose(label, n)`. */
  choose(label: string, n: number, index: number): number;
}

/** Thrown by a strategy (replay) when the run no longer matches what it expects. */
export class Divergence extends Error {
  constructor(message: string, readonly index: number) {
    super(message);
    this.name = "Divergence";
  }
}
