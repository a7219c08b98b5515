/**
 * `blocksim explore`: walks the schedule space of one scenario.
 *
 *   blocksim explore TARGET --strategy random|pct|exhaustive [--depth d] [--budget N] [--all]
 *                    [--profile P] [--seed S] [--max-choice-points C] [--max-preemptions K] [--out FILE]
 *
 * TARGET is a scenario file, a replay file's subject (its scenario, fuzz
 * case or race), or a race of the catalog by name. Stops at
 * the first violation (or goes on with --all), shrinks the schedule, writes a
 * replay file. Exit codes: 0 nothing broke, 1 a violation, 2 bad input.
 */
import { dirname, relative, resolve, sep } from "node:path";
import { parseArgs } from "node:util";
import { explore, picksOf, shrinkPicks, type ExploreStrategy, type Subject, type SubjectRun } from "../sim/harness/explore.js";
import { loadRaces } from "../sim/races/catalog.js";
import { OPTION_LIMITS, wholeNumberOption } from "../sim/scenario/limits.js";
import { loadScenarioFile, type LoadedScenario } from "../sim/scenario/loader.js";
import { isReplayFile, makeReplay, makeReplayOf, OldReplayFormatError, readReplayFile, REPLAY_FORMAT, REPLAY_VERSION, writeReplayFile, type ReadReplay, type ReplayFile, type ReplaySubject } from "../sim/scenario/replay.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { exploreStrategyOption, profileOption, UsageError } from "./args.js";
import { defaultIo, type CliIo } from "./fuzz.js";
import { runReplay } from "./replay-subject.js";

export const EXPLORE_HELP = `Usage: blocksim explore TARGET --strategy random|pct|exhaustive [options]

Explores the schedules of one scenario: random walks (a seed each), PCT
walks (priority schedules with d-1 change points), or bounded exhaustive
enumeration (every schedule whose first C choice points branch, with at most
K non-FIFO picks), counting distinct schedules by trace hash. Stops at the
first violation unless --all, shrinks the schedule and writes a replay file.

TARGET: a scenario file, a replay file (its subject: a scenario, a fuzz case
or a race), or a race of the catalog by name (see 'blocksim races'). A
failure's choice log is shrunk; the replay file is for 'blocksim replay' and
'blocksim timeline'.

Options:
  --strategy S            random, pct or exhaustive (default random)
  --budget N              most runs (default 1000)
  --depth d               PCT bug depth (default 3)
  --max-choice-points C   exhaustive: branch at the first C choice points (default 12)
  --max-preemptions K     exhaustive: at most K non-FIFO picks (default 2)
  --all                   do not stop at the first violation
  --profile P             profile (default: the race's buggy profile, the replay's, or the file's)
  --seed S                first seed of random and PCT walks (default 1)
  --out FILE              where the replay file goes

Examples:
  blocksim explore drain-during-job-io --strategy pct --budget 200
  blocksim explore mirror-soft-cancel-pre-ready --strategy exhaustive --profile current
  blocksim explore blocksim-fuzz-7.replay.json --strategy random --budget 500
  blocksim explore scenarios/races/drain-during-job-io.yaml --profile drain-ignores-jobs`;

class Usage extends Error {}

/** `blocksim explore …`; returns the exit code. */
export function exploreCommand(argv: string[], io: CliIo = defaultIo): number {
  let values, positionals;
  try {
    ({ values, positionals } = parseArgs({
      args: argv, allowPositionals: true, strict: true,
      options: {
        strategy: { type: "string" }, budget: { type: "string" }, depth: { type: "string" }, "max-choice-points": { type: "string" },
        "max-preemptions": { type: "string" }, all: { type: "boolean" }, profile: { type: "string" }, seed: { type: "string" }, out: { type: "string" }, help: { type: "boolean", short: "h" },
      },
    }));
  } catch (e) {
    io.err(`blocksim explore: ${(e as Error).message}\n`);
    return 2;
  }
  if (values.help) {
    io.out(EXPLORE_HELP + "\n");
    return 0;
  }
  try {
    if (positionals.length !== 1) throw new Usage(`explore takes one TARGET (a scenario file, a replay file or a catalog race), got ${positionals.length}`);
    const strategy = exploreStrategyOption(values.strategy);
    const opts = {
      strategy, budget: wholeNumberOption("explore --budget", values.budget, 1000), depth: wholeNumberOption("explore --depth", values.depth, 3),
      maxChoicePoints: wholeNumberOption("explore --max-choice-points", values["max-choice-points"], 12),
      maxPreemptions: wholeNumberOption("explore --max-preemptions", values["max-preemptions"], 2),
      all: values.all === true, seed: wholeNumberOption("explore --seed", values.seed, 1),
    };
    // Walk i takes seed + i: the last must still be exact.
    if (opts.seed > OPTION_LIMITS["explore --seed"].max - (opts.budget - 1)) {
      throw new Usage(`--seed ${opts.seed} with --budget ${opts.budget} would use seeds past ${OPTION_LIMITS["explore --seed"].max} (2^53 - 1, the largest exact one)`);
    }
    const out = values.out ?? `${positionals[0].replace(/^.*\//, "").replace(/(\.replay)?\.(ya?ml|json)$/, "").replace(/[^A-Za-z0-9._-]+/g, "_")}.${strategy}.replay.json`;
    const target = resolveTarget(positionals[0], values.profile, strategy, () => out);
    const t0 = performance.now();
    const result = explore(target.subject, {
      ...opts,
      onRun: (n) => { if (io.tty && n % 20 === 0) io.err(`\r${n} runs, ${((performance.now() - t0) / 1000).toFixed(1)} s   `); },
    });
    if (io.tty) io.err("\n");
    const wallS = ((performance.now() - t0) / 1000).toFixed(2);
    io.out(`blocksim explore: ${target.label}, profile ${target.profile}, strategy ${strategy}: ${result.runs} runs, ${result.distinct} distinct schedules${strategy === "exhaustive" ? (result.complete ? " (every schedule within the bounds)" : " (budget reached before the bounded space was covered)") : ""}, ${result.found.length} violating, ${wallS} s\n`);
    if (result.found.length === 0) return 0;
    const first = result.found[0];
    io.out(`first violation at run ${first.run} (seed ${first.seed}):\n`);
    for (const v of first.result.violations.slice(0, 5)) io.out(`  ${v.invariant}: ${v.detail}\n`);
    const shrunk = shrinkPicks(target.subject, picksOf(first.result.choices), (r) => r.violations.length > 0, { seed: first.seed, maxRuns: 300 });
    io.out(`shrunk schedule: ${shrunk.picks.length} picks, ${shrunk.picks.filter((p) => p !== 0).length} non-FIFO (from ${first.result.choices.length}), in ${shrunk.runs} runs\n`);
    writeReplayFile(out, target.replay(shrunk.result));
    io.out(`replay file: ${out}\nreplay: npx blocksim replay ${out}\ntimeline: npx blocksim timeline ${out} -o ${out.replace(/(\.replay)?\.json$/, "")}.html\n`);
    return 1;
  } catch (e) {
    // A shared option's error (--profile, --strategy, a number's range: cli/args.ts) reads as in every command; explore's own name explore.
    if (e instanceof UsageError) {
      io.err(`blocksim: ${e.message}\n`);
      return 2;
    }
    if (e instanceof Usage) {
      io.err(`blocksim explore: ${e.message}\n`);
      return 2;
    }
    if (e instanceof OldReplayFormatError) {
      io.err(`blocksim: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

interface Target {
  label: string;
  profile: string;
  subject: Subject;
  /** The replay file of a run the subject made. */
  replay(result: SubjectRun): ReplayFile;
}

/** A scenario file, a replay file's subject (scenario, fuzz case or race), or a catalog race by name: all run through the replay runner. */
function resolveTarget(name: string, profile: string | undefined, strategy: ExploreStrategy, out: () => string): Target {
  if (profile !== undefined) profileOption(profile);
  let rp: ReadReplay;
  let p: string;
  let scenarioFile: { loaded: LoadedScenario; path: string } | undefined;
  if (/\.(ya?ml|json)$/.test(name) && !isReplayFile(name)) {
    const loaded = loadScenarioFile(name);
    scenarioFile = { loaded, path: name };
    p = profile ?? loaded.scenario.profile;
    rp = subjectOnly({ inline: {} }, name);
  } else if (/\.json$/.test(name)) {
    rp = readReplayFile(name);
    p = profile ?? rp.replay.profile;
  } else {
    // A race of the catalog by name: its scenario file, under its buggy profile.
    const races = loadRaces();
    const race = races.find((r) => r.name === name);
    if (!race) throw new Usage(`unknown race '${name}' (and not a .yaml, .yml or .json file); known races: ${races.map((r) => r.name).join(", ")}`);
    scenarioFile = { loaded: race.loaded, path: race.file };
    p = profile ?? race.header["buggy-profile"];
    rp = subjectOnly({ inline: {} }, race.file);
  }
  const reports = new Map<string, RunReport>();
  const foundBy = () => `blocksim explore ${name} --strategy ${strategy} --profile ${p}`;
  return {
    label: scenarioFile ? name : rp.file, profile: p,
    subject: (strat, seed) => {
      const r = scenarioFile ? runScenario(scenarioFile.loaded, { seed, profile: p, strategy: strat }) : runReplay(rp, { strategy: strat, seed, profile: p }).report;
      reports.set(r.hash, r);
      return { hash: r.hash, choices: r.choices, violations: brokenBy(r) };
    },
    replay: (result) => {
      const r = reports.get(result.hash)!;
      if (scenarioFile) return makeReplay(r, scenarioFile.loaded, out(), scenarioFile.path, foundBy());
      const s = rp.replay.subject;
      // A scenario subject's path is relative to the file it came from; the new file may be elsewhere.
      const subject = "scenario" in s ? { ...s, scenario: relative(dirname(resolve(out())), resolve(rp.dir, s.scenario)).split(sep).join("/") } : s;
      return makeReplayOf(subject, r, foundBy());
    },
  };
}

/** What breaks a run for exploration: its violations and failed expectations (a scenario that expects a violation passes with it). */
function brokenBy(r: RunReport): SubjectRun["violations"] {
  if (r.ok) return [];
  const other = r.failures.filter((f) => f.kind !== "invariant").map((f) => ({ invariant: f.kind, detail: f.message, ...(f.timeNs !== undefined ? { timeNs: f.timeNs } : {}) }));
  return [...r.violations, ...other];
}

/** A subject named on the command line, as a replay without a recording. */
function subjectOnly(subject: ReplaySubject, label: string): ReadReplay {
  return {
    file: label, dir: process.cwd(), choices: [], locate: () => undefined,
    replay: { [REPLAY_FORMAT]: REPLAY_VERSION, subject, profile: "current", seed: 0, strategy: "fifo", choices: "", hash: "0".repeat(16), ok: true, violations: [] },
  };
}

