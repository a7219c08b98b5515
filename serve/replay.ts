/**
 * A `blocksim serve` session as a replay file — the one format (README
 * "Replay files"), subject `{ session: … }`: the scenario (by path and
 * sha256, or inline), the clock, every command that reached the simulation
 * with its virtual time and monitor, the replies sent, and the profile,
 * seed, choice log and trace hash. Spawning the same client processes at
 * the same virtual times rebuilds the run exactly — the same replies,
 * events and trace hash — whatever the wall clock did during the live
 * session. `blocksim replay FILE` runs it (so does `serve --replay FILE`).
 */
import { deviceCounts, jobLines, type LogEntry, type RunReport, type StepReport } from "../sim/scenario/runner.js";
import { jobSpans } from "../sim/report/job-spans.js";
import { makeReplayRecord, scenarioSubject, writeReplayFile, type ReplayFile, type SessionRecord } from "../sim/scenario/replay.js";
import type { ChoiceLog, Process } from "../sim/scheduler/index.js";
import type { QmpResponse } from "../sim/qmp/types.js";
import type { LoadedScenario } from "../sim/scenario/loader.js";
import type { Action } from "./server.js";
import { describeOutcome } from "../sim/harness/run.js";
import { buildWorld, runSetup, type World } from "./world.js";

type Reply = SessionRecord["replies"][number];

/** The replay file of a finished session (world: what the server ran; actions: its log; replies as they went out). */
export function makeServeReplay(world: World, loaded: LoadedScenario | undefined, scenarioPath: string | undefined, outPath: string,
  clock: string, actions: Action[], replies: { client: number; execute: string; t: number; response: QmpResponse }[]): ReplayFile {
  const r = world.sim.result();
  const where = loaded ? scenarioSubject(loaded, outPath, scenarioPath) : {};
  const session: SessionRecord = {
    ...where, clock, actions, "end-ns": world.sim.now,
    replies: replies.map((x) => ({ ...x, response: x.response as unknown as Record<string, unknown> })),
  };
  // A session has no expectations and checks no invariants: it passes when it replays.
  return makeReplayRecord({ session }, {
    profile: world.profile, seed: world.seed, strategy: world.strategy, choices: r.choices, hash: r.hash, ok: true, violations: [],
    foundBy: `blocksim serve --clock ${clock}`,
  });
}

export function writeServeReplay(path: string, rep: ReplayFile): void {
  writeReplayFile(path, rep, "--save-replay");
}

export class ServeReplayError extends Error {}

export interface ReplayResult {
  hash: string;
  ok: boolean;
  replies: Reply[];
  /** The first reply that differs from the recorded one, if any. */
  difference?: string;
  /** The run, as the report `replay` and `timeline` print and draw. */
  report: RunReport;
}

/** Runs a serve session again from its record, without sockets or wall time. */
export function replayServe(session: SessionRecord, loaded: LoadedScenario | undefined, choices: ChoiceLog, recordedHash: string, o: { trace?: boolean } = {}): ReplayResult {
  const world = buildWorld(loaded, { choices, trace: !!o.trace });
  const watch = watchSession(world);
  try {
    runSetup(world);
  } catch (e) {
    // The recording's choice log does not fit this setup (an edited or truncated file): a departure, not a crash.
    throw new ServeReplayError(`the replay stopped: ${(e as Error).message}`);
  }
  const { sim, qemu } = world;
  const replies: Reply[] = [];
  const step = (t: number) => {
    const out = sim.advanceTo(Math.max(t, sim.now));
    if (out) throw new ServeReplayError(`the replay stopped: ${describeOutcome(out)}`);
  };
  for (const a of session.actions) {
    step(a.t);
    if (a.execute === "x-blocksim-clock-step") {
      step(Number((a.arguments as { to: number }).to));
      continue;
    }
    const cmd = a.arguments === undefined ? { execute: a.execute } : { execute: a.execute, arguments: a.arguments };
    const index = watch.command(a.client, a.execute, a.arguments, sim.now);
    sim.spawn(`qmp client ${a.client}`, (function* (): Process<void> {
      const response = yield* qemu.monitor.execute(cmd);
      replies.push({ client: a.client, execute: a.execute, t: sim.now, response: response as unknown as Record<string, unknown> });
      watch.reply(index, response, sim.now);
    })(), { daemon: true });
    step(a.t);
  }
  step(session["end-ns"]);
  const result = sim.result();
  const want = session.replies.map((r) => JSON.stringify(r));
  const got = replies.map((r) => JSON.stringify(r));
  const i = want.findIndex((w, k) => w !== got[k]);
  const difference = i >= 0 ? `reply #${i}: recorded ${want[i]}, now ${got[i] ?? "(none)"}`
    : got.length > want.length ? `reply #${want.length}: recorded none, now ${got[want.length]}` : undefined;
  const report = watch.report(result, session);
  return { hash: result.hash, ok: result.hash === recordedHash && difference === undefined, replies, ...(difference ? { difference } : {}), report };
}

/** Watches a session's world: events, commands and replies per monitor, drained sections; makes its RunReport. */
function watchSession(world: World) {
  const log: LogEntry[] = [];
  const steps: StepReport[] = [];
  const drains: RunReport["drains"] = [];
  world.qemu.monitor.onEvent((e) => log.push({ t: world.sim.now, kind: "event", event: e.event, data: e.data }));
  world.qemu.graph.recordDrainedSections(drains);
  return {
    command(client: number, execute: string, args: Record<string, unknown> | undefined, t: number): number {
      const index = steps.length;
      steps.push({ index, label: execute, client: `monitor ${client}`, state: "running", startNs: t });
      log.push({ t, kind: "cmd", client: `monitor ${client}`, step: index, execute, ...(args ? { arguments: args } : {}) });
      return index;
    },
    reply(index: number, response: QmpResponse, t: number): void {
      Object.assign(steps[index], { state: "done", endNs: t, response });
      log.push({ t, kind: "reply", client: steps[index].client, step: index, response });
    },
    report(result: ReturnType<World["sim"]["result"]>, session: SessionRecord): RunReport {
      const setupEndNs = session.actions[0]?.t ?? 0;
      return {
        name: "blocksim serve session", file: "(session)", profile: world.profile, seed: world.seed, strategy: world.strategy, ok: true, failures: [],
        outcome: { kind: "ok" }, endTimeNs: world.sim.now, setupEndNs, setupLogIndex: log.filter((e) => e.t < setupEndNs).length,
        kernelSteps: result.steps, hash: result.hash, choices: result.choices, log, steps, jobs: jobSpans(log), jobsAtEnd: jobLines(world.qemu.jm.jobs), violations: [], drains,
        devices: deviceCounts(world.qemu),
        ...(result.trace ? { trace: result.trace } : {}),
      };
    },
  };
}

