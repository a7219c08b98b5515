import { describe, expect, it } from "vitest";
import { checkRun } from "../../sim/check/index.js";
import type { Invariant } from "../../sim/check/types.js";
import { getBlockJobInfo, holdJob, queryWaitInvariant, watchQueryWait } from "../../sim/mgmt/index.js";
import { client, makeDomain, ms, s } from "./helpers.js";

/** A QUERY-kind status call at 10 ms behind a MODIFY job held for `holdNs`. */
function starved(holdNs: number) {
  const { sim, q, dom } = makeDomain({ disks: [{ target: "vda", device: "drive0" }], qmpRoundTripNs: 1 * ms });
  client(sim, "admin", 0, () => holdJob(dom, "admin", "modify", holdNs, "virDomainBlockJobAbort"));
  client(sim, "poller", 10 * ms, () => getBlockJobInfo(dom, "poller", "vda"));
  return { sim, q, dom };
}

describe("query-wait-bound", () => {
  it("is a sim/check Invariant, and checkRun reports a starved query through it", () => {
    const inv: Invariant = queryWaitInvariant(100 * ms);
    const { sim, q } = starved(1 * s);
    const check = checkRun({ sim, graph: q.graph, jm: q.jm }, [inv]);
    const found = check.finish(sim.run());
    expect(found).toEqual([{
      invariant: "query-wait-bound", timeNs: 1 * s,
      detail: "virDomainGetBlockJobInfo by poller waited 990.0 ms for its job (bound 100.0 ms), behind virDomainBlockJobAbort@admin",
      state: { client: "poller", waitedNs: 990 * ms },
    }]);
  });

  it("stays quiet when the wait is within the bound, and counts the job wait, not the round trip", () => {
    const { sim, dom } = starved(100 * ms + 10 * ms);
    const v = watchQueryWait(dom, 100 * ms);
    sim.run();
    expect(dom.calls.find((c) => c.call.client === "poller")!.latencyNs).toBe(101 * ms);
    expect(v).toEqual([]);
  });

  it("a timed-out query breaks it even with a bound above 30 s", () => {
    const { sim, dom } = starved(40 * s);
    const v = watchQueryWait(dom, 60 * s);
    sim.run();
    expect(v.map((x) => x.detail)).toEqual(["virDomainGetBlockJobInfo by poller waited 30.00 s for its job (bound 60.00 s), then failed, behind virDomainBlockJobAbort@admin"]);
  });

  it("the job lock is per domain, not per disk: a query of another disk waits too", () => {
    const { sim, dom } = makeDomain({ disks: [{ target: "vda", device: "drive0" }, { target: "vdb", device: "drive1" }] });
    const v = watchQueryWait(dom, 100 * ms);
    client(sim, "admin", 0, () => holdJob(dom, "admin", "modify", 2 * s, "virDomainBlockJobAbort"));
    client(sim, "poller-b", 10 * ms, () => getBlockJobInfo(dom, "poller-b", "vdb"));
    sim.run();
    expect(v.map((x) => x.client)).toEqual(["poller-b"]);
    expect(v[0]!.waitedNs).toBe(1990 * ms);
  });
});
