import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";
import { formatResults } from "../../live/conform.js";

function io() {
  const o = { out: "", err: "", tty: false };
  return { o, io: { out: (t: string) => void (o.out += t), err: (t: string) => void (o.err += t), tty: false } };
}

describe("blocksim conform and record", () => {
  it("conform replays a golden through the simulator: exit 0 when it matches", async () => {
    const { o, io: i } = io();
    expect(await main(["conform", "test/conformance/goldens/drive_backup.json"], i)).toBe(0);
    expect(o.out).toContain("ok    drive_backup");
    expect(o.out).toContain("1 of 1 match the simulator");
  });

  it("conform: mirror_null_source, once a declared difference, matches since the mirror asks the source's block status", async () => {
    const { o, io: i } = io();
    expect(await main(["conform", "test/conformance/goldens/mirror_null_source.json"], i)).toBe(0);
    expect(o.out).toContain("ok    mirror_null_source");
    expect(o.out).not.toContain("declared");
  });

  it("conform: a difference the project declares is listed with its reason, not counted as undeclared", () => {
    const r = { file: "x.json", scenario: "x", ok: false, at: 7, diff: "d", declared: "why it departs", expected: [], observed: [] };
    const out = formatResults([r]);
    expect(out).toContain("known x: departs at entry 7, a declared difference: why it departs");
    expect(out).toContain("0 of 1 match the simulator; 1 depart where the project declares it");
    expect(out).not.toContain("undeclared");
  });

  it("conform: an undeclared difference shows the diff, exit 1", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-conform-"));
    const text = readFileSync("test/conformance/goldens/target_error_ignore.json", "utf8");
    writeFileSync(join(dir, "edited.json"), text.replace('"action": "ignore"', '"action": "stop"'));
    const { o, io: i } = io();
    expect(await main(["conform", dir], i)).toBe(1);
    expect(o.out).toMatch(/DIFF {2}target_error_ignore: departs at entry 10/);
    expect(o.out).toMatch(/1 undeclared difference/);
    rmSync(dir, { recursive: true, force: true });
  });

  it("record and conform have help: help record, record --help, help conform, conform --help (exit 0)", async () => {
    for (const cmd of [["help", "record"], ["record", "--help"], ["help", "conform"], ["conform", "--help"]]) {
      const { o, io: i } = io();
      expect(await main(cmd, i), cmd.join(" ")).toBe(0);
      expect(o.out, cmd.join(" ")).toMatch(/^Usage: blocksim (record|conform)/);
    }
  });

  it("record refuses a bad spec file with exit 2, and writes nowhere in the source tree by default", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-record-"));
    writeFileSync(join(dir, "bad.json"), "{ not json");
    const { o, io: i } = io();
    expect(await main(["record", join(dir, "bad.json")], i)).toBe(2);
    expect(o.err).toMatch(/^record: .*bad\.json: /);
    expect(await main(["record", join(dir, "bad.json"), "--out"], i)).toBe(2);
    rmSync(dir, { recursive: true, force: true });
  });

  it("record: a spec that is a FIFO or a device is refused without reading it, and an output folder that cannot take the golden before any QEMU starts (exit 2)", async () => {
    const dir = mkdtempSync(join(tmpdir(), "blocksim-record-"));
    execFileSync("mkfifo", [join(dir, "fifo.json")]);
    for (const [args, message] of [
      [[join(dir, "fifo.json")], /not a regular file/],
      [["/dev/zero"], /not a regular file/],
      [["test/conformance/specs/backup_sync_none.json", "--out", "/proc/goldens"], /cannot (write the golden|make the folder)/],
      [["test/conformance/specs/backup_sync_none.json", "--out", join(dir, "fifo.json")], /cannot (write the golden|make the folder)/],
    ] as const) {
      const { o, io: i } = io();
      expect(await main(["record", ...args], i), args.join(" ")).toBe(2);
      expect(o.err, args.join(" ")).toMatch(message);
      expect(o.err.split("\n"), args.join(" ")).toHaveLength(2);
    }
    rmSync(dir, { recursive: true, force: true });
  });

  it("both refuse bad arguments with exit 2 and a usage line", async () => {
    for (const cmd of [["conform"], ["record"], ["record", "x.json", "--runs", "0"], ["record", "--bogus"]]) {
      const { o, io: i } = io();
      expect(await main(cmd, i), cmd.join(" ")).toBe(2);
      expect(o.err, cmd.join(" ")).toMatch(/Usage|--runs|unknown option/);
    }
  });
});
