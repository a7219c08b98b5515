/**
 * Goldens whose point is a mid-run progress value. The general comparison
 * takes mid-run progress as a range (it depends on timing); these goldens
 * were recorded where QEMU's value does not depend on timing, so the
 * simulator must give exactly the recorded one.
 */
import { describe, expect, it } from "vitest";
import { loadGolden, waitsOf } from "../../live/golden.js";
import { replay } from "../../live/spec-driver.js";
import { GOLDENS_DIR } from "./paths.js";

/** The progress of every query-jobs / query-block-jobs reply, in order. */
function progress(entries: readonly unknown[]): number[] {
  const out: number[] = [];
  for (const e of entries as { return?: unknown }[]) {
    if (!Array.isArray(e.return)) continue;
    for (const j of e.return as Record<string, unknown>[]) {
      const p = j["current-progress"] ?? j.offset;
      if (typeof p === "number") out.push(p);
    }
  }
  return out;
}

describe("mid-run progress that QEMU 7.2 pins exactly", () => {
  for (const [name, why] of [
    ["ratelimit_pause_resume", "a backup at 1 MiB/s stays at its first 1 MiB through two pause/resume cycles: the limit is checked again before each chunk"],
    ["cbw_read_error", "a failed copy-before-write copies nothing; the next one copies its 64 KiB cluster"],
    ["backup_block_status_qcow2", "block-copy zeroes what no image of the chain allocates: paused at 7 and 6 of 8 MiB, the data chunks' writes failed"],
    ["mirror_dirty_iterator_resumes", "the second iteration goes on where the first stopped: 32 MiB done, the rewritten first chunk still dirty"],
    ["block_status_qcow2_zero_cluster", "a qcow2 zero cluster over the backing's data is written as zeroes by backup and mirror: both paused at 1 of 4 MiB"],
    ["backup_error_action_restarts", "a new copy call after ignore or stop scans from 0: the failing first MiB is retried for ever, offset 0"],
  ] as const) {
    it(`${name}: ${why}`, () => {
      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      const { expected, observed } = replay(golden, waitsOf(golden));
      expect(progress(expected).length).toBeGreaterThan(1);
      expect(progress(observed)).toEqual(progress(expected));
    });
  }
});
