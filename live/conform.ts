/**
 * Checks goldens (or the ../shared/conformance recordings) against the
 * simulator: replays each with its own waits and images and reports the
 * first entry where the simulator departs, with a readable diff. No QEMU is
 * needed; nothing here touches real time.
 *
 *   npx tsx live/conform.ts FILE.json|DIR...
 *
 * Exit status 0 when every file matches, 1 otherwise.
 */
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TranscriptEntry } from "../sim/qmp/types.js";
import { firstDifference, optionalEntries, replay, SHARED_WAITS, showDifference } from "./spec-driver.js";
import { loadGolden, waitsOf } from "./golden.js";

export interface ConformResult {
  file: string;
  scenario: string;
  ok: boolean;
  /** Index of the first recorded entry the simulator departs from. */
  at?: number;
  diff?: string;
  expected: TranscriptEntry[];
  observed: TranscriptEntry[];
}

/** The JSON files a list of files and directories names, in a stable order. */
export function goldenFiles(paths: string[]): string[] {
  return paths.flatMap((p) => (statSync(p).isDirectory() ? readdirSync(p).filter((f) => f.endsWith(".json")).sort().map((f) => join(p, f)) : [p]));
}

/**
 * Replays one golden through the simulator and compares. A file without
 * `waits` (a ../shared/conformance recording) gets the waits its description
 * gives (SHARED_WAITS), if it is one of those.
 */
export function conformFile(file: string): ConformResult {
  const golden = loadGolden(file);
  const waits = golden.waits ? waitsOf(golden) : SHARED_WAITS[golden.scenario] ?? {};
  const { expected, observed, stuck } = replay(golden, waits);
  const d = firstDifference(expected, observed, optionalEntries(golden));
  const diff = d ? showDifference(expected, observed, d) + (stuck ? `\n(${stuck})` : "") : undefined;
  return { file, scenario: golden.scenario, ok: !d, expected, observed, ...(d ? { at: d.at, diff } : {}) };
}

export function conform(paths: string[]): ConformResult[] {
  return goldenFiles(paths).map(conformFile);
}

/** One line per file, and the diff of each that departs. */
export function formatResults(results: ConformResult[]): string {
  const lines = results.map((r) => (r.ok ? `ok    ${r.scenario} (${r.expected.length} entries)` : `DIFF  ${r.scenario}: departs at entry ${r.at}\n${r.diff!.replace(/^/gm, "      ")}`));
  const bad = results.filter((r) => !r.ok).length;
  lines.push(`${results.length - bad} of ${results.length} match the simulator`);
  return lines.join("\n") + "\n";
}

/**
 * `blocksim conform FILE|DIR…`: replays goldens (or ../shared/conformance
 * recordings) through the simulator. Exit 0 when all match, 1 when one
 * departs, 2 for bad input.
 */
export function conformCommand(argv: string[], io: { out(t: string): void; err(t: string): void } = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): number {
  if (argv.length === 0 || argv.includes("--help") || argv.includes("-h")) {
    io.err("usage: blocksim conform FILE.json|DIR...   (goldens, or ../shared/conformance recordings)\n");
    return 2;
  }
  try {
    const results = conform(argv);
    io.out(formatResults(results));
    return results.every((r) => r.ok) ? 0 : 1;
  } catch (e) {
    io.err(`conform: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(conformCommand(process.argv.slice(2)));
}
