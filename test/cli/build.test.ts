/**
 * The shipped command line is a bundle (`npm run build`, run by `npm ci`):
 * it must behave exactly as the sources do. Built here into a folder of its
 * own, so the test never depends on whether dist/ is fresh.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";

const ROOT = fileURLToPath(new URL("../..", import.meta.url));
const OUT = join(ROOT, "node_modules", ".cache", "blocksim-build-test");

async function inProcess(argv: string[]): Promise<{ code: number; out: string }> {
  let out = "";
  const code = await main(argv, { out: (t) => void (out += t), err: () => {}, tty: false });
  return { code, out };
}

function built(argv: string[], env: Record<string, string> = {}): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "blocksim.js"), ...argv], { cwd: ROOT, encoding: "utf8", env: { ...process.env, BLOCKSIM_DIST: OUT, ...env } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe("the bundled command line", () => {
  beforeAll(() => {
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    execFileSync(process.execPath, [join(ROOT, "build", "bundle.mjs"), "--outdir", OUT], { cwd: ROOT });
  });

  it("is a bundle with its two code caches (one made under the campaign V8 flags)", () => {
    expect(readdirSync(OUT).filter((f) => !f.startsWith("fuzz-")).sort()).toEqual(["BUILT", "blocksim.campaign.code-cache", "blocksim.cjs", "blocksim.code-cache"]);
  });

  it("prints what the sources print for a run, byte for byte", async () => {
    const argv = ["run", "scenarios/backup.yaml", "--json"];
    const want = await inProcess(argv);
    const got = built(argv);
    expect(got.err).toBe("");
    expect(got.code).toBe(want.code);
    expect(got.out).toBe(want.out);
  });

  it("replays a shipped replay file as the sources do (it finds the package's files from the bundle)", async () => {
    const file = readdirSync(join(ROOT, "scenarios", "races")).filter((f) => f.endsWith(".replay.json")).sort()[0];
    const argv = ["replay", join("scenarios", "races", file)];
    const want = await inProcess(argv);
    const got = built(argv);
    expect(got.code).toBe(want.code);
    expect(got.out).toBe(want.out);
  });

  // Worker threads start at once, not only when a core is idle and the campaign long.
  const atOnce = { BLOCKSIM_FUZZ_WORKERS_AT_ONCE: "1" };

  it("runs fuzz workers from the bundle", () => {
    // 250 runs: three units of 100, so the worker thread has units to claim.
    const got = built(["fuzz", "--runs", "250", "--workers", "2", "--seed", "3"], atOnce);
    expect(got.err).not.toMatch(/internal error|worker exited/);
    expect(got.code).toBe(0);
    expect(got.err + got.out).toMatch(/no violation in 250 runs/);
  });

  it("finds with fuzz workers what the sources find in one thread: the same output and replay files, byte for byte", async () => {
    // Worker threads of the bundle load it with the campaign code cache, under the campaign V8 flags;
    // in-process, this short campaign runs in the main thread alone.
    const files = (dir: string) => readdirSync(dir).sort().map((f) => [f, readFileSync(join(dir, f), "utf8")]);
    const argv = (dir: string) => ["fuzz", "--profile", "no-start-shim", "--runs", "200", "--seed", "5", "--workers", "2", "--out", join(dir, "f.replay.json")];
    const [a, b] = [join(OUT, "fuzz-sources"), join(OUT, "fuzz-bundle")];
    for (const d of [a, b]) mkdirSync(d);
    try {
      const want = await inProcess(argv(a));
      const got = built(argv(b), atOnce);
      expect(got.err).toBe("");
      expect(got.code).toBe(want.code);
      expect(got.out).toBe(want.out.replaceAll(a, b));
      expect(files(b).length).toBeGreaterThan(0);
      expect(files(b)).toEqual(files(a).map(([f, text]) => [f, text.replaceAll(a, b)]));
    } finally {
      for (const d of [a, b]) rmSync(d, { recursive: true, force: true });
    }
  }, 60_000);
});
