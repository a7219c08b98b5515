/** `blocksim replay REPLAY.json`: repeats a recorded run and says where it departs, if it does. */
import { ReplayStrategy } from "../sim/scheduler/index.js";
import { eventLines, firstDifference, loadReplayFile } from "../sim/scenario/replay.js";
import { runScenario } from "../sim/scenario/runner.js";
import { EXIT_FAIL, EXIT_OK, parse, UsageError, type Io } from "./args.js";
import { help } from "./help.js";
import { printRun } from "./run.js";

export function cmdReplay(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["json", "trace", "quiet", "help"], "replay");
  if (v.help) return help("replay", io);
  if (files.length !== 1) throw new UsageError("replay takes exactly one replay file; see: blocksim help replay");
  const rp = loadReplayFile(files[0]);
  if (rp.staleScenario) {
    io.err(`blocksim: ${rp.file}: ${rp.staleScenario}; the recorded choices may no longer apply — replaying anyway\n`);
  }
  const r = runScenario(rp.loaded, { seed: rp.replay.seed, profile: rp.replay.profile, strategy: new ReplayStrategy(rp.choices), keepTrace: !!v.trace });
  printRun(io, r, v);
  const problems: string[] = [];
  if (r.outcome.kind === "divergence") {
    problems.push(`the run departs from the recorded choice log at choice #${r.outcome.index} (virtual time ${r.outcome.timeNs} ns): ${r.outcome.error}`);
  }
  if (r.hash !== rp.replay.hash) {
    problems.push(`trace hash ${r.hash} differs from the recorded ${rp.replay.hash}`);
    const d = rp.replay.events ? firstDifference(rp.replay.events, eventLines(r)) : undefined;
    if (d) problems.push(`first differing event, #${d.index}:\n      recorded: ${d.recorded ?? "(no more events)"}\n      now:      ${d.now ?? "(no more events)"}`);
    else if (rp.replay.events) problems.push("the events are the same; the difference is in the kernel trace (I/O or scheduling), run with --trace to compare");
  }
  if (problems.length > 0) {
    if (!v.json) io.out(`REPLAY DEPARTS from ${rp.file}:\n${problems.map((p) => `  ${p}`).join("\n")}\n`);
    else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: false, problems } }) + "\n");
    return EXIT_FAIL;
  }
  if (!v.json) io.out(`REPLAY REPRODUCED ${rp.file}: same choices, trace hash ${r.hash}${r.ok ? "" : ", and the same failure"}\n`);
  else io.out(JSON.stringify({ replay: { file: rp.file, reproduced: true, hash: r.hash } }) + "\n");
  return r.ok ? EXIT_OK : EXIT_FAIL;
}
