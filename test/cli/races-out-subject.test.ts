/**
 * `blocksim races FILE --out DIR`: the replay file's subject does not depend
 * on how FILE is spelled. A scenario inside DIR's folder tree is named by
 * path (relative to the replay file); one outside it is held inline, as the
 * replay reader refuses paths outside its folder. Either replays, and draws
 * its timeline, from any working directory.
 */
import { spawnSync } from "node:child_process";
import { copyFileSync, mkdirSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMain as blocksim } from "./run-main.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const RACE = "set-speed-zero-no-kick";
const dir = mkdtempSync(join(tmpdir(), "blocksim-races-out-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));

const blocksimIn = (cwd: string, ...args: string[]) => spawnSync(process.execPath, [join(ROOT, "bin/blocksim.js"), ...args], { cwd, encoding: "utf8", timeout: 60_000 });
const subjectOf = (file: string) => (JSON.parse(readFileSync(file, "utf8")) as { subject: Record<string, unknown> }).subject;

describe("races --out: the replay file's subject", () => {
  it("is the same for a relative and an absolute FILE, and replays and draws from another working directory", async () => {
    const cat = join(dir, "cat"), elsewhere = join(dir, "elsewhere");
    mkdirSync(cat);
    mkdirSync(elsewhere);
    copyFileSync(join(ROOT, `scenarios/races/${RACE}.yaml`), join(cat, `${RACE}.yaml`));
    const subjects: Record<string, unknown>[] = [];
    for (const [file, out] of [[`${RACE}.yaml`, "."], [join(cat, `${RACE}.yaml`), cat], [`${RACE}.yaml`, elsewhere], [join(cat, `${RACE}.yaml`), elsewhere]]) {
      const r = blocksimIn(cat, "races", file, "--budget", "5", "--out", out);
      expect(r.status, r.stderr).toBe(0);
      const written = join(out === "." ? cat : out, `${RACE}.replay.json`);
      subjects.push(subjectOf(written));
      // From the repository's folder, not the one races ran in.
      const again = await blocksim("replay", written);
      expect(again.code).toBe(1);
      expect(again.stdout).toMatch(/REPLAY REPRODUCED .*and the same failure/);
      const page = join(dir, `timeline-${subjects.length}.html`);
      expect((await blocksim("timeline", written, "-o", page)).stdout).toBe(`FAIL ${RACE}: timeline written to ${page}\n`);
      expect(readFileSync(page, "utf8")).toContain(RACE);
    }
    // Inside --out's folder: by path, whichever spelling; outside it: inline, whichever spelling.
    expect(subjects[0]).toMatchObject({ scenario: `${RACE}.yaml` });
    expect(subjects[1]).toEqual(subjects[0]);
    expect(subjects[2]).toHaveProperty("inline");
    expect(subjects[3]).toEqual(subjects[2]);
  });
});
