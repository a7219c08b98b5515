/**
 * The event log `blocksim run` prints (issue 18): times count from the end
 * of setup, which is a line of its own; a reply names the step and command
 * it answers; one time format everywhere; long lines folded, nothing cut.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { eventLog, fold, kernelTrace, LOG_WIDTH, verdict } from "../../sim/report/text.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

// Setup takes virtual time here (64 MiB written into s at 100 MB/s), so absolute and relative times differ.
const SCENARIO = `name: log
devices:
  - { name: s, size: 64MiB, bandwidth: 100MB/s, data: [{ offset: 0, length: 64MiB }] }
  - { name: t, size: 64MiB }
  - { name: u, size: 64MiB }
  - { name: v, size: 64MiB }
nodes:
  - { driver: raw, node-name: src, file: s }
  - { driver: raw, node-name: tgt, file: t }
  - { driver: raw, node-name: src2, file: u }
  - { driver: raw, node-name: tgt2, file: v }
steps:
  - at: 5ms
    execute: blockdev-mirror
    arguments: { job-id: mirror-with-a-long-name-0, device: src, target: tgt, sync: full }
  - at: 5ms
    client: other
    execute: blockdev-backup
    arguments: { job-id: backup-with-a-long-name-1, device: src2, target: tgt2, sync: full }
  - at: 6ms
    execute: query-block-jobs
  - on-event: { event: BLOCK_JOB_READY }
    execute: job-complete
    arguments: { id: mirror-with-a-long-name-0 }
`;

const TIME = /-?\d+\.\d{6} ms/;

function run(text = SCENARIO) {
  return runScenario(loadScenarioText(text), { keepTrace: true });
}

describe("the event log", () => {
  const r = run();
  const log = eventLog(r);

  it("counts from the end of setup, shown as a line: a step at 5ms prints at 5 ms", () => {
    expect(r.ok).toBe(true);
    expect(r.setupEndNs).toBeGreaterThan(600_000_000); // 64 MiB at 100 MB/s
    expect(log[0]).toBe(`    0.000000 ms  ── setup ended after ${(r.setupEndNs / 1e6).toFixed(6)} ms (devices filled, nodes added); times count from here`);
    expect(log[1]).toMatch(/^ {4}5\.000000 ms {2}client {3}> steps\[0\] blockdev-mirror \{"job-id":"mirror-with-a-long-name-0",/);
    expect(log.some((l) => /^ {4}6\.000000 ms {2}client {3}> steps\[2\] query-block-jobs$/.test(l))).toBe(true);
  });

  it("pairs each reply with the command it answers, also when clients interleave", () => {
    const replies = log.filter((l) => / < steps\[/.test(l));
    expect(replies.length).toBe(4);
    // steps[1]'s command goes out at 5 ms and its reply comes much later, after other clients' lines
    const sent = log.findIndex((l) => /^ {4}5\.000000 ms {2}other {4}> steps\[1\] blockdev-backup /.test(l));
    const answered = log.findIndex((l) => /^ +\d+\.\d{6} ms {2}other {4}< steps\[1\] blockdev-backup: return \{\}$/.test(l));
    expect(sent).toBeGreaterThan(0);
    expect(answered).toBeGreaterThan(sent + 3);
    expect(replies.find((l) => l.includes("steps[3]"))).toMatch(/< steps\[3\] job-complete: return \{\}$/);
    // every reply names the command its step sent
    for (const l of replies) {
      const [, step, cmd] = /< steps\[(\d+)\] ([\w-]+):/.exec(l)!;
      expect(log.some((c) => c.includes(`> steps[${step}] ${cmd}`))).toBe(true);
    }
  });

  it("folds long lines at the log width and cuts nothing", () => {
    expect(Math.max(...log.map((l) => l.length))).toBeLessThanOrEqual(LOG_WIDTH);
    const i = log.findIndex((l) => l.includes("< steps[2] query-block-jobs: return "));
    const step = r.steps[2];
    const full = JSON.stringify((step.response as { return: unknown }).return);
    expect(full.length).toBeGreaterThan(2 * LOG_WIDTH); // two jobs' records: folded over several lines
    const indent = log[i + 1].length - log[i + 1].trimStart().length;
    const lines = [log[i]];
    for (let k = i + 1; k < log.length && !TIME.test(log[k].slice(0, 15)); k++) {
      expect(log[k].slice(0, indent).trim()).toBe(""); // continuations are indented
      lines.push(log[k]);
    }
    expect(lines.length).toBeGreaterThan(2);
    const joined = lines[0].slice(lines[0].indexOf("return ") + "return ".length) + lines.slice(1).map((l) => l.trimStart()).join("");
    expect(joined).toBe(full);
  });

  it("uses one time format everywhere: the log, the verdict, failure messages and the trace", () => {
    const bad = run(SCENARIO.replace("  - at: 6ms\n    execute: query-block-jobs\n", "  - at: 6ms\n    execute: query-block-jobs\n    expect: { return: [] }\n") + "expect: { never: [BLOCK_JOB_READY] }\n");
    expect(bad.ok).toBe(false);
    const text = [...eventLog(bad), verdict(bad), ...kernelTrace(bad).slice(0, 200)].join("\n");
    expect(text).toMatch(/an event that must not happen did, at \d+\.\d{6} ms: BLOCK_JOB_READY/);
    expect(text).toMatch(/ended at \d+\.\d{6} ms \(ok\)/);
    // no other spelling of a moment (formatDuration's "85.014ms", "1.5s"), apart from durations in arguments
    expect(text).not.toMatch(/\d(ns|us|µs|ms|s)\b/);
    // the trace counts from the end of setup too: setup's records are negative, and the marker comes between
    const trace = kernelTrace(bad);
    const mark = trace.findIndex((l) => l.includes("── setup ended"));
    expect(trace[0]).toMatch(/^ *-\d+\.\d{6} ms {2}sched/);
    expect(mark).toBeGreaterThan(0);
    expect(trace.slice(mark + 1).every((l) => !/^ *-\d/.test(l))).toBe(true);
  });
});

describe("fold", () => {
  it("breaks after a comma or space near the width, hard inside a long token, and keeps every character", () => {
    const text = `${"a".repeat(50)},${"b".repeat(50)} ${"c".repeat(300)}`;
    const lines = fold("head> ", text, 80);
    expect(lines[0]).toBe(`head> ${"a".repeat(50)},`);
    expect(lines.every((l) => l.length <= 80)).toBe(true);
    expect(lines.slice(1).every((l) => l.startsWith(" ".repeat(8)))).toBe(true);
    expect(lines.map((l, i) => (i === 0 ? l.slice(6) : l.trimStart())).join("").replace(" ", "")).toBe(text.replace(" ", ""));
  });
});

it("the README's example of the event log is what `blocksim run scenarios/stream.yaml` prints", async () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const m = /```text\n\$ npx blocksim run scenarios\/stream\.yaml\n([\s\S]*?)```/.exec(readme);
  expect(m, "README shows the event log of scenarios/stream.yaml").not.toBeNull();
  let out = "";
  const root = new URL("../../", import.meta.url).pathname;
  expect(await main(["run", `${root}scenarios/stream.yaml`], { out: (t) => void (out += t), err: () => {}, tty: false })).toBe(0);
  expect(m![1]).toBe(out.replaceAll(root, ""));
});
