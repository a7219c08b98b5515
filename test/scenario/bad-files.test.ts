import { readdirSync, readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { main, type Io } from "../../cli/main.js";

const dir = new URL("./bad/", import.meta.url);
const files = readdirSync(dir).filter((f) => /\.(ya?ml|json)$/.test(f)).sort();

/** Expectations of files that cannot carry a `# expect:` comment (JSON, empty). */
const EXPECT: Record<string, string> = {
  "01-empty.yaml": "the file is empty: expected a mapping with at least `name`",
  "02-top-list.yaml": "expected a mapping (name:, devices:, nodes:, steps:, expect: …) at the top, got a list",
  "32-json-syntax.json": "not valid YAML/JSON",
  "33-json-unknown-key.json": 'unknown key "latncy" (did you mean "latency"?)',
};

export function capture(): Io & { stdout: string; stderr: string } {
  const io = { stdout: "", stderr: "", tty: false, out: (t: string) => void (io.stdout += t), err: (t: string) => void (io.stderr += t) };
  return io;
}

function expected(file: string): string {
  const m = /^# expect: (.*)$/m.exec(readFileSync(new URL(file, dir), "utf8"));
  return (m ? m[1] : EXPECT[file]).trim();
}

describe("malformed scenario files", () => {
  it("make a corpus of at least 30, each with an expected message", () => {
    expect(files.length).toBeGreaterThanOrEqual(30);
    for (const f of files) expect(expected(f), f).toBeTruthy();
  });

  for (const f of files) {
    it(`${f}: exit code 2 and a one-screen error naming the problem`, async () => {
      const io = capture();
      const path = new URL(f, dir).pathname;
      const code = await main(["run", path], io);
      expect(code).toBe(2);
      expect(io.stdout).toBe("");
      expect(io.stderr).toContain(expected(f));
      expect(io.stderr).toContain(path); // names the file
      expect(io.stderr).not.toMatch(/^\s+at .*\(.*:\d+:\d+\)$/m); // no stack trace
      expect(io.stderr.split("\n").length).toBeLessThanOrEqual(25);
      // 47 is found only while the world is built (the guest layer checks its region), where lines are no longer known.
      if (!["01-empty.yaml", "47-guest-region-outside.yaml"].includes(f)) expect(io.stderr, "names the line").toMatch(/\.(ya?ml|json):\d+(:\d+)?: /);
    });
  }
});
