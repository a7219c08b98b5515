/**
 * The conformance goldens through a real socket: the project's QMP client
 * (live/qmp-client.ts) drives `blocksim serve` in step mode, turning each
 * golden's waits into x-blocksim-clock-step calls, and gets the same
 * transcript as the in-process replay (live/spec-driver.ts), compared as the
 * goldens are (mid-run progress as a range).
 */
import { readdirSync } from "node:fs";
import { describe, expect, it } from "vitest";
import { loadGolden, SETTLED_JOB_STATUSES as SETTLED, waitsOf, type Golden } from "../../live/golden.js";
import { QmpClient } from "../../live/qmp-client.js";
import { CHAIN, CLIENT_ROUND_TRIP_NS, firstDifference, imageDevices, normalise, optionalEntries, replay, showDifference } from "../../live/spec-driver.js";
import type { TranscriptEntry } from "../../sim/qmp/types.js";
import { GOLDENS_DIR } from "../conformance/paths.js";
import { startServer } from "./helpers.js";

const STEP = "x-blocksim-clock-step";

/** The golden's images as a scenario's devices: the spec driver's own (imageDevices), in the scenario file's spelling. */
function scenarioOf(g: Golden): string {
  const devices = imageDevices(g.images ?? CHAIN).map((d) => ({ name: d.name, size: d.sizeBytes, "read-latency": d.readLatencyNs, "write-latency": d.writeLatencyNs,
    bandwidth: d.bandwidthBytesPerSec, transfer: d.transferPerRequest ? "per-request" : "shared", "flush-bandwidth": d.flushBytesPerSec,
    "cold-metadata-caches": d.coldMetadataCaches, sparse: d.sparse,
    ...(d.data ? { data: d.data } : {}) }));
  return JSON.stringify({ name: g.scenario, devices });
}

/** The command the recording hung on (its index among the commands), if it did. */
function hangIndex(g: Golden): number | undefined {
  let cmds = -1;
  for (const e of g.sequence) {
    if ("cmd" in e) cmds++;
    if ("hang" in e) return cmds;
  }
  return undefined;
}

/**
 * A command QEMU hung on: sent, then a second monitor steps the clock past the recording's reply time-out
 * (in step mode nothing else moves it); no reply may have come by then. The transcript ends in the hang.
 */
async function hangs(s: { path: string }, c: QmpClient, g: Golden, cmd: { cmd: string; args?: Record<string, unknown> }): Promise<TranscriptEntry[]> {
  let answered = false;
  // A simulation that deadlocks while the command waits stops, and serve answers it with why: the socket's form of the hang.
  const reply = c.execute(cmd.cmd, cmd.args, { timeoutMs: 60_000 }).then((r) => (answered = !stoppedByDeadlock(r)), () => undefined);
  const stepper = await QmpClient.connect(s.path, { timeoutMs: 20_000 });
  try {
    await stepper.execute(STEP, { ns: (g.replyTimeoutMs ?? 30_000) * 1e6 }, { hide: true });
    await stepper.execute(STEP, undefined, { hide: true });
  } finally {
    stepper.close();
  }
  await Promise.race([reply, new Promise((r) => setTimeout(r, 0))]);
  if (answered) throw new Error(`${g.scenario}: ${cmd.cmd} was answered through the socket where QEMU hung`);
  return [...c.transcript.filter((t) => !stoppedByDeadlock(t)).map((t, k, all) => normalise(t, all[k - 1])), { hang: { cmd: cmd.cmd } }];
}

function stoppedByDeadlock(r: unknown): boolean {
  const e = (r as { error?: { desc?: unknown } } | undefined)?.error;
  return typeof e?.desc === "string" && e.desc.startsWith("blocksim: the simulation stopped: a deadlock");
}

/** The command the in-process replay hung on (its index among the commands), if it did: FIFO takes a hang some recorded runs showed. */
function replayHangIndex(observed: readonly TranscriptEntry[]): number | undefined {
  if (!observed.some((t) => "hang" in t)) return undefined;
  return observed.filter((t) => "cmd" in t).length - 1;
}

async function overSocket(g: Golden, replayHung: number | undefined): Promise<TranscriptEntry[]> {
  const s = await startServer({ scenario: scenarioOf(g), clock: { kind: "step" } });
  const c = await QmpClient.connect(s.path, { timeoutMs: 20_000 });
  const hung = hangIndex(g) ?? replayHung;
  try {
    const waits = waitsOf(g);
    for (let i = 0; i < g.commands.length; i++) {
      const w = waits[i] ?? {};
      if (w.afterMs) await c.execute(STEP, { ns: w.afterMs * 1e6 }, { hide: true });
      if (w.untilEvent) {
        const hit = () => c.events.filter((e) => e.event === w.untilEvent && (w.status === undefined || e.data.status === w.status)).length >= (w.count ?? 1);
        // Step to the next queued event until it comes; a step that leaves the clock where it was found nothing queued:
        // the simulation waits for a client, as the in-process replay then stops.
        let last = -1;
        while (!hit()) {
          const r = await c.execute(STEP, undefined, { hide: true });
          const now = (r as { return: { "clock-ns": number } }).return["clock-ns"];
          if (now === last) return c.transcript.map((t, k, all) => normalise(t, all[k - 1]));
          last = now;
        }
      }
      // the in-process replay's client round trip before each command but the first
      if (i > 0) await c.execute(STEP, { ns: CLIENT_ROUND_TRIP_NS }, { hide: true });
      if (i === hung) return await hangs(s, c, g, g.commands[i]);
      try {
        await c.execute(g.commands[i].cmd, g.commands[i].args);
      } catch (e) {
        if (!c.isClosed()) throw e;
      }
      // The simulated QEMU quit or crashed: serve closed the connection, as QEMU does.
      if (c.isClosed() || g.commands[i].cmd === "quit") {
        await c.waitClosed(20_000);
        return c.transcript.map((t, k, all) => normalise(t, all[k - 1]));
      }
    }
    // Let the jobs run until none moves on by itself, 1 ms at a time, as the in-process replay does. Their states
    // come from the events: a query-jobs is a command, and a command wakes QEMU's loop, which changes the order of
    // timers due later (Scheduler.wakePhase), where the in-process client only looks.
    for (let k = 0; ; k++) {
      const last = new Map<string, string>();
      for (const e of c.events) if (e.event === "JOB_STATUS_CHANGE") last.set(String(e.data.id), String(e.data.status));
      if ([...last.values()].every((status) => SETTLED.has(status))) break;
      if (k > 100_000) throw new Error(`${g.scenario}: jobs never settled`);
      await c.execute(STEP, { ns: 1_000_000 }, { hide: true });
    }
    return c.transcript.map((t, i, all) => normalise(t, all[i - 1]));
  } finally {
    c.close();
    await s.stop();
  }
}

const names = readdirSync(GOLDENS_DIR).filter((f) => f.endsWith(".json")).map((f) => f.replace(/\.json$/, "")).sort();

describe("the conformance goldens through blocksim serve (live/qmp-client.ts over a unix socket)", () => {
  for (const name of names) {
    it(`${name}: the same transcript as in-process`, async () => {
      const g = loadGolden(new URL(`${name}.json`, GOLDENS_DIR));
      // A socket carries no exit status: the in-process transcript's last entry after a quit or crash is left out.
      const replayed = replay(g, waitsOf(g));
      const inProcess = replayed.observed.filter((t) => !("exit" in t));
      const viaSocket = await overSocket(g, replayHangIndex(replayed.observed));
      // Compared as the goldens are: mid-run progress as a range. The client's commands land at the same
      // virtual instants, but after whatever else is due at that instant; where that gives another reply
      // than in-process, the socket's transcript must still be one the real QEMU recorded (its
      // nondeterministic entries), never an order QEMU did not show.
      const d = firstDifference(inProcess, viaSocket);
      if (d) {
        const expected = replayed.expected.filter((t) => !("exit" in t));
        const q = firstDifference(expected, viaSocket, optionalEntries(g));
        if (q) expect.fail(`${name} through the socket departs from in-process at entry ${d.at}:\n${showDifference(inProcess, viaSocket, d)}\nand from the QEMU recording at entry ${q.at}:\n${showDifference(expected, viaSocket, q)}`);
      }
    });
  }
});
