/**
 * Random process programs for property tests: a tiny language of sleeps,
 * yields, settles, waits and notifies on a few shared signals, spawns, joins,
 * interrupts and environment choices, a fast-check arbitrary for it, and an
 * interpreter that turns a program into generator processes on a Scheduler.
 *
 * The interpreter records what each process observes (the value a wait woke
 * with, how many a notify woke, what a join returned, a caught interrupt), so
 * the trace and the hash depend on every result the kernel hands back.
 */
import fc from "fast-check";
import {
  choose,
  Interrupted,
  interrupt,
  join,
  notify,
  type ProcHandle,
  type Process,
  Scheduler,
  type SchedulerOptions,
  settle,
  Signal,
  sleep,
  spawn,
  wait,
  yieldNow,
} from "../../sim/scheduler/index.js";

export const SIGNALS = 3;

export type Instr =
  | { op: "sleep"; ns: number }
  | { op: "yield" }
  | { op: "settle" }
  | { op: "wait"; sig: number }
  | { op: "notify"; sig: number }
  | { op: "spawn"; daemon: boolean; body: Instr[] }
  /** Join / interrupt the process at `target` modulo the number spawned so far (itself: skipped). */
  | { op: "join"; target: number }
  | { op: "interrupt"; target: number }
  | { op: "choose"; n: number };

export interface World {
  /** Top-level programs, one process each. */
  programs: Instr[][];
  /** A daemon that notifies every signal every `tickNs` (0: none), so most waits end. */
  tickNs: number;
}

const leaf: fc.Arbitrary<Instr> = fc.oneof(
  { arbitrary: fc.record({ op: fc.constant("sleep" as const), ns: fc.integer({ min: 0, max: 4 }) }), weight: 4 },
  { arbitrary: fc.constant({ op: "yield" as const }), weight: 3 },
  { arbitrary: fc.constant({ op: "settle" as const }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("wait" as const), sig: fc.nat(SIGNALS - 1) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("notify" as const), sig: fc.nat(SIGNALS - 1) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("join" as const), target: fc.nat(7) }), weight: 2 },
  { arbitrary: fc.record({ op: fc.constant("interrupt" as const), target: fc.nat(7) }), weight: 1 },
  { arbitrary: fc.record({ op: fc.constant("choose" as const), n: fc.integer({ min: 1, max: 3 }) }), weight: 2 },
);

const { program } = fc.letrec<{ instr: Instr; program: Instr[] }>((tie) => ({
  instr: fc.oneof(
    { maxDepth: 2, depthIdentifier: "program" },
    { arbitrary: leaf, weight: 7 },
    { arbitrary: fc.record({ op: fc.constant("spawn" as const), daemon: fc.boolean(), body: tie("program") }), weight: 2 },
  ),
  program: fc.array(tie("instr"), { minLength: 1, maxLength: 8, depthIdentifier: "program" }),
}));

export const worldArb: fc.Arbitrary<World> = fc.record({
  programs: fc.array(program, { minLength: 1, maxLength: 5 }),
  tickNs: fc.oneof(fc.constant(0), fc.integer({ min: 1, max: 5 })),
});

/** Spawns the world's processes on `sim`. */
export function load(sim: Scheduler, world: World): void {
  const sigs = Array.from({ length: SIGNALS }, (_, i) => new Signal<string>(`s${i}`));
  /** Every program process, in spawn order (a deterministic order: spawns happen in steps). */
  const procs: ProcHandle[] = [];

  function* run(name: string, prog: Instr[]): Process {
    let children = 0;
    try {
      for (let i = 0; i < prog.length; i++) {
        const ins = prog[i];
        switch (ins.op) {
          case "sleep":
            yield sleep(ins.ns);
            break;
          case "yield":
            yield yieldNow();
            break;
          case "settle":
            yield settle();
            sim.record(name, "settled");
            break;
          case "wait":
            sim.record(name, "woke", { v: (yield wait(sigs[ins.sig])) as string });
            break;
          case "notify":
            sim.record(name, "notified", { n: (yield notify(sigs[ins.sig], `${name}#${i}`)) as number });
            break;
          case "spawn": {
            const child = `${name}.${children++}`;
            procs.push((yield spawn(child, run(child, ins.body), { daemon: ins.daemon })) as ProcHandle);
            break;
          }
          case "join": {
            const target = procs[ins.target % procs.length];
            if (target.name === name) break;
            const v = yield join(target);
            sim.record(name, "joined", { target: target.name, v: v === undefined ? null : (v as string) });
            break;
          }
          case "interrupt": {
            const target = procs[ins.target % procs.length];
            if (target.name === name) break;
            sim.record(name, "interrupt", { target: target.name, alive: (yield interrupt(target, name)) as boolean });
            break;
          }
          case "choose":
            // The pick changes what happens next, so a wrong replay shows.
            yield sleep((yield choose(`${name}/c${i}`, ins.n)) as number);
            break;
        }
      }
    } catch (e) {
      if (!(e instanceof Interrupted)) throw e;
      sim.record(name, "caught", { by: String(e.reason) });
      yield sleep(1); // clean-up that blocks
      return `${name}:interrupted`;
    }
    return name;
  }

  world.programs.forEach((prog, i) => procs.push(sim.spawn(`p${i}`, run(`p${i}`, prog))));
  if (world.tickNs > 0) {
    sim.spawn("ticker", (function* (): Process {
      for (let k = 0; ; k++) {
        yield sleep(world.tickNs);
        for (const s of sigs) yield notify(s, `tick${k}`);
      }
    })(), { daemon: true });
  }
}

/** Runs a world on a fresh scheduler. */
export function runWorld(world: World, opts: SchedulerOptions) {
  const sim = new Scheduler({ maxSteps: 20_000, ...opts });
  load(sim, world);
  return { sim, r: sim.run() };
}

/** The same, run with runUnhashed(). */
export function runWorldUnhashed(world: World, opts: SchedulerOptions) {
  const sim = new Scheduler({ maxSteps: 20_000, ...opts });
  load(sim, world);
  return { sim, r: sim.runUnhashed() };
}
