/**
 * The live progress line of `blocksim run` (issue 18): on a terminal it is
 * redrawn in place while a long run goes on, with virtual time since setup
 * and each job's offset of len; piped, nothing. The simulation offers a
 * look every PROGRESS_EVERY_STEPS kernel steps and the run stays the same.
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { main, type Io } from "../../cli/main.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { PROGRESS_EVERY_STEPS, runScenario, type RunProgress } from "../../sim/scenario/runner.js";

const ROOT = new URL("../../", import.meta.url).pathname;
// Made when the tests start (not when the file is loaded), so a file loaded but not run leaves nothing behind.
let tmp = "", file = "";
beforeAll(() => {
  tmp = mkdtempSync(join(tmpdir(), "blocksim-progress-"));
  file = join(tmp, "long.yaml");
  writeFileSync(file, LONG);
});
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

// A mirror long enough for a few looks (about 60,000 kernel steps), with a guest writing under it.
const LONG = `name: long-mirror
devices: [{ name: s, size: 32MiB, data: [{ offset: 0, length: 32MiB }] }, { name: t, size: 32MiB, bandwidth: 100MB/s }]
nodes: [{ driver: raw, node-name: src, file: s }, { driver: raw, node-name: tgt, file: t }]
guests: [{ name: g, node: src, pattern: random, request-size: 4k, iodepth: 2, interval: 50us, stop: 300ms }]
steps:
  - at: 1ms
    execute: blockdev-mirror
    arguments: { job-id: m0, device: src, target: tgt, sync: full }
  - on-event: { event: BLOCK_JOB_READY }
    execute: job-complete
    arguments: { id: m0 }
`;

function io(tty: boolean, columns?: number): Io & { stdout: string; stderr: string } {
  const o = { stdout: "", stderr: "", tty, ...(columns ? { columns } : {}), out: (t: string) => void (o.stdout += t), err: (t: string) => void (o.stderr += t) };
  return o;
}

describe("the progress line", () => {
  it("the run offers a look every so many kernel steps and is the same run with or without it", () => {
    const looks: RunProgress[] = [];
    const seen = runScenario(loadScenarioText(LONG), { onProgress: (p) => looks.push(p) });
    const plain = runScenario(loadScenarioText(LONG));
    expect(seen.hash).toBe(plain.hash);
    // a look at least every PROGRESS_EVERY_STEPS steps (a process that keeps the processor may carry the count past one)
    expect(looks.length).toBeGreaterThanOrEqual(2);
    expect(looks.length).toBeLessThanOrEqual(Math.floor(plain.kernelSteps / PROGRESS_EVERY_STEPS));
    expect(looks[0].kernelSteps).toBeGreaterThanOrEqual(PROGRESS_EVERY_STEPS);
    for (let i = 1; i < looks.length; i++) expect(looks[i].kernelSteps - looks[i - 1].kernelSteps).toBeGreaterThanOrEqual(PROGRESS_EVERY_STEPS);
    const mirror = looks.filter((l) => l.setupDone).map((l) => l.jobs.find((j) => j.id === "m0")).filter((j) => j !== undefined);
    expect(mirror.length).toBeGreaterThanOrEqual(2);
    expect(mirror[0]!.offset).toBeLessThan(mirror.at(-1)!.offset); // it moves
    expect(looks.at(-1)!.sinceSetupNs).toBeLessThanOrEqual(plain.endTimeNs);
  });

  it("on a terminal: redrawn in place with virtual time and the mirror's offset of len, then cleared; the report is the piped one", async () => {
    const term = io(true, 200);
    expect(await main(["run", file], term)).toBe(0);
    const draws = term.stderr.split("\r\x1b[2K");
    expect(draws[0]).toBe("");
    expect(draws.at(-1)).toBe(""); // the line is cleared before the report
    const updates = draws.filter((d) => d.includes("virtual"));
    expect(updates.length).toBeGreaterThanOrEqual(1);
    expect(updates[0]).toMatch(/^running .*long\.yaml \(1\/1\): \d+\.\d{6} ms virtual, \d+ events?, \d+ kernel steps; job m0 \(mirror\) running [\d.]+(MiB|KiB|B) of [\d.]+MiB \(\d+%\) \(\d+\.\ds\)$/);
    const piped = io(false);
    expect(await main(["run", file], piped)).toBe(0);
    expect(piped.stderr).toBe("");
    expect(term.stdout).toBe(piped.stdout);
    expect(term.stdout).toMatch(/\nPASS long-mirror: /);
  });

  it("never wider than the terminal", async () => {
    const narrow = io(true, 60);
    expect(await main(["run", file, "--quiet"], narrow)).toBe(0);
    for (const d of narrow.stderr.split("\r\x1b[2K")) expect(d.length).toBeLessThan(60);
    expect(narrow.stderr).toContain("…");
  });

  it.skipIf(!existsSync("/usr/bin/script"))("through a pseudo-terminal (util-linux script): drawn; piped: nothing on stderr", () => {
    const r = spawnSync("/usr/bin/script", ["-qec", `${process.execPath} bin/blocksim.js run ${file} --quiet`, "/dev/null"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(0);
    expect(r.stdout).toMatch(/\r\x1b\[2Krunning .*long\.yaml \(1\/1\): [^\r]* ms virtual, [^\r]*job m0 \(mirror\) running /);
    expect(r.stdout).toMatch(/\r\x1b\[2K\r?\n?PASS long-mirror: /);
    const piped = spawnSync(process.execPath, ["bin/blocksim.js", "run", file, "--quiet"], { cwd: ROOT, encoding: "utf8", timeout: 60_000 });
    expect(piped.stderr).toBe("");
    expect(piped.stdout).toMatch(/^PASS long-mirror: /);
  });
});

if (!existsSync("/usr/bin/script")) console.warn("progress.test.ts: /usr/bin/script (util-linux) is absent, so the pseudo-terminal check is skipped");
