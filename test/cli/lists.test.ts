/** The listing commands (issue 18): events, commands with arguments, --version, unknown options refused. */
import { describe, expect, it } from "vitest";
import { runMain as run } from "./run-main.js";

describe("listing commands", () => {
  it("events lists QEMU 7.2's events with their data members, the modelled ones first", async () => {
    const r = await run("events");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^Sent by blocksim:\nJOB_STATUS_CHANGE\n {4}id: str\n {4}status: /);
    expect(r.stdout).toMatch(/BLOCK_JOB_CANCELLED\n {4}type: .*\n {4}device: str\n {4}len: int\n {4}offset: int\n {4}speed: int\n/);
    expect(r.stdout).toMatch(/not modelled by blocksim[^\n]*\n[\s\S]*BLOCK_IO_ERROR\n/);
  });

  it("commands lists each command's arguments and reply", async () => {
    const r = await run("commands");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/^job-pause {2}→ \{\}\n {4}id: str$/m);
    expect(r.stdout).toMatch(/^query-jobs {2}→ \[JobInfo\]: id, type, status, current-progress, total-progress, error\?\n {4}\(no arguments\)$/m);
    expect(r.stdout).toMatch(/^ {4}sync: full \| top \| none/m);
  });

  it("--version prints the package version", async () => {
    const r = await run("--version");
    expect(r).toMatchObject({ code: 0, stdout: expect.stringMatching(/^blocksim \d+\.\d+\.\d+\n$/) });
  });

  it("commands without options refuse unknown ones with exit 2; the error's command list is current", async () => {
    for (const c of ["events", "commands", "profiles", "invariants", "schema"]) {
      const r = await run(c, "--bogus");
      expect(r.code, c).toBe(2);
      expect(r.stderr, c).toMatch(new RegExp(`^blocksim: '${c}' takes no arguments or options`));
    }
    const r = await run("recrod");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/did you mean "record"\?\); commands: .*conform.*events.*record/);
  });
});
