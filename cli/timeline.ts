/** `blocksim timeline FILE|REPLAY.json -o OUT.html`: a run drawn as a self-contained HTML page. */
import { readFileSync, writeFileSync } from "node:fs";
import { loadScenarioFile } from "../sim/scenario/loader.js";
import { loadReplayFile } from "../sim/scenario/replay.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { EXIT_OK, loadOptions, parse, runOptions, UsageError, type Io } from "./args.js";
import { help } from "./help.js";

export async function cmdTimeline(args: string[], io: Io): Promise<number> {
  const { values: v, files } = parse(args, ["output", "seed", "profile", "strategy", "allow-import", "help"], "timeline");
  if (v.help) return help("timeline", io);
  if (files.length !== 1) throw new UsageError("timeline takes exactly one scenario or replay file; see: blocksim help timeline");
  if (v.output === undefined) throw new UsageError("timeline needs -o OUT.html");
  const { renderTimeline } = await import("../sim/report/timeline.js");
  const file = files[0];
  let r: RunReport;
  if (/\.replay\.json$/.test(file) || looksLikeReplay(file)) {
    const rp = loadReplayFile(file);
    r = runScenario(rp.loaded, { seed: rp.replay.seed, profile: rp.replay.profile, replay: rp.choices, keepTrace: true });
  } else {
    r = runScenario(loadScenarioFile(file, file, loadOptions(v)), { ...runOptions(v), keepTrace: true });
  }
  writeFileSync(v.output, renderTimeline(r));
  io.out(`${r.ok ? "PASS" : "FAIL"} ${r.name}: timeline written to ${v.output}\n`);
  return EXIT_OK;
}

function looksLikeReplay(file: string): boolean {
  try {
    return readFileSync(file, "utf8").includes('"blocksim-replay"');
  } catch {
    return false;
  }
}
