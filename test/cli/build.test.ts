/**
 * The shipped command line is a bundle (`npm run build`, run by `npm ci`):
 * it must behave exactly as the sources do. Built here into a folder of its
 * own, so the test never depends on whether dist/ is fresh.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { mkdirSync, readdirSync, rmSync } from "node:fs";
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

function built(argv: string[]): { code: number; out: string; err: string } {
  const r = spawnSync(process.execPath, [join(ROOT, "bin", "blocksim.js"), ...argv], { cwd: ROOT, encoding: "utf8", env: { ...process.env, BLOCKSIM_DIST: OUT } });
  return { code: r.status ?? -1, out: r.stdout, err: r.stderr };
}

describe("the bundled command line", () => {
  beforeAll(() => {
    rmSync(OUT, { recursive: true, force: true });
    mkdirSync(OUT, { recursive: true });
    execFileSync(process.execPath, [join(ROOT, "build", "bundle.mjs"), "--outdir", OUT], { cwd: ROOT });
  });

  it("is a bundle with its code cache", () => {
    expect(readdirSync(OUT).sort()).toEqual(["BUILT", "blocksim.cjs", "blocksim.code-cache", "fuzz-worker.cjs"]);
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

  it("runs fuzz workers from the bundle", () => {
    const got = built(["fuzz", "--runs", "20", "--workers", "2", "--seed", "3"]);
    expect(got.err).not.toMatch(/internal error|worker exited/);
    expect(got.code).toBe(0);
    expect(got.err + got.out).toMatch(/no violation in 20 runs/);
  });
});
