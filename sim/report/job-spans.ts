/** Job lanes from an event log: the runs that are not the scenario runner's (a fuzz case, a serve session) draw jobs with this. */
import type { JobSpan, LogEntry } from "../scenario/runner.js";

/** Each job's status changes, from its JOB_STATUS_CHANGE events (a reused id starts a new span). */
export function jobSpans(log: readonly LogEntry[]): JobSpan[] {
  const spans: JobSpan[] = [];
  const open = new Map<string, JobSpan>();
  for (const e of log) {
    if (e.kind !== "event" || e.event !== "JOB_STATUS_CHANGE") continue;
    const id = String(e.data.id), status = String(e.data.status);
    let span = open.get(id);
    if (!span || status === "created") {
      span = { job: id, type: "job", statuses: [] };
      spans.push(span);
      open.set(id, span);
    }
    span.statuses.push([e.t, status]);
    if (status === "null") open.delete(id);
  }
  return spans;
}
