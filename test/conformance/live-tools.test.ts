/**
 * The live tooling without a QEMU: the QMP client against a scripted fake
 * QMP server on a unix socket, the merging of runs into a golden, and the
 * comparison of a simulated transcript with a golden.
 */
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { QmpClient } from "../../live/qmp-client.js";
import { mergeRuns, normaliseNodes, recordRun, startQemu } from "../../live/record.js";
import type { TranscriptEntry } from "../../sim/qmp/types.js";
import { firstDifference, optionalEntries, type Recording } from "../../live/spec-driver.js";

/** A fake QEMU: greets, accepts qmp_capabilities, then answers with `handle`. */
function fakeQmp(handle: (cmd: { execute: string; arguments?: unknown; id?: unknown }, send: (m: unknown) => void) => void): { path: string; server: Server; dir: string } {
  const dir = mkdtempSync(join(tmpdir(), "blocksim-fakeqmp-"));
  const path = join(dir, "qmp.sock");
  const server = createServer((s: Socket) => {
    const send = (m: unknown) => s.write(JSON.stringify(m) + "\r\n");
    send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "fake" }, capabilities: ["oob"] } });
    let buf = "";
    s.setEncoding("utf8").on("data", (d: string) => {
      buf += d;
      let nl: number;
      while ((nl = buf.indexOf("\n")) >= 0) {
        const cmd = JSON.parse(buf.slice(0, nl)) as { execute: string; id?: unknown };
        buf = buf.slice(nl + 1);
        if (cmd.execute === "qmp_capabilities") send({ return: {}, id: cmd.id });
        else handle(cmd, (m) => send({ ...(m as object), ...("event" in (m as object) ? {} : { id: cmd.id }) }));
      }
    });
  });
  server.listen(path);
  return { path, server, dir };
}

const cleanups: (() => void)[] = [];
afterEach(() => {
  for (const c of cleanups.splice(0)) c();
});

function start(handle: Parameters<typeof fakeQmp>[0]) {
  const f = fakeQmp(handle);
  cleanups.push(() => {
    f.server.close();
    rmSync(f.dir, { recursive: true, force: true });
  });
  return f;
}

/**
 * A fake qemu-system-x86_64 (a node script) that serves QMP on the -qmp socket it is given and never answers
 * human-monitor-command, as QEMU 7.2 hangs on a qemu-io write queued behind a completed mirror's drained section.
 */
const HANGING_QEMU = `#!/usr/bin/env node
const net = require("node:net");
const arg = process.argv[process.argv.indexOf("-qmp") + 1];
const path = arg.slice("unix:".length, arg.indexOf(","));
net.createServer((s) => {
  const send = (m) => s.write(JSON.stringify(m) + "\\r\\n");
  send({ QMP: { version: { qemu: { major: 7, minor: 2, micro: 22 }, package: "hang" }, capabilities: [] } });
  let buf = "";
  s.setEncoding("utf8").on("data", (d) => {
    buf += d;
    for (let nl; (nl = buf.indexOf("\\n")) >= 0; buf = buf.slice(nl + 1)) {
      const cmd = JSON.parse(buf.slice(0, nl));
      if (cmd.execute !== "human-monitor-command") send({ return: cmd.execute === "query-jobs" ? [] : {}, id: cmd.id });
    }
  });
}).listen(path);
`;

describe("the recorder and a QEMU that hangs", () => {
  it("records a command without a reply within the spec's replyTimeoutMs as a hang, ends the run there and kills QEMU", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-hangqemu-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    const qemu = join(dir, "qemu-system-x86_64");
    writeFileSync(qemu, HANGING_QEMU);
    chmodSync(qemu, 0o755);
    const { transcript } = await recordRun({
      scenario: "hang", description: "", replyTimeoutMs: 300,
      commands: [{ cmd: "query-jobs" }, { cmd: "human-monitor-command", args: { "command-line": "qemu-io src \"write 0 64k\"" } }, { cmd: "query-jobs" }],
    }, { qemu, timeoutMs: 5000 });
    expect(transcript).toEqual([
      { cmd: "query-jobs" }, { return: [] },
      { cmd: "human-monitor-command", args: { "command-line": "qemu-io src \"write 0 64k\"" } },
      { hang: { cmd: "human-monitor-command" } },
    ]);
  });
});

describe("QmpClient against a fake QMP server", () => {
  it("negotiates, then keeps commands, replies, errors and events in wire order (negotiation left out)", async () => {
    const { path } = start((cmd, send) => {
      if (cmd.execute === "blockdev-backup") {
        send({ event: "JOB_STATUS_CHANGE", data: { status: "created", id: "j0" }, timestamp: { seconds: 1, microseconds: 2 } });
        send({ return: {} });
        send({ event: "JOB_STATUS_CHANGE", data: { status: "running", id: "j0" }, timestamp: { seconds: 1, microseconds: 3 } });
      } else send({ error: { class: "CommandNotFound", desc: `The command ${cmd.execute} has not been found` } });
    });
    const c = await QmpClient.connect(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    expect(c.greeting?.QMP.version.qemu).toEqual({ major: 7, minor: 2, micro: 22 });
    expect(await c.execute("blockdev-backup", { device: "src" })).toEqual({ return: {} });
    await c.waitForEvent((e) => e.data.status === "running", "running", 2000, 0);
    expect(await c.execute("nope")).toEqual({ error: { class: "CommandNotFound", desc: "The command nope has not been found" } });
    expect(c.transcript).toEqual([
      { cmd: "blockdev-backup", args: { device: "src" } },
      { event: "JOB_STATUS_CHANGE", data: { status: "created", id: "j0" } },
      { return: {} },
      { event: "JOB_STATUS_CHANGE", data: { status: "running", id: "j0" } },
      { cmd: "nope" },
      { error: { class: "CommandNotFound", desc: "The command nope has not been found" } },
    ]);
  });

  it("times out, naming what it waited for, when a reply or an event does not come", async () => {
    const { path } = start(() => {});
    const c = await QmpClient.connect(path, { timeoutMs: 2000 });
    cleanups.push(() => c.close());
    await expect(c.execute("query-jobs", undefined, { timeoutMs: 50 })).rejects.toThrow("timed out after 50 ms waiting for the reply to query-jobs");
    await expect(c.waitForEvent((e) => e.event === "BLOCK_JOB_READY", "READY", 50)).rejects.toThrow("timed out after 50 ms waiting for READY");
  });

  it("fails clearly when no QEMU listens on the socket", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-fakeqmp-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await expect(QmpClient.connect(join(dir, "none.sock"), { timeoutMs: 200 })).rejects.toThrow(/could not connect to QMP socket .*none\.sock within 200 ms/);
  });
});

describe("starting QEMU", () => {
  it("fails clearly when the binary cannot be started", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-noqemu-"));
    cleanups.push(() => rmSync(dir, { recursive: true, force: true }));
    await expect(startQemu({ qemu: join(dir, "no-such-qemu"), dir, timeoutMs: 2000 })).rejects.toThrow(/could not start .*no-such-qemu: .*ENOENT/);
  });
});

describe("merging runs into a golden", () => {
  const ev = (status: string, id = "j0"): TranscriptEntry => ({ event: "JOB_STATUS_CHANGE", data: { status, id } });
  const q = (offset: number): TranscriptEntry => ({ return: [{ device: "j0", offset, len: 100 }] });

  it("keeps what every run shows, and turns numbers that differ into <varies> with the values seen", () => {
    const m = mergeRuns([[{ cmd: "query-block-jobs" }, q(10), ev("null")], [{ cmd: "query-block-jobs" }, q(20), ev("null")]]);
    expect(m.sequence).toEqual([{ cmd: "query-block-jobs" }, { return: [{ device: "j0", offset: "<varies>", len: 100 }] }, ev("null")]);
    expect(m.nondeterministic).toEqual([{ path: "sequence[1].return[0].offset", values: [10, 20] }]);
    expect(m.deterministic).toBe(false);
    expect(mergeRuns([[ev("created"), q(5)], [ev("created"), q(5)]])).toEqual({ sequence: [ev("created"), q(5)], deterministic: true, nondeterministic: [] });
  });

  it("lists an entry seen in only some runs after the common entry before it (counting a leading note)", () => {
    const warnings: string[] = [];
    const m = mergeRuns([[ev("created"), ev("aborting", "j3"), ev("null")], [ev("created"), ev("null"), { cmd: "query-jobs" }]], "images: none", warnings);
    expect(m.sequence).toEqual([{ note: "images: none" }, ev("created"), ev("null")]);
    expect(m.nondeterministic).toEqual([
      { only_in_some_runs: { run: 0, after_sequence_index: 1, entry: ev("aborting", "j3") } },
      { only_in_some_runs: { run: 1, after_sequence_index: 2, entry: { cmd: "query-jobs" } } },
    ]);
    expect(warnings).toEqual([expect.stringContaining("query-jobs did not come at the same point")]);
  });

  it("shows query-named-block-nodes as {node: backing file name}, auto-named nodes left out", () => {
    expect(normaliseNodes([
      { "node-name": "top", backing_file: "/tmp/x/mid.qcow2" },
      { "node-name": "#block123" },
      { "node-name": "base" },
      { "node-name": "mid", backing_file: 'json:{"driver": "qcow2", "file": {"driver": "file", "filename": "/tmp/x/base.qcow2"}}' },
    ])).toEqual({ top: "mid.qcow2", base: null, mid: "base.qcow2" });
  });
});

describe("comparing a simulated transcript with a recording", () => {
  const ev = (status: string, id = "j0"): TranscriptEntry => ({ event: "JOB_STATUS_CHANGE", data: { status, id } });
  const expected = [{ cmd: "job-cancel" }, { return: {} }, ev("aborting"), ev("null")];

  it("finds the first entry that differs, missing or extra", () => {
    expect(firstDifference(expected, expected)).toBeUndefined();
    expect(firstDifference(expected, [{ cmd: "job-cancel" }, { return: {} }, ev("concluded"), ev("null")])).toEqual({ at: 2, observedAt: 2 });
    expect(firstDifference(expected, expected.slice(0, 3))).toEqual({ at: 3, observedAt: 3 });
    expect(firstDifference(expected, [...expected, ev("null", "j1")])).toEqual({ at: 4, observedAt: 4 });
  });

  it("allows an entry seen in only some runs exactly where it was seen, once", () => {
    const rec: Recording = {
      scenario: "x", description: "", commands: [],
      sequence: [{ note: "n" }, ...expected],
      nondeterministic: [{ only_in_some_runs: { run: 0, after_sequence_index: 2, entry: ev("aborting", "j3") } }],
    };
    const opt = optionalEntries(rec);
    expect(opt).toEqual([{ after: 1, entry: ev("aborting", "j3") }]);
    const withIt = [expected[0], expected[1], ev("aborting", "j3"), expected[2], expected[3]];
    expect(firstDifference(expected, withIt, opt)).toBeUndefined();
    expect(firstDifference(expected, withIt)).toEqual({ at: 2, observedAt: 2 });
    const elsewhere = [expected[0], ev("aborting", "j3"), expected[1], expected[2], expected[3]];
    expect(firstDifference(expected, elsewhere, opt)).toEqual({ at: 1, observedAt: 1 });
    const twice = [expected[0], expected[1], ev("aborting", "j3"), ev("aborting", "j3"), expected[2], expected[3]];
    expect(firstDifference(expected, twice, opt)).toEqual({ at: 2, observedAt: 3 });
  });

  it("allows an entry a run saw right after a command, before its reply, as well before the command (device seed 137's paused)", () => {
    // A client logs a command when it sends it: an event QEMU sent while the command crossed the socket falls after
    // it in a recording, as the events of a command's round trip do (besideReplies); an optional one too.
    const exp: TranscriptEntry[] = [{ cmd: "block-job-pause" }, { return: {} }, { cmd: "block-job-pause" }, { error: { class: "GenericError", desc: "Job is already paused" } }, { cmd: "job-resume" }, { return: {} }];
    const rec: Recording = {
      scenario: "x", description: "", commands: [], sequence: exp,
      nondeterministic: [{ only_in_some_runs: { run: 0, after_sequence_index: 2, entry: ev("paused") } }],
    };
    const opt = optionalEntries(rec);
    expect(opt).toEqual([{ after: 2, entry: ev("paused") }]);
    const afterCmd = [exp[0], exp[1], exp[2], ev("paused"), exp[3], exp[4], exp[5]];
    const beforeCmd = [exp[0], exp[1], ev("paused"), exp[2], exp[3], exp[4], exp[5]];
    const afterReply = [exp[0], exp[1], exp[2], exp[3], ev("paused"), exp[4], exp[5]];
    expect(firstDifference(exp, afterCmd, opt)).toBeUndefined();
    expect(firstDifference(exp, beforeCmd, opt)).toBeUndefined();
    expect(firstDifference(exp, afterReply, opt)).toEqual({ at: 4, observedAt: 4 });
    expect(firstDifference(exp, beforeCmd)).toEqual({ at: 2, observedAt: 2 });
  });
});
