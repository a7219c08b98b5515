/**
 * Live conformance: records small specs against a real QEMU right now and
 * checks that (1) the fresh recording still matches the committed golden and
 * (2) the simulator produces the fresh recording. Runs only when
 * qemu-system-x86_64 (and qemu-img, for the image spec) is on PATH; CI does
 * not install QEMU, so there it skips, saying why.
 */
import { accessSync, constants } from "node:fs";
import { delimiter, join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadGolden, loadSpec, waitsOf } from "../../live/golden.js";
import { recordGolden } from "../../live/record.js";
import { GOLDENS_DIR } from "./paths.js";
import { CHAIN, firstDifference, load, optionalEntries, replay, SHARED_WAITS, showDifference } from "../../live/spec-driver.js";
import type { TranscriptEntry } from "../../sim/qmp/types.js";

function onPath(bin: string): boolean {
  return (process.env.PATH ?? "").split(delimiter).some((d) => {
    try {
      accessSync(join(d, bin), constants.X_OK);
      return true;
    } catch {
      return false;
    }
  });
}

const haveQemu = onPath("qemu-system-x86_64") && onPath("qemu-img") && onPath("qemu-io");
const WHY = "qemu-system-x86_64, qemu-img or qemu-io not on PATH (apt-get install qemu-system-x86 qemu-utils to run it)";
if (!haveQemu) console.warn(`test/conformance/live.test.ts skipped: ${WHY}`);

/** Small and quick (about a second each): a blkdebug error, and a qcow2 chain made with qemu-img. */
const LIVE_SPECS = ["target_error_report", "commit_intermediate"];

describe.skipIf(!haveQemu)(`against a real QEMU, recorded now${haveQemu ? "" : ` (skipped: ${WHY})`}`, () => {
  for (const name of LIVE_SPECS) {
    it(`${name}: a fresh recording matches the committed golden, and the simulator matches the fresh recording`, async () => {
      const spec = loadSpec(new URL(`./specs/${name}.json`, import.meta.url));
      const fresh = await recordGolden(spec, { runs: 1, timeoutMs: 20_000 });
      expect(fresh.qemu).toMatch(/^7\.2\./);
      const strip = (s: typeof fresh.sequence) => s.filter((e): e is TranscriptEntry => !("note" in e));

      const golden = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      const vsGolden = firstDifference(strip(golden.sequence), strip(fresh.sequence), optionalEntries(golden));
      if (vsGolden) expect.fail(`${name}: QEMU now departs from the committed golden at entry ${vsGolden.at}:\n${showDifference(strip(golden.sequence), strip(fresh.sequence), vsGolden)}`);

      const { expected, observed } = replay(fresh, waitsOf(fresh));
      const vsSim = firstDifference(expected, observed);
      if (vsSim) expect.fail(`${name}: the simulator departs from QEMU at entry ${vsSim.at}:\n${showDifference(expected, observed, vsSim)}`);
    }, 60_000);
  }
});

describe.skipIf(!haveQemu)(`the recorder against the shared recordings${haveQemu ? "" : ` (skipped: ${WHY})`}`, () => {
  for (const name of ["backup_full", "stream"]) {
    it(`${name}: recording the shared recording's commands again gives its sequence`, async () => {
      const rec = load(name);
      const waits = Object.fromEntries(Object.entries(SHARED_WAITS[name]).map(([k, w]) => [k, w]));
      const fresh = await recordGolden({ scenario: name, description: rec.description, commands: rec.commands, waits, ...(name === "stream" ? { images: CHAIN } : {}) }, { runs: 1, timeoutMs: 20_000 });
      const strip = (s: typeof fresh.sequence) => s.filter((e): e is TranscriptEntry => !("note" in e));
      const d = firstDifference(strip(rec.sequence), strip(fresh.sequence), optionalEntries(rec));
      if (d) expect.fail(`${name}: the recorder departs from ../shared/conformance at entry ${d.at}:\n${showDifference(strip(rec.sequence), strip(fresh.sequence), d)}`);
    }, 60_000);
  }
});
