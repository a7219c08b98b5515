/** `blocksim run FILE…`: runs scenario files and prints their event logs and verdicts. */
import { checkOutputPath, writeFileAtomic } from "../sim/scenario/output-file.js";
import { formatProblems, InputError } from "../sim/scenario/errors.js";
import { OPTION_LIMITS } from "../sim/scenario/limits.js";
import { loadScenarioFile, type LoadedScenario } from "../sim/scenario/loader.js";
import { isReplayFile, makeReplay } from "../sim/scenario/replay.js";
import { runScenario, type RunReport } from "../sim/scenario/runner.js";
import { eventLog, header, kernelTrace, progressLine, qmpJsonLines, verdict } from "../sim/report/text.js";
import { EXIT_FAIL, EXIT_INPUT, EXIT_OK, loadOptions, parse, setupFailure, Progress, runOptions, UsageError, type Io, type Values } from "./args.js";
import { help } from "./help.js";

export function printRun(io: Io, r: RunReport, v: Values): void {
  const lines: string[] = [];
  if (v.json) {
    lines.push(...qmpJsonLines(r));
    lines.push(JSON.stringify({ blocksim: { scenario: r.name, file: r.file, ok: r.ok, profile: r.profile, seed: r.seed, strategy: r.strategy, hash: r.hash, endTimeNs: r.endTimeNs, outcome: r.outcome.kind, failures: r.failures.map((f) => f.message) } }));
  } else {
    if (!v.quiet) {
      lines.push(header(r));
      for (const l of v.trace ? kernelTrace(r) : eventLog(r)) lines.push(l);
    }
    lines.push(verdict(r));
  }
  // One write per chunk of lines, not one per line: a long trace prints fast.
  for (let i = 0; i < lines.length; i += 2000) io.out(lines.slice(i, i + 2000).join("\n") + "\n");
}

/**
 * The `blocksim run` line that makes run `r` of `file` again: its seed,
 * profile and strategy (a seed only when --seed can spell it: a scenario's
 * own string seed is what a run without --seed takes), the imports it was
 * allowed, every word quoted for a POSIX shell where it needs it.
 */
export function rerunCommand(file: string, r: RunReport, v: Values): string {
  const { min, max } = OPTION_LIMITS["--seed"];
  const seed = typeof r.seed === "number" && Number.isSafeInteger(r.seed) && r.seed >= min && r.seed <= max ? ["--seed", String(r.seed)] : [];
  const imports = (v["allow-import"] ?? []).flatMap((p) => ["--allow-import", p]);
  const words = ["blocksim", "run", file.startsWith("-") ? `./${file}` : file, ...seed, "--profile", r.profile, "--strategy", r.strategy, ...imports];
  return words.map(shellWord).join(" ");
}

/** A word as a POSIX shell reads it back: bare when it is plain, else in single quotes. */
export function shellWord(w: string): string {
  return /^[A-Za-z0-9_@%+=:,./-]+$/.test(w) ? w : `'${w.replaceAll("'", "'\\''")}'`;
}

export function cmdRun(args: string[], io: Io): number {
  const { values: v, files } = parse(args, ["seed", "profile", "strategy", "trace", "json", "quiet", "save-replay", "allow-import", "help"], "run");
  if (v.help) return help("run", io);
  if (files.length === 0) throw new UsageError("run needs at least one scenario file; see: blocksim help run");
  if (v["save-replay"] !== undefined && files.length !== 1) throw new UsageError("--save-replay takes one scenario file");
  if (v["save-replay"] !== undefined) checkOutputPath(v["save-replay"], "--save-replay");
  const opts = runOptions(v);
  const progress = new Progress(io, io.tty && !v.json);
  let code = EXIT_OK;
  for (const [i, file] of files.entries()) {
    progress.show(`running ${file} (${i + 1}/${files.length})`);
    if (isReplayFile(file)) {
      // Not a scenario: a schema dump of its keys would not say what to do with it.
      progress.clear();
      io.err(`blocksim: ${file} is a replay file, not a scenario; run it with: blocksim replay ${shellWord(file)}\n`);
      code = EXIT_INPUT;
      continue;
    }
    let loaded: LoadedScenario;
    try {
      loaded = loadScenarioFile(file, file, loadOptions(v));
    } catch (e) {
      if (!(e instanceof InputError)) throw e;
      progress.clear();
      io.err(`blocksim: ${file} is not a valid scenario — ${formatProblems(e.problems)}\n`);
      code = EXIT_INPUT;
      continue;
    }
    const r: RunReport = runScenario(loaded, { ...opts(loaded), keepTrace: !!v.trace, onProgress: (p) => progress.tick(() => `running ${file} (${i + 1}/${files.length}): ${progressLine(p)}`) });
    r.rerun = rerunCommand(file, r, v);
    progress.clear();
    const setup = setupFailure(file, r);
    if (setup) {
      io.err(`blocksim: ${setup.message}\n`);
      code = EXIT_INPUT;
      continue;
    }
    printRun(io, r, v);
    if (!r.ok && code === EXIT_OK) code = EXIT_FAIL;
    if (v["save-replay"] !== undefined) {
      writeFileAtomic(v["save-replay"], JSON.stringify(makeReplay(r, loaded, v["save-replay"], file), null, 1) + "\n", "--save-replay");
      if (!v.json) io.out(`replay written to ${v["save-replay"]}: blocksim replay ${v["save-replay"]}\n`);
    }
  }
  return code;
}
