import type { Strategy } from "./strategy.js";

/** Always the oldest ready entry and option 0. Deterministic; never draws a random number. */
export class FifoStrategy implements Strategy {
  readonly name = "fifo";
  pickNext(): number {
    return 0;
  }
  choose(): number {
    return 0;
  }
}
