/**
 * Replay files: everything needed to repeat one run exactly — the scenario
 * (by path and content hash, or inline), profile, seed, strategy, the choice
 * log — and what the run gave: the trace hash, the outcome and its event
 * log, so a replay that departs can say where.
 */
import { dirname, relative, resolve } from "node:path";
import { z } from "zod";
import { formatChoiceLog, parseChoiceLog, type ChoiceLog } from "../scheduler/index.js";
import { ALL_PROFILES } from "../mgmt/profiles.js";
import { didYouMean, InputError } from "./errors.js";
import { LIMITS } from "./limits.js";
import { issuesToProblems } from "./issues.js";
import { loadScenarioFile, loadScenarioText, parseFile, type LoadedScenario } from "./loader.js";
import { eventLine, type RunReport } from "./runner.js";
import { stringify } from "yaml";

export const REPLAY_VERSION = 1;

const ReplayFile = z.strictObject({
  "blocksim-replay": z.literal(REPLAY_VERSION, { error: `expected "blocksim-replay": ${REPLAY_VERSION} (the replay format version this blocksim reads)` }),
  scenario: z.union([
    z.strictObject({ path: z.string().min(1), sha256: z.string().regex(/^[0-9a-f]{64}$/, "expected 64 hex digits").optional() }),
    z.strictObject({ inline: z.record(z.string(), z.unknown()) }),
  ], { error: "expected { path, sha256 } or { inline: <scenario> }" }),
  profile: z.string().min(1),
  seed: z.union([z.number().int(), z.string()]),
  strategy: z.string().min(1),
  /** The choice log, compact (`1:2.0,3.1`) or as JSON entries. */
  choices: z.union([z.string(), z.array(z.union([z.tuple([z.number().int(), z.number().int()]), z.tuple([z.number().int(), z.number().int(), z.string()])]))]),
  hash: z.string().regex(/^[0-9a-f]{16}$/, "expected 16 hex digits (a trace hash)"),
  ok: z.boolean().optional(),
  outcome: z.string().optional(),
  failures: z.array(z.string()).optional(),
  /** Events with their virtual times, to show where a departing run differs. */
  events: z.array(z.string()).optional(),
});
export type ReplayFile = z.infer<typeof ReplayFile>;

/** A replay file read and its scenario loaded. */
export interface LoadedReplay {
  file: string;
  replay: ReplayFile;
  loaded: LoadedScenario;
  choices: ChoiceLog;
  /** Set when the scenario file changed since the replay was written. */
  staleScenario?: string;
}

/** Event lines as stored in replay files: `<ns> <EVENT> <data>`. */
export function eventLines(report: RunReport): string[] {
  return report.log.filter((e) => e.kind === "event").map((e) => `${e.t} ${eventLine(e as { event: string; data: Record<string, unknown> })}`);
}

/** Builds the replay file for a run of a scenario file. */
export function makeReplay(report: RunReport, loaded: LoadedScenario, replayPath: string, scenarioPath: string | undefined): ReplayFile {
  const scenario = scenarioPath !== undefined
    ? { path: relative(dirname(resolve(replayPath)), resolve(scenarioPath)) || scenarioPath, sha256: loaded.contentHash }
    : { inline: loaded.scenario as unknown as Record<string, unknown> };
  return {
    "blocksim-replay": REPLAY_VERSION,
    scenario,
    profile: report.profile,
    seed: report.seed,
    strategy: report.strategy,
    choices: formatChoiceLog(report.choices),
    hash: report.hash,
    ok: report.ok,
    outcome: report.outcome.kind,
    failures: report.failures.map((f) => f.message),
    events: eventLines(report),
  };
}

/** Reads a replay file; every problem is an InputError naming file, line and path. */
export function loadReplayFile(path: string): LoadedReplay {
  const p = parseFile(path, path, LIMITS.replayBytes);
  if (p.data === null || typeof p.data !== "object" || Array.isArray(p.data)) {
    throw new InputError([{ file: p.file, path: "", line: 1, message: `expected a replay file (a JSON object with "blocksim-replay": ${REPLAY_VERSION}), got ${p.data === null ? "an empty file" : Array.isArray(p.data) ? "a list" : typeof p.data}` }]);
  }
  if (!("blocksim-replay" in (p.data as object)) && "race" in (p.data as object) && "version" in (p.data as object)) {
    throw new InputError([{ file: p.file, path: "", line: 1, message: `this is a replay of a race built in code (sim/races/seed-races.ts), not a blocksim replay file: run \`npx tsx sim/races/seed-races.ts\` for it` }]);
  }
  if (!("blocksim-replay" in (p.data as object)) && "name" in (p.data as object)) {
    throw new InputError([{ file: p.file, path: "", line: 1, message: "this looks like a scenario, not a replay file: use `blocksim run` for it" }]);
  }
  const r = ReplayFile.safeParse(p.data);
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, ReplayFile, p.data, p.file, p.locate));
  const replay = r.data;
  const profiles = ALL_PROFILES.map((x) => x.name);
  if (!profiles.includes(replay.profile)) {
    throw new InputError([{ file: p.file, path: "profile", ...(p.locate(["profile"]) ?? {}), message: `unknown profile "${replay.profile}"${didYouMean(replay.profile, profiles)}; known profiles: ${profiles.join(", ")}` }]);
  }
  let choices: ChoiceLog;
  try {
    choices = typeof replay.choices === "string" ? parseChoiceLog(replay.choices) : (replay.choices as ChoiceLog);
    if (choices.length > LIMITS.choices) throw new Error(`choice log: ${choices.length} entries, more than blocksim replays (${LIMITS.choices})`);
    for (const [i, c] of choices.entries()) if (c[1] < 0 || c[1] >= c[0]) throw new Error(`choice log: entry ${i} picks ${c[1]} of only ${c[0]} options`);
  } catch (e) {
    throw new InputError([{ file: p.file, path: "choices", ...(p.locate(["choices"]) ?? {}), message: (e as Error).message }]);
  }
  let loaded: LoadedScenario;
  let staleScenario: string | undefined;
  if ("path" in replay.scenario) {
    const scenarioPath = resolve(dirname(resolve(path)), replay.scenario.path);
    loaded = loadScenarioFile(scenarioPath, relative(process.cwd(), scenarioPath) || scenarioPath);
    if (replay.scenario.sha256 !== undefined && replay.scenario.sha256 !== loaded.contentHash) {
      staleScenario = `the scenario ${replay.scenario.path} (or one of its imports) changed since this replay was recorded (sha256 ${replay.scenario.sha256.slice(0, 12)}… then, ${loaded.contentHash.slice(0, 12)}… now)`;
    }
  } else {
    // An inline scenario is the loaded form: numbers in bytes and ns.
    loaded = loadScenarioText(stringify(replay.scenario.inline), `${p.file} (inline scenario)`, dirname(resolve(path)), { bareNumbers: true });
  }
  return { file: p.file, replay, loaded, choices, ...(staleScenario ? { staleScenario } : {}) };
}

/** Where two event logs first differ, or undefined. */
export function firstDifference(recorded: readonly string[], now: readonly string[]): { index: number; recorded?: string; now?: string } | undefined {
  const n = Math.max(recorded.length, now.length);
  for (let i = 0; i < n; i++) if (recorded[i] !== now[i]) return { index: i, recorded: recorded[i], now: now[i] };
  return undefined;
}
