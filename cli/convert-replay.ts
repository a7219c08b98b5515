/**
 * `blocksim convert-replay OLD -o NEW`: rewrites a replay file of an older
 * format (blocksim-replay 1, blocksim-race-replay, { version, race },
 * blocksim-fuzz-replay, blocksim-serve-replay) in the current one. It replays the old file's run
 * exactly — same subject, profile, seed and choice log — and writes the new
 * file only when the run gives the recorded trace hash, recording what the
 * run gave (violations, events).
 */
import { dirname, relative, resolve, sep } from "node:path";
import { InputError } from "../sim/scenario/errors.js";
import { LIMITS } from "../sim/scenario/limits.js";
import { parseFile } from "../sim/scenario/loader.js";
import { checkOutputPath } from "../sim/scenario/output-file.js";
import { checkReplay, loadReplayScenario, makeReplayOf, oldFormatOf, REPLAY_FORMAT, REPLAY_VERSION, writeReplayFile, type ReplaySubject } from "../sim/scenario/replay.js";
import { EXIT_FAIL, EXIT_OK, loadOptions, parse, UsageError, type Io } from "./args.js";
import { help } from "./help.js";
import { departures, runReplay } from "./replay-subject.js";

export function cmdConvertReplay(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["output", "allow-import", "help"], "convert-replay");
  if (v.help) return help("convert-replay", io);
  if (files.length !== 1) throw new UsageError("convert-replay takes exactly one old replay file; see: blocksim help convert-replay");
  if (v.output === undefined) throw new UsageError("convert-replay needs -o NEW.replay.json (it may be the old file's own path)");
  checkOutputPath(v.output, "-o");
  const file = files[0];
  const p = parseFile(file, file, LIMITS.replayBytes);
  const old = oldFormatOf(p.data);
  const bad = (path: string, message: string) => new InputError([{ file: p.file, path, ...(p.locate(path ? path.split(".") : []) ?? {}), message }]);
  if (old === undefined) {
    if (p.data !== null && typeof p.data === "object" && (p.data as Record<string, unknown>)[REPLAY_FORMAT] === REPLAY_VERSION) throw bad("", `already in the current format ("${REPLAY_FORMAT}": ${REPLAY_VERSION}); nothing to convert`);
    throw bad("", `not a replay file of an older blocksim format (expected "${REPLAY_FORMAT}": 1, "blocksim-race-replay", "blocksim-fuzz-replay", "blocksim-serve-replay" or { "version", "race" })`);
  }
  const o = p.data as Record<string, unknown>;
  const str = (k: string) => {
    if (typeof o[k] !== "string") throw bad(k, `expected a string`);
    return o[k] as string;
  };
  let subject: ReplaySubject;
  let strategy = "random";
  let foundBy: string | undefined;
  if (o[REPLAY_FORMAT] === 1) {
    const sc = o.scenario as Record<string, unknown> | undefined;
    if (sc && typeof sc.path === "string") {
      // The path was relative to the old file; the new one may be elsewhere.
      const abs = resolve(dirname(resolve(file)), sc.path);
      const rel = relative(dirname(resolve(v.output)), abs).split(sep).join("/");
      subject = { scenario: rel, sha256: typeof sc.sha256 === "string" ? sc.sha256 : "0".repeat(64) };
    } else if (sc && sc.inline !== null && typeof sc.inline === "object") subject = { inline: sc.inline as Record<string, unknown> };
    else throw bad("scenario", "expected { path, sha256 } or { inline: SCENARIO }");
    strategy = str("strategy");
  } else if ("blocksim-serve-replay" in o) {
    const sc = o.scenario as { path?: unknown; sha256?: unknown } | null;
    const where = sc && typeof sc.path === "string"
      ? { scenario: relative(dirname(resolve(v.output)), resolve(dirname(resolve(file)), sc.path)).split(sep).join("/"), ...(typeof sc.sha256 === "string" ? { sha256: sc.sha256 } : {}) }
      : {};
    subject = { session: { ...where, clock: str("clock"), actions: o.actions as never, "end-ns": o["end-ns"] as number, replies: o.replies as never } };
    strategy = str("strategy");
    foundBy = `blocksim serve --clock ${str("clock")}`;
  } else if ("blocksim-fuzz-replay" in o) {
    if (o.scenario === null || typeof o.scenario !== "object") throw bad("scenario", "expected the fuzz case (an object)");
    subject = { fuzz: o.scenario as Record<string, unknown> };
    strategy = "picks";
    const f = o.found as { fcSeed?: number; path?: string; runs?: number } | undefined;
    if (f) foundBy = `blocksim fuzz: fast-check seed ${f.fcSeed}, path ${f.path ?? "-"}, after ${f.runs} runs`;
  } else {
    subject = { race: str("race") };
  }
  // The new file in memory, checked by the one reader, then run.
  const draft = {
    [REPLAY_FORMAT]: REPLAY_VERSION, subject, profile: o.profile, seed: o.seed, strategy,
    choices: o.choices, hash: o.hash, ok: false, violations: [],
  };
  const rp = checkReplay(draft, p.file, dirname(resolve(v.output)), (path) => p.locate(path[0] === "subject" ? ["scenario", ...path.slice(2)] : path));
  if ("scenario" in subject && subject.sha256 === "0".repeat(64)) subject.sha256 = loadReplayScenario(rp, loadOptions(v)).loaded.contentHash;
  const run = runReplay(rp, { ...loadOptions(v) });
  const { report, staleScenario } = run;
  if (staleScenario) io.err(`blocksim: ${p.file}: ${staleScenario}\n`);
  const problems = departures(rp, run).filter((d) => !/^violations: |^the recorded run (passed|failed)/.test(d));
  if (problems.length > 0) {
    io.out(`NOT CONVERTED ${p.file}: its run no longer reproduces the recording, so the new file would not either:\n${problems.map((d) => `  ${d}`).join("\n")}\nRecord the run again instead (blocksim run --save-replay, blocksim races, blocksim explore).\n`);
    return EXIT_FAIL;
  }
  writeReplayFile(v.output, { ...makeReplayOf(subject, report, foundBy), strategy }, "-o");
  io.out(`converted ${p.file} (${old}) to ${v.output} ("${REPLAY_FORMAT}": ${REPLAY_VERSION}, trace hash ${report.hash}${report.ok ? "" : `, ${report.violations.length || report.failures.length} violation(s)`})\n`);
  return EXIT_OK;
}
