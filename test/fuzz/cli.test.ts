import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { exploreCommand } from "../../cli/explore.js";
import { main } from "../../cli/main.js";
import { fuzzCommand, parseShard, parseWallTime, shardCampaign, startAnotherWorker, type CliIo } from "../../cli/fuzz.js";
import { formatTable } from "../../cli/races.js";

const dir = mkdtempSync(join(tmpdir(), "blocksim-cli-fuzz-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
/** A path under the repository, whatever the working directory. */
const repo = (p: string) => new URL(`../../${p}`, import.meta.url).pathname;

function capture(): CliIo & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", tty: false, out(t: string) { io.stdout += t; }, err(t: string) { io.stderr += t; } };
  return io;
}

describe("blocksim races", () => {
  it("prints the table: found under the buggy profile, clean under the fixed one; exit 0", async () => {
    const io = capture();
    expect(await main(["races", "--race", "cancel-error-stopped-job", "--budget", "5"], io)).toBe(0);
    const lines = io.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^race\s+fixed by\s+found\s+runs\s+virtual\s+wall\s+shrunk \(picks\/non-FIFO\)\s+clean when fixed$/);
    expect(lines[2]).toMatch(/^cancel-error-stopped-job\s+qemu e321c0597c\s+yes\s+1\s+\d+\.\d ms\s+\d+ ms\s+0\/0\s+yes \(5 runs\)$/);
  });

  it("--replay is blocksim replay: the same output and exit code (1: the race reproduces, as it should)", async () => {
    const f = repo("scenarios/races/error-stop-stacks-pauses.replay.json");
    const io = capture(), viaReplay = capture(), viaFuzz = capture();
    expect(await main(["races", "--replay", f], io)).toBe(1);
    expect(await main(["replay", f], viaReplay)).toBe(1);
    expect(await fuzzCommand(["--replay", f], viaFuzz)).toBe(1);
    const file = JSON.parse(readFileSync(f, "utf8")) as { hash: string };
    expect(io.stdout).toContain(`REPLAY REPRODUCED ${f}: same choices, trace hash ${file.hash}, and the same failure`);
    expect(io.stdout).toContain("jobs-conclude violated");
    expect(viaReplay.stdout).toBe(io.stdout);
    expect(viaFuzz.stdout).toBe(io.stdout);
  });

  it("--replay takes replay's options and refuses the others with replay's error, in every spelling", async () => {
    const f = repo("scenarios/races/error-stop-stacks-pauses.replay.json");
    const want = capture();
    expect(await main(["replay", f, "--json"], want)).toBe(1);
    expect(want.stdout).toMatch(/"reproduced":true/);
    for (const args of [["fuzz", "--replay", f, "--json"], ["races", "--json", "--replay", f], ["fuzz", `--replay=${f}`, "--json"], ["serve", "--replay", f, "--json"]]) {
      const io = capture();
      expect(await main(args, io), args.join(" ")).toBe(1);
      expect(io.stdout, args.join(" ")).toBe(want.stdout);
    }
    for (const args of [["fuzz", "--runs", "5", "--replay", f], ["races", "--replay", f, "--budget", "3"]]) {
      const io = capture();
      expect(await main(args, io), args.join(" ")).toBe(2);
      expect(io.stderr, args.join(" ")).toMatch(/^blocksim: unknown option --(runs|budget) for 'replay'; see: blocksim help replay\n$/);
    }
  });

  it("hunts the files it is given and writes each found race's replay file, which blocksim replay reproduces", async () => {
    const io = capture(), out = join(dir, "races-out");
    mkdirSync(out);
    expect(await main(["races", repo("scenarios/races/set-speed-zero-no-kick.yaml"), "--budget", "5", "--out", out], io)).toBe(0);
    expect(readdirSync(out)).toEqual(["set-speed-zero-no-kick.replay.json"]);
    expect(io.stdout).toContain(`set-speed-zero-no-kick: replay file ${join(out, "set-speed-zero-no-kick.replay.json")}`);
    const again = capture();
    expect(await main(["races", "--replay", join(out, "set-speed-zero-no-kick.replay.json")], again)).toBe(1);
    expect(again.stdout).toMatch(/REPLAY REPRODUCED .*and the same failure/);
    expect(again.stdout).toContain("jobs-conclude");
  });

  it("refuses bad input with exit 2 and a clear message", async () => {
    const io = capture();
    expect(await main(["races", "--race", "nope"], io)).toBe(2);
    expect(io.stderr).toMatch(/^blocksim: races: unknown race 'nope'; known races: cancel-error-stopped-job, /);
    expect(await main(["races", "--budget", "0"], capture())).toBe(2);
    expect(await main(["races", "--bogus"], capture())).toBe(2);
    const noHeader = capture();
    expect(await main(["races", repo("scenarios/backup.yaml")], noHeader)).toBe(2);
    expect(noHeader.stderr).toContain("no `race:` header");
  });

  it("marks a race not found or not clean", () => {
    const t = formatTable([{ race: "r", file: "r.yaml", fixedBy: "qemu abc (x)", buggyProfile: "b", fixedProfile: "c", breaks: ["no-crash"], found: false, fixedRuns: 3, cleanUnderFixed: false, fixedFailure: "seed 2: boom" }]);
    expect(t.split("\n")[2]).toMatch(/^r\s+qemu abc\s+NO\s+-\s+-\s+-\s+-\s+NO$/);
    expect(t).toContain("r: no schedule broke no-crash under b in 3 runs");
    expect(t).toContain("r: under c, seed 2: boom");
  });
});

describe("blocksim explore", () => {
  it("exhaustive enumeration under the fixed profile covers the bounded space and finds nothing (exit 0)", () => {
    const io = capture();
    expect(exploreCommand(["mirror-soft-cancel-pre-ready", "--strategy", "exhaustive", "--profile", "current", "--max-choice-points", "3", "--max-preemptions", "1"], io)).toBe(0);
    expect(io.stdout).toMatch(/strategy exhaustive: (\d+) runs, \1 distinct schedules \(every schedule within the bounds\), 0 violating/);
  });

  it("a race by name: a walk under its buggy profile stops at the first violation, shrinks it and writes a replay that blocksim replay reproduces", async () => {
    const io = capture(), out = join(dir, "soft.json");
    expect(exploreCommand(["mirror-soft-cancel-pre-ready", "--strategy", "pct", "--budget", "50", "--out", out], io)).toBe(1);
    expect(io.stdout).toContain("profile mirror-soft-cancel-pre-ready");
    expect(io.stdout).toContain("cancel-honoured: cancelled in status running, yet completed successfully");
    expect(io.stdout).toContain(`replay: npx blocksim replay ${out}`);
    expect(JSON.parse(readFileSync(out, "utf8"))).toMatchObject({ "blocksim-replay": 2, subject: { inline: expect.objectContaining({ name: "mirror-soft-cancel-pre-ready" }) }, ok: false });
    const again = capture();
    expect(await main(["replay", out, "--quiet"], again)).toBe(1);
    expect(again.stdout).toMatch(/REPLAY REPRODUCED .*and the same failure/);
  });

  it("explores a scenario file by seeds, or exhaustively, and writes a replay that blocksim replay reproduces", async () => {
    const io = capture(), out = join(dir, "drain.replay.json");
    expect(exploreCommand([repo("scenarios/races/drain-during-job-io.yaml"), "--profile", "drain-ignores-jobs", "--out", out], io)).toBe(1);
    expect(io.stdout).toContain("job-io-in-drained-section");
    expect(io.stdout).toContain(`replay: npx blocksim replay ${out}`);
    expect(io.stdout).toContain(`timeline: npx blocksim timeline ${out} -o ${out.replace(/\.replay\.json$/, "")}.html`);
    // The scenario lies outside the replay file's folder: the replay holds it inline.
    expect(JSON.parse(readFileSync(out, "utf8"))).toMatchObject({ "blocksim-replay": 2, profile: "drain-ignores-jobs", subject: { inline: { name: "drain-during-job-io" } } });
    const clean = capture();
    expect(exploreCommand([repo("scenarios/races/drain-during-job-io.yaml"), "--strategy", "pct", "--budget", "10"], clean)).toBe(0);
    expect(clean.stdout).toMatch(/strategy pct: 10 runs, \d+ distinct schedules, 0 violating/);
    const ex = capture(), exOut = join(dir, "start-shim.exhaustive.replay.json");
    expect(exploreCommand([repo("scenarios/start-shim.yaml"), "--profile", "no-start-shim", "--strategy", "exhaustive", "--out", exOut], ex)).toBe(1);
    expect(ex.stdout).toContain("no-io-while-paused");
    expect(ex.stdout).toMatch(/shrunk schedule: \d+ picks/);
    const again = capture();
    expect(await main(["replay", exOut, "--quiet"], again)).toBe(1);
    expect(again.stdout).toMatch(/REPLAY REPRODUCED .*and the same failure/);
  });

  it("refuses an unknown strategy or target", async () => {
    const io = capture();
    expect(exploreCommand(["drain-during-job-io", "--strategy", "dfs"], io)).toBe(2);
    expect(io.stderr).toBe(`blocksim: --strategy expects random, pct or exhaustive, got "dfs"\n`);
    // races takes the same explorers, refused in the same words.
    const races = capture();
    expect(await main(["races", "--strategy", "dfs"], races)).toBe(2);
    expect(races.stderr).toBe(io.stderr);
    expect(exploreCommand(["no-such-race"], capture())).toBe(2);
  });
});

describe("one profile catalog", () => {
  it("fuzz and explore take a management-layer profile, and refuse an unknown one with run's error text", async () => {
    const io = capture();
    expect(await fuzzCommand(["--profile", "info-modify-job", "--runs", "3", "--out", join(dir, "mgmt.replay.json")], io)).toBe(0);
    expect(io.stdout).toContain("profile info-modify-job");
    const bad = capture(), badExplore = capture(), badRun = capture();
    expect(await fuzzCommand(["--profile", "no-shim", "--runs", "1"], bad)).toBe(2);
    expect(exploreCommand(["drain-during-job-io", "--profile", "no-shim"], badExplore)).toBe(2);
    expect(await main(["run", repo("scenarios/backup.yaml"), "--profile", "no-shim"], badRun)).toBe(2);
    expect(badRun.stderr).toMatch(/^blocksim: unknown profile "no-shim" \(did you mean "no-start-shim"\?\); known profiles: current, /);
    expect(bad.stderr).toBe(badRun.stderr);
    expect(badExplore.stderr).toBe(badRun.stderr);
  });
});

describe("every profile in every command", () => {
  it("run, check-determinism, timeline, fuzz (generated and of a file) and explore accept every profile blocksim profiles lists", async () => {
    const listed = capture();
    expect(await main(["profiles"], listed)).toBe(0);
    const names = listed.stdout.split("\n").filter((l) => l !== "" && !l.startsWith(" "));
    expect(names.length).toBeGreaterThan(20);
    const file = repo("scenarios/backup-null-co.json");
    for (const p of names) {
      // check-determinism and timeline read --profile as run does (cli/args.ts runOptions): one of them per profile keeps this short.
      const [other, ...rest] = p.length % 2 === 0 ? ["check-determinism", "--runs", "2"] : ["timeline", "-o", join(dir, "p.html")];
      const runs: [string, number][] = [
        ["run", await main(["run", file, "--quiet", "--profile", p], capture())],
        [other, await main([other, file, ...rest, "--profile", p], capture())],
        ["fuzz", await fuzzCommand(["--runs", "1", "--profile", p, "--out", join(dir, `p-${p}.replay.json`)], capture())],
        ["fuzz FILE", await fuzzCommand([file, "--runs", "1", "--profile", p, "--out", join(dir, `pf-${p}.replay.json`)], capture())],
        ["explore", exploreCommand([file, "--budget", "1", "--profile", p, "--out", join(dir, `pe-${p}.replay.json`)], capture())],
      ];
      // 0 or 1 (a buggy profile may break the run); never 2, bad input.
      for (const [cmd, code] of runs) expect(code, `${cmd} --profile ${p}`).not.toBe(2);
    }
  });
});

describe("blocksim fuzz", () => {
  it("finds the seed-000 race under no-start-shim, writes exactly one replay file, which replay and timeline accept", async () => {
    const sub = join(dir, "one");
    mkdirSync(sub);
    const io = capture(), out = join(sub, "shim.replay.json");
    expect(await fuzzCommand(["--profile", "no-start-shim", "--runs", "50", "--seed", "5", "--out", out], io)).toBe(1);
    expect(io.stdout).toContain("no-io-while-paused");
    expect(io.stdout).toContain(`replay: npx blocksim replay ${out}`);
    expect(io.stdout).toContain(`timeline: npx blocksim timeline ${out} -o ${join(sub, "shim.html")}`);
    expect(readdirSync(sub)).toEqual(["shim.replay.json"]);
    const again = capture(), viaFuzz = capture();
    expect(await main(["replay", out], again)).toBe(1);
    expect(again.stdout).toMatch(/REPLAY REPRODUCED .*and the same failure/);
    expect(await fuzzCommand(["--replay", out], viaFuzz)).toBe(1);
    expect(viaFuzz.stdout).toBe(again.stdout);
    expect(await main(["timeline", out, "-o", join(sub, "shim.html")], capture())).toBe(1);
    expect(readFileSync(join(sub, "shim.html"), "utf8")).toContain("no-io-while-paused");
  });

  it("--workers changes nothing: worker threads make the runs, output and replay file of one thread, the first failing run whichever thread found it", async () => {
    // drain-ignores-jobs at fast-check seed 1 first fails at run 272 (unit 2) and again at run 330 (unit 3):
    // with three threads at once, a later unit's failure may be found first and must not be the one reported.
    const outputs: string[] = [];
    for (const [name, workers, atOnce] of [["one-thread", "1", undefined], ["workers", "3", "1"], ["workers-auto", "2", undefined]] as const) {
      if (atOnce === undefined) delete process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE;
      else process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE = atOnce;
      const sub = join(dir, name);
      mkdirSync(sub);
      const io = capture();
      io.tty = true; // the progress line (standard error) counts the threads
      try {
        expect(await fuzzCommand(["--profile", "drain-ignores-jobs", "--runs", "400", "--seed", "1", "--workers", workers, "--out", join(sub, "f.replay.json")], io)).toBe(1);
      } finally {
        delete process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE;
      }
      if (atOnce) expect(io.stderr).toMatch(/ violations, [\d.]+ s, 3 threads +\n$/);
      if (workers === "1") expect(io.stderr).not.toContain("threads");
      expect(io.stdout).toMatch(/property failed after 273 runs \(fast-check seed 1, path 272:/);
      expect(readdirSync(sub)).toEqual(["f.replay.json"]);
      outputs.push(io.stdout.replaceAll(sub, "DIR") + readFileSync(join(sub, "f.replay.json"), "utf8").replaceAll(sub, "DIR"));
    }
    expect(outputs[1]).toBe(outputs[0]);
    expect(outputs[2]).toBe(outputs[0]);
  }, 90_000);

  it("starts a worker thread only when a core is idle and the worker can earn its warm-up back: at once in a long campaign, later when the runs left outlast a warm-up", () => {
    const idle = { idleCores: 1, msPerRun: 1, runningMs: 1000, firstWindow: false };
    expect(startAnotherWorker({ ...idle, runsUnclaimed: 1900 })).toBe(true); // ~1.9 s of runs left, a core idle
    expect(startAnotherWorker({ ...idle, runsUnclaimed: 1000 })).toBe(false); // about the warm-up: a worker would not pay for itself
    expect(startAnotherWorker({ ...idle, msPerRun: 2, runsUnclaimed: 1000 })).toBe(true); // the same runs, on a thread still cold
    expect(startAnotherWorker({ ...idle, idleCores: 0.2, runsUnclaimed: 100_000 })).toBe(false); // a loaded machine: no core to gain
    expect(startAnotherWorker({ ...idle, runsUnclaimed: 0 })).toBe(false);
    // still in this thread's own warm-up: its rate overstates what is left
    expect(startAnotherWorker({ ...idle, runningMs: 500, msPerRun: 3, runsUnclaimed: 1900 })).toBe(false);
    // the first window: a worker started now warms up beside this thread; a campaign of more than ~4,000 runs gets one
    const first = { ...idle, runningMs: 100, msPerRun: 4, firstWindow: true };
    expect(startAnotherWorker({ ...first, runsUnclaimed: 4050 })).toBe(true);
    expect(startAnotherWorker({ ...first, runsUnclaimed: 1950 })).toBe(false); // too short to earn a warm-up back, however slow the cold runs
    expect(startAnotherWorker({ ...first, idleCores: 0.3, runsUnclaimed: 100_000 })).toBe(false);
  });

  it("bad options get exit 2", async () => {
    const io = capture();
    expect(await fuzzCommand(["--shard", "3/2"], io)).toBe(2);
    expect(io.stderr).toBe(`blocksim fuzz: --shard expects i/n with 1 <= i <= n, got "3/2"\n`);
    expect(await fuzzCommand(["--profile", "nope"], capture())).toBe(2);
    expect(await fuzzCommand(["--time", "soon"], capture())).toBe(2);
    process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE = "soon";
    try {
      const bad = capture();
      expect(await fuzzCommand(["--workers", "2", "--runs", "2"], bad)).toBe(2);
      expect(bad.stderr).toBe(`blocksim fuzz: BLOCKSIM_FUZZ_WORKERS_AT_ONCE expects 1 (start the worker threads at once) or 0, got "soon"\n`);
    } finally {
      delete process.env.BLOCKSIM_FUZZ_WORKERS_AT_ONCE;
    }
  });

  it("shards split the seed space without overlap and cover it: shard i of n is seed+i-1 with its share of the runs", () => {
    expect([1, 2, 3].map((i) => shardCampaign(10, 600, { index: i, count: 3 }))).toEqual([{ seed: 10, runs: 200 }, { seed: 11, runs: 200 }, { seed: 12, runs: 200 }]);
    expect(shardCampaign(10, 601, { index: 1, count: 1 })).toEqual({ seed: 10, runs: 601 });
    expect(parseShard("2/4")).toEqual({ index: 2, count: 4 });
    expect(parseWallTime("30s")).toBe(30_000);
    expect(parseWallTime("2m")).toBe(120_000);
  });
});
