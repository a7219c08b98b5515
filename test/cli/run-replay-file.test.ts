/**
 * `blocksim run` given a replay file (a fuzz failure's, a race's, a saved
 * run's) says what it is and how to run it, in one line, instead of listing
 * its keys as scenario schema errors.
 */
import { copyFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { runMain as cli } from "./run-main.js";

const ROOT = new URL("../../", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "blocksim-run-replay-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

describe("blocksim run REPLAY.json", () => {
  it("refuses it in one line naming the command that runs it (exit 2), and still runs the scenarios beside it", async () => {
    const replay = join(ROOT, "scenarios/start-shim.no-start-shim.replay.json");
    // The same file under a name without .replay: known by its content.
    const renamed = join(tmp, "saved run.json");
    copyFileSync(replay, renamed);
    for (const file of [replay, renamed]) {
      const r = await cli("run", file, "--quiet");
      expect(r.code).toBe(2);
      expect(r.stdout).toBe("");
      expect(r.stderr).toBe(`blocksim: ${file} is a replay file, not a scenario; run it with: blocksim replay ${file.includes(" ") ? `'${file}'` : file}\n`);
    }
    expect((await cli("replay", replay, "--quiet")).stdout).toMatch(/^REPLAY REPRODUCED /m); // the command it names works
    const both = await cli("run", renamed, join(ROOT, "scenarios/stream.yaml"), "--quiet");
    expect(both.code).toBe(2);
    expect(both.stdout).toMatch(/^PASS stream: /);
  });
});
