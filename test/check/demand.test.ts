/**
 * The checker's contract for `demandKinds` and `facts`: a monitor gets the
 * records of its demandKinds only between ctx.demand(true) and
 * ctx.demand(false), and reads ctx.facts only when its invariant declares
 * `facts` (the facts are then up to date with the record it looks at).
 */
import { describe, expect, it } from "vitest";
import { checkRun, type Invariant } from "../../sim/check/index.js";
import { createQemu } from "../../sim/qmp/qemu.js";
import { Scheduler, sleep, type Process } from "../../sim/scheduler/index.js";

/** A world that records `io` at 1, 2, 3 and 4 ms (issuer "guest") and `mark` records at 1.5 and 3.5 ms. */
function run(invariants: Invariant[]) {
  const sim = new Scheduler({});
  const q = createQemu(sim, {});
  const check = checkRun(q, invariants);
  sim.spawn("script", (function* (): Process {
    for (const t of [1, 2, 3, 4]) {
      yield sleep(1e6);
      sim.record("dev", "io", { op: "write", offset: 0, bytes: 512, issuer: "guest", at: t });
      if (t === 1 || t === 3) {
        yield sleep(5e5);
        sim.record("script", "mark", { at: t });
      }
    }
  })());
  return check.finish(sim.run());
}

describe("demandKinds", () => {
  it("reach the monitor only while it demands them; its kinds always", () => {
    const seen: string[] = [];
    const listener: Invariant = {
      name: "listener", description: "test only: io only between two marks", when: "step",
      kinds: ["mark"], demandKinds: ["io"],
      attach: (ctx) => {
        let on = false;
        return {
          onRecord(r) {
            seen.push(`${r.kind}@${String(r.data?.at)}`);
            if (r.kind === "mark") ctx.demand((on = !on));
          },
        };
      },
    };
    expect(run([listener])).toEqual([]);
    // io at 2 falls between the marks after 1 and 3; io at 3 comes before the second mark, io at 4 after it
    expect(seen).toEqual(["mark@1", "io@2", "io@3", "mark@3"]);
  });

  it("an invariant without kinds gets every record whatever it demands", () => {
    const seen: string[] = [];
    const everything: Invariant = {
      name: "everything", description: "test only: every record", when: "step", demandKinds: ["io"],
      attach: (ctx) => ({
        onRecord(r) {
          if (r.kind === "io" || r.kind === "mark") seen.push(`${r.kind}@${String(r.data?.at)}`);
          if (r.kind === "mark") ctx.demand(false);
        },
      }),
    };
    run([everything]);
    expect(seen).toEqual(["io@1", "mark@1", "io@2", "io@3", "mark@3", "io@4"]);
  });

  it("asking for demandKinds an invariant does not declare, or for facts it does not declare, is an error", () => {
    const noDemand: Invariant = { name: "no-demand", description: "test only: demands without declaring", when: "step", kinds: ["mark"], attach: (ctx) => ({ onRecord: () => ctx.demand(true) }) };
    const noFacts: Invariant = { name: "no-facts", description: "test only: reads facts without declaring", when: "step", kinds: [], attach: (ctx) => (ctx.facts, {}) };
    // a monitor that throws inside the simulation aborts the process that made the record
    expect(() => checkRun(createQemu(new Scheduler({}), {}), [noFacts])).toThrow(/'no-facts' reads ctx.facts but does not declare facts/);
    const sim = new Scheduler({});
    const check = checkRun(createQemu(sim, {}), [noDemand]);
    sim.spawn("script", (function* (): Process {
      sim.record("script", "mark", {});
    })());
    const result = sim.run();
    check.finish(result);
    expect(result.outcome).toMatchObject({ kind: "failure", error: expect.stringMatching(/'no-demand' asks for its demandKinds but declares none/) });
  });

  it("facts are up to date with the record a monitor looks at", () => {
    const statuses: string[] = [];
    const reader: Invariant = {
      name: "reader", description: "test only: reads job statuses from the facts", when: "step", kinds: ["status"], facts: true,
      attach: (ctx) => ({ onRecord: (r) => statuses.push(`${r.src} ${String(r.data?.to)} ${String(ctx.facts.status.get(String(r.src).slice(4)))}`) }),
    };
    const sim = new Scheduler({});
    const check = checkRun(createQemu(sim, {}), [reader]);
    sim.spawn("script", (function* (): Process {
      sim.record("job:j0", "status", { from: "undefined", to: "created" });
      yield sleep(1);
      sim.record("job:j0", "status", { from: "created", to: "running" });
    })());
    check.finish(sim.run());
    expect(statuses).toEqual(["job:j0 created created", "job:j0 running running"]);
  });
});
