/**
 * A fuzz campaign over IOThread topologies: the generated scenarios of
 * sim/fuzz, with object-add io0/io1 and every source node moved into an
 * IOThread (or left in the main loop) at time 0, under the current profile
 * and every invariant. (A job started on such a node runs in the main loop,
 * as in QEMU 7.2: its filter pulls the source back; guests stay in the
 * IOThread. --moves puts jobs into IOThreads.)
 *
 *   nice -n 10 npx tsx scenarios/examples/iothread-fuzz.ts [RUNS] [SEED] [MINUTES] [--no-chains] [--moves]
 *
 * With --moves, up to three more x-blockdev-set-iothread (to io0, io1 or
 * the main loop) land at random moments among the other actions, so nodes
 * move under running, paused and finishing jobs (a job woken where it last
 * ran moves itself to its new context: aio_co_reschedule_self).
 *
 * It prints the runs done and, on a failure, the shrunk scenario and its
 * replay file (as `blocksim fuzz` does).
 */
import fc from "fast-check";
import { fuzzCheck, scenario, type FuzzScenario } from "../../sim/fuzz/index.js";

const runs = Number(process.argv[2] ?? 2000);
const seed = Number(process.argv[3] ?? 7);
const minutes = Number(process.argv[4] ?? 9);
/** --no-chains: no qcow2 chain (no stream or commit), to fuzz past a finding there. */
const chains = !process.argv.includes("--no-chains");
/** --moves: nodes also move between contexts while jobs run. */
const moves = process.argv.includes("--moves");

/** Adds IOThreads to a generated scenario: each source or target node in io0, io1 or the main loop. */
const withIothreads = scenario({ groupedTransactions: true, chains }).chain((s) => {
  const raw = s.nodes.filter((n) => n.driver === "raw").map((n) => String(n["node-name"]));
  const lastNs = Math.max(1_000_000, ...s.actions.map((a) => a.atNs));
  const later = moves && raw.length > 0
    ? fc.array(fc.record({ atNs: fc.integer({ min: 0, max: lastNs }), node: fc.constantFrom(...raw), to: fc.constantFrom(null, "io0", "io1") }), { maxLength: 3 })
    : fc.constant([] as { atNs: number; node: string; to: string | null }[]);
  return fc.tuple(fc.array(fc.constantFrom(null, "io0", "io1"), { minLength: raw.length, maxLength: raw.length }), later).map(([homes, extra]): FuzzScenario => ({
    ...s,
    actions: [
      { atNs: 0, execute: "object-add", arguments: { "qom-type": "iothread", id: "io0" } },
      { atNs: 0, execute: "object-add", arguments: { "qom-type": "iothread", id: "io1" } },
      ...raw.flatMap((node, i) => (homes[i] === null ? [] : [{ atNs: 0, execute: "x-blockdev-set-iothread", arguments: { "node-name": node, iothread: homes[i], force: true } }])),
      ...[...s.actions, ...extra.map((m) => ({ atNs: m.atNs, execute: "x-blockdev-set-iothread", arguments: { "node-name": m.node, iothread: m.to, force: true } }))]
        .sort((a, b) => a.atNs - b.atNs),
    ],
  }));
});

let done = 0, withJobInIothread = 0;
const t0 = Date.now();
const failure = fuzzCheck({
  seed, numRuns: runs, profile: "current", scenarios: withIothreads,
  replayFile: `blocksim-iothread-fuzz-${seed}.replay.json`,
  stop: () => Date.now() - t0 > minutes * 60_000,
  onRun: (run) => {
    done++;
    const moved = run.responses.some((r) => r.execute === "x-blockdev-set-iothread" && "return" in r.response);
    if (moved && run.events.some((e) => e.endsWith(":running"))) withJobInIothread++;
  },
});
if (failure) console.log(failure.message);
console.log(`iothread fuzz: ${done} runs (${withJobInIothread} with a node moved to an IOThread and a job running) in ${((Date.now() - t0) / 1000).toFixed(0)} s (seed ${seed}), ${failure ? "FAILED" : "no violation"}`);
