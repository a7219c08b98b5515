/**
 * The replay's image timing (README "Image timing"): each image file is a
 * device whose requests take a latency plus their bytes at 2 GiB/s, each on
 * its own, whose flushes sync what was written since the last, and whose
 * qcow2 node opens with QEMU's metadata caches empty; the client takes a
 * measured round trip before each command. So a job on the
 * qcow2 chain outlasts the command QEMU answered while it ran.
 */
import { describe, expect, it } from "vitest";
import { loadGolden, waitsOf } from "../../live/golden.js";
import { firstDifference, optionalEntries, replay, REPLAY_TIMING } from "../../live/spec-driver.js";
import type { TranscriptEntry } from "../../sim/qmp/types.js";
import { GOLDENS_DIR } from "./paths.js";

/** The replies to each `cmd` in a transcript. */
const repliesTo = (observed: TranscriptEntry[], cmd: string) => observed.flatMap((t, i) => ("cmd" in t && t.cmd === cmd ? [observed[i + 1]] : []));

describe("image timing in the conformance replay", () => {
  it("a backup of the chain is still running when the command after its reply lands, and over 50 ms later", () => {
    const g = loadGolden(new URL("qcow2_backup_outlasts_round_trip.json", GOLDENS_DIR));
    const { observed } = replay(g, waitsOf(g));
    const status = (r: unknown) => ((r as { return: { status: string }[] }).return[0].status);
    expect(repliesTo(observed, "query-jobs").map(status)).toEqual(["running", "concluded"]);
  });

  it("a stream of the chain at 32 MiB/s is concluded at the fifth command after its start, as in every QEMU run; with a 0.3 ms round trip it ran at 1.5 MiB", () => {
    // stream_done_within_five_round_trips (10 runs; gen_chain_7250: 40 of 41 QEMU runs concluded, one at 1.5 MiB)
    const g = loadGolden(new URL("stream_done_within_five_round_trips.json", GOLDENS_DIR));
    const job = (t: TranscriptEntry) => (t as { return: { status: string; "current-progress": number }[] }).return[0];
    const measured = replay(g, waitsOf(g));
    expect(job(repliesTo(measured.observed, "query-jobs")[0])).toMatchObject({ status: "concluded", "current-progress": 4 << 20 });
    expect(firstDifference(measured.expected, measured.observed, optionalEntries(g))).toBeUndefined();
    const idle = replay(g, waitsOf(g), undefined, { ...REPLAY_TIMING, clientRoundTripNs: 300_000 });
    expect(job(repliesTo(idle.observed, "query-jobs")[0])).toMatchObject({ status: "running", "current-progress": 1.5 * (1 << 20) });
    expect(firstDifference(idle.expected, idle.observed, optionalEntries(g))).toBeDefined();
  });

  it("a mirror of the chain is still reading the images' refcount blocks and L2 tables at the query after its reply; with warm caches it is not", () => {
    const g = loadGolden(new URL("qcow2_mirror_first_status.json", GOLDENS_DIR));
    const job = (t: TranscriptEntry) => (t as { return: { busy: boolean; offset: number }[] }).return[0];
    const cold = replay(g, waitsOf(g));
    expect(job(repliesTo(cold.observed, "query-block-jobs")[0])).toMatchObject({ busy: true, offset: 0 });
    expect(firstDifference(cold.expected, cold.observed, optionalEntries(g))).toBeUndefined();
    // generated seed 527: the block status was instant, so the zeroing of the last MiB had landed
    const warm = replay(g, waitsOf(g), undefined, { ...REPLAY_TIMING, coldMetadataCaches: false });
    expect(job(repliesTo(warm.observed, "query-block-jobs")[0])).toMatchObject({ busy: false, offset: 1 << 20 });
    expect(firstDifference(warm.expected, warm.observed, optionalEntries(g))).toBeDefined();
  });

  it("an active commit's flush before READY syncs the 2 MiB it wrote: the query after the write that kicked it finds it running; without the sync, ready", () => {
    const g = loadGolden(new URL("qcow2_flush_before_ready.json", GOLDENS_DIR));
    const status = (t: TranscriptEntry) => (t as { return: { status: string }[] }).return[0].status;
    const synced = replay(g, waitsOf(g));
    expect(repliesTo(synced.observed, "query-jobs").map(status)).toEqual(["running", "ready"]);
    expect(firstDifference(synced.expected, synced.observed, optionalEntries(g))).toBeUndefined();
    // generated seed 323: a flush that takes only its latency
    const quick = replay(g, waitsOf(g), undefined, { ...REPLAY_TIMING, imageFlushBytesPerSec: 0 });
    expect(repliesTo(quick.observed, "query-jobs").map(status)).toEqual(["ready", "ready"]);
  });
});
