import { afterEach, describe, expect, it } from "vitest";
import { MAX_MONITORS } from "../../serve/server.js";
import { RawClient, startServer } from "./helpers.js";

const SCENARIO = `
name: serve-test
devices:
  - { name: src.img, size: 64MiB, data: [{ offset: 0, length: 64MiB }] }
  - { name: dst.img, size: 64MiB, bandwidth: 16MB/s }
nodes:
  - { driver: raw, node-name: src, file: src.img }
  - { driver: raw, node-name: dst, file: dst.img }
`;

const BACKUP = { "job-id": "j0", device: "src", target: "dst", sync: "full" };

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

async function setUp(clock: Parameters<typeof startServer>[0]["clock"] = { kind: "step" }, extra: Partial<Parameters<typeof startServer>[0]> = {}) {
  const s = await startServer({ scenario: SCENARIO, clock, ...extra });
  cleanup.push(s.stop);
  const clients: RawClient[] = [];
  const client = async (negotiate = true) => {
    const c = await RawClient.connect(s.path);
    clients.push(c);
    cleanup.unshift(async () => c.close());
    if (negotiate) await c.negotiate();
    return c;
  };
  return { ...s, client };
}

describe("blocksim serve: QMP over a real socket", () => {
  it("greets as QEMU 7.2, requires qmp_capabilities first, refuses it twice, and echoes any id", async () => {
    const { client } = await setUp();
    const c = await client(false);
    const greeting = await c.until((l) => "QMP" in l);
    expect(greeting).toMatchObject({ QMP: { version: { qemu: { major: 7, minor: 2 } }, capabilities: [] } });
    expect(await c.cmd("query-jobs")).toEqual({ error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
    expect(await c.cmd("qmp_capabilities", undefined, 5)).toEqual({ return: {}, id: 5 });
    expect(await c.cmd("qmp_capabilities")).toEqual({ error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" } });
    expect(await c.cmd("query-jobs", undefined, { tag: ["a", 1] })).toEqual({ return: [], id: { tag: ["a", 1] } });
    expect(await c.cmd("query-named-block-nodes", undefined, "n")).toMatchObject({ return: [{ "node-name": "src" }, { "node-name": "dst" }], id: "n" });
  });

  it("writes lines as QEMU does: spaces after ':' and ',', CRLF, id after return and before error", async () => {
    const { path } = await setUp();
    const c = await RawClient.connect(path);
    cleanup.unshift(async () => c.close());
    let raw = "";
    c.sock.on("data", (d: string) => (raw += d));
    await c.negotiate();
    await c.cmd("query-jobs", undefined, 1);
    await c.cmd("no-such-command", undefined, 2);
    expect(raw).toContain('{"return": [], "id": 1}\r\n');
    expect(raw).toContain('{"id": 2, "error": {"class": "CommandNotFound", "desc": "The command no-such-command has not been found"}}\r\n');
  });

  it("answers bad JSON, a non-object, a bad member and an unknown command with QMP's own errors, and the monitor goes on", async () => {
    const { client } = await setUp();
    const c = await client();
    const from = c.lines.length;
    c.send('garbage\n}\n[1, 2]\n{"execute": 1}\n{"execute": "query-jobs", "foo": 1}\n{"execute": "query-jobs", "arguments": []}\n{"execute": "frobnicate", "id": 9}\n');
    await c.until((l) => l.id === 9, from);
    expect(c.lines.slice(from)).toEqual([
      { error: { class: "GenericError", desc: "JSON parse error, invalid keyword 'garbage'" } },
      { error: { class: "GenericError", desc: "JSON parse error, expecting value" } },
      { error: { class: "GenericError", desc: "QMP input must be a JSON object" } },
      { error: { class: "GenericError", desc: "QMP input member 'execute' must be a string" } },
      { error: { class: "GenericError", desc: "QMP input member 'foo' is unexpected" } },
      { error: { class: "GenericError", desc: "QMP input member 'arguments' must be an object" } },
      { id: 9, error: { class: "CommandNotFound", desc: "The command frobnicate has not been found" } },
    ]);
    expect(await c.cmd("query-jobs")).toEqual({ return: [] });
  });

  it("waits for the rest of a half-sent request while another monitor is served, then runs it", async () => {
    const { client } = await setUp();
    const a = await client(), b = await client();
    const from = a.lines.length;
    a.send('{"execute": "blockdev-backup", "arguments": {"job-id": "j0", "device": "src",');
    expect(await b.cmd("query-jobs")).toEqual({ return: [] });
    expect(a.lines.length).toBe(from);
    a.send(' "target": "dst", "sync": "full"}, "id": "half"}\n');
    expect(await a.until((l) => l.id === "half", from)).toEqual({ return: {}, id: "half" });
    expect(await b.cmd("query-jobs")).toMatchObject({ return: [{ id: "j0", type: "backup" }] });
  });

  it("refuses a request larger than the limit with QEMU's size error, skips the rest of that line, and serves the next", async () => {
    const { client } = await setUp({ kind: "step" }, { limits: { maxValueBytes: 4096, maxDepth: 1024, maxTokens: 2 << 20 } });
    const c = await client();
    const from = c.lines.length;
    c.send(`{"execute": "query-jobs", "arguments": {"pad": "${"x".repeat(10_000)}"}}\n{"execute": "query-jobs", "id": "after"}\n`);
    await c.until((l) => l.id === "after", from);
    expect(c.lines.slice(from)).toEqual([
      { error: { class: "GenericError", desc: "JSON token size limit exceeded" } },
      { return: [], id: "after" },
    ]);
    c.send(`${"[".repeat(1100)}${"]".repeat(1100)}\n`);
    expect(await c.until((l) => "error" in l, from + 2)).toEqual({ error: { class: "GenericError", desc: "JSON nesting depth limit exceeded" } });
  });

  it("sends events with virtual timestamps to every negotiated monitor, and never to one still negotiating", async () => {
    const { client } = await setUp();
    const a = await client(), b = await client(), shy = await client(false);
    await a.cmd("blockdev-backup", BACKUP);
    await a.cmd("x-blocksim-clock-step", { ns: 10_000_000_000 });
    for (const c of [a, b]) {
      const done = await c.until((l) => l.event === "BLOCK_JOB_COMPLETED");
      expect(done).toMatchObject({ event: "BLOCK_JOB_COMPLETED", data: { device: "j0", type: "backup", len: 64 << 20, offset: 64 << 20 } });
      const ts = done.timestamp as { seconds: number; microseconds: number };
      // 64 MiB at 16 MB/s: a little over 4 s of virtual time.
      expect(ts.seconds).toBe(4);
      const statuses = c.lines.filter((l) => l.event === "JOB_STATUS_CHANGE").map((l) => (l.data as { status: string }).status);
      expect(statuses.slice(0, 2)).toEqual(["created", "running"]);
      expect(statuses.slice(-4)).toEqual(["waiting", "pending", "concluded", "null"]);
    }
    expect(shy.lines.filter((l) => "event" in l)).toEqual([]);
  });

  it("a client that disconnects mid-job neither stops the server nor loses the job or another client's state", async () => {
    const { client, server } = await setUp();
    const a = await client(), b = await client();
    await b.cmd("block-dirty-bitmap-add", { node: "src", name: "b-bitmap" });
    await a.cmd("blockdev-backup", BACKUP);
    a.send('{"execute": "x-blocksim-clock-step", "arguments": {"ns": 1000000000}}\n{"execute": "query-jobs"}\n');
    a.close();
    await b.until((l) => l.event === "JOB_STATUS_CHANGE" && (l.data as { status: string }).status === "running");
    const mid = await b.cmd("query-jobs");
    expect(mid).toMatchObject({ return: [{ id: "j0", status: "running" }] });
    await b.cmd("x-blocksim-clock-step", { ns: 10_000_000_000 });
    await b.until((l) => l.event === "BLOCK_JOB_COMPLETED");
    expect(await b.cmd("query-jobs")).toEqual({ return: [] });
    expect(await b.cmd("block-dirty-bitmap-remove", { node: "src", name: "b-bitmap" })).toEqual({ return: {} });
    expect(server.outcome).toBeUndefined();
    const c = await client();
    expect(await c.cmd("query-named-block-nodes")).toMatchObject({ return: [{ "node-name": "src" }, { "node-name": "dst" }] });
  });

  it("a client gone with a command in flight: the command still completes inside the simulation", async () => {
    const { client, server } = await setUp({ kind: "deterministic", quantumNs: 500_000_000, graceMs: 5 });
    const a = await client(), b = await client();
    await a.cmd("blockdev-backup", BACKUP);
    // a sends job-pause and goes away before its reply.
    a.sock.end('{"execute": "job-pause", "arguments": {"id": "j0"}}\n');
    // b polls, as a management layer would, while idle periods move the virtual clock.
    let jobs: Record<string, unknown> = {};
    for (let i = 0; i < 500; i++) {
      jobs = await b.cmd("query-jobs");
      if ((jobs.return as { status: string }[])[0]?.status === "paused") break;
      await new Promise((r) => setTimeout(r, 10));
    }
    expect(jobs, JSON.stringify(server.replies.map((r) => [r.client, r.execute, r.t, r.response])) + JSON.stringify(b.lines.filter((l) => "event" in l).slice(0, 12))).toMatchObject({ return: [{ id: "j0", status: "paused" }] });
    expect(await b.cmd("job-resume", { id: "j0" })).toEqual({ return: {} });
    const log = server.replies.map((r) => `${r.client} ${r.execute}`).filter((x) => x !== "2 query-jobs");
    expect(log).toEqual(["1 blockdev-backup", "1 job-pause", "2 job-resume"]);
  });

  it("a client sending 200 requests at once gets 200 replies in order (its socket is read as the queue drains, as QEMU's is)", async () => {
    const { client } = await setUp();
    const c = await client();
    const from = c.lines.length;
    c.send(Array.from({ length: 200 }, (_, i) => JSON.stringify({ execute: "query-jobs", id: i }) + "\n").join(""));
    await c.until((l) => l.id === 199, from);
    expect(c.lines.slice(from).map((l) => l.id)).toEqual(Array.from({ length: 200 }, (_, i) => i));
  });

  it(`serves at most ${MAX_MONITORS} monitors at once; one more is closed, and the others go on`, async () => {
    const { client, path } = await setUp();
    const first = await client();
    for (let i = 1; i < MAX_MONITORS; i++) await client(false);
    const extra = await RawClient.connect(path);
    cleanup.unshift(async () => extra.close());
    await expect(extra.until((l) => "QMP" in l)).rejects.toThrow(/connection closed/);
    expect(await first.cmd("query-jobs")).toEqual({ return: [] });
  });
});
