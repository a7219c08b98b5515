/**
 * A fuzz case run as a RunReport — the shape `replay`, `timeline` and the
 * replay file's writer read for every subject: the commands as a client
 * lane, the events with their times, job spans, drained sections, devices.
 * It only watches the run: the trace hash is the one runModel gives.
 */
import { describeOutcome, type Violation } from "../harness/run.js";
import type { Strategy } from "../scheduler/index.js";
import { deviceCounts, jobLines, type LogEntry, type RunReport, type StepReport } from "../scenario/runner.js";
import { jobSpans } from "../report/job-spans.js";
import { runModel, type FuzzScenario, type ModelRunOptions } from "./model.js";

export interface FuzzReportOptions {
  profile: string;
  seed: number | string;
  strategy: Strategy;
  trace?: boolean;
  invariants?: ModelRunOptions["invariants"];
}

/** Runs a fuzz case once and reports it as the scenario runner would. */
export function fuzzReport(model: FuzzScenario, o: FuzzReportOptions): RunReport {
  const log: LogEntry[] = [];
  const steps: StepReport[] = [];
  const drains: RunReport["drains"] = [];
  let devices: () => RunReport["devices"] = () => [];
  let jobsAtEnd: () => RunReport["jobsAtEnd"] = () => [];
  let setupEnd = () => 0;
  const run = runModel(model, {
    profile: o.profile, seed: Number(o.seed), strategy: o.strategy, trace: !!o.trace, ...(o.invariants ? { invariants: o.invariants } : {}),
    observe: (world) => {
      world.qemu.monitor.onEvent((e) => log.push({ t: world.sim.now, kind: "event", event: e.event, data: e.data }));
      world.qemu.graph.recordDrainedSections(drains);
      setupEnd = () => world.t0;
      devices = () => deviceCounts(world.qemu);
      jobsAtEnd = () => jobLines(world.qemu.jm.jobs);
    },
    onCommand: (c) => {
      const index = steps.length;
      steps.push({ index, label: c.execute, client: "client", state: "done", startNs: c.startNs, endNs: c.endNs, response: c.response });
      log.push({ t: c.startNs, kind: "cmd", client: "client", step: index, execute: c.execute, ...(c.arguments ? { arguments: c.arguments } : {}) });
      log.push({ t: c.endNs, kind: "reply", client: "client", step: index, response: c.response });
    },
  });
  log.sort((a, b) => a.t - b.t); // stable: commands and events of one instant keep their order
  const setupEndNs = setupEnd();
  const setupLogIndex = log.filter((e) => e.t < setupEndNs).length;
  // A crash fails the case as a broken invariant does (a command sequence real QEMU 7.2 dies on).
  const crashed = run.outcome.kind === "qemu-crash";
  const ok = run.violations.length === 0 && !crashed;
  return {
    name: model.name ?? "fuzz case", file: "(fuzz case)", profile: o.profile, seed: o.seed, strategy: o.strategy.name, ok,
    failures: [
      ...(run.outcome.kind === "qemu-crash" ? [{ kind: "outcome" as const, message: describeOutcome(run.outcome, setupEndNs), timeNs: run.outcome.timeNs }] : []),
      ...byInvariant(run.violations).map(([v, n]) => ({
        kind: "invariant" as const, timeNs: v.timeNs,
        message: `invariant ${v.invariant} violated${v.job ? ` by job '${v.job}'` : ""}: ${v.detail}${n > 1 ? ` (and ${n - 1} more time${n === 2 ? "" : "s"})` : ""}`,
      })),
    ],
    outcome: run.outcome, endTimeNs: run.endTimeNs, kernelSteps: run.steps, hash: run.hash, choices: run.choices,
    setupEndNs, setupLogIndex, log, steps, jobs: jobSpans(log), jobsAtEnd: jobsAtEnd(), violations: run.violations, drains, devices: devices(),
    ...(run.trace ? { trace: run.trace } : {}),
  };
}

/** The first violation of each invariant, with how many times it broke (as the scenario runner reports them). */
function byInvariant(vs: readonly Violation[]): [Violation, number][] {
  const first = new Map<string, [Violation, number]>();
  for (const v of vs) {
    const seen = first.get(v.invariant);
    if (seen) seen[1]++;
    else first.set(v.invariant, [v, 1]);
  }
  return [...first.values()];
}
