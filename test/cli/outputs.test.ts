/**
 * Outputs and the terminal (issue 19): bad output targets get blocksim's own
 * one-line error and exit 2 before any work; files are replaced atomically
 * (a new file renamed into place, never truncated in place); a full disk on
 * stdout is exit 2 with a message; control characters from a scenario are
 * escaped on the terminal; timeline and check-determinism treat bad input
 * as run does.
 */
import { spawnSync } from "node:child_process";
import { mkdtempSync, openSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMain as run } from "./run-main.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "blocksim-out-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("output targets", () => {
  const targets = [tmp, join(tmp, "missing", "x.json"), "", "/dev/full", "/proc/x.json", "/sys/x.json"];

  it("--save-replay, -o and fuzz --out refuse a folder, a missing folder, '', /dev/full, /proc, /sys: one line, exit 2, nothing run", async () => {
    for (const t of targets) {
      for (const args of [["run", "scenarios/backup.yaml", "--save-replay", t], ["timeline", "scenarios/backup.yaml", "-o", t]]) {
        const r = await run(...args);
        expect(r.code, `${args.join(" ")}`).toBe(2);
        expect(r.stderr, `${args.join(" ")}`).toMatch(/^blocksim: (cannot write (--save-replay|-o) .*|(--save-replay|-o) expects a file path.*)\n$/);
        expect(r.stdout).toBe("");
      }
    }
  });

  it("replaces a file atomically: a new file is renamed over the old one, no temporary file is left", async () => {
    const out = join(tmp, "r.json");
    writeFileSync(out, "old");
    const before = statSync(out).ino;
    expect((await run("run", "scenarios/backup.yaml", "--quiet", "--save-replay", out)).code).toBe(0);
    expect(statSync(out).ino).not.toBe(before);
    expect(JSON.parse(readFileSync(out, "utf8"))["blocksim-replay"]).toBe(2);
    expect(readdirSync(tmp).filter((f) => f.includes(".tmp"))).toEqual([]);
  });
});

describe("timeline and check-determinism treat input as run does", () => {
  it("a world that cannot be built is exit 2 everywhere; timeline exits 1 on a failing run, as run", async () => {
    const bad = join(tmp, "bad-world.yaml");
    writeFileSync(bad, "name: w\nnodes: [{ driver: null-co, node-name: q, size: 1MiB }]\nguests: [{ node: q, region: { offset: 2MiB, length: 1MiB } }]\n");
    for (const args of [["run", bad], ["timeline", bad, "-o", join(tmp, "w.html")], ["check-determinism", bad]]) {
      const x = await run(...args);
      expect(x.code, args[0]).toBe(2);
      expect(x.stderr, args[0]).toMatch(/^blocksim: .*bad-world\.yaml: the scenario's world could not be built:\n {2}guest "guest": the region/);
    }
    const failing = join(tmp, "failing.yaml");
    writeFileSync(failing, "name: f\nsteps: [{ at: 1ms, execute: job-pause, arguments: { id: nope } }]\n");
    expect((await run("timeline", failing, "-o", join(tmp, "f.html"))).code).toBe(1);
  });
});

describe("the real binary", () => {
  const bin = (args: string[], stdout: "pipe" | number = "pipe") =>
    spawnSync(process.execPath, [join(ROOT, "bin/blocksim.js"), ...args], { cwd: ROOT, encoding: "utf8", timeout: 60_000, stdio: ["ignore", stdout, "pipe"] });

  it("stdout on a full disk: blocksim's own line on stderr, exit 2", () => {
    const r = bin(["run", "scenarios/backup.yaml"], openSync("/dev/full", "w"));
    expect(r.stderr).toBe("blocksim: cannot write to standard output: no space left on the device\n");
    expect(r.status).toBe(2);
  });

  it("control characters from a scenario are escaped on the terminal (no fake PASS over a FAIL)", () => {
    const f = join(tmp, "esc.yaml");
    writeFileSync(f, 'name: "x\\u001b]0;evil\\u0007 \\u202eSSAP\\r PASS"\nsteps: [{ at: 1ms, execute: "query-jobs\\u001b[2K\\u0000", expect: error }]\n');
    const r = bin(["run", f]);
    expect(r.stdout).not.toMatch(/[\u0000\u001b\u0007\u202e\r]/);
    expect(r.stdout).toContain("x\\u001b]0;evil\\u0007 \\u202eSSAP\\u000d PASS");
    const j = bin(["run", f, "--json"]);
    expect(JSON.parse(j.stdout.trim().split("\n").pop()!).blocksim.scenario).toBe("x\u001b]0;evil\u0007 \u202eSSAP\r PASS");
  });
});
