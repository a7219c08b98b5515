/**
 * `blocksim replay REPLAY.json`: repeats a recorded run — of a scenario, a
 * fuzz case or a race — and says whether it reproduced the recording or
 * where it departs. `fuzz --replay` and `races --replay` are this command.
 */
import { readReplayFile } from "../sim/scenario/replay.js";
import { EXIT_FAIL, EXIT_OK, loadOptions, parse, UsageError, type Io } from "./args.js";
import { help } from "./help.js";
import { departures, runReplay } from "./replay-subject.js";
import { printRun } from "./run.js";

export function cmdReplay(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["json", "trace", "quiet", "allow-import", "help"], "replay");
  if (v.help) return help("replay", io);
  if (files.length !== 1) throw new UsageError("replay takes exactly one replay file; see: blocksim help replay");
  return replayFile(files[0], io, v);
}

/** Replays one file and prints the run and the verdict: 0 it reproduced a passing run, 1 a failing one (or it departs). */
export function replayFile(file: string, io: Io, v: { json?: boolean; trace?: boolean; quiet?: boolean; "allow-import"?: string[] } = {}): number {
  const rp = readReplayFile(file);
  const run = runReplay(rp, { trace: !!v.trace, ...loadOptions(v) });
  const { report: r, staleScenario } = run;
  if (staleScenario) io.err(`blocksim: ${rp.file}: ${staleScenario}; the recorded choices may no longer apply — replaying anyway\n`);
  printRun(io, r, v);
  const problems = departures(rp, run);
  if (problems.length > 0) {
    if (!v.json) io.out(`REPLAY DEPARTS from ${rp.file}:\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
    else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: false, problems } }) + "\n");
    return EXIT_FAIL;
  }
  if (!v.json) io.out(`REPLAY REPRODUCED ${rp.file}: same choices, trace hash ${r.hash}${r.ok ? "" : ", and the same failure"}\n`);
  else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: true, hash: r.hash, ok: r.ok } }) + "\n");
  return r.ok ? EXIT_OK : EXIT_FAIL;
}
