import type { Choice, ChoiceLog } from "../choice-log.js";
import { Divergence, type Strategy } from "./strategy.js";

export interface ReplayOptions {
  /**
   * What to do when the run asks for more choices than the log holds: "fail"
   * (default) stops the run with a Divergence; a Strategy continues with it,
   * so a replay survives small changes to the code after the failure point.
   */
  afterEnd?: "fail" | Strategy;
}

/** Follows a recorded choice log and fails loudly where the run departs from it. */
export class ReplayStrategy implements Strategy {
  readonly name = "replay";
  constructor(private readonly log: ChoiceLog, private readonly opts: ReplayOptions = {}) {}

  private next(index: number, n: number, label: string | undefined, fallback: (s: Strategy) => number): number {
    if (index >= this.log.length) {
      const after = this.opts.afterEnd ?? "fail";
      if (after === "fail") {
        throw new Divergence(`replay diverged at choice #${index}: the run asks for a ${describe(n, label)} but the log has only ${this.log.length} entries`, index);
      }
      return fallback(after);
    }
    const c: Choice = this.log[index];
    const want = c.length === 3 ? c[2] : undefined;
    if (c[0] !== n || want !== label) {
      throw new Divergence(`replay diverged at choice #${index}: the log has a ${describe(c[0], want)} but the run asks for a ${describe(n, label)}`, index);
    }
    return c[1];
  }

  pickNext(n: number, ownerOf: (i: number) => number, index: number): number {
    return this.next(index, n, undefined, (s) => s.pickNext(n, ownerOf, index));
  }

  choose(label: string, n: number, index: number): number {
    return this.next(index, n, label, (s) => s.choose(label, n, index));
  }
}

function describe(n: number, label: string | undefined): string {
  return label === undefined ? `scheduling choice among ${n}` : `choose("${label}") among ${n}`;
}
