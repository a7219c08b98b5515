/**
 * `blocksim races`: hunts every race scenario file (a `race:` header) under
 * its buggy profile and under its fixed one, and prints a table.
 *
 *   blocksim races [PATH…] [--budget N] [--strategy random|pct|exhaustive] [--race NAME] [--json] [--out DIR]
 *   blocksim races --replay FILE        (the same as blocksim replay FILE)
 *
 * Exit codes: 0 every race found under its buggy profile and clean under its
 * fixed one; 1 otherwise; 2 bad input.
 */
import { join, relative } from "node:path";
import { parseArgs } from "node:util";
import type { ExploreStrategy } from "../sim/harness/explore.js";
import { fixedByLine, huntRace, loadRaces, RACES_DIR, type Race, type RaceHunt } from "../sim/races/catalog.js";
import { checkOutputPath } from "../sim/scenario/output-file.js";
import { makeReplay, writeReplayFile } from "../sim/scenario/replay.js";
import { exploreStrategyOption, replaySpelling, UsageError } from "./args.js";
import { defaultIo, type CliIo } from "./fuzz.js";
import { cmdReplay } from "./replay.js";
import { wholeNumberOption } from "../sim/scenario/limits.js";

export const RACES_HELP = `Usage: blocksim races [PATH…] [options]
       blocksim races --replay FILE

Hunts each race scenario file (a scenario with a \`race:\` header; PATH is a
file or a folder, default the race catalog scenarios/races): explores it
under its buggy profile until a schedule breaks an invariant the header
names, shrinks that schedule, then runs the same budget under its fixed
profile, where every schedule must hold every expectation of the file.
Prints: race, fixed by, found, runs and virtual and wall time to the first
violation, shrunk schedule size, clean under the fixed profile.

Options:
  --budget N      runs per race and profile (default 100)
  --strategy S    random, pct or exhaustive (default random)
  --race NAME     only this race
  --json          one JSON object per race instead of the table
  --out DIR       write each found race's replay file, <race>.replay.json, into DIR
  --replay FILE   the same as: blocksim replay FILE, with replay's options (--json, --quiet, --trace)

Examples:
  blocksim races
  blocksim races --strategy pct --budget 50
  blocksim races scenarios/races/drain-during-job-io.yaml --out /tmp/replays
  blocksim replay scenarios/races/drain-during-job-io.replay.json`;

/** One row of the table. */
export interface RaceRow {
  race: string;
  file: string;
  fixedBy: string;
  buggyProfile: string;
  fixedProfile: string;
  breaks: string[];
  found: boolean;
  runsToFirst?: number;
  virtualMsToFirst?: number;
  wallMsToFirst?: number;
  shrunkPicks?: number;
  shrunkNonFifo?: number;
  fixedRuns: number;
  cleanUnderFixed: boolean;
  /** Under the fixed profile, the first failing seed and what failed. */
  fixedFailure?: string;
  /** The replay file written (with --out). */
  replay?: string;
}

/** Hunts one race; wall time is measured here, in the CLI, never in the simulation. */
export function raceRow(race: Race, strategy: ExploreStrategy, budget: number): { row: RaceRow; hunt: RaceHunt } {
  const t0 = performance.now();
  let wallMs = 0;
  const h = huntRace(race, { strategy, budget, onPhase: (p) => { if (p !== "buggy" && wallMs === 0) wallMs = performance.now() - t0; } });
  const first = h.found;
  const tNs = first?.result.violations.find((v) => v.timeNs !== undefined)?.timeNs;
  const row: RaceRow = {
    race: race.name, file: race.file, fixedBy: fixedByLine(race.header), buggyProfile: race.header["buggy-profile"], fixedProfile: race.header["fixed-profile"],
    breaks: race.header.breaks, found: first !== undefined,
    ...(first ? { runsToFirst: first.run, wallMsToFirst: Math.round(wallMs), ...(tNs !== undefined ? { virtualMsToFirst: tNs / 1e6 } : {}) } : {}),
    ...(h.shrunk ? { shrunkPicks: h.shrunk.picks.length, shrunkNonFifo: h.shrunk.picks.filter((p) => p !== 0).length } : {}),
    fixedRuns: h.fixed.runs, cleanUnderFixed: h.fixed.clean,
    ...(h.fixed.failure ? { fixedFailure: `seed ${h.fixed.failure.seed}: ${h.fixed.failure.detail}` } : {}),
  };
  return { row, hunt: h };
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
  const notes = rows.flatMap((r) => [
    ...(r.found ? [] : [`${r.race}: no schedule broke ${r.breaks.join(" or ")} under ${r.buggyProfile} in ${r.fixedRuns} runs`]),
    ...(r.fixedFailure ? [`${r.race}: under ${r.fixedProfile}, ${r.fixedFailure}`] : []),
    ...(r.replay ? [`${r.race}: replay file ${r.replay}`] : []),
  ]);
  return [line(head), line(w.map((n) => "-".repeat(n))), ...body.map(line), ...(notes.length ? ["", ...notes] : [])].join("\n");
}

/**
 * `blocksim races …`; returns the exit code. Bad input throws UsageError or
 * the loader's InputError, which the command line prints (exit 2).
 */
export async function racesCommand(argv: string[], io: CliIo = defaultIo): Promise<number> {
  // The same command as `blocksim replay FILE`, options and errors too: one code path, one output.
  const spelled = replaySpelling(argv);
  if (spelled) return cmdReplay(spelled, io);
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv, strict: true, allowPositionals: true,
      options: { budget: { type: "string" }, strategy: { type: "string" }, race: { type: "string" }, json: { type: "boolean" }, out: { type: "string" }, help: { type: "boolean", short: "h" } },
    }));
  } catch (e) {
    io.err(`blocksim races: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.out(RACES_HELP + "\n");
    return 0;
  }
  const budget = wholeNumberOption("races --budget", values.budget, 100);
  const strategy = exploreStrategyOption(values.strategy);
  let races = loadRaces(positionals.length > 0 ? positionals : [RACES_DIR]);
  if (values.race !== undefined) {
    const one = races.filter((r) => r.name === values.race);
    if (one.length === 0) throw new UsageError(`races: unknown race '${values.race}'; known races: ${races.map((r) => r.name).join(", ")}`);
    races = one;
  }
  if (races.length === 0) throw new UsageError(`races: no race scenario files (scenarios with a race: header) in ${positionals.join(", ") || RACES_DIR}`);
  if (values.out !== undefined) checkOutputPath(join(values.out, `${races[0].name}.replay.json`), "the replay files");
  const rows: RaceRow[] = [];
  for (const race of races) {
    if (io.tty && !values.json) io.err(`\r${race.name}…                              `);
    const { row, hunt } = raceRow(race, strategy, budget);
    const kept = hunt.shrunk?.report ?? hunt.found?.report;
    if (values.out !== undefined && kept) {
      const path = join(values.out, `${race.name}.replay.json`);
      writeReplayFile(path, makeReplay(kept, race.loaded, path, race.file, `blocksim races ${relative(process.cwd(), race.file)} --strategy ${strategy} --budget ${budget} (under ${race.header["buggy-profile"]}, shrunk)`));
      row.replay = path;
    }
    rows.push(row);
    if (values.json) io.out(JSON.stringify(row) + "\n");
  }
  if (io.tty && !values.json) io.err("\r" + " ".repeat(60) + "\r");
  if (!values.json) io.out(formatTable(rows) + "\n");
  return rows.every((r) => r.found && r.cleanUnderFixed) ? 0 : 1;
}
