/**
 * Exploration reaches only orders QEMU can produce: a golden recorded from
 * QEMU 7.2 replays under random schedules as it does under FIFO where QEMU
 * leaves no choice. txn_individual: a blkdebug write error comes back from a
 * bottom half (a co_schedule of the request's coroutine), and the backup
 * coroutine its copy tasks wake runs inside that bottom half (the wakers'
 * co_queue_wakeup); so BLOCK_JOB_ERROR always precedes the transaction's
 * reply, as in every recorded run.
 */
import { describe, expect, it } from "vitest";
import { loadGolden, waitsOf } from "../../live/golden.js";
import { firstDifference, optionalEntries, replay, showDifference } from "../../live/spec-driver.js";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { GOLDENS_DIR } from "./paths.js";

describe("goldens under random schedules", () => {
  it("txn_individual: 20 random schedules match the recording", () => {
    const golden = loadGolden(new URL("txn_individual.json", GOLDENS_DIR));
    for (let seed = 1; seed <= 20; seed++) {
      const { expected, observed } = replay(golden, waitsOf(golden), new RandomStrategy(seed));
      const d = firstDifference(expected, observed, optionalEntries(golden));
      expect(d && `seed ${seed} departs at entry ${d.at}:\n${showDifference(expected, observed, d)}`).toBeUndefined();
    }
  });
});
