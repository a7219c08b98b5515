/**
 * The `blocksim` command line: dispatches to one file per command. Exit
 * codes: 0 every expectation held, 1 an expectation failed (or a replay
 * departed), 2 bad input (a malformed scenario or replay file, an unknown
 * option). Bad input never prints a
 * stack trace. Wall-clock time is read only for the progress line, which
 * appears only on a terminal and never with --json.
 */
import { didYouMean, formatProblems, InputError } from "../sim/scenario/errors.js";
import { EXIT_INPUT, UsageError, type Io } from "./args.js";
import { cmdCheckDeterminism } from "./check-determinism.js";
import { help, HELP } from "./help.js";
import { listCommands, listProfiles, printInvariants, printSchema } from "./lists.js";
import { cmdReplay } from "./replay.js";
import { cmdRun } from "./run.js";
import { cmdTimeline } from "./timeline.js";

export type { Io } from "./args.js";

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
        if (topic === "fuzz" || topic === "explore" || topic === "races") return await main([topic, "--help"], io);
        if (!Object.hasOwn(HELP, topic)) throw new UsageError(`no help for "${topic}"${didYouMean(topic, Object.keys(HELP))}; commands: ${Object.keys(HELP).filter((k) => k !== "main").join(", ")}`);
        return help(topic, io);
      }
      case "run": return cmdRun(rest, io);
      case "replay": return cmdReplay(rest, io);
      case "check-determinism": return cmdCheckDeterminism(rest, io);
      case "timeline": return await cmdTimeline(rest, io);
      // Issue 8's subcommands live in their own files, loaded only when asked for.
      case "fuzz": return await (await import("./fuzz.js")).fuzzCommand(rest, io);
      case "explore": return (await import("./explore.js")).exploreCommand(rest, io);
      case "races": return (await import("./races.js")).racesCommand(rest, io);
      case "record": return await (await import("../live/record.js")).recordCommand(rest, io);
      case "conform": return (await import("../live/conform.js")).conformCommand(rest, io);
      case "profiles": return rest.includes("--help") || rest.includes("-h") ? help("profiles", io) : listProfiles(io);
      case "invariants": return rest.includes("--help") || rest.includes("-h") ? help("invariants", io) : printInvariants(io);
      case "commands": return rest.includes("--help") || rest.includes("-h") ? help("commands", io) : listCommands(io);
      case "schema": return rest.includes("--help") || rest.includes("-h") ? help("schema", io) : printSchema(io);
      default:
        throw new UsageError(`unknown command "${cmd}"${didYouMean(cmd, [...Object.keys(HELP).filter((k) => k !== "main"), "fuzz", "explore", "races"])}; see: blocksim --help`);
    }
  } catch (e) {
    if (e instanceof UsageError) {
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

const isEntry = process.argv[1] !== undefined && /(?:bin\/blocksim(?:\.js)?|cli\/main\.ts)$/.test(process.argv[1].replace(/\\/g, "/"));
if (isEntry) {
  // `blocksim run … | head`: a closed pipe ends the output quietly, as other tools do.
  for (const stream of [process.stdout, process.stderr]) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      throw e;
    });
  }
  const io: Io = { out: (t) => process.stdout.write(t), err: (t) => process.stderr.write(t), tty: !!process.stderr.isTTY };
  main(process.argv.slice(2), io).then(
    (code) => {
      process.exitCode = code;
    },
    (e: unknown) => {
      process.stderr.write(`blocksim: internal error (a bug in blocksim, please report it with the command you ran):\n${e instanceof Error ? e.stack ?? e.message : String(e)}\n`);
      process.exitCode = 3;
    },
  );
}
