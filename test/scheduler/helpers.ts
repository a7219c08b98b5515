/** Small helpers shared by the kernel tests. */
import { Scheduler, type RunResult, type SchedulerOptions, type Strategy } from "../../sim/scheduler/index.js";

/** Runs `setup` on a fresh scheduler, then runs it. */
export function runSim(setup: (sim: Scheduler) => void, opts: SchedulerOptions = {}): { sim: Scheduler; r: RunResult } {
  const sim = new Scheduler(opts);
  setup(sim);
  return { sim, r: sim.run() };
}

/** A strategy that answers from a script, then falls back to 0; records what it was asked. */
export class ScriptedStrategy implements Strategy {
  readonly name = "scripted";
  readonly asked: { kind: "next" | "choose"; n: number; index: number; owners?: number[]; label?: string }[] = [];
  constructor(private readonly picks: number[] = []) {}
  private at = 0;
  pickNext(n: number, ownerOf: (i: number) => number, index: number): number {
    const owners = [];
    for (let i = 0; i < n; i++) owners.push(ownerOf(i));
    this.asked.push({ kind: "next", n, index, owners });
    return this.picks[this.at++] ?? 0;
  }
  choose(label: string, n: number, index: number): number {
    this.asked.push({ kind: "choose", n, index, label });
    return this.picks[this.at++] ?? 0;
  }
}
