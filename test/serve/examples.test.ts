/** The example clients in serve/examples drive a real `blocksim serve` socket to a finished backup. */
import { execFile } from "node:child_process";
import { fileURLToPath } from "node:url";
import { promisify } from "node:util";
import { readFileSync } from "node:fs";
import { afterEach, describe, expect, it } from "vitest";
import { startServer } from "./helpers.js";

const run = promisify(execFile);
const ROOT = fileURLToPath(new URL("../../", import.meta.url));
const BACKUP_YAML = readFileSync(new URL("../../scenarios/backup.yaml", import.meta.url), "utf8");
const havePython = await run("python3", ["--version"]).then(() => true, () => false);

let stop: (() => Promise<void>) | undefined;
afterEach(async () => {
  await stop?.();
  stop = undefined;
});

async function serveBackup() {
  const s = await startServer({ scenario: BACKUP_YAML.replace(/\nsteps:[\s\S]*?\nexpect:/, "\nexpect:"), clock: { kind: "step" } });
  stop = s.stop;
  return s.path;
}

describe("serve/examples", () => {
  it("client.ts: a backup to completion, its events printed with virtual timestamps", async () => {
    const path = await serveBackup();
    const { stdout } = await run(process.execPath, ["--import", "tsx", "serve/examples/client.ts", path], { cwd: ROOT });
    expect(stdout).toMatch(/greeting: \{"micro":22,"minor":2,"major":7\}/);
    expect(stdout).toMatch(/^\d+\.\d{6} JOB_STATUS_CHANGE \{"id":"ts0","status":"created"\}$/m);
    expect(stdout).toContain('completed: {"type":"backup","device":"ts0","len":33554432,"offset":33554432,"speed":0}');
  });

  it.skipIf(!havePython)("client.py (standard library only): the same backup", async () => {
    const path = await serveBackup();
    const { stdout } = await run("python3", ["serve/examples/client.py", path], { cwd: ROOT });
    expect(stdout).toMatch(/^\d+\.\d{6} JOB_STATUS_CHANGE \{"id": "py0", "status": "concluded"\}$/m);
    expect(stdout).toContain('completed: {"type": "backup", "device": "py0", "len": 33554432, "offset": 33554432, "speed": 0}');
  });
});
