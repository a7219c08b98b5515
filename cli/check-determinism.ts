/** `blocksim check-determinism FILE`: the same run N times, the same trace hash every time. */
import { loadScenarioFile } from "../sim/scenario/loader.js";
import { eventLines, firstDifference } from "../sim/scenario/replay.js";
import { describeOutcome } from "../sim/harness/run.js";
import { runScenario } from "../sim/scenario/runner.js";
import { EXIT_FAIL, EXIT_OK, loadOptions, parse, Progress, runOptions, setupFailure, UsageError, type Io } from "./args.js";
import { help } from "./help.js";
import { wholeNumberOption } from "../sim/scenario/limits.js";

export function cmdCheckDeterminism(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["runs", "seed", "profile", "strategy", "allow-import", "help"], "check-determinism");
  if (v.help) return help("check-determinism", io);
  if (files.length !== 1) throw new UsageError("check-determinism takes exactly one scenario file; see: blocksim help check-determinism");
  const runs = wholeNumberOption("check-determinism --runs", v.runs, 3);
  const loaded = loadScenarioFile(files[0], files[0], loadOptions(v));
  const opts = runOptions(v); // a strategy object serves one run: a fresh one each time
  const progress = new Progress(io, io.tty);
  const first = runScenario(loaded, opts(loaded));
  const setup = setupFailure(files[0], first);
  if (setup) throw setup;
  const firstEvents = eventLines(first);
  for (let i = 2; i <= runs; i++) {
    progress.show(`run ${i}/${runs} of ${files[0]}`);
    const r = runScenario(loaded, opts(loaded));
    if (r.hash !== first.hash) {
      progress.clear();
      const d = firstDifference(firstEvents, eventLines(r));
      io.out(`NOT DETERMINISTIC: run ${i} of ${files[0]} has trace hash ${r.hash}, run 1 had ${first.hash}\n`);
      if (d) io.out(`  first differing event, #${d.index}:\n    run 1: ${d.recorded ?? "(no more events)"}\n    run ${i}: ${d.now ?? "(no more events)"}\n`);
      return EXIT_FAIL;
    }
  }
  progress.clear();
  io.out(`DETERMINISTIC: ${runs} runs of ${files[0]} (profile ${first.profile}, seed ${first.seed}, strategy ${first.strategy}) all have trace hash ${first.hash}, ${describeOutcome(first.outcome, first.setupEndNs)}\n`);
  return EXIT_OK;
}
