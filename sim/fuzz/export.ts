/**
 * A fuzz scenario as a scenario file (sim/scenario's schema), so a shrunk
 * failure becomes something a person reads, runs with `blocksim run`,
 * replays with `blocksim replay` and draws with `blocksim timeline`.
 *
 * The translation covers the safety phase: devices (with their faults),
 * nodes, timed commands (each step expects the reply the fuzz run got),
 * drained sections (each on its own client, begin then end), and guest
 * bursts (a guest with a start time and a request count). The fuzz run's
 * healing liveness phase has no equivalent, so the scenario checks the
 * step-wise invariants only. The scenario runner schedules its own
 * processes, so the fuzz choice log does not carry over: `reproduce` looks
 * for a runner seed (FIFO first, then random seeds) that fails the same way.
 */
import { writeFileAtomic } from "../scenario/output-file.js";
import { INVARIANTS } from "../check/index.js";
import { loadScenarioFile } from "../scenario/loader.js";
import { makeReplay } from "../scenario/replay.js";
import { runScenario, type RunReport } from "../scenario/runner.js";
import { strategyByName } from "../harness/strategy.js";
import type { FuzzScenario, ModelRun } from "./model.js";

/** Invariants that need the fuzz run's healing phase (not exported). */
const END_ONLY = new Set(["jobs-conclude"]);

/** The scenario file (a plain object; JSON is valid YAML) for `model`, with replies as `run` saw them. */
export function toScenarioFile(model: FuzzScenario, run: Pick<ModelRun, "responses">, opts: { name?: string; profile?: string; invariants: readonly string[] }): Record<string, unknown> {
  const steps: Record<string, unknown>[] = [];
  const guests: Record<string, unknown>[] = [];
  // responses: the blockdev-adds first, then the actions' commands in time order
  const replies = run.responses.slice(model.nodes.length);
  const actions = [...model.actions].sort((a, b) => a.atNs - b.atNs);
  let drains = 0, reply = 0;
  for (const a of actions) {
    if ("execute" in a) {
      const r = replies[reply++];
      steps.push({ at: a.atNs, execute: a.execute, ...(a.arguments ? { arguments: a.arguments } : {}), expect: r && "error" in r.response ? "error" : "ok" });
    } else if ("drain" in a) {
      const client = `drain${drains++}`;
      steps.push({ client, at: a.atNs, drain: { node: a.drain } });
      steps.push({ client, delay: a.forNs, undrain: { node: a.drain } });
    } else {
      guests.push({ name: `burst${guests.length}`, node: a.guest, "request-size": 65536, align: 65536, iodepth: 2, interval: a.intervalNs, start: a.atNs, "max-requests": a.requests });
    }
  }
  return {
    name: opts.name ?? model.name ?? "fuzz-failure",
    description: "A shrunk blocksim fuzz failure (its safety phase), exported as a scenario file.",
    profile: opts.profile ?? "current",
    devices: model.devices.map((d) => ({
      name: d.name, size: d.sizeBytes, latency: d.latencyMaxNs === undefined ? d.latencyNs : { min: d.latencyNs, max: d.latencyMaxNs }, "queue-depth": 8,
      ...(d.faults && d.faults.length > 0 ? { faults: d.faults.map((f) => ({ ...(f.op ? { op: f.op } : {}), errno: f.errno, ...(f.once !== undefined ? { once: f.once } : {}), ...(f.afterRequests !== undefined ? { "after-requests": f.afterRequests } : {}) })) } : {}),
    })),
    nodes: model.nodes,
    ...(guests.length > 0 ? { guests } : {}),
    steps,
    limits: { time: model.maxTimeNs ?? 60e9 },
    expect: { invariants: opts.invariants.filter((i) => !END_ONLY.has(i)), outcome: "ok" },
  };
}


export interface Exported {
  scenarioFile: string;
  /** The runner's replay of a run that fails the same way, if one was found. */
  replayFile?: string;
  report?: RunReport;
}

/**
 * Writes the scenario file of a fuzz failure next to `base` (base + ".scenario.json")
 * and looks for a runner schedule that breaks the same invariant: FIFO, then
 * random seeds 1..`seeds`. When one does, writes its replay (base + ".run.replay.json").
 */
export function exportFailure(model: FuzzScenario, run: ModelRun, profile: string, base: string, seeds = 20): Exported {
  const wanted = new Set(run.violations.map((v) => v.invariant));
  const scenarioFile = `${base}.scenario.json`;
  const sc = toScenarioFile(model, run, { name: "fuzz-failure", profile, invariants: INVARIANTS.map((i) => i.name) });
  writeFileAtomic(scenarioFile, JSON.stringify(sc, null, 2) + "\n", "the scenario file");
  const loaded = loadScenarioFile(scenarioFile);
  const same = (r: RunReport) => r.violations.some((v) => wanted.has(v.invariant));
  const attempts: { strategy: "fifo" | "random"; seed: number }[] = [{ strategy: "fifo", seed: 0 }];
  for (let s = 1; s <= seeds; s++) attempts.push({ strategy: "random", seed: s });
  for (const a of attempts) {
    const report = runScenario(loaded, { strategy: strategyByName(a.strategy, a.seed), seed: a.seed });
    if (!same(report)) continue;
    const replayFile = `${base}.run.replay.json`;
    writeFileAtomic(replayFile, JSON.stringify(makeReplay(report, loaded, replayFile, scenarioFile), null, 2) + "\n", "the replay file");
    return { scenarioFile, replayFile, report };
  }
  return { scenarioFile };
}
