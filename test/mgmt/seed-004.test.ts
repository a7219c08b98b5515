/**
 * Seed 004 through the management layer, as the race files
 * scenarios/races/seed-004-sync-abort.yaml and seed-004-async-job.yaml run
 * it: how long the poller waits under each libvirt profile, what the
 * timeline shows, and the query-wait invariant read from the trace.
 */
import { describe, expect, it } from "vitest";
import { explore } from "../../sim/harness/explore.js";
import { queryWaitInvariant, renderTimeline, type CallRecord, type Domain } from "../../sim/mgmt/index.js";
import { breaksSubject, loadRaces, type Race } from "../../sim/races/catalog.js";
import { runScenario, type RunReport } from "../../sim/scenario/runner.js";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { ms, s } from "./helpers.js";

const race = (name: string): Race => loadRaces().find((r) => r.name === name)!;
const SYNC_ABORT = race("seed-004-sync-abort");
const ASYNC_JOB = race("seed-004-async-job");
const QUERY_WAIT_BOUND_NS = 100 * ms;

interface Seed004Run {
  report: RunReport;
  dom: Domain;
  calls: CallRecord[];
  /** The poller's GetBlockJobInfo calls. */
  polls: CallRecord[];
  abort?: CallRecord;
  worstQueryWaitNs: number;
  worstQueryLatencyNs: number;
}

const run = (r: Race, profile: string, seed = 1, keepTrace = false): Seed004Run => {
  let dom: Domain | undefined;
  const report = runScenario(r.loaded, { profile, seed, strategy: new RandomStrategy(seed), keepTrace, inspect: (w) => (dom = w.dom) });
  expect(report.outcome.kind).toBe("ok");
  expect(dom!.modelErrors).toEqual([]);
  const polls = dom!.calls.filter((c) => c.call.api === "virDomainGetBlockJobInfo");
  const abort = dom!.calls.find((c) => c.call.api === "virDomainBlockJobAbort");
  return {
    report, dom: dom!, calls: dom!.calls, polls, ...(abort ? { abort } : {}),
    worstQueryWaitNs: Math.max(0, ...polls.map((c) => c.jobWaitNs)), worstQueryLatencyNs: Math.max(0, ...polls.map((c) => c.latencyNs)),
  };
};
const abortNs = (r: Seed004Run) => r.abort!.latencyNs;
const queryViolations = (r: Seed004Run) => r.report.violations.filter((v) => v.invariant === "query-wait-bound");

/** Poll answers that were asked while the abort ran and came back before it returned. */
const answeredDuringAbort = (r: Seed004Run) => r.polls.filter((p) => p.call.startNs > r.abort!.call.startNs && p.endNs < r.abort!.endNs);

describe("seed 004, synchronous abort: a poller every 50 ms while a copy job takes seconds to cancel", () => {
  it("under info-modify-job the poller's worst wait is as long as the abort, and it sees nothing meanwhile", () => {
    for (const seed of [1, 2, 3]) {
      const r = run(SYNC_ABORT, "info-modify-job", seed);
      // The cancel waits on the 4 MiB/s target for the mirror's iteration under way to issue the rest of its 16 MiB
      // run (a copy for each copy landed: QEMU mirror_iteration waits for a free slot, it does not look at the cancel),
      // then for the 16 MiB in flight: more than one buffer's worth, at most two.
      expect(abortNs(r)).toBeGreaterThan(4 * s);
      expect(abortNs(r)).toBeLessThan(8 * s);
      expect(r.worstQueryWaitNs).toBeGreaterThan(abortNs(r) - 50 * ms - 3 * ms); // at most one poll interval (plus round trips) less
      expect(r.worstQueryWaitNs).toBeLessThan(abortNs(r));
      expect(answeredDuringAbort(r)).toEqual([]);
      expect(queryViolations(r)).toHaveLength(1);
      expect(queryViolations(r)[0]!.detail).toMatch(/behind virDomainBlockJobAbort@aborter$/);
    }
  });

  it("under libvirt-1.2.9 (the seed-004 fix) the wait is the same: BeginJob admits no QUERY beside the abort's MODIFY job", () => {
    for (const seed of [1, 2, 3]) {
      const old = run(SYNC_ABORT, "info-modify-job", seed);
      const fixed = run(SYNC_ABORT, "libvirt-1.2.9", seed);
      expect(fixed.worstQueryWaitNs).toBe(old.worstQueryWaitNs);
      expect(abortNs(fixed)).toBe(abortNs(old));
      expect(answeredDuringAbort(fixed)).toEqual([]);
      expect(fixed.dom.jobWaits.filter((w) => w.call.api === "virDomainGetBlockJobInfo").every((w) => w.kind === "query")).toBe(true);
    }
  });

  it("under libvirt-1.2.17 (abort waits for the event) the abort ends at the event, and the poller still waits for all of it", () => {
    const r = run(SYNC_ABORT, "libvirt-1.2.17");
    const old = run(SYNC_ABORT, "info-modify-job");
    expect(abortNs(r)).toBeLessThanOrEqual(abortNs(old));
    expect(abortNs(old) - abortNs(r)).toBeLessThanOrEqual(50 * ms + 2 * ms);
    expect(r.worstQueryWaitNs).toBeGreaterThan(abortNs(r) - 50 * ms - 3 * ms);
  });

  it("only the counterfactual query-beside-modify removes it: no wait, and the poller is answered all through the cancel", () => {
    for (const seed of [1, 2, 3]) {
      const r = run(SYNC_ABORT, "query-beside-modify", seed);
      expect(r.worstQueryWaitNs).toBe(0);
      expect(r.worstQueryLatencyNs).toBeLessThanOrEqual(2 * ms); // its own round trip, at most behind one other monitor command
      const during = answeredDuringAbort(r);
      expect(during.length).toBeGreaterThan(30);
      expect(during.every((p) => p.ok)).toBe(true);
      expect(r.report.violations).toEqual([]);
    }
  });

  it("persists under libvirt-1.2.9 and libvirt-1.2.17, which have the fix (shown, not hidden)", () => {
    for (const p of ["libvirt-1.2.9", "libvirt-1.2.17"]) expect(explore(breaksSubject(SYNC_ABORT, p), { strategy: "random", budget: 3 }).found.length, p).toBe(1);
  });
});

describe("seed 004, async job: the same poller during a storage migration", () => {
  it("under info-modify-job the first query fails after exactly 30 s with the timeout error, the next waits for the migration to end", () => {
    const r = run(ASYNC_JOB, "info-modify-job");
    const migration = r.calls.find((c) => c.call.api === "virDomainMigrate")!;
    expect(migration.latencyNs).toBeGreaterThan(35 * s);
    expect(r.polls[0]!.error).toBe("Timed out during operation: cannot acquire state change lock");
    expect(r.polls[0]!.latencyNs).toBe(30 * s);
    expect(r.polls[1]!.ok).toBe(true);
    expect(r.polls[1]!.endNs).toBeGreaterThanOrEqual(migration.endNs);
    expect(r.polls[1]!.endNs).toBeLessThanOrEqual(migration.endNs + 1 * ms);
    expect(r.worstQueryWaitNs).toBe(30 * s);
    expect(queryViolations(r).map((v) => v.detail)).toEqual([
      expect.stringMatching(/^virDomainGetBlockJobInfo by poller waited 30\.00 s for its job \(bound 100\.0 ms\), then failed, behind virDomainMigrate@migrator$/),
      expect.stringMatching(/behind virDomainMigrate@migrator$/),
    ]);
  });

  it("under libvirt-1.2.9 a query waits at most for one nested monitor call (1 ms) and never fails", () => {
    let worst = 0;
    for (const seed of [1, 2, 3]) {
      const r = run(ASYNC_JOB, "libvirt-1.2.9", seed);
      expect(r.calls.filter((c) => !c.ok)).toEqual([]);
      expect(r.worstQueryWaitNs).toBeLessThanOrEqual(1 * ms);
      expect(r.worstQueryLatencyNs).toBeLessThanOrEqual(2 * ms);
      worst = Math.max(worst, r.worstQueryWaitNs);
    }
    expect(worst).toBeLessThan(QUERY_WAIT_BOUND_NS);
  });
});

describe("the query-wait invariant as a trace-record monitor (sim/check shape)", () => {
  it("reports from the trace every job wait of a status query beyond the bound, as the run did", () => {
    const r = run(SYNC_ABORT, "info-modify-job", 1, true);
    const inv = queryWaitInvariant(QUERY_WAIT_BOUND_NS);
    const reported: string[] = [];
    const mon = inv.attach({ report: (v) => reported.push(v.detail) });
    for (const rec of r.report.trace!) mon.onRecord(rec);
    const long = r.dom.jobWaits.filter((w) => w.call.api === "virDomainGetBlockJobInfo" && (w.waitedNs > QUERY_WAIT_BOUND_NS || !w.ok));
    expect(inv.name).toBe("query-wait-bound");
    expect(reported).toHaveLength(long.length);
    expect(reported).toEqual(queryViolations(r).map((v) => v.detail));
    expect(reported.length).toBe(1);
  });
});

describe("the timeline shows the poller blocked under the old profile", () => {
  const lanes = (r: Seed004Run) => {
    const text = renderTimeline(r.dom, { fromNs: 1500 * ms, toNs: 5500 * ms, binNs: 50 * ms, clients: ["aborter", "poller"] });
    const lane = (c: string) => text.split("\n").find((l) => l.startsWith(c))!.slice("aborter ".length);
    return { aborter: lane("aborter"), poller: lane("poller") };
  };

  it("info-modify-job: the poller waits (w) through the aborter's MODIFY job (M), one bin short at most", () => {
    const { aborter, poller } = lanes(run(SYNC_ABORT, "info-modify-job"));
    const held = aborter.match(/M+/)![0];
    const waited = poller.match(/w+/)![0];
    expect(held.length).toBeGreaterThan(40); // > 2 s in 50 ms bins
    expect(waited.length).toBeGreaterThanOrEqual(held.length - 1);
    expect(poller.indexOf(waited)).toBeLessThanOrEqual(aborter.indexOf(held) + 1);
  });

  it("query-beside-modify: the poller never waits, it queries (q) all along", () => {
    const { poller } = lanes(run(SYNC_ABORT, "query-beside-modify"));
    expect(poller).not.toContain("w");
    expect(poller.match(/q/g)!.length).toBeGreaterThan(40); // > 2 s in 50 ms bins, as long as the abort
  });
});
