import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { parseClock } from "../../serve/clock.js";
import { main, type Io } from "../../cli/main.js";
import { makeServeReplay, writeServeReplay } from "../../serve/replay.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { RawClient, startServer } from "./helpers.js";

const SCENARIO = `
name: serve-clock
devices:
  - { name: src.img, size: 8MiB, data: [{ offset: 0, length: 8MiB }], latency: 100us }
  - { name: dst.img, size: 8MiB, bandwidth: 16MB/s }
nodes:
  - { driver: raw, node-name: src, file: src.img }
  - { driver: raw, node-name: dst, file: dst.img }
guests:
  - { name: guest, node: src, pattern: random, request-size: 64k, align: 64k, iodepth: 2, interval: 1ms }
`;

let cleanup: (() => Promise<void>)[] = [];
afterEach(async () => {
  for (const f of cleanup.splice(0)) await f();
});

describe("blocksim serve clock modes", () => {
  it("parses realtime[:SCALE], deterministic[:QUANTUM] and step, and names what is wrong", () => {
    expect(parseClock("realtime:100")).toEqual({ kind: "realtime", scale: 100 });
    expect(parseClock("deterministic:2ms", 7)).toEqual({ kind: "deterministic", quantumNs: 2_000_000, graceMs: 7 });
    expect(parseClock("step")).toEqual({ kind: "step" });
    expect(() => parseClock("realtime:-1")).toThrow(/SCALE must be/);
    expect(() => parseClock("deterministic:soon")).toThrow(/QUANTUM must be a duration/);
    expect(() => parseClock("warp")).toThrow(/expected realtime/);
  });

  it("step: virtual time moves only with x-blocksim-clock-step, which answers the new time", async () => {
    const s = await startServer({ scenario: SCENARIO, clock: { kind: "step" } });
    cleanup.push(s.stop);
    const c = await RawClient.connect(s.path);
    cleanup.unshift(async () => c.close());
    await c.negotiate();
    const t0 = s.server.now;
    await c.cmd("query-jobs");
    await new Promise((r) => setTimeout(r, 30));
    expect(s.server.now).toBe(t0);
    expect(await c.cmd("x-blocksim-clock-step", { ns: 5_000_000 })).toEqual({ return: { "clock-ns": t0 + 5_000_000 } });
    expect(await c.cmd("x-blocksim-clock-step", { ns: -1 })).toMatchObject({ error: { class: "GenericError" } });
  });

  it("realtime: the clock refuses x-blocksim-clock-step, and a job runs to its end on its own", async () => {
    const s = await startServer({ scenario: SCENARIO, clock: { kind: "realtime", scale: 100 } });
    cleanup.push(s.stop);
    const c = await RawClient.connect(s.path);
    cleanup.unshift(async () => c.close());
    await c.negotiate();
    expect(await c.cmd("x-blocksim-clock-step", { ns: 1 })).toMatchObject({ error: { class: "GenericError", desc: expect.stringContaining("realtime") } });
    await c.cmd("blockdev-backup", { "job-id": "j0", device: "src", target: "dst", sync: "full" });
    expect(await c.until((l) => l.event === "BLOCK_JOB_COMPLETED")).toMatchObject({ data: { device: "j0", offset: 8 << 20 } });
  });

  it("deterministic: a sequential client's session replays exactly from the replay file: same replies, same trace hash", async () => {
    const s = await startServer({ scenario: SCENARIO, clock: { kind: "deterministic", quantumNs: 20_000_000, graceMs: 2 } });
    const c = await RawClient.connect(s.path);
    await c.negotiate();
    await c.cmd("blockdev-backup", { "job-id": "j0", device: "src", target: "dst", sync: "full", speed: 4_000_000 });
    for (let i = 0; i < 5; i++) {
      await c.cmd("query-jobs");
      await new Promise((r) => setTimeout(r, 5));
    }
    await c.cmd("block-job-set-speed", { device: "j0", speed: 0 });
    await c.cmd("x-blocksim-clock-step", { ns: 2_000_000_000 });
    await c.until((l) => l.event === "BLOCK_JOB_COMPLETED");
    await c.cmd("query-jobs");
    c.close();
    await s.stop();
    const dir = mkdtempSync(join(tmpdir(), "blocksim-serve-replay-"));
    cleanup.push(async () => rmSync(dir, { recursive: true, force: true }));
    const file = join(dir, "s.replay.json");
    // The scenario was text in this test: the replay file holds it inline.
    writeServeReplay(file, makeServeReplay(s.server.world, loadScenarioText(SCENARIO, "test.yaml"), undefined, file, "deterministic", s.server.actions, s.server.replies));
    const doc = JSON.parse(readFileSync(file, "utf8")) as { "blocksim-replay": number; hash: string; subject: { session: { actions: { t: number; execute: string }[]; replies: unknown[]; inline?: unknown } } };
    expect(doc["blocksim-replay"]).toBe(2);
    expect(doc.subject.session.inline).toBeDefined();
    expect(doc.subject.session.actions.filter((a) => a.execute === "query-jobs")).toHaveLength(6);
    expect(doc.subject.session.replies).toEqual(JSON.parse(JSON.stringify(s.server.replies)));
    const cli = async (...args: string[]) => {
      const io: Io & { stdout: string; stderr: string } = { stdout: "", stderr: "", tty: false, out: (t) => void (io.stdout += t), err: (t) => void (io.stderr += t) };
      return { code: await main(args, io), ...io };
    };
    // blocksim replay (and serve --replay, the same command): same replies, same trace hash; timeline draws the session.
    for (const args of [["replay", file, "--quiet"], ["serve", "--replay", file]]) {
      const r = await cli(...args);
      expect(r.stderr + r.stdout, args.join(" ")).toContain(`REPLAY REPRODUCED ${file}: same choices, trace hash ${doc.hash}\n`);
      expect(r.code).toBe(0);
    }
    expect((await cli("timeline", file, "-o", join(dir, "s.html"))).code).toBe(0);
    expect(readFileSync(join(dir, "s.html"), "utf8")).toContain("monitor 1");
    // A session file of the old format (blocksim-serve-replay) is refused in one line, and convert-replay converts it.
    writeFileSync(join(dir, "s.yaml"), SCENARIO);
    const full = JSON.parse(readFileSync(file, "utf8")) as Record<string, unknown> & { subject: { session: Record<string, unknown> } };
    const { inline: _inline, ...session } = full.subject.session;
    const old = join(dir, "old.json");
    writeFileSync(old, JSON.stringify({ "blocksim-serve-replay": 1, scenario: { path: "s.yaml", sha256: loadScenarioText(SCENARIO, "s.yaml").contentHash }, profile: full.profile, seed: full.seed, strategy: full.strategy, choices: full.choices, hash: full.hash, ...session }));
    const refused = await cli("replay", old);
    expect(refused.stderr).toBe(`blocksim: ${old}: an old replay format ("blocksim-serve-replay" (blocksim serve)); convert it with: blocksim convert-replay ${old} -o ${join(dir, "old")}.replay.json\n`);
    expect((await cli("convert-replay", old, "-o", join(dir, "old.replay.json"))).code).toBe(0);
    expect((await cli("replay", join(dir, "old.replay.json"), "--quiet")).stdout).toContain(`REPLAY REPRODUCED ${join(dir, "old.replay.json")}: same choices, trace hash ${doc.hash}\n`);
    // A tampered replay departs and says where.
    doc.subject.session.actions = doc.subject.session.actions.map((a, i) => (i === 1 ? { ...a, t: a.t + 7_000_000 } : a));
    writeFileSync(file, JSON.stringify(doc));
    const d = await cli("replay", file, "--quiet");
    expect(d.code).toBe(1);
    expect(d.stdout).toMatch(/REPLAY DEPARTS from .*:\n {2}first differing reply, reply #\d+: recorded /);
  });
});
