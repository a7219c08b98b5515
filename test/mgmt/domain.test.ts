import { describe, expect, it } from "vitest";
import {
  abortJob, ASYNC_JOB_KINDS, ASYNC_JOB_MASK, destroy, holdJob, JOB_KINDS, runAsyncJob, type JobKind,
} from "../../sim/mgmt/index.js";
import { client, makeDomain, ms, runOk, s } from "./helpers.js";

const NORMAL: JobKind[] = JOB_KINDS.filter((k) => k !== "async-nested");

const waitOf = (dom: ReturnType<typeof makeDomain>["dom"], clientName: string) => {
  const w = dom.jobWaits.find((x) => x.call.client === clientName);
  if (!w) throw new Error(`no job wait of ${clientName}`);
  return w;
};

describe("normal jobs exclude each other, whatever their kinds (qemuDomainObjBeginJobInternal: while (job.active) wait)", () => {
  for (const held of NORMAL) {
    for (const asked of NORMAL) {
      it(`${asked} asked while ${held} is held waits for it`, () => {
        const { sim, dom } = makeDomain();
        client(sim, "a", 0, () => holdJob(dom, "a", held, 1 * s));
        client(sim, "b", 10 * ms, () => holdJob(dom, "b", asked, 1 * ms));
        runOk(sim);
        const w = waitOf(dom, "b");
        expect(w.ok).toBe(true);
        expect(w.endNs).toBe(1 * s);
        expect(w.waitedNs).toBe(990 * ms);
        expect(w.blockedBy).toEqual([`hold-${held}@a`]);
      });
    }
  }

  it("under the counterfactual query-beside-modify, QUERY goes in beside MODIFY and QUERY, and nothing else does", () => {
    for (const held of NORMAL) {
      for (const asked of NORMAL) {
        const { sim, dom } = makeDomain({ behaviour: { queryBesideModify: true } });
        client(sim, "a", 0, () => holdJob(dom, "a", held, 1 * s));
        client(sim, "b", 10 * ms, () => holdJob(dom, "b", asked, 1 * ms));
        runOk(sim);
        const beside = asked === "query" && (held === "query" || held === "modify");
        expect(waitOf(dom, "b").waitedNs, `${asked} beside ${held}`).toBe(beside ? 0 : 990 * ms);
      }
    }
  });

  it("libvirt v1.2.9's signal-one strands a waiter: an async job start takes the one EndJob signal, ends without a nested job, and the QUERY waiting behind it times out on a free domain", () => {
    const { sim, dom } = makeDomain();
    client(sim, "c0", 0, () => holdJob(dom, "c0", "query", 1 * s));
    client(sim, "a0", 10 * ms, () => runAsyncJob(dom, "a0", "save", { durationNs: 0 }));
    client(sim, "c1", 20 * ms, () => holdJob(dom, "c1", "query", 1 * ms));
    runOk(sim);
    expect(dom.jobWaits.find((w) => w.kind === "async:save")!.endNs).toBe(1 * s);
    const c1 = waitOf(dom, "c1");
    expect(c1.ok).toBe(false);
    expect(c1.endNs).toBe(20 * ms + 30 * s); // the domain was free from 1 s on
  });

  it("the same with a nested monitor call in the async job: its EndJob passes the signal on", () => {
    const { sim, dom } = makeDomain();
    client(sim, "c0", 0, () => holdJob(dom, "c0", "query", 1 * s));
    client(sim, "a0", 10 * ms, () => runAsyncJob(dom, "a0", "save", { durationNs: 1 * ms, pollIntervalNs: 1 * ms }));
    client(sim, "c1", 20 * ms, () => holdJob(dom, "c1", "query", 1 * ms));
    runOk(sim);
    expect(waitOf(dom, "c1").ok).toBe(true);
    expect(waitOf(dom, "c1").endNs).toBe(1 * s);
  });

  it("EndJob wakes one waiter at a time, in arrival order", () => {
    const { sim, dom } = makeDomain();
    client(sim, "a", 0, () => holdJob(dom, "a", "modify", 1 * s));
    client(sim, "b", 1 * ms, () => holdJob(dom, "b", "query", 100 * ms));
    client(sim, "c", 2 * ms, () => holdJob(dom, "c", "modify", 100 * ms));
    client(sim, "d", 3 * ms, () => holdJob(dom, "d", "suspend", 100 * ms));
    runOk(sim);
    expect(["b", "c", "d"].map((c) => waitOf(dom, c).endNs)).toEqual([1000 * ms, 1100 * ms, 1200 * ms]);
  });
});

describe("async jobs and their masks", () => {
  for (const kind of ASYNC_JOB_KINDS) {
    for (const asked of NORMAL) {
      const allowed = asked === "destroy" || ASYNC_JOB_MASK[kind].includes(asked);
      it(`${asked} during ${kind}: ${allowed ? "runs at once" : "waits for the async job to end"}`, () => {
        const { sim, dom } = makeDomain();
        client(sim, "owner", 0, () => runAsyncJob(dom, "owner", kind, { durationNs: 2 * s, pollIntervalNs: 500 * ms }));
        client(sim, "b", 10 * ms, () => holdJob(dom, "b", asked, 1 * ms));
        runOk(sim);
        const w = waitOf(dom, "b");
        expect(w.ok).toBe(true);
        expect(w.waitedNs).toBe(allowed ? 0 : 2 * s - 10 * ms);
        if (!allowed) expect(w.blockedBy).toEqual([`async:${kind}@owner`]);
      });
    }
  }

  it("the masks are libvirt v1.2.9's: default QUERY|DESTROY|ABORT; migration out adds SUSPEND and MIGRATION_OP; migration in allows nothing but DESTROY", () => {
    expect(ASYNC_JOB_MASK.save).toEqual(["query", "destroy", "abort"]);
    expect(ASYNC_JOB_MASK.dump).toEqual(["query", "destroy", "abort"]);
    expect(ASYNC_JOB_MASK["migration-out"]).toEqual(["query", "destroy", "abort", "suspend", "migration-op"]);
    expect(ASYNC_JOB_MASK["migration-in"]).toEqual([]);
    expect(ASYNC_JOB_MASK.snapshot).toEqual(["query", "destroy", "abort", "suspend"]);
  });

  it("an async job starts only once the normal slot is free, and leaves it free", () => {
    const { sim, dom } = makeDomain();
    client(sim, "a", 0, () => holdJob(dom, "a", "modify", 1 * s));
    client(sim, "owner", 10 * ms, () => runAsyncJob(dom, "owner", "save", { durationNs: 1 * s, pollIntervalNs: 100 * ms }));
    client(sim, "q", 1500 * ms, () => holdJob(dom, "q", "query", 1 * ms));
    runOk(sim);
    expect(dom.jobWaits.find((w) => w.kind === "async:save")!.endNs).toBe(1 * s);
    expect(waitOf(dom, "q").waitedNs).toBe(0);
  });

  it("a second async job waits for the first (asyncCond broadcast at EndAsyncJob)", () => {
    const { sim, dom } = makeDomain();
    client(sim, "m", 0, () => runAsyncJob(dom, "m", "migration-out", { durationNs: 2 * s }));
    client(sim, "d", 10 * ms, () => runAsyncJob(dom, "d", "dump", { durationNs: 1 * s }));
    runOk(sim);
    const dump = dom.jobWaits.find((w) => w.kind === "async:dump")!;
    expect(dump.endNs).toBeGreaterThanOrEqual(2 * s);
    expect(dump.endNs).toBeLessThan(2 * s + 1 * ms);
  });

  it("the async job's nested jobs skip the mask but wait for the normal slot (a QUERY beside the async job delays its monitor call)", () => {
    const { sim, dom } = makeDomain({ qmpRoundTripNs: 1 * ms });
    client(sim, "owner", 0, () => runAsyncJob(dom, "owner", "migration-out", { durationNs: 1 * s, pollIntervalNs: 100 * ms }));
    client(sim, "q", 50 * ms, () => holdJob(dom, "q", "query", 300 * ms));
    runOk(sim);
    const nested = dom.jobWaits.filter((w) => w.kind === "async-nested");
    expect(nested[0]!.waitedNs).toBe(0);
    const delayed = nested.find((w) => w.waitedNs > 0)!;
    expect(delayed.endNs).toBe(350 * ms);
    expect(delayed.blockedBy).toEqual(["hold-query@q"]);
  });

  it("virDomainAbortJob (ABORT job, in every mask but migration-in) stops a save with 'operation aborted'", () => {
    const { sim, dom } = makeDomain();
    client(sim, "owner", 0, () => runAsyncJob(dom, "owner", "save", { durationNs: 10 * s, pollIntervalNs: 50 * ms }));
    client(sim, "admin", 1 * s, () => abortJob(dom, "admin"));
    runOk(sim);
    const save = dom.calls.find((c) => c.call.api === "async:save")!;
    expect(save.error).toBe("operation aborted: save: canceled by client");
    expect(save.endNs).toBeLessThan(1 * s + 100 * ms);
    expect(dom.calls.find((c) => c.call.api === "virDomainAbortJob")!.jobWaitNs).toBe(0);
  });

  it("virDomainDestroy gets its DESTROY job even during an incoming migration, whose mask is empty", () => {
    const { sim, dom } = makeDomain();
    client(sim, "owner", 0, () => runAsyncJob(dom, "owner", "migration-in", { durationNs: 5 * s }));
    client(sim, "admin", 1 * s, () => destroy(dom, "admin"));
    runOk(sim);
    expect(dom.calls.find((c) => c.call.api === "virDomainDestroy")!.jobWaitNs).toBe(0);
    expect(dom.active).toBe(false);
    // The async job's next monitor call finds QEMU gone.
    expect(dom.calls.find((c) => c.call.api === "async:migration-in")!.error).toBe("operation failed: monitor connection closed (domain is not running)");
  });
});

describe("the 30 s timeout and its error", () => {
  it("a job not acquired within QEMU_JOB_WAIT_TIME fails at exactly 30 s with VIR_ERR_OPERATION_TIMEOUT", () => {
    const { sim, dom } = makeDomain();
    client(sim, "a", 0, () => holdJob(dom, "a", "modify", 40 * s));
    client(sim, "b", 1 * s, () => holdJob(dom, "b", "query", 1 * ms, "virDomainGetBlockJobInfo"));
    runOk(sim);
    const b = dom.calls.find((c) => c.call.client === "b")!;
    expect(b.ok).toBe(false);
    expect(b.error).toBe("Timed out during operation: cannot acquire state change lock");
    expect(b.endNs).toBe(31 * s);
    expect(dom.jobsQueued).toBe(0);
  });

  it("one deadline covers both waits: first for the async job, then for the normal slot", () => {
    const { sim, dom } = makeDomain();
    client(sim, "owner", 0, () => runAsyncJob(dom, "owner", "save", { durationNs: 20 * s, pollIntervalNs: 1 * s }));
    client(sim, "x", 1 * s, () => holdJob(dom, "x", "modify", 30 * s));
    client(sim, "y", 2 * s, () => holdJob(dom, "y", "modify", 1 * ms));
    runOk(sim);
    expect(waitOf(dom, "x").endNs).toBeGreaterThanOrEqual(20 * s);
    const y = waitOf(dom, "y");
    expect(y.ok).toBe(false);
    expect(y.endNs).toBe(32 * s); // 2 s + 30 s, not 20 s + 30 s
  });

  it("a shorter configured timeout is honoured, and a job freed before it is acquired in time", () => {
    const { sim, dom } = makeDomain({ jobWaitTimeNs: 1 * s });
    client(sim, "a", 0, () => holdJob(dom, "a", "modify", 999 * ms));
    client(sim, "b", 0, () => holdJob(dom, "b", "modify", 1 * ms));
    runOk(sim);
    expect(waitOf(dom, "b").ok).toBe(true);
    expect(waitOf(dom, "b").waitedNs).toBe(999 * ms);
  });

  it("max_queued: a caller beyond the limit fails at once with VIR_ERR_OPERATION_FAILED", () => {
    const { sim, dom } = makeDomain({ maxQueuedJobs: 1 });
    client(sim, "a", 0, () => holdJob(dom, "a", "modify", 1 * s));
    client(sim, "b", 10 * ms, () => holdJob(dom, "b", "query", 1 * ms));
    runOk(sim);
    const b = dom.calls.find((c) => c.call.client === "b")!;
    expect(b.error).toBe("operation failed: cannot acquire state change lock due to max_queued limit");
    expect(b.endNs).toBe(10 * ms);
  });
});
