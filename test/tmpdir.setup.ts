/**
 * The test run's temporary folder (vitest globalSetup). Every test and every
 * blocksim it starts gets TMPDIR = one fresh folder, removed with all its
 * content when the run ends, so a test that forgets its folder leaves
 * nothing in /tmp; such folders are listed at the end to be fixed. tsx's
 * compile cache stays shared (a link to the usual one), so subprocesses
 * start as fast as before.
 */
import { existsSync, mkdtempSync, readdirSync, rmSync, symlinkSync } from "node:fs";
import { tmpdir, userInfo } from "node:os";
import { join } from "node:path";

export default function setup(): () => void {
  const outer = tmpdir();
  const dir = mkdtempSync(join(outer, "blocksim-test-"));
  const tsxCache = `tsx-${userInfo().uid}`;
  if (existsSync(join(outer, tsxCache))) symlinkSync(join(outer, tsxCache), join(dir, tsxCache));
  process.env.TMPDIR = dir;
  return () => {
    const left = readdirSync(dir).filter((f) => f !== tsxCache);
    if (left.length > 0) process.stderr.write(`tests left ${left.length} temporary folder(s) (removed now; make the test remove them): ${left.join(", ")}\n`);
    rmSync(dir, { recursive: true, force: true });
    process.env.TMPDIR = outer;
  };
}
