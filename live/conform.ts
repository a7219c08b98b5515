/**
 * Checks goldens (or the ../shared/conformance recordings) against the
 * simulator: replays each with its own waits and images and reports the
 * first entry where the simulator departs, with a readable diff. No QEMU is
 * needed; nothing here touches real time.
 *
 *   npx tsx live/conform.ts FILE.json|DIR...
 *
 * Exit status 0 when every file matches or departs only where
 * live/known-differences.ts declares it (with the reason), 1 for an
 * undeclared difference, 2 for bad input.
 */
import { readdirSync, statSync } from "node:fs";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import type { TranscriptEntry } from "../sim/qmp/types.js";
import { firstDifference, optionalEntries, replay, SHARED_WAITS, showDifference } from "./spec-driver.js";
import { loadGolden, waitsOf, type Golden } from "./golden.js";
import { KNOWN_DIFFERENCES } from "./known-differences.js";

export interface ConformResult {
  file: string;
  scenario: string;
  ok: boolean;
  /** The project's reason when the departure is the declared one (live/known-differences.ts). */
  declared?: string;
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
  const { expected, observed, departs } = compareGolden(golden);
  const known = Object.hasOwn(KNOWN_DIFFERENCES, golden.scenario) ? KNOWN_DIFFERENCES[golden.scenario] : undefined;
  const declared = departs && known && known.from === departs.at ? { declared: known.why } : {};
  return { file, scenario: golden.scenario, ok: !departs, expected, observed, ...(departs ? { ...departs, ...declared } : {}) };
}

/** Replays a golden through the simulator and compares: both transcripts, and where it departs with a readable diff. */
export function compareGolden(golden: Golden): { expected: TranscriptEntry[]; observed: TranscriptEntry[]; departs?: { at: number; diff: string } } {
  const waits = golden.waits ? waitsOf(golden) : SHARED_WAITS[golden.scenario] ?? {};
  const { expected, observed, stuck } = replay(golden, waits);
  const d = firstDifference(expected, observed, optionalEntries(golden));
  if (!d) return { expected, observed };
  return { expected, observed, departs: { at: d.at, diff: showDifference(expected, observed, d) + (stuck ? `\n(${stuck})` : "") } };
}

export function conform(paths: string[]): ConformResult[] {
  return goldenFiles(paths).map(conformFile);
}

/** One line per file, and the diff of each that departs. */
export function formatResults(results: ConformResult[]): string {
  const lines = results.map((r) =>
    r.ok ? `ok    ${r.scenario} (${r.expected.length} entries)`
    : r.declared ? `known ${r.scenario}: departs at entry ${r.at}, a declared difference: ${r.declared}`
    : `DIFF  ${r.scenario}: departs at entry ${r.at}\n${r.diff!.replace(/^/gm, "      ")}`);
  const bad = results.filter((r) => !r.ok).length;
  const declared = results.filter((r) => r.declared).length;
  lines.push(`${results.length - bad} of ${results.length} match the simulator${declared ? `; ${declared} depart where the project declares it (live/known-differences.ts)` : ""}${bad - declared ? `; ${bad - declared} undeclared difference${bad - declared === 1 ? "" : "s"}` : ""}`);
  return lines.join("\n") + "\n";
}

const CONFORM_USAGE = `Usage: blocksim conform FILE.json|DIR…

Replays conformance goldens (test/conformance/goldens) or the shared
recordings of a real QEMU 7.2 (../shared/conformance) through the simulator
and shows, for each, where the simulator departs, with both sides.

Exit codes: 0 every file matches, or departs only where the project declares
it on purpose (live/known-differences.ts, printed with its reason); 1 an
undeclared difference; 2 bad input.

Example:
  blocksim conform test/conformance/goldens ../shared/conformance
`;

/**
 * `blocksim conform FILE|DIR…`: replays goldens (or ../shared/conformance
 * recordings) through the simulator. Exit 0 when all match, 1 when one
 * departs, 2 for bad input.
 */
export function conformCommand(argv: string[], io: { out(t: string): void; err(t: string): void } = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t) }): number {
  if (argv.includes("--help") || argv.includes("-h")) {
    io.out(CONFORM_USAGE);
    return 0;
  }
  const bad = argv.find((a) => a.startsWith("-"));
  if (argv.length === 0 || bad) {
    io.err(bad ? `conform: unknown option ${bad}; see: blocksim conform --help\n` : CONFORM_USAGE);
    return 2;
  }
  try {
    const results = conform(argv);
    io.out(formatResults(results));
    return results.every((r) => r.ok || r.declared) ? 0 : 1;
  } catch (e) {
    io.err(`conform: ${e instanceof Error ? e.message : String(e)}\n`);
    return 2;
  }
}

if (process.argv[1] && resolve(process.argv[1]) === fileURLToPath(import.meta.url)) {
  process.exit(conformCommand(process.argv.slice(2)));
}
