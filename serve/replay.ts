/**
 * The replay file `blocksim serve --save-replay` writes on exit: the
 * scenario (path and sha256), profile, seed, strategy and choice log, and
 * every command that reached the simulation with its virtual time and
 * monitor. Spawning the same client processes at the same virtual times
 * rebuilds the run exactly — the same replies, events and trace hash —
 * whatever the wall clock did during the live session.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { formatChoiceLog, parseChoiceLog, type Process } from "../sim/scheduler/index.js";
import type { QmpResponse } from "../sim/qmp/types.js";
import { loadScenarioFile, type LoadedScenario } from "../sim/scenario/loader.js";
import type { Action } from "./server.js";
import { buildWorld, describeOutcome, runSetup, type World } from "./world.js";

export const SERVE_REPLAY_VERSION = 1;

export interface ServeReplay {
  "blocksim-serve-replay": typeof SERVE_REPLAY_VERSION;
  scenario: { path: string; sha256: string } | null;
  profile: string;
  seed: number | string;
  strategy: string;
  clock: string;
  choices: string;
  actions: Action[];
  /** Virtual time when the session ended. */
  "end-ns": number;
  hash: string;
  /** Each command's reply, in action order (clock steps left out). */
  replies: { client: number; execute: string; t: number; response: QmpResponse }[];
}

/** The replay of a finished session (world: what the server ran; actions: its log; replies as they went out). */
export function makeServeReplay(world: World, loaded: LoadedScenario | undefined, scenarioPath: string | undefined, outPath: string,
  clock: string, actions: Action[], replies: ServeReplay["replies"]): ServeReplay {
  const r = world.sim.result();
  return {
    "blocksim-serve-replay": SERVE_REPLAY_VERSION,
    scenario: loaded && scenarioPath ? { path: relative(dirname(resolve(outPath)), resolve(scenarioPath)), sha256: loaded.contentHash } : null,
    profile: world.profile,
    seed: world.seed,
    strategy: world.strategy,
    clock,
    choices: formatChoiceLog(r.choices),
    actions,
    "end-ns": world.sim.now,
    hash: r.hash,
    replies,
  };
}

export function writeServeReplay(path: string, rep: ServeReplay): void {
  writeFileSync(path, JSON.stringify(rep, null, 1) + "\n");
}

export class ServeReplayError extends Error {}

export function readServeReplay(path: string): { replay: ServeReplay; loaded: LoadedScenario | undefined } {
  let data: unknown;
  try {
    data = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new ServeReplayError(`${path}: not a readable JSON file: ${(e as Error).message}`);
  }
  const o = data as Partial<ServeReplay>;
  if (!o || typeof o !== "object" || o["blocksim-serve-replay"] !== SERVE_REPLAY_VERSION) {
    throw new ServeReplayError(`${path}: expected "blocksim-serve-replay": ${SERVE_REPLAY_VERSION} (a replay file written by blocksim serve --save-replay)`);
  }
  for (const k of ["choices", "hash", "clock"] as const) if (typeof o[k] !== "string") throw new ServeReplayError(`${path}: at ${k}: expected a string`);
  if (!Array.isArray(o.actions)) throw new ServeReplayError(`${path}: at actions: expected a list`);
  o.actions.forEach((a, i) => {
    if (!a || typeof a !== "object" || !Number.isSafeInteger(a.t) || !Number.isSafeInteger(a.client) || typeof a.execute !== "string") {
      throw new ServeReplayError(`${path}: at actions[${i}]: expected { t, client, execute, arguments? }`);
    }
  });
  if (!Number.isSafeInteger(o["end-ns"])) throw new ServeReplayError(`${path}: at end-ns: expected an integer (ns)`);
  const loaded = o.scenario ? loadScenarioFile(resolve(dirname(resolve(path)), o.scenario.path)) : undefined;
  if (loaded && o.scenario && loaded.contentHash !== o.scenario.sha256) {
    throw new ServeReplayError(`${path}: the scenario ${o.scenario.path} changed since this replay was recorded`);
  }
  return { replay: o as ServeReplay, loaded };
}

export interface ReplayResult {
  hash: string;
  ok: boolean;
  replies: ServeReplay["replies"];
  /** The first reply that differs from the recorded one, if any. */
  difference?: string;
}

/** Runs a serve session again from its replay file, without sockets or wall time. */
export function replayServe(replay: ServeReplay, loaded: LoadedScenario | undefined): ReplayResult {
  const world = buildWorld(loaded, { choices: parseChoiceLog(replay.choices) });
  runSetup(world);
  const { sim, qemu } = world;
  const replies: ServeReplay["replies"] = [];
  const step = (t: number) => {
    const o = sim.advanceTo(Math.max(t, sim.now));
    if (o) throw new ServeReplayError(`the replay stopped: ${describeOutcome(o)}`);
  };
  for (const a of replay.actions) {
    step(a.t);
    if (a.execute === "x-blocksim-clock-step") {
      step(Number((a.arguments as { to: number }).to));
      continue;
    }
    const cmd = a.arguments === undefined ? { execute: a.execute } : { execute: a.execute, arguments: a.arguments };
    sim.spawn(`qmp client ${a.client}`, (function* (): Process<void> {
      const response = yield* qemu.monitor.execute(cmd);
      replies.push({ client: a.client, execute: a.execute, t: sim.now, response });
    })(), { daemon: true });
    step(a.t);
  }
  step(replay["end-ns"]);
  const hash = sim.result().hash;
  const want = replay.replies.map((r) => JSON.stringify(r));
  const got = replies.map((r) => JSON.stringify(r));
  const i = want.findIndex((w, k) => w !== got[k]);
  const difference = i >= 0 ? `reply #${i}: recorded ${want[i]}, now ${got[i] ?? "(none)"}`
    : got.length > want.length ? `reply #${want.length}: recorded none, now ${got[want.length]}` : undefined;
  return { hash, ok: hash === replay.hash && difference === undefined, replies, ...(difference ? { difference } : {}) };
}
