/**
 * The block-job part of a libvirt↔QEMU conversation, one line per command
 * libvirt sent and per job event QEMU sent back, for comparing the real
 * QEMU 7.2 with the stand-in: commands from the first one after `cont`
 * (the domain running) with their arguments (the image directory as $DIR,
 * no `id`), and JOB_STATUS_CHANGE, BLOCK_JOB_READY / COMPLETED /
 * CANCELLED / ERROR events with the fields that do not depend on timing
 * (progress is left out). Replies are left out: their contents describe
 * real files (query-named-block-nodes) or timing (query-block-jobs).
 * libvirt's polls are left out too (query-block-jobs, sent by `virsh …
 * --wait` and `blockjob --info`, and query-jobs, sent by `domjobinfo` and
 * when a job concludes, as often as wall time allows): how many there are,
 * and which events fall between them, depends on timing.
 */
import type { QmpSession } from "./qmp-log.js";

const POLLS = new Set(["query-block-jobs", "query-jobs"]);
const JOB_EVENTS = new Set(["JOB_STATUS_CHANGE", "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED", "BLOCK_JOB_ERROR", "BLOCK_JOB_PENDING"]);

export function blockJobLines(s: QmpSession, dir: string): string[] {
  const out: string[] = [];
  let running = false;
  for (const m of s.messages) {
    if ("send" in m) {
      if (running && !POLLS.has(String(m.send.execute))) {
        const args = m.send.arguments === undefined ? "" : ` ${JSON.stringify(m.send.arguments).replaceAll(dir, "$DIR")}`;
        out.push(`> ${String(m.send.execute)}${args}`);
      }
      if (m.send.execute === "cont") running = true;
    } else if (running && typeof m.recv.event === "string" && JOB_EVENTS.has(m.recv.event)) {
      const d = { ...(m.recv.data as Record<string, unknown>) };
      delete d.len;
      delete d.offset;
      out.push(`E ${m.recv.event} ${JSON.stringify(Object.fromEntries(Object.entries(d).sort(([a], [b]) => a.localeCompare(b))))}`);
    }
  }
  return out;
}

/** The first line where two conversations differ, with some context, or undefined. */
export function firstDifference(real: string[], sim: string[]): string | undefined {
  const n = Math.max(real.length, sim.length);
  for (let i = 0; i < n; i++) {
    if (real[i] !== sim[i]) {
      const show = (xs: string[]) => xs.slice(Math.max(0, i - 3), i + 4).map((x, k) => `${Math.max(0, i - 3) + k === i ? "=>" : "  "} ${x}`).join("\n");
      return `line ${i}:\n--- real QEMU 7.2\n${show(real)}\n--- blocksim stand-in\n${show(sim)}`;
    }
  }
  return undefined;
}
