import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { sleep } from "../../sim/scheduler/index.js";
import { testJobDriver } from "../../sim/jobs/drivers/test-job.js";
import { QmpError } from "../../sim/jobs/errors.js";
import type { Job } from "../../sim/jobs/job.js";
import { runScript } from "./harness.js";

const VERB = ["pause", "resume", "cancel", "force-cancel", "complete", "finalize", "dismiss", "set-speed", "drain-begin", "drain-end"] as const;

const jobArb = fc.record({
  iterations: fc.integer({ min: 1, max: 6 }),
  workNs: fc.constantFrom(0, 100_000, 2_000_000),
  sleepNs: fc.constantFrom(0, 500_000, 3_000_000),
  yields: fc.boolean(),
  failAt: fc.option(fc.integer({ min: 0, max: 6 }), { nil: undefined }),
  readyAfter: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  ioErrorAt: fc.option(fc.integer({ min: 0, max: 4 }), { nil: undefined }),
  onError: fc.constantFrom("report", "ignore", "stop", "enospc") as fc.Arbitrary<"report" | "ignore" | "stop" | "enospc">,
  autoFinalize: fc.boolean(),
  autoDismiss: fc.boolean(),
  startDelayNs: fc.constantFrom(0, 1_000_000),
});

const scenarioArb = fc.record({
  jobs: fc.array(jobArb, { minLength: 1, maxLength: 3 }),
  grouped: fc.boolean(),
  commands: fc.array(
    fc.record({ atNs: fc.integer({ min: 0, max: 20_000_000 }), job: fc.nat(2), verb: fc.constantFrom(...VERB), speed: fc.constantFrom(0, 65536, 1 << 20) }),
    { maxLength: 25 },
  ),
});

describe("random verbs at random times against random jobs", () => {
  it("never break a rule, and every job concludes once the user lets go", () => {
    fc.assert(
      fc.property(scenarioArb, (sc) => {
        const { result, jm } = runScript(function* ({ jm }) {
          const txn = sc.grouped ? jm.newTxn() : undefined;
          const jobs: Job[] = sc.jobs.map((cfg, i) =>
            jm.create({
              id: `j${i}`,
              // yields-only jobs need an external kick; give them sleeps in a group so the test stays live
              driver: testJobDriver({ ...cfg, yields: cfg.yields && cfg.readyAfter === undefined && !sc.grouped }),
              txn,
              autoFinalize: cfg.autoFinalize,
              autoDismiss: cfg.autoDismiss,
            }),
          );
          const drains = jobs.map(() => 0);
          const started = jobs.map(() => false);
          const commands = [...sc.commands].sort((a, b) => a.atNs - b.atNs);
          let now = 0;
          const startAll = () => jobs.forEach((j, i) => {
            if (!started[i] && now >= sc.jobs[i].startDelayNs && !j.freed && j.status === "created") {
              started[i] = true;
              j.start();
            }
          });
          startAll();
          for (const c of commands) {
            yield sleep(c.atNs - now);
            now = c.atNs;
            startAll();
            const i = c.job % jobs.length, job = jobs[i];
            if (job.freed) continue;
            try {
              switch (c.verb) {
                case "pause": job.userPause(); break;
                case "resume": job.userResume(); break;
                case "cancel": job.userCancel(false); break;
                case "force-cancel": job.userCancel(true); break;
                case "complete": job.complete(); break;
                case "finalize": job.finalize(); break;
                case "dismiss": job.dismiss(); break;
                case "set-speed": job.setSpeed(c.speed); break;
                case "drain-begin": drains[i]++; job.pause(); break;
                case "drain-end": if (drains[i] > 0) { drains[i]--; job.resume(); } break;
              }
            } catch (e) {
              if (!(e instanceof QmpError)) throw e; // a refused verb is fine; anything else is a bug
            }
          }
          // The user lets go: end drains, resume, then finalize, complete and dismiss until all are gone.
          yield sleep(1);
          now += 1;
          startAll();
          jobs.forEach((j, i) => { while (drains[i] > 0 && !j.freed) { drains[i]--; j.resume(); } });
          for (let round = 0; round < 400 && jobs.some((j) => !j.freed); round++) {
            for (const j of jobs) {
              if (j.freed) continue;
              if (j.status === "created") j.start();
              else if (j.status === "pending") j.finalize();
              else if (j.status === "concluded") j.dismiss();
              else if (j.userPaused && !j.completed) j.userResume();
              else if (j.ready && !j.cancelled) j.complete();
              else if (j.status === "running" && !j.busy) j.enter(); // a yielding test job waits to be kicked
            }
            yield sleep(5_000_000);
          }
          return jobs.filter((j) => !j.freed).map((j) => `${j.name}:${j.status}`);
        });
        const left = (result.outcome.kind === "ok" ? [] : [JSON.stringify(result.outcome)]);
        expect(left).toEqual([]);
        expect(jm.violations).toEqual([]);
        expect(jm.jobs.map((j) => `${j.name}:${j.status}`)).toEqual([]);
      }),
      { seed: 20261123, numRuns: 300 },
    );
  });
});
