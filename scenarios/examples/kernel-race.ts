/**
 * A two-process race on the bare kernel: a writer and a reader wake at the
 * same instant, so their order is a choice point. FIFO always runs the writer
 * first; the seeded random strategy sometimes runs the reader first, and the
 * logged choice replays that exact order.
 *
 *   npx tsx scenarios/examples/kernel-race.ts
 */
import { RandomStrategy, ReplayStrategy, Scheduler, sleep, type Process, type Strategy } from "../../sim/scheduler/index.js";

function race(strategy?: Strategy) {
  const shared = { value: "old" };
  let seen = "";
  const sim = new Scheduler({ strategy, trace: true });
  sim.spawn("writer", (function* (): Process {
    yield sleep(1_000);
    shared.value = "new";
    sim.record("writer", "write", { value: "new" });
  })());
  sim.spawn("reader", (function* (): Process {
    yield sleep(1_000);
    seen = shared.value;
    sim.record("reader", "read", { value: seen });
  })());
  return { result: sim.run(), seen };
}

const fifo = race();
console.log(`fifo:    reader saw "${fifo.seen}"  choices ${JSON.stringify(fifo.result.choices)}  hash ${fifo.result.hash}`);
for (let seed = 1; seed <= 20; seed++) {
  const r = race(new RandomStrategy(seed));
  if (r.seen === "old") {
    console.log(`random:  seed ${seed} runs the reader first: it saw "old"  choices ${JSON.stringify(r.result.choices)}  hash ${r.result.hash}`);
    const again = race(new ReplayStrategy(r.result.choices));
    console.log(`replay:  reader saw "${again.seen}"  hash ${again.result.hash} (${again.result.hash === r.result.hash ? "identical" : "DIFFERENT"})`);
    for (const rec of again.result.trace ?? []) console.log(`  ${String(rec.t).padStart(6)} ns  ${rec.src.padEnd(7)} ${rec.kind} ${rec.data ? JSON.stringify(rec.data) : ""}`);
    break;
  }
}
