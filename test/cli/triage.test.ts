/**
 * blocksim triage: the replay files of several shards merge into one line
 * per distinct failure. The shards are real `blocksim fuzz --shard i/n`
 * campaigns under a profile whose race the fuzzer finds at once; one is run
 * through GNU parallel on localhost, as the README's recipe does, where
 * parallel is installed.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterAll, describe, expect, it } from "vitest";
import { main, type Io } from "../../cli/main.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const made: string[] = [];
const tempDir = (prefix: string) => {
  const d = mkdtempSync(join(tmpdir(), prefix));
  made.push(d);
  return d;
};
afterAll(() => { for (const d of made) rmSync(d, { recursive: true, force: true }); });

async function cli(argv: string[]): Promise<{ code: number; out: string; err: string }> {
  let out = "", err = "";
  const io: Io = { out: (t) => void (out += t), err: (t) => void (err += t), tty: false };
  const code = await main(argv, io);
  return { code, out, err };
}

describe("blocksim triage", () => {
  it("merges two shards' failures: one line per signature, the smallest file as the example; exit 1", async () => {
    const dir = tempDir("blocksim-triage-");
    const failed: number[] = [];
    for (const i of [1, 2]) {
      mkdirSync(join(dir, `shard-${i}`));
      const r = await cli(["fuzz", "--profile", "no-start-shim", "--runs", "40", "--shard", `${i}/2`, "--out", join(dir, `shard-${i}`, "failure.replay.json")]);
      if (r.code === 1) failed.push(i);
      else expect(r.code, r.err).toBe(0);
    }
    expect(failed.length).toBeGreaterThan(0); // the seed-000 race is found within 40 runs
    // The same failure found twice (a copy stands for a second machine's shard).
    mkdirSync(join(dir, "shard-3"));
    copyFileSync(join(dir, `shard-${failed[0]}`, "failure.replay.json"), join(dir, "shard-3", "failure.replay.json"));
    expect((await cli(["run", join(ROOT, "scenarios/backup.yaml"), "--quiet", "--save-replay", join(dir, "shard-3", "clean.replay.json")])).code).toBe(0);

    const r = await cli(["triage", join(dir, "shard-1"), join(dir, "shard-2"), join(dir, "shard-3")]);
    expect(r.code).toBe(1);
    const lines = r.out.trim().split("\n");
    expect(lines[0]).toMatch(new RegExp(`^\\d+ replay file\\(s\\), ${failed.length + 1} with a failure, ${failed.length} distinct$`));
    // Groups come largest first: the failure found twice, with the first file (by path) as its example.
    expect(lines[1]).toMatch(/^\s+2× \S*no-io-while-paused\S* under no-start-shim: /);
    expect(lines[2]).toBe(`       e.g. ${join(dir, `shard-${failed[0]}`, "failure.replay.json")}`);
  });

  it("exits 0 when no file records a failure, 2 for a missing folder", async () => {
    const dir = tempDir("blocksim-triage-");
    expect((await cli(["run", join(ROOT, "scenarios/backup.yaml"), "--quiet", "--save-replay", join(dir, "a.replay.json")])).code).toBe(0);
    writeFileSync(join(dir, "b.replay.json"), "{ not json");
    writeFileSync(join(dir, "c.replay.json"), JSON.stringify({ "blocksim-race-replay": 1, race: "txn-dead-pointer" }));
    const ok = await cli(["triage", dir]);
    expect(ok.code).toBe(0);
    expect(ok.out).toBe("3 replay file(s), 0 with a failure, 0 distinct, 2 skipped\n");
    expect(ok.err).toMatch(/skipped .*b\.replay\.json:1:\d+: not valid YAML\/JSON/);
    expect(ok.err).toContain(`skipped ${join(dir, "c.replay.json")}: an old replay format ("blocksim-race-replay" (a race of the catalog)); convert it with: blocksim convert-replay`);
    const missing = await cli(["triage", join(dir, "nope")]);
    expect(missing.code).toBe(2);
    expect(missing.err).toMatch(/triage: .*nope: no such file or folder/);
  });

  const parallel = spawnSync("parallel", ["--version"], { encoding: "utf8" });
  it.skipIf(parallel.status !== 0)("runs shards through GNU parallel on localhost (skips where GNU parallel is absent: apt-get install parallel)", () => {
    const dir = tempDir("blocksim-triage-parallel-");
    const bin = join(ROOT, "bin", "blocksim.js");
    const r = spawnSync("parallel", ["--will-cite", "-j2", "--sshlogin", ":", `${process.execPath} ${bin} fuzz --profile no-start-shim --runs 40 --shard {}/2 --out ${dir}/shard-{}.replay.json`, ":::", "1", "2"], { cwd: ROOT, encoding: "utf8" });
    // parallel's exit status counts the jobs that failed; a shard that found the race exits 1.
    expect(r.status, r.stderr).toBeGreaterThan(0);
    const t = spawnSync(process.execPath, [bin, "triage", dir], { cwd: ROOT, encoding: "utf8" });
    expect(t.status).toBe(1);
    expect(t.stdout).toMatch(new RegExp(`^\\d+ replay file\\(s\\), ${r.status} with a failure`));
  });
});
