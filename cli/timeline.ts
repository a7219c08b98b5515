/** `blocksim timeline FILE|REPLAY.json -o OUT.html`: a run drawn as a self-contained HTML page. */
import { loadScenarioFile } from "../sim/scenario/loader.js";
import { checkOutputPath, writeFileAtomic } from "../sim/scenario/output-file.js";
import { isReplayFile, readReplayFile } from "../sim/scenario/replay.js";
import { runReplay } from "./replay-subject.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { EXIT_FAIL, EXIT_OK, loadOptions, parse, runOptions, setupFailure, UsageError, type Io } from "./args.js";
import { help } from "./help.js";

export async function cmdTimeline(args: string[], io: Io): Promise<number> {
  const { values: v, files } = parse(args, ["output", "seed", "profile", "strategy", "allow-import", "help"], "timeline");
  if (v.help) return help("timeline", io);
  if (files.length !== 1) throw new UsageError("timeline takes exactly one scenario or replay file; see: blocksim help timeline");
  if (v.output === undefined) throw new UsageError("timeline needs -o OUT.html");
  checkOutputPath(v.output, "-o");
  const { renderTimeline } = await import("../sim/report/timeline.js");
  const file = files[0];
  let r: RunReport;
  if (isReplayFile(file)) {
    r = runReplay(readReplayFile(file), { trace: true, ...loadOptions(v) }).report;
  } else {
    const loaded = loadScenarioFile(file, file, loadOptions(v));
    r = runScenario(loaded, { ...runOptions(v)(loaded), keepTrace: true });
  }
  const setup = setupFailure(file, r);
  if (setup) throw setup;
  writeFileAtomic(v.output, renderTimeline(r), "-o");
  io.out(`${r.ok ? "PASS" : "FAIL"} ${r.name}: timeline written to ${v.output}\n`);
  // As run: 1 when an expectation failed (the page is written either way).
  return r.ok ? EXIT_OK : EXIT_FAIL;
}

