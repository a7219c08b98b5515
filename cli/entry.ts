/**
 * The process around `main`: what bin/blocksim.js runs. Kept apart from
 * main.ts so that importing the command line (tests do) starts nothing.
 */
import { main, type Io } from "./main.js";

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
