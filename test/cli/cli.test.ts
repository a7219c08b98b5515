/**
 * The blocksim command line. A few tests run the real binary as a
 * subprocess (each costs about a second of tsx start-up); the rest call
 * main() in-process with captured output.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, writeFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { parse } from "yaml";
import { main, type Io } from "../../cli/main.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const BIN = join(ROOT, "bin/blocksim.js");

function blocksim(...args: string[]) {
  const r = spawnSync(process.execPath, [BIN, ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
  return { code: r.status, stdout: r.stdout, stderr: r.stderr };
}

function capture(): Io & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", tty: false, out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
  return io;
}

async function run(...args: string[]) {
  const io = capture();
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const tmp = mkdtempSync(join(tmpdir(), "blocksim-cli-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("the real binary", () => {
  it("runs a scenario: the event log, PASS, exit 0", () => {
    const r = blocksim("run", "scenarios/stream.yaml");
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^scenario stream \(scenarios\/stream.yaml\)\nprofile current · seed 0 · strategy fifo\n/);
    expect(r.stdout).toMatch(/\n {4}0\.000000 ms {2}── setup ended after 0\.100000 ms .*; times count from here\n/);
    expect(r.stdout).toMatch(/\n {4}0\.000000 ms {2}client {3}> steps\[0\] block-stream \{"job-id":"stream0","device":"top","base-node":"base"\}\n/);
    expect(r.stdout).toMatch(/\n {4}0\.000000 ms {2}client {3}< steps\[0\] block-stream: return \{\}\n/);
    expect(r.stdout).toMatch(/event {6}JOB_STATUS_CHANGE \{"id":"stream0","status":"created"\}/);
    expect(r.stdout).toMatch(/\nPASS stream: 2 steps, 7 events, .*trace hash [0-9a-f]{16}\n$/);
  });

  it("bad input: exit 2 and an error per file, no stack trace", () => {
    const r = blocksim("run", "test/scenario/bad/05-bad-unit.yaml", "test/scenario/bad/11-node-typo.yaml", "no/such/file.yaml");
    expect(r.code).toBe(2);
    expect(r.stdout).toBe("");
    expect(r.stderr).toContain('test/scenario/bad/05-bad-unit.yaml:4:22: at devices[0].size: unknown unit "XB" in "64XB"');
    expect(r.stderr).toContain('test/scenario/bad/11-node-typo.yaml:6:34: at nodes[0].fil: unknown key "fil" (did you mean "file"?)');
    expect(r.stderr).toContain("no/such/file.yaml: cannot read the file: no such file");
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("--save-replay then replay reproduces the run exactly", () => {
    const replay = join(tmp, "txn.replay.json");
    const a = blocksim("run", "scenarios/txn-start-in-commit.yaml", "--strategy", "random", "--seed", "5", "--quiet", "--save-replay", replay);
    expect(a.code).toBe(0);
    const b = blocksim("replay", replay, "--quiet");
    expect(b.code).toBe(0);
    const hash = JSON.parse(readFileSync(replay, "utf8")).hash as string;
    expect(b.stdout).toContain(`REPLAY REPRODUCED ${replay}: same choices, trace hash ${hash}`);
  });

  it("npm start's command runs the transaction of backups", () => {
    const pkg = JSON.parse(readFileSync(join(ROOT, "package.json"), "utf8")) as { scripts: { start: string } };
    expect(pkg.scripts.start).toBe("node bin/blocksim.js run scenarios/transaction-of-backups.yaml");
    const out = execFileSync(process.execPath, [BIN, "run", "scenarios/transaction-of-backups.yaml", "--quiet"], { cwd: ROOT, encoding: "utf8" });
    expect(out).toMatch(/^PASS transaction-of-backups: /);
  });
});

describe("blocksim in-process", () => {
  it("--json prints QMP lines and a result line", async () => {
    const r = await run("run", join(ROOT, "scenarios/stream.yaml"), "--json");
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n").map((l) => JSON.parse(l) as Record<string, unknown>);
    expect(lines[0]).toEqual({ execute: "block-stream", arguments: { "job-id": "stream0", device: "top", "base-node": "base" } });
    expect(lines[1]).toMatchObject({ event: "JOB_STATUS_CHANGE", data: { id: "stream0", status: "created" }, timestamp: { seconds: 0 } });
    expect(lines.some((l) => "return" in l)).toBe(true);
    expect(lines[lines.length - 1]).toMatchObject({ blocksim: { scenario: "stream", ok: true, outcome: "ok", failures: [] } });
  });

  it("--trace prints the kernel trace instead of the event log", async () => {
    const r = await run("run", join(ROOT, "scenarios/stream.yaml"), "--trace");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/\n {3}-0\.100000 ms {2}sched {8}spawn \{"id":1,"name":"scenario"\}\n/);
    expect(r.stdout).toMatch(/\n {4}0\.000000 ms {2}── setup ended after 0\.100000 ms /);
    expect(r.stdout).toMatch(/ top\.qcow2 +io \{"op":"write"/);
    expect(r.stdout).not.toContain("> block-stream");
  });

  it("a failed expectation exits 1 with expected and observed", async () => {
    const file = join(tmp, "fails.yaml");
    writeFileSync(file, `name: fails
nodes:
  - { driver: null-co, node-name: a, size: 1MiB }
steps:
  - execute: query-jobs
    expect: { return: [{ id: j0 }] }
  - execute: job-pause
    arguments: { id: nope }
expect:
  jobs: { j0: concluded }
`);
    const r = await run("run", file, "--quiet");
    expect(r.code).toBe(1);
    expect(r.stdout).toContain("FAIL fails: 3 expectations failed");
    expect(r.stdout).toContain("  ✗ steps[0] query-jobs: the reply differs\n      expected:\n        return [{\"id\":\"j0\"}]\n      observed:\n        return []");
    expect(r.stdout).toContain("  ✗ steps[1] job-pause failed: error GenericError: Job not found");
    expect(r.stdout).toContain("  ✗ job 'j0' never existed");
  });

  it("replay: a tampered choice log departs and says where", async () => {
    const replay = join(tmp, "b.replay.json");
    expect((await run("run", join(ROOT, "scenarios/backup.yaml"), "--quiet", "--save-replay", replay)).code).toBe(0);
    const doc = JSON.parse(readFileSync(replay, "utf8")) as { choices: string; hash: string };
    writeFileSync(replay, JSON.stringify({ ...doc, choices: doc.choices.replace(/^1:[^,]*,/, "1:") }));
    const r = await run("replay", replay, "--quiet");
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/REPLAY DEPARTS from .*b\.replay\.json:\n {2}the run departs from the recorded choice log at choice #\d+ \(at -?\d+\.\d{6} ms, as the event log counts\): /);
    writeFileSync(replay, JSON.stringify({ ...doc, hash: "0000000000000000" }));
    const h = await run("replay", replay, "--quiet");
    expect(h.code).toBe(1);
    expect(h.stdout).toContain("trace hash");
    expect(h.stdout).toContain("differs from the recorded 0000000000000000");
  });

  it("replay: a replay file may hold its scenario inline", async () => {
    const replay = join(tmp, "s.replay.json");
    expect((await run("run", join(ROOT, "scenarios/stream.yaml"), "--quiet", "--save-replay", replay)).code).toBe(0);
    const doc = JSON.parse(readFileSync(replay, "utf8")) as Record<string, unknown>;
    // The scenario lies outside the replay file's folder, so the replay holds it inline (in its loaded form).
    expect(Object.keys(doc.subject as object)).toEqual(["inline"]);
    const inline = parse(readFileSync(join(ROOT, "scenarios/stream.yaml"), "utf8")) as Record<string, unknown>;
    // Imports of an inline scenario stay inside the replay file's folder tree: the fragment is copied beside it.
    writeFileSync(join(tmp, "qcow2-chain.yaml"), readFileSync(join(ROOT, "scenarios/fragments/qcow2-chain.yaml")));
    inline.import = ["qcow2-chain.yaml"];
    writeFileSync(replay, JSON.stringify({ ...doc, subject: { inline } }));
    const r = await run("replay", replay, "--quiet");
    expect(r.stdout).toContain(`REPLAY REPRODUCED ${replay}: same choices, trace hash ${doc.hash as string}`);
    expect(r.code).toBe(0);
    inline.import = [join(ROOT, "scenarios/fragments/qcow2-chain.yaml")];
    writeFileSync(replay, JSON.stringify({ ...doc, subject: { inline } }));
    const out = await run("replay", replay, "--quiet");
    expect(out.code).toBe(2);
    expect(out.stderr).toMatch(/outside the scenario's folder/);
  });

  it("replay: a scenario changed since the recording is named, and the departure shown", async () => {
    const scen = join(tmp, "stale.yaml"), replay = join(tmp, "stale.replay.json");
    const text = readFileSync(join(ROOT, "scenarios/error-actions.yaml"), "utf8");
    writeFileSync(scen, text);
    expect((await run("run", scen, "--quiet", "--save-replay", replay)).code).toBe(0);
    writeFileSync(scen, text.replace("{ name: src.img, size: 8MiB, latency: 100us,", "{ name: src.img, size: 8MiB, latency: 300us,"));
    const r = await run("replay", replay, "--quiet");
    expect(r.stderr).toMatch(/stale\.replay\.json: the scenario stale\.yaml \(or one of its imports\) changed since this replay was recorded \(sha256 [0-9a-f]{12}… then, [0-9a-f]{12}… now\)/);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/REPLAY DEPARTS[\s\S]*first differing event, #\d+:\n {6}recorded: \d+ /);
  });

  it("replay: a malformed replay file is bad input", async () => {
    const replay = join(tmp, "bad.replay.json");
    writeFileSync(replay, `{"blocksim-replay": 2, "subject": {"scenario": "x.yaml", "sha256": "${"0".repeat(64)}"}, "profile": "current", "seed": 0, "strategy": "fifo", "choices": "1:3.5", "hash": "abc", "ok": true, "violations": []}`);
    const r = await run("replay", replay);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/bad\.replay\.json:1:\d+: at hash: expected 16 hex digits \(a trace hash\)/);
    expect(r.stderr).not.toMatch(/\n\s+at /);
  });

  it("check-determinism compares hashes", async () => {
    const r = await run("check-determinism", join(ROOT, "scenarios/error-actions.yaml"), "--runs", "3", "--strategy", "random");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^DETERMINISTIC: 3 runs of .*error-actions.yaml \(profile current, seed 0, strategy random\) all have trace hash [0-9a-f]{16}, ok\n$/);
  });

  it("timeline writes a self-contained page for a scenario and for a replay", async () => {
    const out = join(tmp, "t.html");
    const r = await run("timeline", join(ROOT, "scenarios/commit.yaml"), "-o", out);
    expect(r.code).toBe(0);
    expect(r.stdout).toBe(`PASS commit: timeline written to ${out}\n`);
    expect(readFileSync(out, "utf8")).toContain('"label":"job commit1 (commit)"');
    const replay = join(tmp, "c.replay.json");
    await run("run", join(ROOT, "scenarios/commit.yaml"), "--quiet", "--save-replay", replay);
    expect((await run("timeline", replay, "-o", out)).code).toBe(0);
    expect((await run("timeline", join(ROOT, "scenarios/commit.yaml"))).stderr).toContain("timeline needs -o OUT.html");
  });

  it("shows a progress line on a terminal only, and never with --json", async () => {
    const io = { stdout: "", stderr: "", tty: true, out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
    expect(await main(["run", join(ROOT, "scenarios/stream.yaml"), "--quiet"], io)).toBe(0);
    expect(io.stderr).toMatch(/^(\r\x1b\[2Krunning .*stream\.yaml \(1\/1\)[^\r]* \(\d+\.\ds\))+\r\x1b\[2K$/);
    const json = { stdout: "", stderr: "", tty: true, out: (t: string) => void (json.stdout += t), err: (t: string) => void (json.stderr += t) };
    expect(await main(["run", join(ROOT, "scenarios/stream.yaml"), "--json"], json)).toBe(0);
    expect(json.stderr).toBe("");
    const pipe = await run("run", join(ROOT, "scenarios/stream.yaml"), "--quiet");
    expect(pipe.stderr).toBe("");
  });

  it("dispatches fuzz, explore and races to their commands", async () => {
    const races = await run("races", "--race", "cancel-error-stopped-job", "--budget", "2");
    expect(races.code).toBe(0);
    expect(races.stdout).toMatch(/^race\s+fixed by/);
    expect((await run("help", "explore")).stdout).toMatch(/^Usage: blocksim explore TARGET/);
    expect((await run("fuzz", "--help")).stdout).toMatch(/^Usage: blocksim fuzz/);
    expect((await run("--help")).stdout).toContain("  races                     the race catalog");
  });

  it("schema prints the scenario file's JSON Schema: strict objects, the step shapes", async () => {
    const r = await run("schema");
    expect(r.code).toBe(0);
    const schema = JSON.parse(r.stdout) as { title: string; required: string[]; additionalProperties: boolean; properties: Record<string, { items?: { anyOf?: unknown[] } }> };
    expect(schema.title).toBe("blocksim scenario file");
    expect(schema.required).toEqual(["name"]);
    expect(schema.additionalProperties).toBe(false);
    expect(Object.keys(schema.properties)).toEqual(expect.arrayContaining(["devices", "nodes", "guests", "steps", "expect", "limits", "domain"]));
    expect(schema.properties.steps.items?.anyOf?.length).toBe(7);
  });

  it("help, profiles, invariants and usage errors", async () => {
    expect((await run("--help")).stdout).toContain("Usage: blocksim <command> [options]");
    const help = await run("help", "run");
    expect(help.stdout).toContain("Usage: blocksim run FILE… [options]");
    expect(help.stdout).toContain("Examples:");
    expect((await run("run", "--help")).stdout).toBe(help.stdout);
    const profiles = await run("profiles");
    expect(profiles.stdout).toContain("no-start-shim\n");
    expect(profiles.stdout).toContain("txn-start-on-create\n");
    expect((await run("invariants")).stdout).toContain("txn-member-completes-before-commit (checked at every step)\n");
    const bad = await run("rnu", "x.yaml");
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/^blocksim: unknown command "rnu" \(did you mean "run"\?\); commands: check-determinism, commands, conform, convert-replay, events, explore, fuzz, .*; see: blocksim --help\n$/);
    const opt = await run("run", "x.yaml", "--seeed", "3");
    expect(opt.code).toBe(2);
    expect(opt.stderr).toContain("unknown option --seeed for 'run' (did you mean \"--seed\"?)");
    const prof = await run("run", "x.yaml", "--profile", "no-shim");
    expect(prof.code).toBe(2);
    expect(prof.stderr).toContain('unknown profile "no-shim"');
  });
});
