/**
 * Every shipped replay file (scenarios/**\/*.replay.json, found by globbing,
 * so a new one is covered without editing this test): `blocksim replay`
 * reproduces its recorded result — exit 0 for a passing run, 1 for a
 * reproduced violation — with the recorded trace hash on two runs, and
 * `blocksim timeline` draws it. Files of the older formats get one line
 * naming the command that converts them, and that command converts each.
 */
import { copyFileSync, mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync, existsSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { main, type Io } from "../../cli/main.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const FILES = (readdirSync(join(ROOT, "scenarios"), { recursive: true }) as string[]).filter((f) => f.endsWith(".replay.json")).sort().map((f) => join("scenarios", f));
const tmp = mkdtempSync(join(tmpdir(), "blocksim-replay-files-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

async function cli(...args: string[]) {
  const io: Io & { stdout: string; stderr: string } = { stdout: "", stderr: "", tty: false, out: (t) => void (io.stdout += t), err: (t) => void (io.stderr += t) };
  const code = await main(args, io);
  return { code, stdout: io.stdout, stderr: io.stderr };
}

const recorded = (f: string) => JSON.parse(readFileSync(join(ROOT, f), "utf8")) as { hash: string; ok: boolean; subject: Record<string, unknown>; violations: unknown[] };

describe("every shipped replay file", () => {
  it("there are some, all in the current format", () => {
    expect(FILES.length).toBeGreaterThanOrEqual(17);
    for (const f of FILES) expect(JSON.parse(readFileSync(join(ROOT, f), "utf8"))["blocksim-replay"], f).toBe(2);
  });

  for (const f of FILES) {
    it(`${f}: replay reproduces the recorded result and trace hash twice; timeline draws it`, async () => {
      const rec = recorded(f);
      for (let i = 0; i < 2; i++) {
        const r = await cli("replay", f, "--quiet");
        expect(r.stderr).toBe("");
        expect(r.stdout).toContain(`REPLAY REPRODUCED ${f}: same choices, trace hash ${rec.hash}${rec.ok ? "\n" : ", and the same failure\n"}`);
        expect(r.code).toBe(rec.ok ? 0 : 1);
      }
      const out = join(tmp, `${f.replace(/\W+/g, "_")}.html`);
      const t = await cli("timeline", f, "-o", out);
      expect(t.stderr).toBe("");
      expect(t.code).toBe(rec.ok ? 0 : 1);
      expect(readFileSync(out, "utf8")).toMatch(/^<!doctype html>[\s\S]*<script type="application\/json" id="timeline-data">\{[^<]*"lanes":\[/);
    });
  }
});

describe("older replay formats", () => {
  // Each older format, made from a shipped file of the same run (the fields those formats had).
  const race = recorded("scenarios/races/cancel-error-stopped-job.replay.json") as ReturnType<typeof recorded> & Record<string, unknown>;
  const seed = recorded("scenarios/races/txn-start-before-commit.replay.json") as ReturnType<typeof recorded> & Record<string, unknown>;
  const scen = recorded("scenarios/start-shim.no-start-shim.replay.json") as ReturnType<typeof recorded> & Record<string, unknown>;
  // The races' files name their scenario; the old formats named the race, which is that scenario's name.
  const raceName = (r: typeof race) => String(r.subject.scenario).replace(/\.yaml$/, "");
  const OLD: Record<string, { text: Record<string, unknown>; name: RegExp }> = {
    "race.replay.json": { text: { "blocksim-race-replay": 1, race: raceName(race), profile: race.profile, seed: race.seed, choices: race.choices, hash: race.hash, invariant: "no-crash", violations: [] }, name: /"blocksim-race-replay"/ },
    "code.replay.json": { text: { version: 1, race: raceName(seed), profile: seed.profile, seed: seed.seed, strategy: "replay", choices: seed.choices, hash: seed.hash, rule: "txn-member-completes-before-commit" }, name: /\{ "version", "race" \}/ },
    "v1.replay.json": { text: { "blocksim-replay": 1, scenario: { path: "start-shim.yaml", sha256: scen.subject.sha256 }, profile: scen.profile, seed: scen.seed, strategy: "random", choices: scen.choices, hash: scen.hash }, name: /"blocksim-replay": 1/ },
  };

  for (const [name, { text, name: format }] of Object.entries(OLD)) {
    it(`${name}: replay, timeline and explore refuse it in one line naming the converting command, whatever the file is called; convert-replay converts it to a file that replays`, async () => {
      const old = join(tmp, name), conv = join(tmp, `new-${name}`);
      copyFileSync(join(ROOT, "scenarios/start-shim.yaml"), join(tmp, "start-shim.yaml")); // v1's scenario, beside it
      writeFileSync(old, JSON.stringify(text));
      // Named as a scenario file might be: timeline and explore take either, and tell them apart by content, not name.
      const plain = join(tmp, name.replace(/\.replay\.json$/, "-plain.json"));
      writeFileSync(plain, JSON.stringify(text));
      {
        const f = plain;
        for (const args of [["timeline", f, "-o", join(tmp, "x.html")], ["explore", f, "--budget", "1"]]) {
          const r = await cli(...args);
          expect(r.code, args.join(" ")).toBe(2);
          expect(r.stderr.split("\n"), args.join(" ")).toHaveLength(2); // one line, not a scenario schema dump
          expect(r.stderr).toMatch(format);
          expect(r.stderr.startsWith(`blocksim: ${f}: an old replay format (`)).toBe(true);
          expect(r.stderr.endsWith(`; convert it with: blocksim convert-replay ${f} -o ${f.replace(/\.json$/, "")}.replay.json\n`)).toBe(true);
        }
      }
      for (const args of [["replay", old], ["timeline", old, "-o", join(tmp, "x.html")], ["explore", old, "--budget", "1"], ["fuzz", "--replay", old], ["races", "--replay", old]]) {
        const r = await cli(...args);
        expect(r.code, args.join(" ")).toBe(2);
        expect(r.stderr.split("\n"), args.join(" ")).toHaveLength(2); // one line and its newline
        expect(r.stderr).toMatch(format);
        expect(r.stderr).toContain(`${old}: an old replay format`);
        expect(r.stderr).toContain(`convert it with: blocksim convert-replay ${old} -o ${old}\n`);
      }
      const c = await cli("convert-replay", old, "-o", conv);
      expect(c.stderr).toBe("");
      expect(c.stdout).toMatch(new RegExp(`^converted ${old} .* to ${conv} \\("blocksim-replay": 2, trace hash ${text.hash as string}, `));
      expect(c.code).toBe(0);
      const again = await cli("replay", conv, "--quiet");
      expect(again.stdout).toContain(`REPLAY REPRODUCED ${conv}: same choices, trace hash ${text.hash as string}, and the same failure`);
      expect(again.code).toBe(1);
      expect(existsSync(join(tmp, "x.html"))).toBe(false);
    });
  }

  it("convert-replay refuses a file already in the current format, and an old file whose run no longer reproduces (nothing written)", async () => {
    const cur = await cli("convert-replay", "scenarios/races/txn-dead-pointer.replay.json", "-o", join(tmp, "c.replay.json"));
    expect(cur.code).toBe(2);
    expect(cur.stderr).toMatch(/already in the current format \("blocksim-replay": 2\); nothing to convert/);
    const stale = join(tmp, "stale.replay.json"), out = join(tmp, "stale-new.replay.json");
    writeFileSync(stale, JSON.stringify({ ...OLD["race.replay.json"].text, hash: "0123456789abcdef" }));
    const r = await cli("convert-replay", stale, "-o", out);
    expect(r.code).toBe(1);
    expect(r.stdout).toMatch(/^NOT CONVERTED .*: its run no longer reproduces the recording.*\n {2}trace hash [0-9a-f]{16} differs from the recorded 0123456789abcdef/);
    expect(r.stdout).toContain(`trace hash ${race.hash as string} differs`);
    expect(existsSync(out)).toBe(false);
  });
});
