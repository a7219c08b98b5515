/**
 * Every whole-number option of every command has a range (issue 19,
 * sim/scenario/limits.ts OPTION_LIMITS): below it, above it, or not plain
 * decimal digits (1e3, 0x10, 2.5, -1) is exit 2 with one line naming the
 * option and the range, before any work. Seeds are exact inside their range:
 * a seed that would round (2^53 for runs, 2^32 for fast-check's fuzz seeds)
 * is refused, never run as another one.
 */
import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { runMain as run } from "./run-main.js";
import { OPTION_LIMITS, wholeNumberOption } from "../../sim/scenario/limits.js";

/** A command line that reaches the option's check (the rest valid), with the option set to `value`. */
const COMMAND: Record<Exclude<keyof typeof OPTION_LIMITS, "serve --grace" | "serve --max-message">, (value: string) => string[]> = {
  "--seed": (v) => ["run", "scenarios/stream.yaml", `--seed=${v}`],
  "check-determinism --runs": (v) => ["check-determinism", "scenarios/stream.yaml", `--runs=${v}`],
  "fuzz --seed": (v) => ["fuzz", `--seed=${v}`, "--runs", "1"],
  "fuzz --runs": (v) => ["fuzz", `--runs=${v}`],
  "fuzz --workers": (v) => ["fuzz", `--workers=${v}`, "--runs", "1"],
  "fuzz --shard": (v) => ["fuzz", `--shard=1/${v}`, "--runs", "1"],
  "explore --seed": (v) => ["explore", "cancel-sleeping-job", `--seed=${v}`, "--budget", "1"],
  "explore --budget": (v) => ["explore", "cancel-sleeping-job", `--budget=${v}`],
  "explore --depth": (v) => ["explore", "cancel-sleeping-job", "--strategy", "pct", `--depth=${v}`, "--budget", "1"],
  "explore --max-choice-points": (v) => ["explore", "cancel-sleeping-job", "--strategy", "exhaustive", `--max-choice-points=${v}`, "--budget", "1"],
  "explore --max-preemptions": (v) => ["explore", "cancel-sleeping-job", "--strategy", "exhaustive", `--max-preemptions=${v}`, "--budget", "1"],
  "races --budget": (v) => ["races", "--race", "cancel-sleeping-job", `--budget=${v}`],
  "record --runs": (v) => ["record", "test/conformance/specs/backup_sync_none.json", `--runs=${v}`],
  "record --generate": (v) => ["record", `--generate=${v}`],
  "record --seed": (v) => ["record", "--generate", "1", `--seed=${v}`],
};

describe("whole-number options", () => {
  for (const [option, args] of Object.entries(COMMAND)) {
    const { min, max } = OPTION_LIMITS[option as keyof typeof COMMAND];
    const flag = option.slice(option.indexOf("--"));
    it(`${option}: from ${min} to ${max}; outside, or not decimal digits, is exit 2 naming the option and the range`, async () => {
      const refused = [String(max + 1), "1e3", "0x10", "2.5", "-1", "", " 5", "99999999999999999999999"];
      if (min > 0) refused.push(String(min - 1));
      for (const v of refused) {
        const r = await run(...args(v));
        expect(r.code, `${option}=${JSON.stringify(v)}: ${r.stderr}`).toBe(2);
        expect(r.stdout).toBe("");
        // fuzz --shard says i/n, the others their range
        expect(r.stderr, `${option}=${v}`).toMatch(flag === "--shard" ? /--shard expects (i\/n|at most 10,000 shards)/ : new RegExp(`${flag} expects a whole number from ${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}, got `));
        expect(r.stderr.split("\n")).toHaveLength(2);
      }
    });
  }

  it("the largest seed runs, and is that seed (2^53 - 1 for run; 2^32 - 1 for fuzz, whose fast-check keeps 32 bits)", async () => {
    const r = await run("run", "scenarios/stream.yaml", "--seed", "9007199254740991", "--strategy", "random", "--json");
    expect(r.code).toBe(0);
    expect(JSON.parse(r.stdout.trim().split("\n").pop()!).blocksim).toMatchObject({ seed: 9007199254740991, strategy: "random" });
    expect(wholeNumberOption("fuzz --seed", "4294967295", 1)).toBe(4294967295);
  });

  it("a first seed whose later runs or shards would pass the last exact seed is refused", async () => {
    let r = await run("fuzz", "--seed", "4294967295", "--shard", "1/2", "--runs", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seed 4294967295 would use seeds up to 4294967296 \(one per shard\), past 4294967295/);
    r = await run("explore", "cancel-sleeping-job", "--seed", "9007199254740991", "--budget", "2");
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/--seed 9007199254740991 with --budget 2 would use seeds past 9007199254740991/);
  });

  it("fuzz --time: a duration from 1ms to 24h", async () => {
    for (const v of ["0ms", "25h", "1e3s", "5", "-1s", "99999999999999999999h"]) {
      const r = await run("fuzz", `--time=${v}`, "--runs", "1");
      expect(r.code, v).toBe(2);
      expect(r.stderr, v).toMatch(/--time expects a duration/);
    }
  });

  it("the README's table lists every option's range", () => {
    const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
    const section = readme.slice(readme.indexOf("## Running untrusted scenarios"), readme.indexOf("## Set up, run, test"));
    for (const [option, { min, max }] of Object.entries(OPTION_LIMITS)) {
      const range = max === Number.MAX_SAFE_INTEGER ? `${min} to 2^53 − 1` : max === 2 ** 32 - 1 ? `${min} to 2^32 − 1` : `${min.toLocaleString("en-US")} to ${max.toLocaleString("en-US")}`;
      expect(section, option).toMatch(new RegExp(`\\| \`${option.replace(/[-^$]/g, "\\$&")}\` \\| ${range.replace(/\^/g, "\\^")}`));
    }
  });
});
