/**
 * The verdict's rerun line: where a failing report shows one, it is a
 * command that runs the same run again (same trace hash, same failure);
 * where no command would (a fuzz case, a replay, a serve session that
 * stopped), it shows none.
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMain as cli } from "./run-main.js";
import { parseFuzzCase } from "../../sim/fuzz/case.js";
import { fuzzReport } from "../../sim/fuzz/report.js";
import { PickListStrategy } from "../../sim/harness/strategy.js";
import { verdict } from "../../sim/report/text.js";

const tmp = mkdtempSync(join(tmpdir(), "blocksim-rerun-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A POSIX shell's reading of a line of words made of bare, backslash-escaped and single-quoted parts. */
function shellWords(line: string): string[] {
  const words: string[] = [];
  const re = /\s*((?:[^\s'\\]+|\\.|'[^']*')+)/gy;
  for (let m = re.exec(line); m !== null && m[0] !== ""; m = re.exec(line)) words.push(m[1].replace(/'([^']*)'|\\(.)/g, (_, q: string | undefined, e: string | undefined) => q ?? e!));
  return words;
}

const rerunOf = (stdout: string) => /^ {2}rerun: (.*)$/m.exec(stdout)?.[1];
const verdictLine = (stdout: string) => /^(PASS|FAIL) .*$/m.exec(stdout)?.[0];

describe("the rerun line of blocksim run", () => {
  // A scenario whose path has a space and a quote, whose seed is a string (which --seed cannot spell),
  // importing a fragment from outside its folder (which needs --allow-import): each made the old line unrunnable.
  const dir = join(tmp, "it's my runs"), shared = join(tmp, "shared");
  mkdirSync(dir);
  mkdirSync(shared);
  writeFileSync(join(shared, "disks.yaml"), `devices:
  - { name: disk.img, size: 4MiB, latency: 100us, data: [{ offset: 0, length: 4MiB }] }
  - { name: backup.img, size: 4MiB, latency: 100us }
nodes:
  - { driver: raw, node-name: disk, file: disk.img }
  - { driver: raw, node-name: target, file: backup.img }
`);
  const file = join(dir, "failing backup.yaml");
  writeFileSync(file, `name: failing-backup
seed: "a string seed"
strategy: random
import: [../shared/disks.yaml]
guests:
  - { name: guest, node: disk, pattern: random, request-size: 64k, iodepth: 4, interval: 100us, stop: 3ms }
steps:
  - at: 1ms
    execute: blockdev-backup
    arguments: { job-id: b0, device: disk, target: target, sync: full }
expect:
  never: [BLOCK_JOB_COMPLETED]
`);

  for (const extra of [[], ["--seed", "5", "--profile", "no-start-shim", "--strategy", "pct"]]) {
    it(`runs the same run again${extra.length ? ` (${extra.join(" ")})` : ""}: same failure, same trace hash`, async () => {
      const first = await cli("run", file, "--allow-import", shared, "--quiet", ...extra);
      expect(first.code).toBe(1);
      const line = rerunOf(first.stdout);
      expect(line).toBeDefined();
      const words = shellWords(line!);
      expect(words.slice(0, 2)).toEqual(["blocksim", "run"]);
      const again = await cli(...words.slice(1), "--quiet");
      expect(again.stderr).toBe("");
      expect(again.code).toBe(1);
      expect(verdictLine(again.stdout)).toBe(verdictLine(first.stdout));
      expect(verdictLine(first.stdout)).toMatch(/trace hash [0-9a-f]{16}$/);
    });
  }
});

describe("reports without a rerun command show no rerun line", () => {
  it("a fuzz case (as fuzz reports a failure): no 'blocksim run (fuzz case)'", () => {
    const model = parseFuzzCase({
      devices: ["ds0", "dt0"].map((name) => ({ name, sizeBytes: 4194304, latencyNs: 100000 })),
      nodes: [{ driver: "raw", "node-name": "s0", file: "ds0" }, { driver: "raw", "node-name": "t0", file: "dt0" }],
      actions: [
        { atNs: 0, execute: "transaction", arguments: { actions: [{ type: "blockdev-backup", data: { "job-id": "j0", device: "s0", target: "t0", sync: "full" } }] } },
        { atNs: 0, execute: "job-cancel", arguments: { id: "j0" } },
      ],
      maxTimeNs: 30e9,
    }, "case.json", []);
    const r = fuzzReport(model, { profile: "no-start-shim", seed: 0, strategy: new PickListStrategy([]) });
    expect(r.ok).toBe(false); // a pause lost before the job's first start, as no-start-shim restores
    const text = verdict(r);
    expect(text).toMatch(/^FAIL /);
    expect(text).not.toContain("rerun:");
  });

  it("a serve session whose replay stops in setup: departs in one line, no stack trace, no 'blocksim run REPLAY.json'", async () => {
    const file = join(tmp, "stops.replay.json");
    const disk = (name: string) => ({ name, size: 1048576, latency: 100000, data: [{ offset: 0, length: 1048576 }] });
    writeFileSync(file, JSON.stringify({
      "blocksim-replay": 2,
      // Two devices filled at one instant: a choice the (emptied) choice log does not have.
      subject: { session: { inline: { name: "two-fills", devices: [disk("a.img"), disk("b.img")] }, clock: "virtual", actions: [{ t: 1000000, client: 0, execute: "query-jobs" }], "end-ns": 2000000, replies: [] } },
      profile: "current", seed: 0, strategy: "fifo", choices: [], hash: "0".repeat(16), ok: true, violations: [],
    }));
    const r = await cli("replay", file);
    expect(r.stderr).toBe("");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain(`REPLAY DEPARTS from ${file}:\n  the replay stopped: the scenario's setup stopped the simulation: a divergence from the replayed choice log at choice #0`);
    expect(r.stdout).not.toContain("rerun:");
  });
});
