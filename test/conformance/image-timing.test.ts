/**
 * The replay's image timing (README "Image timing"): each image file is a
 * device whose reads take two client round trips and writes four, so a job
 * on the qcow2 chain outlasts the command QEMU answered while it ran.
 */
import { describe, expect, it } from "vitest";
import { loadGolden, waitsOf } from "../../live/golden.js";
import { CHAIN, CLIENT_ROUND_TRIP_NS, IMAGE_READ_NS, IMAGE_WRITE_NS, imageDevices, replay } from "../../live/spec-driver.js";
import { GOLDENS_DIR } from "./paths.js";

describe("image timing in the conformance replay", () => {
  it("gives every image file two client round trips a read and four a write", () => {
    expect([IMAGE_READ_NS, IMAGE_WRITE_NS]).toEqual([2 * CLIENT_ROUND_TRIP_NS, 4 * CLIENT_ROUND_TRIP_NS]);
    for (const d of imageDevices(CHAIN)) expect([d.readLatencyNs, d.writeLatencyNs]).toEqual([IMAGE_READ_NS, IMAGE_WRITE_NS]);
  });

  it("a backup of the chain is still running when the command after its reply lands, and over 50 ms later", () => {
    const g = loadGolden(new URL("qcow2_backup_outlasts_round_trip.json", GOLDENS_DIR));
    const { observed } = replay(g, waitsOf(g));
    const queries = observed.flatMap((t, i) => ("cmd" in t && t.cmd === "query-jobs" ? [observed[i + 1]] : []));
    const status = (r: unknown) => ((r as { return: { status: string }[] }).return[0].status);
    expect(queries.map(status)).toEqual(["running", "concluded"]);
  });
});
