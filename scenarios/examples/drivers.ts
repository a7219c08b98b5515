/**
 * One example per block-job driver on the simulated QEMU, each with a live
 * guest writing to the disk, printing the QMP transcript with virtual times
 * and checking the data afterwards.
 *
 *   npx tsx scenarios/examples/drivers.ts backup|mirror|stream|commit
 */
import { formatViolation } from "../../sim/check/index.js";
import { runWorld } from "../../sim/harness/run.js";
import { createWorld, type GuestSpec } from "../../sim/harness/world.js";
import type { BackupDriver } from "../../sim/jobs/drivers/backup.js";
import type { MirrorDriver } from "../../sim/jobs/drivers/mirror.js";
import type { Qemu } from "../../sim/qmp/qemu.js";
import { sleep, type Process } from "../../sim/scheduler/index.js";

const MiB = 1 << 20;
const DRIVERS = ["backup", "mirror", "stream", "commit"] as const;
type Driver = (typeof DRIVERS)[number];

const which = process.argv[2] as Driver;
if (!DRIVERS.includes(which)) {
  console.error(`usage: npx tsx scenarios/examples/drivers.ts ${DRIVERS.join("|")}`);
  process.exit(2);
}

// The world (sim/harness): devices, the nodes added at setup, and a guest on the disk the job copies.
const chain = which === "stream" || which === "commit";
const guest = (node: string): GuestSpec => ({ name: "guest", drive: "drive0", node, pattern: "random", requestBytes: 65536, alignBytes: 65536, iodepth: 2, intervalNs: { minNs: 0, maxNs: 2_000_000 } });
const world = createWorld({
  seed: 1, limits: { timeNs: 600e9 },
  devices: ["disk.img", "target.img", "base.qcow2", "mid.qcow2", "top.qcow2"].map((name) => ({
    name, sizeBytes: 64 * MiB, readLatencyNs: 200_000, writeLatencyNs: { minNs: 200_000, maxNs: 800_000 }, bandwidthBytesPerSec: 500e6, queueDepth: 16,
  })),
  nodes: chain
    ? [{ driver: "qcow2", "node-name": "base", file: "base.qcow2" }, { driver: "qcow2", "node-name": "mid", file: "mid.qcow2", backing: "base" }, { driver: "qcow2", "node-name": "top", file: "top.qcow2", backing: "mid" }]
    : [{ driver: "raw", "node-name": "disk", file: "disk.img" }, { driver: "raw", "node-name": "target", file: "target.img" }],
  guests: [guest(chain ? "top" : "disk")],
});
const q = world.qemu;
const qmp = (execute: string, args?: Record<string, unknown>) => q.monitor.execute(args ? { execute, arguments: args } : { execute });
let check = "";

function* untilGone(q: Qemu): Process<void> {
  while (q.jm.jobs.length > 0) yield sleep(1_000_000);
}

// The safety phase: the QMP client's commands; the run loop stops the guest at its end.
const result = runWorld(world, { name: "client", *safety(): Process {
  const g = world.guests[0];
  if (!chain) {
    yield sleep(20_000_000);
    if (which === "backup") {
      yield* qmp("blockdev-backup", { "job-id": "backup0", device: "drive0", target: "target", sync: "full", speed: 64 * MiB });
      const driver = q.jm.get("backup0")!.driver as BackupDriver;
      yield* untilGone(q);
      const same = q.graph.node("target").content(0, 64 * MiB).versions.every((v, i) => v.writeId === driver.pointInTime[i].writeId);
      check = `target equals the disk as it was when the backup started: ${same} (the guest wrote ${g.stats.completed} times meanwhile)`;
    } else {
      yield* qmp("blockdev-mirror", { "job-id": "mirror0", device: "drive0", target: "target", sync: "full" });
      while (q.jm.get("mirror0")?.status !== "ready") yield sleep(1_000_000);
      yield sleep(100_000_000);
      const driver = q.jm.get("mirror0")!.driver as MirrorDriver;
      yield* qmp("job-complete", { id: "mirror0" });
      yield* untilGone(q);
      const pivot = driver.contentAtPivot!;
      const untouched = q.graph.node("disk").content(0, 64 * MiB).versions.every((v, i) => v.writeId === pivot[i].writeId);
      check = `pivoted: the guest now writes to '${q.graph.backends()[0].root?.name}'; the old disk still holds exactly its content at the pivot: ${untouched}`;
    }
  } else {
    yield sleep(100_000_000); // the guest fills some of top; write into mid and base directly too
    yield* q.graph.node("mid").write(8 * MiB, 4 * MiB, "setup");
    yield* q.graph.node("base").write(0, 8 * MiB, "setup");
    if (which === "stream") {
      yield* qmp("block-stream", { "job-id": "stream0", device: "top", "base-node": "base" });
      yield* untilGone(q);
      check = `top's backing is now ${q.graph.node("top").backing?.name} (mid dropped); mid's data is allocated in top: ${q.graph.node("top").isAllocated(8 * MiB, 4 * MiB)}`;
    } else {
      yield* qmp("block-commit", { "job-id": "commit0", device: "top", "top-node": "mid", "base-node": "base" });
      yield* untilGone(q);
      check = `top's backing is now ${q.graph.node("top").backing?.name} (mid committed into base); base holds mid's data: ${q.graph.node("base").isAllocated(8 * MiB, 4 * MiB)}`;
    }
  }
} });

for (const [i, t] of q.monitor.transcript.entries()) {
  const ev = q.monitor.events.find((e) => "event" in t && e.data === t.data);
  const at = ev ? `${(ev.timestamp.seconds * 1e3 + ev.timestamp.microseconds / 1e3).toFixed(3).padStart(9)} ms` : " ".repeat(12);
  const text = "cmd" in t ? `-> ${t.cmd} ${JSON.stringify(t.args ?? {})}` : "event" in t ? `<- ${t.event} ${JSON.stringify(t.data)}` : "error" in t ? `<- error ${JSON.stringify(t.error)}` : "exit" in t ? `<- exit ${JSON.stringify(t.exit)}` : "hang" in t ? `(no reply to ${t.hang.cmd}: QEMU hangs)` : `<- ${JSON.stringify(t.return)}`;
  if (!("cmd" in t && t.cmd === "blockdev-add") && !(i > 0 && "return" in t && "cmd" in q.monitor.transcript[i - 1] && (q.monitor.transcript[i - 1] as { cmd: string }).cmd === "blockdev-add")) console.log(`${at}  ${text}`);
}
console.log(`\n${which}: run ${result.outcome.kind} at ${(result.endTimeNs / 1e6).toFixed(1)} ms virtual time, trace hash ${result.hash}`);
console.log(check);
// Every invariant of sim/check watched the run (createWorld's default).
for (const v of result.violations) console.log(`violation: ${formatViolation(v)}`);
process.exit(result.outcome.kind === "ok" && result.violations.length === 0 ? 0 : 1);
