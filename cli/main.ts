/**
 * The `blocksim` command line: dispatches to one file per command. Exit
 * codes: 0 every expectation held, 1 an expectation failed (or a replay
 * departed), 2 bad input (a malformed scenario or replay file, an unknown
 * option). Bad input never prints a
 * stack trace. Wall-clock time is read only for the progress line, which
 * appears only on a terminal and never with --json.
 */
import { readFileSync } from "node:fs";
import { didYouMean, formatProblems, InputError } from "../sim/scenario/errors.js";
import { OutputError } from "../sim/scenario/output-file.js";
import { OldReplayFormatError } from "../sim/scenario/replay.js";
import { packagePath } from "../sim/scenario/package-root.js";
import { EXIT_INPUT, EXIT_OK, replaySpelling, UsageError, type Io } from "./args.js";
import { help, HELP } from "./help.js";

export type { Io } from "./args.js";

/** Commands that print their own help (`COMMAND --help`). */
const SELF_HELP = ["fuzz", "explore", "races", "record", "conform", "serve", "triage"];
/** Every command, for "did you mean" and the list in errors. */
export const COMMAND_NAMES = [...Object.keys(HELP).filter((k) => k !== "main"), ...SELF_HELP].sort();

/** A command that takes no options: --help, or nothing at all. */
function noOptions(cmd: string, rest: string[], io: Io, fn: (io: Io) => number): number {
  if (rest.length === 1 && (rest[0] === "--help" || rest[0] === "-h")) return help(cmd, io);
  if (rest.length > 0) throw new UsageError(`'${cmd}' takes no arguments or options, got ${JSON.stringify(rest[0])}; see: blocksim help ${cmd}`);
  return fn(io);
}

function printVersion(io: Io): number {
  const pkg = JSON.parse(readFileSync(packagePath("package.json"), "utf8")) as { version: string };
  io.out(`blocksim ${pkg.version}\n`);
  return EXIT_OK;
}

/** Runs the CLI on `argv` (without node and script); returns the exit code. */
export async function main(argv: string[], io: Io): Promise<number> {
  const [cmd, ...rest] = argv;
  try {
    switch (cmd) {
      case undefined:
      case "--help":
      case "-h":
        return help("main", io);
      case "help": {
        const topic = rest[0] ?? "main";
        if (SELF_HELP.includes(topic)) return await main([topic, "--help"], io);
        if (!Object.hasOwn(HELP, topic)) throw new UsageError(`no help for "${topic}"${didYouMean(topic, Object.keys(HELP))}; commands: ${Object.keys(HELP).filter((k) => k !== "main").join(", ")}`);
        return help(topic, io);
      }
      // Each command is loaded only when asked for, so start-up pays for one.
      case "run": return (await import("./run.js")).cmdRun(rest, io);
      case "replay": return (await import("./replay.js")).cmdReplay(rest, io);
      case "convert-replay": return (await import("./convert-replay.js")).cmdConvertReplay(rest, io);
      case "check-determinism": return (await import("./check-determinism.js")).cmdCheckDeterminism(rest, io);
      case "timeline": return await (await import("./timeline.js")).cmdTimeline(rest, io);
      case "fuzz": return await (await import("./fuzz.js")).fuzzCommand(rest, io);
      case "explore": return (await import("./explore.js")).exploreCommand(rest, io);
      case "races": return await (await import("./races.js")).racesCommand(rest, io);
      case "triage": return (await import("./triage.js")).triageCommand(rest, io);
      case "record": return await (await import("../live/record.js")).recordCommand(rest, io);
      case "serve":
        // `serve --replay FILE` is `replay FILE`: a session's replay file is in the one format.
        if (replaySpelling(rest)) return (await import("./replay.js")).cmdReplay(replaySpelling(rest)!, io);
        return await (await import("../serve/main.js")).serveMain(rest);
      case "conform": return (await import("../live/conform.js")).conformCommand(rest, io);
      case "profiles": return noOptions(cmd, rest, io, (await import("./lists.js")).listProfiles);
      case "invariants": return noOptions(cmd, rest, io, (await import("./lists.js")).printInvariants);
      case "commands": return noOptions(cmd, rest, io, (await import("./lists.js")).listCommands);
      case "events": return noOptions(cmd, rest, io, (await import("./lists.js")).listEvents);
      case "schema": return noOptions(cmd, rest, io, (await import("./schema.js")).printSchema);
      case "--version":
      case "-V":
      case "version": return printVersion(io);
      default:
        throw new UsageError(`unknown command "${cmd}"${didYouMean(cmd, COMMAND_NAMES)}; commands: ${COMMAND_NAMES.join(", ")}; see: blocksim --help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
      io.err(`blocksim: ${e.message}\n`);
      return EXIT_INPUT;
    }
    if (e instanceof OutputError || e instanceof OldReplayFormatError) {
      io.err(`blocksim: ${e.message}\n`);
      return EXIT_INPUT;
    }
    if (e instanceof InputError) {
      io.err(`blocksim: bad input — ${formatProblems(e.problems)}\n`);
      return EXIT_INPUT;
    }
    throw e;
  }
}
