/**
 * Runs the subject of a replay file — a scenario (by path or inline), a
 * generated fuzz case, or a race of the catalog by name (its scenario file) — under
 * the file's profile, seed and choice log, and says whether the run
 * reproduced what the file recorded. `replay`, `fuzz --replay`,
 * `races --replay`, `timeline` and `convert-replay` all come through here.
 */
import { fuzzReport } from "../sim/fuzz/report.js";
import { parseFuzzCase } from "../sim/fuzz/case.js";
import { loadRaces } from "../sim/races/catalog.js";
import { InputError } from "../sim/scenario/errors.js";
import type { LoadOptions } from "../sim/scenario/loader.js";
import { eventLines, firstDifference, loadReplayScenario, loadSessionScenario, type ReadReplay, type ReplaySubject } from "../sim/scenario/replay.js";
import { replayServe, ServeReplayError } from "../serve/replay.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { formatTime, ReplayStrategy, type Strategy } from "../sim/scheduler/index.js";

export interface ReplayedRun {
  report: RunReport;
  /** Departures only the subject can see (a session's replies). */
  problems?: string[];
  /** Set when the subject's scenario file changed since the recording. */
  staleScenario?: string;
}

/** What a subject is, in a few words (for headers and errors). */
export function subjectLabel(s: ReplaySubject): string {
  if ("scenario" in s) return `scenario ${s.scenario}`;
  if ("inline" in s) return "inline scenario";
  if ("fuzz" in s) return "fuzz case";
  if ("session" in s) return "blocksim serve session";
  return `race ${s.race}`;
}

/** Runs the file's subject under its choice log (or under `strategy`, for exploration of the same subject). */
export function runReplay(rp: ReadReplay, o: { trace?: boolean; strategy?: Strategy; seed?: number | string; profile?: string } & LoadOptions = {}): ReplayedRun {
  const s = rp.replay.subject;
  const strategy = o.strategy ?? new ReplayStrategy(rp.choices);
  const seed = o.seed ?? rp.replay.seed, profile = o.profile ?? rp.replay.profile;
  if ("scenario" in s || "inline" in s) {
    const { loaded, staleScenario } = loadReplayScenario(rp, o);
    const report = runScenario(loaded, { seed, profile, strategy, keepTrace: !!o.trace });
    return { report, ...(staleScenario ? { staleScenario } : {}) };
  }
  if ("fuzz" in s) {
    const model = parseFuzzCase(s.fuzz, rp.file, ["subject", "fuzz"], rp.locate);
    return { report: fuzzReport(model, { profile, seed, strategy, trace: !!o.trace, ...(s.invariants ? { invariants: s.invariants } : {}) }) };
  }
  if ("session" in s) {
    // A session replays its commands at their virtual times; it has no other schedule to explore.
    if (o.strategy) throw new InputError([{ file: rp.file, path: "subject.session", message: "a blocksim serve session replays its recorded commands only: expected a scenario, fuzz case or race to explore" }]);
    const where = loadSessionScenario(rp, o);
    let r;
    try {
      r = replayServe(s.session, where?.loaded, rp.choices, rp.replay.hash, { trace: !!o.trace });
    } catch (e) {
      if (!(e instanceof ServeReplayError)) throw e;
      return { report: { ...emptyReport(rp), ok: false }, problems: [e.message] };
    }
    return { report: r.report, ...(r.difference ? { problems: [`first differing reply, ${r.difference}`] } : {}), ...(where?.staleScenario ? { staleScenario: where.staleScenario } : {}) };
  }
  return { report: raceReport(rp, s.race, profile, seed, strategy, !!o.trace) };
}

/** A report of a run that did not get far (a session that stopped). */
function emptyReport(rp: ReadReplay): RunReport {
  const r = rp.replay;
  return {
    name: rp.file, file: rp.file, profile: r.profile, seed: r.seed, strategy: "replay", ok: true, failures: [], outcome: { kind: "ok" }, endTimeNs: 0,
    setupEndNs: 0, setupLogIndex: 0, kernelSteps: 0, hash: "0".repeat(16), choices: [], log: [], steps: [], jobs: [], jobsAtEnd: [], violations: [], drains: [], devices: [],
  };
}

/** A race of the catalog by name: its scenario file (scenarios/races), run under the replay's profile, seed and choices. */
function raceReport(rp: ReadReplay, name: string, profile: string, seed: number | string, strategy: Strategy, trace: boolean): RunReport {
  const races = loadRaces();
  const race = races.find((r) => r.name === name);
  if (!race) throw new InputError([{ file: rp.file, path: "subject.race", ...(rp.locate(["subject", "race"]) ?? {}), message: `unknown race '${name}'; known races: ${races.map((r) => r.name).join(", ")}` }]);
  return runScenario(race.loaded, { seed, profile, strategy, keepTrace: trace });
}

/** How the run departs from the recording; empty when it reproduced it. */
export function departures(rp: ReadReplay, run: ReplayedRun): string[] {
  const r = run.report;
  const problems: string[] = [...(run.problems ?? [])];
  const rec = rp.replay;
  if (r.outcome.kind === "divergence") {
    problems.push(`the run departs from the recorded choice log at choice #${r.outcome.index} (at ${formatTime(r.outcome.timeNs - r.setupEndNs)}, as the event log counts): ${r.outcome.error}`);
  }
  if (r.hash !== rec.hash) {
    problems.push(`trace hash ${r.hash} differs from the recorded ${rec.hash}`);
    const d = rec.events && rec.events.length + r.log.length > 0 ? firstDifference(rec.events, eventLines(r)) : undefined;
    if (d) problems.push(`first differing event, #${d.index}:\n      recorded: ${d.recorded ?? "(no more events)"}\n      now:      ${d.now ?? "(no more events)"}`);
    else if (rec.events && rec.events.length > 0) problems.push("the events are the same; the difference is in the kernel trace (I/O or scheduling), run with --trace to compare");
  }
  const names = (vs: readonly { invariant: string }[]) => [...new Set(vs.map((v) => v.invariant))].sort().join(", ") || "none";
  if (names(rec.violations) !== names(r.violations)) problems.push(`violations: recorded ${names(rec.violations)}, now ${names(r.violations)}`);
  if (rec.ok !== r.ok) problems.push(`the recorded run ${rec.ok ? "passed" : "failed"}, this one ${r.ok ? "passed" : "failed"}`);
  return problems;
}
