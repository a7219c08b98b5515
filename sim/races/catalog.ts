/**
 * The race catalog: scenario files with a `race:` header (scenarios/races
 * in the package by default, any folder or file on request). Each race is
 * hunted with the harness's explorer, as any scenario file can be:
 *
 * - under its buggy profile until a schedule breaks one of the invariants
 *   its header names (found), then that schedule's choice log is shrunk;
 * - with the same budget under its fixed profile, where every schedule must
 *   hold every expectation of the file (clean).
 *
 * The replay file of a found race is the scenario runner's: the scenario
 * file by path and sha256, the profile, seed and the shrunk choice log.
 */
import { readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { explore, picksOf, shrinkPicks, type ExploreStrategy, type Subject, type SubjectRun } from "../harness/explore.js";
import { InputError } from "../scenario/errors.js";
import { loadScenarioFile, type LoadedScenario } from "../scenario/loader.js";
import { packagePath } from "../scenario/package-root.js";
import { runScenario, type RunReport } from "../scenario/runner.js";
import type { RaceHeader } from "../scenario/schema.js";

/** Where the package's race files are. */
export const RACES_DIR = packagePath("scenarios", "races");

/** One race: its scenario file and header. */
export interface Race {
  /** The scenario's name. */
  name: string;
  /** The path it was loaded from. */
  file: string;
  loaded: LoadedScenario;
  header: RaceHeader;
}

/** `qemu 89bd030533 (2018-03-22, "block: Really pause block jobs on drain")`. */
export function fixedByLine(h: RaceHeader): string {
  const c = h["fixed-by"];
  return `${c.project} ${c.commit} (${c.date}, "${c.title}")`;
}

const isScenarioFile = (f: string) => /\.(ya?ml|json)$/.test(f) && !f.endsWith(".replay.json");

/**
 * The races in these paths: a folder gives its scenario files that carry a
 * `race:` header (sorted by name; others are skipped), a file must carry
 * one. Bad files throw the loader's InputError.
 */
export function loadRaces(paths: readonly string[] = [RACES_DIR]): Race[] {
  const races: Race[] = [];
  for (const p of paths) {
    let dir = false;
    try {
      dir = statSync(p).isDirectory();
    } catch {
      // a missing path is the loader's error to report
    }
    if (dir) {
      for (const f of readdirSync(p).filter(isScenarioFile).sort()) {
        const r = raceOf(loadScenarioFile(join(p, f)));
        if (r) races.push(r);
      }
    } else {
      const loaded = loadScenarioFile(p);
      const r = raceOf(loaded);
      if (!r) throw new InputError([{ file: loaded.file, path: "race", line: 1, message: "this scenario has no `race:` header, so it is not a race (see the README's \"Races\")" }]);
      races.push(r);
    }
  }
  const seen = new Map<string, string>();
  for (const r of races) {
    const other = seen.get(r.name);
    if (other !== undefined) throw new InputError([{ file: r.file, path: "name", message: `race "${r.name}" is also the name of ${other}` }]);
    seen.set(r.name, r.file);
  }
  return races;
}

function raceOf(loaded: LoadedScenario): Race | undefined {
  const header = loaded.scenario.race;
  return header ? { name: loaded.scenario.name, file: loaded.file, loaded, header } : undefined;
}

/** Runs of one subject, by trace hash: the reports behind what the explorer saw. */
type Reports = Map<string, RunReport>;

/** The race's scenario under `profile`, reporting only the invariants the race breaks. */
export function breaksSubject(race: Race, profile: string, reports?: Reports): Subject {
  const breaks = new Set(race.header.breaks);
  return (strategy, seed) => {
    const r = runScenario(race.loaded, { seed, profile, strategy });
    reports?.set(r.hash, r);
    return { hash: r.hash, choices: r.choices, violations: r.violations.filter((v) => breaks.has(v.invariant)) };
  };
}

/** The race's scenario under `profile`, reporting every failed expectation. */
export function expectationsSubject(race: Race, profile: string, reports?: Reports): Subject {
  return (strategy, seed) => {
    const r = runScenario(race.loaded, { seed, profile, strategy });
    reports?.set(r.hash, r);
    return { hash: r.hash, choices: r.choices, violations: r.ok ? [] : r.failures.map((f) => ({ invariant: f.kind, detail: f.message, ...(f.timeNs !== undefined ? { timeNs: f.timeNs } : {}) })) };
  };
}

export interface HuntOptions {
  strategy?: ExploreStrategy;
  /** Runs under each profile (default 100). */
  budget?: number;
  /** First seed of random and PCT walks (default 1). */
  seed?: number;
  /** Most runs shrinking may take (default 200; 0: no shrinking). */
  shrinkRuns?: number;
  /** Told when each phase begins (a command line times them; nothing here reads a clock). */
  onPhase?: (phase: "buggy" | "shrink" | "fixed") => void;
}

export interface RaceHunt {
  race: Race;
  strategy: ExploreStrategy;
  /** Runs under the buggy profile (up to the first find). */
  runs: number;
  /** The first schedule that broke the race's invariant. */
  found?: { run: number; seed: number; result: SubjectRun; report: RunReport };
  /** That schedule shrunk: its picks and its run (the replay file's). */
  shrunk?: { picks: number[]; runs: number; result: SubjectRun; report: RunReport };
  /** The same budget under the fixed profile: clean when no schedule failed an expectation. */
  fixed: { runs: number; clean: boolean; failure?: { seed: number; detail: string } };
}

/** Hunts one race under its buggy and its fixed profile. */
export function huntRace(race: Race, opts: HuntOptions = {}): RaceHunt {
  const strategy = opts.strategy ?? "random", budget = opts.budget ?? 100;
  const buggyReports: Reports = new Map();
  const buggy = breaksSubject(race, race.header["buggy-profile"], buggyReports);
  opts.onPhase?.("buggy");
  const b = explore(buggy, { strategy, budget, seed: opts.seed });
  const first = b.found[0];
  let found: RaceHunt["found"], shrunk: RaceHunt["shrunk"];
  if (first) {
    found = { ...first, report: buggyReports.get(first.result.hash)! };
    const maxRuns = opts.shrinkRuns ?? 200;
    if (maxRuns > 0) {
      opts.onPhase?.("shrink");
      const s = shrinkPicks(buggy, picksOf(first.result.choices), (r) => r.violations.length > 0, { seed: first.seed, maxRuns });
      shrunk = { picks: s.picks, runs: s.runs, result: s.result, report: buggyReports.get(s.result.hash)! };
    }
  }
  opts.onPhase?.("fixed");
  const f = explore(expectationsSubject(race, race.header["fixed-profile"]), { strategy, budget, seed: opts.seed });
  const bad = f.found[0];
  return {
    race, strategy, runs: b.runs, ...(found ? { found } : {}), ...(shrunk ? { shrunk } : {}),
    fixed: { runs: f.runs, clean: !bad, ...(bad ? { failure: { seed: bad.seed, detail: bad.result.violations[0]?.detail ?? "" } } : {}) },
  };
}
