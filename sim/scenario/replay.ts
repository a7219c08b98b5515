/**
 * The replay file format — one for every command that writes a run down
 * (`run --save-replay`, `fuzz`, `explore`, `races`) and every command that
 * reads one (`replay`, `timeline`, `triage`). One schema, one reader, one
 * writer; README "Replay files" describes each field.
 *
 * A replay file holds what is needed to repeat one run exactly — its
 * subject, profile, seed and choice log — and what the run gave: the trace
 * hash, whether it passed, the violations and the event log, so a replay
 * that departs can say where. Subjects:
 *   { scenario: PATH, sha256 }  a scenario file, PATH relative to the replay
 *                               file and inside its folder tree (the import policy)
 *   { inline: {…} }             a scenario in its loaded form (bytes, ns)
 *   { fuzz: {…}, invariants? }  a generated fuzz case (sim/fuzz validates it), and
 *                               the invariants checked when not all
 *   { race: NAME }              a race of the catalog by name: its scenario file in
 *                               scenarios/races (the races' own files name the path)
 *   { session: {…} }            a `blocksim serve` session: its scenario (path or
 *                               inline, if any), clock, commands and replies
 *
 * Files in the formats that came before (blocksim-replay 1,
 * blocksim-race-replay, {version, race}, blocksim-fuzz-replay,
 * blocksim-serve-replay) are refused
 * with one line naming the command that converts them.
 */
import { realpathSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { stringify } from "yaml";
import { z } from "zod";
import { formatChoiceLog, parseChoiceLog, type ChoiceLog } from "../scheduler/index.js";
import { ALL_PROFILES } from "../mgmt/profiles.js";
import type { Violation } from "../harness/run.js";
import { didYouMean, InputError } from "./errors.js";
import { LIMITS } from "./limits.js";
import { issuesToProblems, type Locate } from "./issues.js";
import { loadScenarioFile, loadScenarioText, parseFile, readInputFile, type LoadedScenario, type LoadOptions } from "./loader.js";
import { writeFileAtomic } from "./output-file.js";
import { eventLine, type RunReport } from "./runner.js";

export const REPLAY_FORMAT = "blocksim-replay";
export const REPLAY_VERSION = 2;

/** The command that converts a file of an older format (README "Replay files"). */
export const convertCommand = (file: string) => `blocksim convert-replay ${file} -o ${file.replace(/(\.replay)?\.json$/i, "")}.replay.json`;

const hex = (n: number, what: string) => z.string().regex(new RegExp(`^[0-9a-f]{${n}}$`), `expected ${n} hex digits (${what})`);

const ns = z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER);
/** A `blocksim serve` session: its scenario (if any), clock, every command with its virtual time and monitor, and the replies sent. */
const Session = z.strictObject({
  scenario: z.string().min(1).max(4096).optional(),
  sha256: hex(64, "the sha256 of the scenario and its imports").optional(),
  inline: z.record(z.string(), z.unknown()).optional(),
  clock: z.string().min(1).max(100),
  actions: z.array(z.strictObject({ t: ns, client: z.number().int().nonnegative().max(1_000_000), execute: z.string().min(1).max(200), arguments: z.record(z.string(), z.unknown()).optional() })).max(LIMITS.steps),
  "end-ns": ns,
  replies: z.array(z.strictObject({ client: z.number().int().nonnegative().max(1_000_000), execute: z.string().min(1).max(200), t: ns, response: z.record(z.string(), z.unknown()) })).max(LIMITS.steps),
});
export type SessionRecord = z.infer<typeof Session>;

const Subject = z.union([
  z.strictObject({ scenario: z.string().min(1).max(4096), sha256: hex(64, "the sha256 of the scenario and its imports") }),
  z.strictObject({ inline: z.record(z.string(), z.unknown()) }),
  z.strictObject({ fuzz: z.record(z.string(), z.unknown()), invariants: z.array(z.string().min(1).max(200)).max(1000).optional() }),
  z.strictObject({ race: z.string().regex(/^[a-z0-9][a-z0-9-]{0,99}$/, "expected a race name (see: blocksim races)") }),
  z.strictObject({ session: Session }),
], { error: 'expected one of { "scenario": PATH, "sha256": HASH }, { "inline": SCENARIO }, { "fuzz": CASE }, { "race": NAME }, { "session": SESSION }' });
export type ReplaySubject = z.infer<typeof Subject>;

const RecordedViolation = z.strictObject({
  invariant: z.string().min(1).max(200),
  detail: z.string().max(100_000),
  "time-ns": z.number().int().nonnegative().optional(),
  job: z.string().max(1000).optional(),
});
export type RecordedViolation = z.infer<typeof RecordedViolation>;

const ReplayFile = z.strictObject({
  [REPLAY_FORMAT]: z.literal(REPLAY_VERSION, { error: `expected "${REPLAY_FORMAT}": ${REPLAY_VERSION} (the replay format version this blocksim reads)` }),
  /** What ran. */
  subject: Subject,
  profile: z.string().min(1).max(200),
  /** The seed of the run's own random streams (a string keeps a seed beyond 2^53 exact). */
  seed: z.union([z.number().int().nonnegative().max(Number.MAX_SAFE_INTEGER), z.string().regex(/^\d{1,40}$/, "expected a whole number")]),
  /** The strategy that made the choices (fifo, random, pct, exhaustive, picks…); a replay follows the choice log whatever it says. */
  strategy: z.string().min(1).max(100),
  /** The choice log, compact (`1:2.0,3.1`) or as JSON entries. */
  choices: z.union([z.string(), z.array(z.union([z.tuple([z.number().int(), z.number().int()]), z.tuple([z.number().int(), z.number().int(), z.string()])]))]),
  hash: hex(16, "a trace hash"),
  /** The recorded result: true when the run passed (every expectation held; no violation for a fuzz case or race). */
  ok: z.boolean(),
  /** How the kernel ended the run (ok, deadlock, time-budget, qemu-crash…). */
  outcome: z.string().max(100).optional(),
  violations: z.array(RecordedViolation).max(100_000),
  /** Failed expectations of a scenario, one line each. */
  failures: z.array(z.string().max(100_000)).max(100_000).optional(),
  /** QMP events with their virtual times, `<ns> <EVENT> <data>`: where a departing run differs. */
  events: z.array(z.string().max(1_000_000)).max(10_000_000).optional(),
  /** How the run was found, for people (the command, fast-check seed and path…). */
  "found-by": z.string().max(10_000).optional(),
});
export type ReplayFile = z.infer<typeof ReplayFile>;

/** Older formats, by the key that marks them. */
const OLD_FORMATS: { test(o: Record<string, unknown>): boolean; name: string }[] = [
  { test: (o) => REPLAY_FORMAT in o && o[REPLAY_FORMAT] === 1, name: `"${REPLAY_FORMAT}": 1` },
  { test: (o) => "blocksim-race-replay" in o, name: '"blocksim-race-replay" (a race of the catalog)' },
  { test: (o) => "blocksim-fuzz-replay" in o, name: '"blocksim-fuzz-replay" (blocksim fuzz)' },
  { test: (o) => "blocksim-serve-replay" in o, name: '"blocksim-serve-replay" (blocksim serve)' },
  { test: (o) => "race" in o && "version" in o && !(REPLAY_FORMAT in o), name: '{ "version", "race" } (a race built in code)' },
];

/** The name of the old format `data` is in, if it is in one. */
export function oldFormatOf(data: unknown): string | undefined {
  if (data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  return OLD_FORMATS.find((f) => f.test(data as Record<string, unknown>))?.name;
}

/**
 * Whether a file given where a scenario or a replay file may go (timeline,
 * explore) is a replay file, of this format or an old one (which then gets
 * the one-line old-format error, not a scenario schema dump). A replay file
 * is a JSON object with the format's key or an old format's marks; anything
 * else, or a file that cannot be read, is left to the scenario loader.
 */
export function isReplayFile(path: string): boolean {
  if (/\.replay\.json$/.test(path)) return true;
  let data: unknown;
  try {
    const text = readInputFile(path, path, LIMITS.replayBytes);
    if (!text.trimStart().startsWith("{")) return false;
    data = JSON.parse(text);
  } catch {
    return false;
  }
  return data !== null && typeof data === "object" && !Array.isArray(data) && (REPLAY_FORMAT in data || oldFormatOf(data) !== undefined);
}

/** A replay file in a format this blocksim no longer reads: one line, naming the converting command. */
export class OldReplayFormatError extends Error {
  override name = "OldReplayFormatError";
}

/** A replay file read and checked (its subject not yet loaded). */
export interface ReadReplay {
  /** The file as given (for messages). */
  file: string;
  /** Its folder: a scenario subject's path is relative to it. */
  dir: string;
  replay: ReplayFile;
  choices: ChoiceLog;
  /** Line and column of a path inside the file, for errors about the subject. */
  locate: Locate;
}

/** Reads a replay file; every problem is an InputError naming file, line and path; an old format an OldReplayFormatError. */
export function readReplayFile(path: string): ReadReplay {
  const p = parseFile(path, path, LIMITS.replayBytes);
  const top = (message: string) => new InputError([{ file: p.file, path: "", line: 1, message }]);
  if (p.data === null || typeof p.data !== "object" || Array.isArray(p.data)) {
    throw top(`expected a replay file (a JSON object with "${REPLAY_FORMAT}": ${REPLAY_VERSION}), got ${p.data === null ? "an empty file" : Array.isArray(p.data) ? "a list" : typeof p.data}`);
  }
  const old = oldFormatOf(p.data);
  if (old !== undefined) throw new OldReplayFormatError(`${p.file}: an old replay format (${old}); convert it with: ${convertCommand(p.file)}`);
  const o = p.data as Record<string, unknown>;
  if (!(REPLAY_FORMAT in o)) {
    if ("name" in o) throw top("this looks like a scenario, not a replay file: use `blocksim run` for it");
    throw top(`not a replay file: expected "${REPLAY_FORMAT}": ${REPLAY_VERSION} at the top`);
  }
  return checkReplay(p.data, p.file, dirname(resolve(path)), p.locate);
}

/** Checks replay data in the current format (read from `file`, whose folder is `dir`). */
export function checkReplay(data: unknown, file: string, dir: string, locate: Locate): ReadReplay {
  const r = ReplayFile.safeParse(data);
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, ReplayFile, data, file, locate));
  const replay = r.data;
  const profiles = ALL_PROFILES.map((x) => x.name);
  if (!profiles.includes(replay.profile)) {
    throw new InputError([{ file, path: "profile", ...(locate(["profile"]) ?? {}), message: `unknown profile "${replay.profile}"${didYouMean(replay.profile, profiles)}; known profiles: ${profiles.join(", ")}` }]);
  }
  let choices: ChoiceLog;
  try {
    choices = typeof replay.choices === "string" ? parseChoiceLog(replay.choices) : (replay.choices as ChoiceLog);
    if (choices.length > LIMITS.choices) throw new Error(`choice log: ${choices.length} entries, more than blocksim replays (${LIMITS.choices})`);
    for (const [i, c] of choices.entries()) if (c[1] < 0 || c[1] >= c[0]) throw new Error(`choice log: entry ${i} picks ${c[1]} of only ${c[0]} options`);
  } catch (e) {
    throw new InputError([{ file, path: "choices", ...(locate(["choices"]) ?? {}), message: (e as Error).message }]);
  }
  return { file, dir, replay, choices, locate };
}

/** A scenario or inline subject loaded. */
export interface ReplayScenario {
  loaded: LoadedScenario;
  /** Set when the scenario file changed since the replay was written. */
  staleScenario?: string;
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

/**
 * Loads the scenario of a scenario or inline subject. A scenario path
 * resolves relative to the replay file and, like an import, must stay
 * inside the replay file's folder tree unless `allowImport` widens it;
 * only a regular file within the size limit is read.
 */
export function loadReplayScenario(rp: ReadReplay, opts: LoadOptions = {}): ReplayScenario {
  const s = rp.replay.subject;
  const got = "session" in s ? loadWhere(rp, s.session, "subject.session", opts) : "inline" in s || "scenario" in s ? loadWhere(rp, s, "subject", opts) : undefined;
  if (got === undefined) throw new Error(`loadReplayScenario: the subject of ${rp.file} holds no scenario`);
  return got;
}

/** The scenario of a session subject, if it has one. */
export function loadSessionScenario(rp: ReadReplay, opts: LoadOptions = {}): ReplayScenario | undefined {
  const s = rp.replay.subject;
  return "session" in s ? loadWhere(rp, s.session, "subject.session", opts) : undefined;
}

function loadWhere(rp: ReadReplay, s: { scenario?: string; sha256?: string; inline?: Record<string, unknown> }, at: string, opts: LoadOptions): ReplayScenario | undefined {
  if (s.inline !== undefined) {
    // An inline scenario is the loaded form: numbers in bytes and ns; its imports stay inside the replay file's folder.
    return { loaded: loadScenarioText(stringify(s.inline), `${rp.file} (inline scenario)`, rp.dir, { ...opts, bareNumbers: true }) };
  }
  if (s.scenario === undefined) return undefined;
  const scenarioPath = resolve(rp.dir, s.scenario);
  const real = realOrResolved(scenarioPath);
  const roots = [realOrResolved(rp.dir), ...(opts.allowImport ?? []).map(realOrResolved)];
  const inside = (root: string) => real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
  if (!roots.some(inside)) {
    throw new InputError([{ file: rp.file, path: `${at}.scenario`, ...(rp.locate([...at.split("."), "scenario"]) ?? {}), message: `the scenario ${JSON.stringify(s.scenario)} resolves to ${real}, outside the replay file's folder ${roots[0]}; expected a scenario inside the replay file's folder tree (or allow another with --allow-import PATH)` }]);
  }
  const display = relative(process.cwd(), scenarioPath) || scenarioPath;
  let loaded: LoadedScenario;
  try {
    loaded = loadScenarioFile(scenarioPath, display, opts);
  } catch (e) {
    // A scenario that cannot be read is named with where the replay file points at it.
    if (e instanceof InputError && e.problems.length === 1 && e.problems[0].reason?.kind === "unreadable") {
      throw new InputError([{ file: rp.file, path: `${at}.scenario`, ...(rp.locate([...at.split("."), "scenario"]) ?? {}), message: `the scenario ${JSON.stringify(s.scenario)} (${display}): ${e.problems[0].message}; expected a scenario file beside the replay file` }]);
    }
    throw e;
  }
  const staleScenario = s.sha256 !== undefined && s.sha256 !== loaded.contentHash
    ? `the scenario ${s.scenario} (or one of its imports) changed since this replay was recorded (sha256 ${s.sha256.slice(0, 12)}… then, ${loaded.contentHash.slice(0, 12)}… now)`
    : undefined;
  return { loaded, ...(staleScenario ? { staleScenario } : {}) };
}

/** Event lines as stored in replay files: `<ns> <EVENT> <data>`. */
export function eventLines(report: Pick<RunReport, "log">): string[] {
  return report.log.filter((e) => e.kind === "event").map((e) => `${e.t} ${eventLine(e as { event: string; data: Record<string, unknown> })}`);
}

/** Violations as a replay file records them. */
export function recordViolations(vs: readonly (Pick<Violation, "invariant" | "detail" | "job"> & { timeNs?: number })[]): RecordedViolation[] {
  return vs.map((v) => ({ invariant: v.invariant, detail: v.detail, ...(v.timeNs !== undefined ? { "time-ns": v.timeNs } : {}), ...(v.job !== undefined ? { job: v.job } : {}) }));
}

/**
 * The subject of a scenario run: by path relative to where the replay file
 * goes when the scenario lies inside that folder tree (where a replay may
 * look, by the import policy); else inline, so the file replays anywhere.
 */
export function scenarioSubject(loaded: LoadedScenario, replayPath: string, scenarioPath: string | undefined): ReplaySubject {
  const dir = realOrResolved(dirname(resolve(replayPath)));
  const real = scenarioPath === undefined ? undefined : realOrResolved(scenarioPath);
  if (real === undefined || !(real === dir || real.startsWith(dir.endsWith(sep) ? dir : dir + sep))) return { inline: loaded.scenario as unknown as Record<string, unknown> };
  return { scenario: relative(dir, real).split(sep).join("/"), sha256: loaded.contentHash };
}

/** What a run gave, as the writer takes it. */
export interface RunRecord {
  profile: string;
  seed: number | string;
  strategy: string;
  choices: ChoiceLog | string;
  hash: string;
  ok: boolean;
  outcome?: string;
  violations: readonly Pick<Violation, "invariant" | "detail" | "job">[] | readonly (Pick<Violation, "invariant" | "detail" | "job"> & { timeNs?: number })[];
  failures?: string[];
  events?: string[];
  foundBy?: string;
}

/** The replay file of one run of `subject` (the one writer every command uses). */
export function makeReplayRecord(subject: ReplaySubject, r: RunRecord): ReplayFile {
  return {
    [REPLAY_FORMAT]: REPLAY_VERSION,
    subject,
    profile: r.profile,
    seed: r.seed,
    strategy: r.strategy,
    choices: typeof r.choices === "string" ? r.choices : formatChoiceLog(r.choices),
    hash: r.hash,
    ok: r.ok,
    ...(r.outcome !== undefined ? { outcome: r.outcome } : {}),
    violations: recordViolations(r.violations as readonly (Pick<Violation, "invariant" | "detail" | "job"> & { timeNs?: number })[]),
    ...(r.failures !== undefined ? { failures: r.failures } : {}),
    ...(r.events !== undefined ? { events: r.events } : {}),
    ...(r.foundBy !== undefined ? { "found-by": r.foundBy } : {}),
  };
}

/** The replay file of a run of any subject (a RunReport: the scenario runner's, or one made for a fuzz case or race). */
export function makeReplayOf(subject: ReplaySubject, report: RunReport, foundBy?: string): ReplayFile {
  return makeReplayRecord(subject, {
    profile: report.profile, seed: report.seed, strategy: report.strategy, choices: report.choices, hash: report.hash,
    ok: report.ok, outcome: report.outcome.kind, violations: report.violations,
    ...("inline" in subject || "scenario" in subject || "race" in subject ? { failures: report.failures.map((f) => f.message) } : {}),
    ...(report.log.length > 0 ? { events: eventLines(report) } : {}),
    ...(foundBy !== undefined ? { foundBy } : {}),
  });
}

/** Builds the replay file for a run of a scenario (a file, or inline when `scenarioPath` is undefined). */
export function makeReplay(report: RunReport, loaded: LoadedScenario, replayPath: string, scenarioPath: string | undefined, foundBy?: string): ReplayFile {
  return makeReplayOf(scenarioSubject(loaded, replayPath, scenarioPath), report, foundBy);
}

/** The text of a replay file. */
export function replayText(replay: ReplayFile): string {
  return JSON.stringify(replay, null, 1) + "\n";
}

/** Writes a replay file atomically (`what` names the option or file in an error). */
export function writeReplayFile(path: string, replay: ReplayFile, what = "the replay file"): void {
  writeFileAtomic(path, replayText(replay), what);
}

/** Where two event logs first differ, or undefined. */
export function firstDifference(recorded: readonly string[], now: readonly string[]): { index: number; recorded?: string; now?: string } | undefined {
  const n = Math.max(recorded.length, now.length);
  for (let i = 0; i < n; i++) if (recorded[i] !== now[i]) return { index: i, recorded: recorded[i], now: now[i] };
  return undefined;
}
