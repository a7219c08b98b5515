/**
 * Strategies as objects: who answers the choice points of one run. Names
 * appear only where a person types one (a scenario file, the command line)
 * and are turned into objects here, once.
 */
import { FifoStrategy, PctStrategy, RandomStrategy, type ChoiceLog, type PctOptions, type Strategy } from "../scheduler/index.js";

export const STRATEGY_NAMES = ["fifo", "random", "pct"] as const;
export type StrategyName = (typeof STRATEGY_NAMES)[number];

/** The strategy object a name stands for, seeded. */
export function strategyByName(name: StrategyName, seed: number | string, pct: PctOptions = {}): Strategy {
  if (name === "random") return new RandomStrategy(seed);
  if (name === "pct") return new PctStrategy(seed, pct);
  return new FifoStrategy();
}

/**
 * Answers choice point i with `picks[i] % n`, and 0 (the FIFO answer) past
 * the end of the list. A shorter list, or smaller entries, is a simpler
 * schedule: the order shrinking moves in.
 */
export class PickListStrategy implements Strategy {
  readonly name = "picks";
  /** The width n of every choice point met, in order. */
  readonly widths: number[] = [];
  constructor(readonly picks: readonly number[]) {}
  private pick(n: number, index: number): number {
    this.widths[index] = n;
    const p = this.picks[index];
    return p === undefined ? 0 : p % n;
  }
  pickNext(n: number, _ownerOf: (i: number) => number, index: number): number {
    return this.pick(n, index);
  }
  choose(_label: string, n: number, index: number): number {
    return this.pick(n, index);
  }
}

/** The picks a choice log took, as a pick list. */
export const picksOf = (log: ChoiceLog): number[] => log.map((c) => c[1]);
