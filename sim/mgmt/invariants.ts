/**
 * Invariants of the management layer that a fuzzer or a scenario can check.
 *
 * `query-wait-bound`: no status query (virDomainGetBlockJobInfo) waits
 * longer than `maxWaitNs` to get its job — the user-visible symptom of seed
 * 004 (libvirt cefe0ba3d): a poller starved behind a long MODIFY job or an
 * async job. A query that times out (30 s) breaks it too. The wait counted
 * is the job acquisition (BeginJob), not the QMP round trip after it.
 *
 * Two ways to use it: `watchQueryWait(dom, max)` on a Domain (violations
 * arrive as they happen, with who blocked the query), or
 * `queryWaitInvariant(max)`, shaped like sim/check's Invariant, which reads
 * the `job-acquired`/`job-failed` trace records a Domain writes.
 */
import type { Violation } from "../jobs/violation.js";
import type { TraceRecord } from "../scheduler/index.js";
import type { Domain, JobWait } from "./domain.js";
import { formatNs } from "./histogram.js";

/** The APIs that are status queries. */
export const QUERY_APIS: readonly string[] = ["virDomainGetBlockJobInfo"];

export const QUERY_WAIT_RULE = "query-wait-bound";

/** A query-wait-bound violation: the one Violation type, with who waited, in which API, and how long. */
export interface MgmtViolation extends Violation {
  invariant: typeof QUERY_WAIT_RULE;
  client: string;
  api: string;
  waitedNs: number;
}

function detailOf(api: string, client: string, waitedNs: number, maxWaitNs: number, ok: boolean, blockedBy: readonly string[]): string {
  return `${api} by ${client} waited ${formatNs(waitedNs)} for its job (bound ${formatNs(maxWaitNs)})${ok ? "" : ", then failed"}${blockedBy.length ? `, behind ${blockedBy.join(", ")}` : ""}`;
}

/** Checks every job wait of the domain's status queries against `maxWaitNs`; returns the live list of violations. */
export function watchQueryWait(dom: Domain, maxWaitNs: number): MgmtViolation[] {
  const out: MgmtViolation[] = [];
  dom.onJobWait((w: JobWait) => {
    if (!QUERY_APIS.includes(w.call.api) || w.kind === "async-nested") return;
    if (w.waitedNs <= maxWaitNs && w.ok) return;
    out.push({
      invariant: QUERY_WAIT_RULE, timeNs: w.endNs, client: w.call.client, api: w.call.api, waitedNs: w.waitedNs,
      detail: detailOf(w.call.api, w.call.client, w.waitedNs, maxWaitNs, w.ok, w.blockedBy),
    });
  });
  return out;
}

/** Structurally a sim/check Invariant (name, description, when, source, attach), fed by trace records. */
export function queryWaitInvariant(maxWaitNs: number) {
  return {
    name: QUERY_WAIT_RULE,
    description: `no status query (virDomainGetBlockJobInfo) waits longer than ${formatNs(maxWaitNs)} for its job`,
    when: "step" as const,
    source: "libvirt cefe0ba3d (seed 004)",
    kinds: ["job-acquired", "job-failed"],
    attach(ctx: { report(v: { detail: string; timeNs?: number; state?: Record<string, unknown> }): void }) {
      return {
        onRecord(r: TraceRecord): void {
          if (r.kind !== "job-acquired" && r.kind !== "job-failed") return;
          const d = r.data as { api?: string; waitedNs?: number; blockedBy?: string[]; job?: string } | undefined;
          if (!d || !QUERY_APIS.includes(d.api ?? "") || d.job === "async-nested") return;
          const ok = r.kind === "job-acquired";
          if (ok && (d.waitedNs ?? 0) <= maxWaitNs) return;
          const client = r.src.replace(/^mgmt:/, "");
          ctx.report({ timeNs: r.t, detail: detailOf(d.api!, client, d.waitedNs ?? 0, maxWaitNs, ok, d.blockedBy ?? []), state: { client, waitedNs: d.waitedNs ?? 0 } });
        },
      };
    },
  };
}
