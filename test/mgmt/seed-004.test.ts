import { describe, expect, it } from "vitest";
import {
  ASYNC_JOB_RACE, explore, QUERY_WAIT_BOUND_NS, readReplay, replay, SEED_004_RACES, SYNC_ABORT_RACE, type Seed004Run,
} from "../../sim/races/seed-004.js";
import { queryWaitInvariant, renderTimeline } from "../../sim/mgmt/index.js";
import { FifoStrategy, parseChoiceLog, RandomStrategy, ReplayStrategy } from "../../sim/scheduler/index.js";
import { ms, s } from "./helpers.js";

const BUDGET = 5;
const run = (race: typeof SYNC_ABORT_RACE, profile: string, seed = 1): Seed004Run => {
  const r = race.run(profile, seed, new RandomStrategy(seed));
  expect(r.outcome).toBe("ok");
  expect(r.modelErrors).toEqual([]);
  return r;
};
const abortNs = (r: Seed004Run) => r.abort!.returnNs - r.abort!.callNs;

/** Poll answers that were asked while the abort ran and came back before it returned. */
const answeredDuringAbort = (r: Seed004Run) => r.polls.filter((p) => p.callNs > r.abort!.callNs && p.returnNs < r.abort!.returnNs);

describe("seed 004, synchronous abort: a poller every 50 ms while a copy job takes seconds to cancel", () => {
  it("under info-modify-job the poller's worst wait is as long as the abort, and it sees nothing meanwhile", () => {
    for (const seed of [1, 2, 3]) {
      const r = run(SYNC_ABORT_RACE, "info-modify-job", seed);
      expect(abortNs(r)).toBeGreaterThan(2 * s); // the cancel waits for the mirror's in-flight copies on the 4 MiB/s target
      expect(abortNs(r)).toBeLessThan(4 * s);
      expect(r.worstQueryWaitNs).toBeGreaterThan(abortNs(r) - 50 * ms - 3 * ms); // at most one poll interval (plus round trips) less
      expect(r.worstQueryWaitNs).toBeLessThan(abortNs(r));
      expect(answeredDuringAbort(r)).toEqual([]);
      expect(r.violations.map((v) => v.rule)).toEqual(["query-wait-bound"]);
      expect(r.violations[0]!.detail).toMatch(/behind virDomainBlockJobAbort@aborter$/);
    }
  });

  it("the measured figures, seed 1: abort 2.399 s, worst poller wait 2.382 s", () => {
    const r = run(SYNC_ABORT_RACE, "info-modify-job");
    expect(abortNs(r)).toBe(2_399_000_000);
    expect(r.worstQueryWaitNs).toBe(2_382_000_000);
  });

  it("under libvirt-1.2.9 (the seed-004 fix) the wait is the same: BeginJob admits no QUERY beside the abort's MODIFY job", () => {
    for (const seed of [1, 2, 3]) {
      const old = run(SYNC_ABORT_RACE, "info-modify-job", seed);
      const fixed = run(SYNC_ABORT_RACE, "libvirt-1.2.9", seed);
      expect(fixed.worstQueryWaitNs).toBe(old.worstQueryWaitNs);
      expect(abortNs(fixed)).toBe(abortNs(old));
      expect(answeredDuringAbort(fixed)).toEqual([]);
      expect(fixed.jobWaits.filter((w) => w.call.api === "virDomainGetBlockJobInfo").every((w) => w.kind === "query")).toBe(true);
    }
  });

  it("under libvirt-1.2.17 (abort waits for the event) the abort ends at the event, and the poller still waits for all of it", () => {
    const r = run(SYNC_ABORT_RACE, "libvirt-1.2.17");
    const old = run(SYNC_ABORT_RACE, "info-modify-job");
    expect(abortNs(r)).toBeLessThanOrEqual(abortNs(old));
    expect(abortNs(old) - abortNs(r)).toBeLessThanOrEqual(50 * ms + 2 * ms);
    expect(r.worstQueryWaitNs).toBeGreaterThan(abortNs(r) - 50 * ms - 3 * ms);
  });

  it("only the counterfactual query-beside-modify removes it: no wait, and the poller watches the job being cancelled", () => {
    for (const seed of [1, 2, 3]) {
      const r = run(SYNC_ABORT_RACE, "query-beside-modify", seed);
      expect(r.worstQueryWaitNs).toBe(0);
      expect(r.worstQueryLatencyNs).toBeLessThanOrEqual(2 * ms); // its own round trip, at most behind one other monitor command
      const during = answeredDuringAbort(r);
      expect(during.length).toBeGreaterThan(30);
      expect(during.filter((p) => p.info !== null).length).toBeGreaterThan(30);
      expect(r.violations).toEqual([]);
    }
  });
});

describe("seed 004, async job: the same poller during a ~43 s storage migration", () => {
  it("under info-modify-job the first query fails after exactly 30 s with the timeout error, the next waits for the migration to end", () => {
    const r = run(ASYNC_JOB_RACE, "info-modify-job");
    const migration = r.calls.find((c) => c.call.api === "virDomainMigrate")!;
    expect(migration.latencyNs).toBeGreaterThan(35 * s);
    const info = r.calls.filter((c) => c.call.api === "virDomainGetBlockJobInfo");
    expect(info[0]!.error).toBe("Timed out during operation: cannot acquire state change lock");
    expect(info[0]!.latencyNs).toBe(30 * s);
    expect(info[1]!.ok).toBe(true);
    expect(info[1]!.endNs).toBeGreaterThanOrEqual(migration.endNs);
    expect(info[1]!.endNs).toBeLessThanOrEqual(migration.endNs + 1 * ms);
    expect(r.worstQueryWaitNs).toBe(30 * s);
    expect(r.violations.map((v) => v.detail)).toEqual([
      expect.stringMatching(/^virDomainGetBlockJobInfo by poller waited 30\.00 s for its job \(bound 100\.0 ms\), then failed, behind virDomainMigrate@migrator$/),
      expect.stringMatching(/behind virDomainMigrate@migrator$/),
    ]);
  });

  it("under libvirt-1.2.9 a query waits at most for one nested monitor call (1 ms) and never fails", () => {
    let worst = 0;
    for (const seed of [1, 2, 3, 4, 5]) {
      const r = run(ASYNC_JOB_RACE, "libvirt-1.2.9", seed);
      expect(r.calls.filter((c) => !c.ok)).toEqual([]);
      expect(r.worstQueryWaitNs).toBeLessThanOrEqual(1 * ms);
      expect(r.worstQueryLatencyNs).toBeLessThanOrEqual(2 * ms);
      worst = Math.max(worst, r.worstQueryWaitNs);
    }
    expect(worst).toBeLessThan(QUERY_WAIT_BOUND_NS);
  });
});

describe.each(SEED_004_RACES.map((r) => [r.name, r] as const))("race %s", (_name, race) => {
  it(`is found under ${race.buggyProfile} by random exploration`, () => {
    const found = explore(race, race.buggyProfile, BUDGET);
    if (!found) expect.fail(`${race.rule} not broken in ${BUDGET} seeds under ${race.buggyProfile}`);
  });

  it(`is gone under ${race.fixedProfile} with the same budget`, () => {
    const found = explore(race, race.fixedProfile, BUDGET);
    expect(found, found ? `seed ${found.seed}: ${found.run.violations[0]!.detail}` : "").toBeUndefined();
  });

  for (const p of race.persistsUnder) {
    it(`persists under ${p}, which has the fix (shown, not hidden)`, () => {
      expect(explore(race, p, BUDGET)).toBeDefined();
    });
  }

  it("its replay file fails the same way, with the same trace hash", () => {
    const file = readReplay(race);
    expect(file.subject).toEqual({ race: race.name });
    expect(file.profile).toBe(race.buggyProfile);
    const r = replay(race, file);
    expect(r.outcome).toBe("ok");
    expect(r.hash).toBe(file.hash);
    expect(r.violations[0]?.detail).toBe(file.violations[0]?.detail);
  });

  it("its schedule, replayed under the fixed profile, no longer breaks the rule (or, for the persisting case, still does)", () => {
    const file = readReplay(race);
    const seed = Number(file.seed), detail = file.violations[0]?.detail;
    for (const p of [race.fixedProfile, ...race.persistsUnder]) {
      const log = parseChoiceLog(String(file.choices));
      let r = race.run(p, seed, new ReplayStrategy(log, { afterEnd: new RandomStrategy(seed) }));
      if (r.outcome === "divergence") {
        // the fixed profile's run asks for other same-instant tie-breaks: keep the schedule's own decisions (its labelled choices)
        const lastDecision = log.reduce((last, c, i) => (c.length === 3 ? i : last), -1);
        const decisions = log.slice(0, lastDecision + 1);
        r = race.run(p, seed, new ReplayStrategy(decisions, { afterEnd: new RandomStrategy(seed) }));
      }
      expect(r.outcome).toBe("ok");
      if (p === race.fixedProfile) expect(r.violations, p).toEqual([]);
      else {
        expect(r.violations.map((v) => v.rule), p).toEqual([race.rule]);
        expect(detail).toBeDefined();
        expect(r.violations[0]!.detail.split(", behind ")[1], p).toBe(detail!.split(", behind ")[1]);
        if (p === "libvirt-1.2.9") expect(r.violations[0]!.detail).toBe(detail); // the very same wait
      }
    }
  });

  it("runs identically twice from the same seed, and under FIFO", () => {
    const a = race.run(race.buggyProfile, 7, new RandomStrategy(7));
    const b = race.run(race.buggyProfile, 7, new RandomStrategy(7));
    expect(b.hash).toBe(a.hash);
    expect(b.choices).toBe(a.choices);
    expect(race.run(race.buggyProfile, 1, new FifoStrategy()).violations.length).toBeGreaterThan(0);
  });
});

describe("the query-wait invariant as a trace-record monitor (sim/check shape)", () => {
  it("reports from the trace exactly what the domain watcher reports", () => {
    const r = SYNC_ABORT_RACE.run("info-modify-job", 1, new RandomStrategy(1), { trace: true });
    const inv = queryWaitInvariant(QUERY_WAIT_BOUND_NS);
    const reported: string[] = [];
    const mon = inv.attach({ report: (v) => reported.push(v.detail) });
    for (const rec of r.trace!) mon.onRecord(rec);
    expect(inv.name).toBe("query-wait-bound");
    expect(reported).toEqual(r.violations.map((v) => v.detail));
    expect(reported.length).toBe(1);
  });
});

describe("the timeline shows the poller blocked under the old profile", () => {
  const lanes = (r: Seed004Run) => {
    const text = renderTimeline(r.domain, { fromNs: 1500 * ms, toNs: 5500 * ms, binNs: 50 * ms, clients: ["aborter", "poller"] });
    const lane = (c: string) => text.split("\n").find((l) => l.startsWith(c))!.slice("aborter ".length);
    return { aborter: lane("aborter"), poller: lane("poller") };
  };

  it("info-modify-job: the poller waits (w) through the aborter's MODIFY job (M), one bin short at most", () => {
    const { aborter, poller } = lanes(run(SYNC_ABORT_RACE, "info-modify-job"));
    const held = aborter.match(/M+/)![0];
    const waited = poller.match(/w+/)![0];
    expect(held.length).toBeGreaterThan(40); // > 2 s in 50 ms bins
    expect(waited.length).toBeGreaterThanOrEqual(held.length - 1);
    expect(poller.indexOf(waited)).toBeLessThanOrEqual(aborter.indexOf(held) + 1);
  });

  it("query-beside-modify: the poller never waits, it queries (q) all along", () => {
    const { poller } = lanes(run(SYNC_ABORT_RACE, "query-beside-modify"));
    expect(poller).not.toContain("w");
    expect(poller.match(/q/g)!.length).toBeGreaterThan(40); // > 2 s in 50 ms bins, as long as the abort
  });
});
