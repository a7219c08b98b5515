import { execFileSync } from "node:child_process";
import { describe, expect, it } from "vitest";

const run = (driver: string) =>
  execFileSync(process.execPath, ["--import", "tsx", "scenarios/examples/drivers.ts", driver], { encoding: "utf8", timeout: 60_000 });

describe("the shipped example per driver (scenarios/examples/drivers.ts)", () => {
  it.each([
    ["backup", "target equals the disk as it was when the backup started: true"],
    ["mirror", "the old disk still holds exactly its content at the pivot: true"],
    ["stream", "mid's data is allocated in top: true"],
    ["commit", "base holds mid's data: true"],
  ])("%s runs to completion and its data check holds", (driver, check) => {
    const out = run(driver);
    expect(out).toContain(`${driver}: run ok`);
    expect(out).toContain(check);
    expect(out).toMatch(/BLOCK_JOB_COMPLETED/);
  });
});
