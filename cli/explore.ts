/**
 * `blocksim explore`: walks the schedule space of one scenario.
 *
 *   blocksim explore TARGET --strategy random|pct|exhaustive [--depth d] [--budget N] [--all]
 *                    [--profile P] [--seed S] [--max-choice-points C] [--max-preemptions K] [--out FILE]
 *
 * TARGET is a race of the catalog (sim/races, by name), a fuzz replay
 * file's scenario (*.replay.json written by blocksim fuzz), or a scenario
 * file (any strategy object through the scenario runner). Stops at
 * the first violation (or goes on with --all), shrinks the schedule, writes a
 * replay file. Exit codes: 0 nothing broke, 1 a violation, 2 bad input.
 */
import { readFileSync } from "node:fs";
import { writeFileAtomic } from "../sim/scenario/output-file.js";
import { parseArgs } from "node:util";
import { explore, picksOf, shrinkPicks, type ExploreStrategy, type Subject } from "../sim/harness/explore.js";
import { FUZZ_REPLAY_VERSION, readFuzzReplay, runModel, type FuzzReplay } from "../sim/fuzz/index.js";
import { formatChoiceLog } from "../sim/scheduler/index.js";
import { catalogRace, replayOf, type CatalogRace } from "../sim/races/catalog.js";
import { profileOption, UsageError } from "./args.js";
import { loadScenarioFile } from "../sim/scenario/loader.js";
import { makeReplay } from "../sim/scenario/replay.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { defaultIo, type CliIo } from "./fuzz.js";

export const EXPLORE_HELP = `Usage: blocksim explore TARGET --strategy random|pct|exhaustive [options]

Explores the schedules of one scenario: random walks (a seed each), PCT
walks (priority schedules with d-1 change points), or bounded exhaustive
enumeration (every schedule whose first C choice points branch, with at most
K non-FIFO picks), counting distinct schedules by trace hash. Stops at the
first violation unless --all, shrinks the schedule and writes a replay file.

TARGET: a race of the catalog (see 'blocksim races'), a fuzz replay file,
or a scenario file (every strategy; a failure's choice log is shrunk and the
replay file is for 'blocksim replay').

Options:
  --strategy S            random, pct or exhaustive (default random)
  --budget N              most runs (default 1000)
  --depth d               PCT bug depth (default 3)
  --max-choice-points C   exhaustive: branch at the first C choice points (default 12)
  --max-preemptions K     exhaustive: at most K non-FIFO picks (default 2)
  --all                   do not stop at the first violation
  --profile P             profile (default: the race's buggy profile, or the replay's)
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
    if (positionals.length !== 1) throw new Usage(`explore takes one TARGET (a catalog race or a fuzz replay file), got ${positionals.length}`);
    const strategy = (values.strategy ?? "random") as ExploreStrategy;
    if (!["random", "pct", "exhaustive"].includes(strategy)) throw new Usage(`--strategy expects random, pct or exhaustive, got "${values.strategy}"`);
    const int = (name: string, v: string | undefined, d: number) => {
      if (v === undefined) return d;
      const n = Number(v);
      if (!Number.isSafeInteger(n) || n < 0) throw new Usage(`${name} expects a non-negative integer, got "${v}"`);
      return n;
    };
    const opts = {
      strategy, budget: int("--budget", values.budget, 1000), depth: int("--depth", values.depth, 3),
      maxChoicePoints: int("--max-choice-points", values["max-choice-points"], 12), maxPreemptions: int("--max-preemptions", values["max-preemptions"], 2),
      all: values.all === true, seed: int("--seed", values.seed, 1),
    };
    const target = resolveTarget(positionals[0], values.profile, strategy);
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
    let kept = first.result;
    if (target.anyStrategy) {
      const shrunk = shrinkPicks(target.subject, picksOf(first.result.choices), (r) => r.violations.length > 0, { seed: first.seed, maxRuns: 300 });
      io.out(`shrunk schedule: ${shrunk.picks.length} picks, ${shrunk.picks.filter((p) => p !== 0).length} non-FIFO (from ${first.result.choices.length}), in ${shrunk.runs} runs\n`);
      kept = shrunk.result;
    }
    const out = values.out ?? `${target.label.replace(/\.(ya?ml|json)$/, "").replace(/[^A-Za-z0-9._-]+/g, "_")}.${strategy}.replay.json`;
    writeFileAtomic(out, JSON.stringify(target.replay(first.seed, kept, out), null, 2) + "\n", "the replay file");
    io.out(`replay file: ${out}\nreplay: ${target.replayCommand(out)}\n`);
    if (target.timelineCommand) io.out(`timeline: ${target.timelineCommand(out)}\n`);
    return 1;
  } catch (e) {
    if (e instanceof Usage || e instanceof UsageError || (e instanceof Error && /^unknown race|replay|JSON/.test(e.message))) {
      io.err(`blocksim explore: ${(e as Error).message}\n`);
      return 2;
    }
    throw e;
  }
}

interface Target {
  label: string;
  profile: string;
  subject: Subject;
  replay(seed: number, result: ReturnType<Subject>, out: string): unknown;
  replayCommand(file: string): string;
  /** The command that draws the replay's timeline, when there is one. */
  timelineCommand?(file: string): string;
  /** Whether its schedules can be driven by any strategy (exhaustive, shrinking); scenario files take only seeds. */
  anyStrategy: boolean;
}

function isFuzzReplay(path: string): boolean {
  try {
    return (JSON.parse(readFileSync(path, "utf8")) as Record<string, unknown>)["blocksim-fuzz-replay"] !== undefined;
  } catch {
    return false;
  }
}

/** A scenario file: the runner takes the walk's strategy object, so every strategy and shrinking work on it. */
function scenarioTarget(path: string, profile: string | undefined): Target {
  const loaded = loadScenarioFile(path);
  const p = profile ?? loaded.scenario.profile;
  const reports = new Map<string, RunReport>();
  return {
    label: path, profile: p, anyStrategy: true,
    subject: (strategy, seed) => {
      const r = runScenario(loaded, { seed, profile: p, strategy });
      reports.set(r.hash, r);
      return { hash: r.hash, choices: r.choices, violations: r.ok ? [] : r.failures.map((f) => ({ invariant: f.kind, detail: f.message })) };
    },
    replay: (_seed, r, out) => makeReplay(reports.get(r.hash)!, loaded, out, path),
    replayCommand: (f) => `npx blocksim replay ${f}`,
    timelineCommand: (f) => `npx blocksim timeline ${f} -o ${f.replace(/\.json$/, "")}.html`,
  };
}

function resolveTarget(name: string, profile: string | undefined, strategy: ExploreStrategy = "random"): Target {
  if (profile !== undefined) profileOption(profile);
  if (/\.(ya?ml|json)$/.test(name) && !isFuzzReplay(name)) return scenarioTarget(name, profile);
  if (/\.json$/.test(name)) {
    const file: FuzzReplay = readFuzzReplay(name);
    const p = profile ?? file.profile;
    return {
      label: name, profile: p, anyStrategy: true,
      subject: (strategy, seed) => runModel(file.scenario, { profile: p, strategy, seed }),
      replay: (seed, r): FuzzReplay => ({ "blocksim-fuzz-replay": FUZZ_REPLAY_VERSION, profile: p, seed, scenario: file.scenario, choices: formatChoiceLog(r.choices), hash: r.hash, violations: r.violations.map((v) => `${v.invariant}: ${v.detail}`) }),
      replayCommand: (f) => `npx blocksim fuzz --replay ${f}`,
    };
  }
  const race: CatalogRace = catalogRace(name);
  const p = profile ?? race.buggyProfile;
  return {
    label: race.name, profile: p, anyStrategy: true,
    subject: (strategy, seed) => race.run(p, seed, strategy),
    replay: (seed, r) => ({ ...replayOf({ race, strategy: "random", runs: 0, fixed: { runs: 0, found: false }, found: { run: 0, seed, result: r } })!, profile: p }),
    replayCommand: (f) => `npx blocksim races --replay ${f}`,
  };
}
