/**
 * `blocksim serve [SCENARIO] --qmp unix:PATH|tcp:HOST:PORT [...]`: the command
 * line around the server (serve/server.ts). Runs until SIGINT or SIGTERM or
 * a client's `quit`, then writes the replay file if asked.
 */
import { InputError } from "../sim/scenario/errors.js";
import { loadScenarioFile, type LoadedScenario } from "../sim/scenario/loader.js";
import { AddressError, MonitorArgs } from "./address.js";
import { ClockError, DEFAULT_GRACE_MS, describeClock, parseClock } from "./clock.js";
import { DEFAULT_LIMITS } from "./json-stream.js";
import { makeServeReplay, ServeReplayError, writeServeReplay } from "./replay.js";
import { QmpServer } from "./server.js";
import { buildWorld, unsupportedStep } from "./world.js";
import { OPTION_LIMITS } from "../sim/scenario/limits.js";

export const SERVE_HELP = `blocksim serve [SCENARIO] --qmp unix:PATH|tcp:HOST:PORT [options]
blocksim serve --replay FILE

The simulated QEMU behind a real QMP socket. Devices, nodes, faults and
guests come from SCENARIO (none: an empty QEMU); its steps, if any, run as
one more client inside the simulation.

  --qmp ADDR             unix:PATH or tcp:HOST:PORT (also QEMU's -qmp ADDR,
                         -chardev socket,id=ID,path=P|host=H,port=N|fd=N with
                         -mon chardev=ID,mode=control); repeatable
  --clock MODE           realtime[:SCALE]  virtual time follows the wall clock, SCALE times
                                           as fast (default realtime; realtime:100 = 1 s per 10 ms)
                         deterministic[:Q] virtual time moves Q (default 10ms) per idle grace
                                           period, only while every client waits; a command
                                           runs to its reply on virtual time alone
                         step              only x-blocksim-clock-step moves it
  --grace MS             the idle grace of deterministic mode (default ${DEFAULT_GRACE_MS})
  --max-message BYTES    the largest JSON request accepted (default ${DEFAULT_LIMITS.maxValueBytes})
  --save-replay FILE     on exit, write the replay file of the session
  --replay FILE          run a saved session again (no sockets): the same as blocksim replay FILE

x-blocksim-clock-step {"ns": N} advances virtual time by N ns (to the next
event without ns) in deterministic and step modes; replies {"clock-ns": T}.

Examples:
  blocksim serve scenarios/backup.yaml --qmp unix:q.sock
  socat - UNIX-CONNECT:q.sock          # then type {"execute": "qmp_capabilities"}
  blocksim serve --qmp tcp:127.0.0.1:4444 --clock deterministic --save-replay s.json
  blocksim serve --replay s.json`;

class UsageError extends Error {}

export async function serveMain(argv: string[]): Promise<number> {
  try {
    return await serve(argv);
  } catch (e) {
    if (e instanceof InputError) {
      process.stderr.write(`blocksim: ${e.message}\n`);
      return 2;
    }
    if (e instanceof UsageError || e instanceof AddressError || e instanceof ClockError || e instanceof ServeReplayError) {
      process.stderr.write(`blocksim serve: ${e.message}\n`);
      return 2;
    }
    throw e;
  }
}

async function serve(argv: string[]): Promise<number> {
  const mon = new MonitorArgs();
  let scenarioPath: string | undefined;
  let clockSpec = "realtime", grace = DEFAULT_GRACE_MS, maxMessage = DEFAULT_LIMITS.maxValueBytes;
  let saveReplay: string | undefined, replayFrom: string | undefined;
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    const val = () => {
      const v = argv[++i];
      if (v === undefined) throw new UsageError(`${a} needs a value (see blocksim serve --help)`);
      return v;
    };
    if (a === "--help" || a === "-h") {
      process.stdout.write(SERVE_HELP + "\n");
      return 0;
    }
    if (a === "--qmp" || a === "-qmp") mon.qmp(val());
    else if (a === "-chardev" || a === "--chardev") mon.chardev(val());
    else if (a === "-mon" || a === "--mon") mon.mon(val());
    else if (a === "--clock") clockSpec = val();
    else if (a === "--grace") grace = wholeNumber(a, val(), OPTION_LIMITS["serve --grace"]);
    else if (a === "--max-message") maxMessage = wholeNumber(a, val(), OPTION_LIMITS["serve --max-message"]);
    else if (a === "--save-replay") saveReplay = val();
    else if (a === "--replay") replayFrom = val();
    else if (a.startsWith("-")) throw new UsageError(`unknown option ${a} (see blocksim serve --help)`);
    else if (scenarioPath === undefined) scenarioPath = a;
    else throw new UsageError(`one scenario file only (got ${scenarioPath} and ${a})`);
  }
  // The command line sends `serve --replay FILE` to `blocksim replay FILE` (cli/main.ts): one code path for every replay file.
  if (replayFrom !== undefined) throw new UsageError(`serve --replay FILE is replayed by blocksim replay FILE, with the options replay takes`);
  const clock = parseClock(clockSpec, grace);
  const listens = mon.listens();
  if (listens.length === 0) throw new UsageError("where should QMP listen? give --qmp unix:PATH or --qmp tcp:HOST:PORT");
  let loaded: LoadedScenario | undefined;
  if (scenarioPath !== undefined) {
    loaded = loadScenarioFile(scenarioPath);
    const bad = loaded.scenario.steps.map((st, i) => [i, unsupportedStep(st)] as const).find(([, why]) => why);
    if (bad) throw new UsageError(`${scenarioPath}: at steps[${bad[0]}]: ${bad[1]}`);
  }
  const world = buildWorld(loaded);
  let quit: () => void = () => {};
  const stopped = new Promise<void>((r) => (quit = r));
  const server = new QmpServer({
    world, clock, limits: { ...DEFAULT_LIMITS, maxValueBytes: maxMessage },
    onQuit: () => quit(),
    log: (m) => process.stderr.write(`blocksim serve: ${m}\n`),
  });
  try {
    server.setUp();
  } catch (e) {
    throw new UsageError(`${scenarioPath}: ${(e as Error).message}`);
  }
  for (const l of listens) {
    const where = await server.listen(l);
    process.stderr.write(`blocksim serve: QMP on ${where} (clock ${describeClock(clock)})\n`);
  }
  process.once("SIGINT", () => quit());
  process.once("SIGTERM", () => quit());
  await stopped;
  await server.close();
  if (saveReplay !== undefined) {
    writeServeReplay(saveReplay, makeServeReplay(world, loaded, scenarioPath, saveReplay, clockSpec, server.actions, server.replies));
    process.stderr.write(`blocksim serve: wrote ${saveReplay} (${server.actions.length} commands; blocksim replay ${saveReplay})\n`);
  }
  return server.outcome && server.outcome.kind !== "ok" ? 1 : 0;
}

function wholeNumber(opt: string, v: string, { min, max }: { min: number; max: number }): number {
  const n = /^\d{1,20}$/.test(v) ? Number(v) : NaN;
  if (!Number.isSafeInteger(n) || n < min || n > max) throw new UsageError(`${opt} ${v}: expected a whole number in [${min}, ${max}]`);
  return n;
}
