/**
 * V8 tuning for a fuzz campaign's process. A campaign runs thousands of
 * short simulations through a large code base, so from a cold start about
 * half of its CPU time went to V8's background optimizing compiler (four
 * threads, ~1.4 of 3.2 CPU-s for 2,000 runs) compiling code with deep
 * inlining that each run then uses briefly. Inlining less and optimizing a
 * little later cut the CPU time of `fuzz --runs 200` by ~19 % and of
 * `--runs 2000` by ~16 %, with `--runs 8000` unchanged (bench/campaign.ts;
 * README "Benchmarks"). JIT settings change no result: runs are
 * deterministic whatever the compiler does. The flags are process-wide
 * (fuzz worker threads share them) and must be set before the campaign's
 * code gets hot, so the process wrapper sets them before the command runs
 * (bin/blocksim.js sets them already before it compiles the bundle, to use
 * the code cache made under them).
 */
import { setFlagsFromString } from "node:v8";
// A JSON file, so that bin/blocksim.js can set the same flags before it compiles the bundle.
import flags from "./campaign-v8-flags.json" with { type: "json" };

export const CAMPAIGN_V8_FLAGS: readonly string[] = flags;

/** Whether `argv` (after the program name) is a command that runs a campaign. */
export function runsCampaign(argv: readonly string[]): boolean {
  return argv[0] === "fuzz";
}

export function tuneForCampaign(): void {
  for (const f of CAMPAIGN_V8_FLAGS) setFlagsFromString(f);
}
