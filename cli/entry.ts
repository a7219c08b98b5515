/**
 * The process around `main`: what bin/blocksim.js runs. Kept apart from
 * main.ts so that importing the command line (tests do) starts nothing.
 * In a fuzz worker thread of the bundle (bin/blocksim.js is its entry too)
 * it runs the worker instead.
 */
import { isMainThread } from "node:worker_threads";
import { describeErrno } from "../sim/scenario/output-file.js";
import { runsCampaign, tuneForCampaign } from "./jit.js";
import { main, type Io } from "./main.js";
import { escapeTerminal } from "./terminal.js";

/** Standard output could not be written (a full disk, an I/O error): blocksim's own line, exit 2. */
function outputFailed(name: string, e: unknown): never {
  try {
    if (name !== "standard error") process.stderr.write(`blocksim: cannot write to ${name}: ${describeErrno(e)}\n`);
  } catch {
    // stderr is gone too
  }
  process.exit(2);
}

function startCommandLine(): void {
  // `blocksim run … | head`: a closed pipe ends the output quietly, as other tools do.
  for (const [stream, name] of [[process.stdout, "standard output"], [process.stderr, "standard error"]] as const) {
    stream.on("error", (e: NodeJS.ErrnoException) => {
      if (e.code === "EPIPE") process.exit(process.exitCode ?? 0);
      outputFailed(name, e);
    });
  }
  const write = (stream: NodeJS.WriteStream, name: string, t: string) => {
    try {
      stream.write(t);
    } catch (e) {
      outputFailed(name, e);
    }
  };
  // Scenario text is untrusted: control characters are escaped on their way to the terminal (cli/terminal.ts).
  const io: Io = {
    out: (t) => write(process.stdout, "standard output", escapeTerminal(t)),
    err: (t) => write(process.stderr, "standard error", escapeTerminal(t)),
    rawErr: (t) => write(process.stderr, "standard error", t),
    tty: !!process.stderr.isTTY,
    ...(process.stderr.isTTY && process.stderr.columns ? { columns: process.stderr.columns } : {}),
  };
  if (runsCampaign(process.argv.slice(2))) tuneForCampaign();
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

if (isMainThread) startCommandLine();
else void import("./fuzz-worker.js");
