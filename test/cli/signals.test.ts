/**
 * Stopping blocksim (issue 19). `npx blocksim …` runs blocksim under a shell
 * that npm starts (npm → sh -c → node); npm forwards SIGTERM and SIGINT to
 * the shell only and SIGHUP to nobody, so a kill of npm used to leave
 * blocksim running on, adopted by init, and writing its output. And
 * `record` killed mid-run left its QEMU running and its folder in /tmp.
 * Here: a long run under npx is signalled through npm; blocksim must not
 * outlive npm's shell, and no output (or temporary) file may appear.
 */
import { spawn, spawnSync, type ChildProcess } from "node:child_process";
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";

const ROOT = new URL("../../", import.meta.url).pathname;
const tmp = mkdtempSync(join(tmpdir(), "blocksim-signals-"));
afterAll(() => rmSync(tmp, { recursive: true, force: true }));

/** A run of minutes: a guest writing every microsecond until a step at 900 s of virtual time. */
const LONG = `name: long
devices: [{ name: d, size: 64MiB, latency: 10us }]
nodes: [{ driver: raw, node-name: n, file: d }]
guests: [{ node: n, interval: 1us, iodepth: 4 }]
steps: [{ at: 900s, execute: query-jobs }]
limits: { time: 1000s, steps: 200000000 }
expect: { invariants: none }
`;

interface Proc {
  pid: number;
  ppid: number;
  state: string;
  comm: string;
}

function stat(pid: number): Proc | undefined {
  try {
    const s = readFileSync(`/proc/${pid}/stat`, "utf8");
    const [state, ppid] = s.slice(s.lastIndexOf(")") + 2).split(" ");
    return { pid, ppid: Number(ppid), state, comm: s.slice(s.indexOf("(") + 1, s.lastIndexOf(")")) };
  } catch {
    return undefined;
  }
}

function childrenOf(pid: number): Proc[] {
  return readdirSync("/proc").filter((d) => /^\d+$/.test(d)).map((d) => stat(Number(d))).filter((p): p is Proc => p?.ppid === pid);
}

/** Alive: exists and is not a zombie waiting to be reaped. */
const alive = (pid: number) => {
  const p = stat(pid);
  return p !== undefined && p.state !== "Z" && p.state !== "X";
};

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Polls `cond` every 100 ms for up to `ms` (a liveness bound, not a measurement). */
async function eventually(cond: () => boolean, ms: number): Promise<boolean> {
  for (const end = Date.now() + ms; Date.now() < end; await sleep(100)) if (cond()) return true;
  return cond();
}

function exited(child: ChildProcess): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
  return new Promise((r) => {
    if (child.exitCode !== null || child.signalCode !== null) r({ code: child.exitCode, signal: child.signalCode });
    else child.once("exit", (code, signal) => r({ code, signal }));
  });
}

/** `npx blocksim run LONG --save-replay out` in its own folder; resolves once blocksim (node) runs under npm's shell. */
async function startUnderNpx(name: string) {
  const dir = join(tmp, name);
  rmSync(dir, { recursive: true, force: true });
  spawnSync("mkdir", ["-p", dir]);
  writeFileSync(join(dir, "long.yaml"), LONG);
  const npm = spawn("npx", ["blocksim", "run", join(dir, "long.yaml"), "--save-replay", join(dir, "out.replay.json")], { cwd: ROOT, stdio: "ignore", detached: true, env: NPX_ENV });
  let shell: Proc | undefined, node: Proc | undefined;
  await eventually(() => {
    shell = childrenOf(npm.pid!).find((p) => p.comm === "sh");
    node = shell && childrenOf(shell.pid).find((p) => p.comm === "node");
    return node !== undefined;
  }, 30_000);
  if (!node) {
    process.kill(-npm.pid!, "SIGKILL");
    throw new Error("npx did not start blocksim under a shell");
  }
  return { npm, shell: shell!, node, dir };
}

/**
 * npx links the project into its cache on first use; a kill during that, or two npx at once in one
 * folder, can leave a broken cache entry that fails every later npx there. The tests use a cache of
 * their own, filled once before any kill.
 */
const NPX_ENV = { ...process.env, npm_config_cache: join(tmp, "npm-cache"), npm_config_update_notifier: "false" };
const npxWorks = process.platform === "linux" && spawnSync("npx", ["--version"]).status === 0;

beforeAll(() => {
  if (!npxWorks) return;
  const r = spawnSync("npx", ["blocksim", "--version"], { cwd: ROOT, env: NPX_ENV, encoding: "utf8", timeout: 120_000 });
  if (r.status !== 0) throw new Error(`npx blocksim --version failed (status ${r.status}): ${r.stderr}`);
}, 150_000);

describe.skipIf(!npxWorks)("npx blocksim signalled through npm", () => {
  for (const signal of ["SIGTERM", "SIGHUP"] as const) {
    it(`${signal} to npm: blocksim does not outlive npm's shell, and writes no output or temporary file`, async () => {
      const { npm, node, dir } = await startUnderNpx(signal);
      try {
        await sleep(1000); // well inside the run
        process.kill(npm.pid!, signal);
        const end = await exited(npm);
        expect(end.signal ?? end.code, "npm ends as killed by the signal").toBe(signal === "SIGTERM" ? "SIGTERM" : "SIGHUP");
        expect(await eventually(() => !alive(node.pid), 15_000), `blocksim (pid ${node.pid}) still runs, ${JSON.stringify(stat(node.pid))}`).toBe(true);
        expect(readdirSync(dir)).toEqual(["long.yaml"]);
      } finally {
        if (alive(node.pid)) process.kill(node.pid, "SIGKILL");
      }
    }, 60_000);
  }

  it("SIGINT to npm: its shell holds the interrupt until blocksim ends, so blocksim keeps its parents (not orphaned); a SIGTERM then ends both", async () => {
    const { npm, shell, node, dir } = await startUnderNpx("SIGINT");
    try {
      await sleep(1000);
      process.kill(npm.pid!, "SIGINT");
      await sleep(1000);
      if (alive(node.pid)) expect(stat(node.pid)!.ppid).toBe(shell.pid);
      process.kill(npm.pid!, "SIGTERM");
      await exited(npm);
      expect(await eventually(() => !alive(node.pid), 15_000), `blocksim (pid ${node.pid}) still runs`).toBe(true);
      expect(readdirSync(dir)).toEqual(["long.yaml"]);
    } finally {
      if (alive(node.pid)) process.kill(node.pid, "SIGKILL");
    }
  }, 60_000);
});

const qemuWorks = process.platform === "linux" && spawnSync("qemu-system-x86_64", ["--version"]).status === 0;

describe.skipIf(!qemuWorks)("blocksim record stopped by a signal", () => {
  it("SIGTERM while QEMU runs: QEMU is killed, its folder removed, blocksim ends as killed by SIGTERM", async () => {
    const live = join(tmp, "live");
    spawnSync("mkdir", ["-p", live]);
    const rec = spawn(process.execPath, [join(ROOT, "bin/blocksim.js"), "record", join(ROOT, "test/conformance/specs/backup_sync_none.json"), "--runs", "50", "--out", join(tmp, "goldens")], {
      cwd: ROOT, stdio: "ignore", env: { ...process.env, TMPDIR: live },
    });
    let qemu: Proc | undefined;
    await eventually(() => (qemu = childrenOf(rec.pid!).find((p) => p.comm.startsWith("qemu-system"))) !== undefined, 30_000);
    expect(qemu, "record started a QEMU").toBeDefined();
    const folders = () => readdirSync(live).filter((f) => f.startsWith("blocksim-live-"));
    expect(folders()).toHaveLength(1);
    process.kill(rec.pid!, "SIGTERM");
    const end = await exited(rec);
    expect(end.signal).toBe("SIGTERM");
    expect(await eventually(() => !alive(qemu!.pid), 10_000), `QEMU (pid ${qemu!.pid}) still runs`).toBe(true);
    expect(folders()).toEqual([]);
    expect(readdirSync(join(tmp, "goldens")), "no golden, not even a temporary file").toEqual([]);
  }, 60_000);
});
