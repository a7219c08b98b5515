/**
 * A serve session's replay reports the jobs its commands left behind, as a
 * scenario run does (the report `replay` and `timeline` read).
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runReplay } from "../../cli/replay-subject.js";
import { makeServeReplay, writeServeReplay } from "../../serve/replay.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { readReplayFile } from "../../sim/scenario/replay.js";
import { RawClient, startServer } from "./helpers.js";

const SCENARIO = `
name: serve-jobs-at-end
devices:
  - { name: src.img, size: 8MiB, data: [{ offset: 0, length: 8MiB }], latency: 100us }
  - { name: dst.img, size: 8MiB, bandwidth: 16MB/s }
nodes:
  - { driver: raw, node-name: src, file: src.img }
  - { driver: raw, node-name: dst, file: dst.img }
`;

const dir = mkdtempSync(join(tmpdir(), "blocksim-serve-jobs-at-end-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("a serve session's jobs at its end", () => {
  it("the replay's report holds the backup the session left running", async () => {
    const s = await startServer({ scenario: SCENARIO, clock: { kind: "step" } });
    const c = await RawClient.connect(s.path);
    await c.negotiate();
    await c.cmd("blockdev-backup", { "job-id": "j0", device: "src", target: "dst", sync: "full" });
    // 10 ms of virtual time: 8 MiB at 16 MB/s takes about half a second.
    await c.cmd("x-blocksim-clock-step", { ns: 10_000_000 });
    c.close();
    await s.stop();
    const file = join(dir, "s.replay.json");
    writeServeReplay(file, makeServeReplay(s.server.world, loadScenarioText(SCENARIO, "test.yaml"), undefined, file, "step", s.server.actions, s.server.replies));
    const { report, problems } = runReplay(readReplayFile(file));
    expect(problems).toBeUndefined();
    expect(report.jobsAtEnd).toHaveLength(1);
    expect(report.jobsAtEnd[0]).toMatchObject({ id: "j0", type: "backup", status: "running", len: 8 * 1024 * 1024 });
    expect(report.jobsAtEnd[0].offset).toBeLessThan(8 * 1024 * 1024);
  });
});
