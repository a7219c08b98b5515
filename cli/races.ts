/**
 * `blocksim races`: hunts every race of the catalog under its buggy profile
 * and under its fixed one, and prints a table.
 *
 *   blocksim races [--budget N] [--strategy random|pct] [--race NAME] [--json]
 *   blocksim races --replay FILE
 *
 * Exit codes: 0 every race found under its buggy profile and none under its
 * fixed one; 1 otherwise (or a replay that fails); 2 bad input.
 */
import { parseArgs } from "node:util";
import { explore, picksOf, shrinkPicks, type ExploreStrategy } from "../sim/harness/explore.js";
import { CATALOG, catalogRace, subjectOf, type CatalogRace } from "../sim/races/catalog.js";
import { InputError, formatProblems } from "../sim/scenario/errors.js";
import { OldReplayFormatError } from "../sim/scenario/replay.js";
import { defaultIo, type CliIo } from "./fuzz.js";
import { replayFile } from "./replay.js";
import { wholeNumberOption } from "../sim/scenario/limits.js";

export const RACES_HELP = `Usage: blocksim races [options]
       blocksim races --replay FILE

Runs each race of the catalog (scenarios/races) under its buggy profile until
its invariant breaks, shrinks the schedule, then runs the same budget under
the fixed profile, and prints: race, fixed by, found under the buggy profile,
runs and virtual and wall time to the first violation, shrunk size, clean
under the fixed profile.

Options:
  --budget N      runs per race and profile (default 100)
  --strategy S    random or pct (default random)
  --race NAME     only this race
  --json          one JSON object per race instead of the table
  --replay FILE   the same as 'blocksim replay FILE'

Examples:
  blocksim races
  blocksim races --strategy pct --budget 50
  blocksim races --replay scenarios/races/drain-during-job-io.replay.json`;

/** One row of the table. */
export interface RaceRow {
  race: string;
  fixedBy: string;
  buggyProfile: string;
  fixedProfile: string;
  found: boolean;
  runsToFirst?: number;
  virtualMsToFirst?: number;
  wallMsToFirst?: number;
  shrunkPicks?: number;
  shrunkNonFifo?: number;
  fixedRuns: number;
  cleanUnderFixed: boolean;
}

/** Hunts one race (wall time is measured here, in the CLI, never in the simulation). */
export function raceRow(race: CatalogRace, strategy: ExploreStrategy, budget: number): RaceRow {
  const t0 = performance.now();
  const buggy = explore(subjectOf(race, race.buggyProfile), { strategy, budget });
  const wallMs = performance.now() - t0;
  const first = buggy.found[0];
  let shrunk: number[] | undefined;
  if (first) shrunk = shrinkPicks(subjectOf(race, race.buggyProfile), picksOf(first.result.choices), (r) => r.violations.length > 0, { seed: first.seed, maxRuns: 200 }).picks;
  const fixed = explore(subjectOf(race, race.fixedProfile), { strategy, budget });
  const tNs = first?.result.violations.find((v) => v.timeNs !== undefined)?.timeNs;
  return {
    race: race.name, fixedBy: race.fixedBy, buggyProfile: race.buggyProfile, fixedProfile: race.fixedProfile,
    found: first !== undefined,
    ...(first ? { runsToFirst: first.run, wallMsToFirst: Math.round(wallMs), ...(tNs !== undefined ? { virtualMsToFirst: tNs / 1e6 } : {}) } : {}),
    ...(shrunk ? { shrunkPicks: shrunk.length, shrunkNonFifo: shrunk.filter((p) => p !== 0).length } : {}),
    fixedRuns: fixed.runs, cleanUnderFixed: fixed.found.length === 0,
  };
}

/** The table, one line per race. */
export function formatTable(rows: RaceRow[]): string {
  const head = ["race", "fixed by", "found", "runs", "virtual", "wall", "shrunk (picks/non-FIFO)", "clean when fixed"];
  const body = rows.map((r) => [
    r.race, r.fixedBy.replace(/ \(.*$/, ""), r.found ? "yes" : "NO", r.runsToFirst?.toString() ?? "-",
    r.virtualMsToFirst !== undefined ? `${r.virtualMsToFirst.toFixed(1)} ms` : "-", r.wallMsToFirst !== undefined ? `${r.wallMsToFirst} ms` : "-",
    r.shrunkPicks !== undefined ? `${r.shrunkPicks}/${r.shrunkNonFifo}` : "-", r.cleanUnderFixed ? `yes (${r.fixedRuns} runs)` : "NO",
  ]);
  const w = head.map((h, i) => Math.max(h.length, ...body.map((b) => b[i].length)));
  const line = (cells: string[]) => cells.map((c, i) => c.padEnd(w[i])).join("  ").trimEnd();
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line)].join("\n");
}

/** `blocksim races …`; returns the exit code. */
export function racesCommand(argv: string[], io: CliIo = defaultIo): number {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv, strict: true,
      options: { budget: { type: "string" }, strategy: { type: "string" }, race: { type: "string" }, json: { type: "boolean" }, replay: { type: "string" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (e) {
    io.err(`blocksim races: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.out(RACES_HELP + "\n");
    return 0;
  }
  try {
    // The same command as `blocksim replay FILE`: one code path, one output.
    if (values.replay !== undefined) return replayFile(values.replay, io);
    const budget = wholeNumberOption("races --budget", values.budget, 100);
    const strategy = (values.strategy ?? "random") as ExploreStrategy;
    if (strategy !== "random" && strategy !== "pct") throw new Error(`--strategy expects random or pct, got "${values.strategy}"`);
    const races = values.race !== undefined ? [catalogRace(values.race)] : CATALOG;
    const rows: RaceRow[] = [];
    for (const race of races) {
      if (io.tty && !values.json) io.err(`\r${race.name}…                              `);
      const row = raceRow(race, strategy, budget);
      rows.push(row);
      if (values.json) io.out(JSON.stringify(row) + "\n");
    }
    if (io.tty && !values.json) io.err("\r" + " ".repeat(60) + "\r");
    if (!values.json) io.out(formatTable(rows) + "\n");
    return rows.every((r) => r.found && r.cleanUnderFixed) ? 0 : 1;
  } catch (e) {
    if (e instanceof InputError) io.err(`blocksim: bad input — ${formatProblems(e.problems)}\n`);
    else if (e instanceof OldReplayFormatError) io.err(`blocksim: ${e.message}\n`);
    else io.err(`blocksim races: ${(e as Error).message}\n`);
    return 2;
  }
}
