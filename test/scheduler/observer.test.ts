/** The kernel's observer: a look every N loop steps from outside (the CLI's progress line) that leaves the run as it was. */
import { describe, expect, it } from "vitest";
import { RandomStrategy, Scheduler, sleep, spawn, type Process } from "../../sim/scheduler/index.js";

/** Ten workers that sleep 1..10 ns a hundred times each: about a thousand loop steps with choices. */
function program(): Process {
  return (function* (): Process {
    for (let w = 0; w < 10; w++) yield spawn(`w${w}`, (function* (): Process { for (let i = 0; i < 100; i++) yield sleep(1 + ((i * 7 + w) % 10)); })());
  })();
}

describe("the kernel's observer", () => {
  it("is called every everySteps steps with the time and step count, and the run is the same", () => {
    const looks: [number, number][] = [];
    const seen = new Scheduler({ strategy: new RandomStrategy(5), observer: { everySteps: 100, observe: (now, steps) => looks.push([now, steps]) } });
    seen.spawn("main", program());
    const a = seen.run();
    const plain = new Scheduler({ strategy: new RandomStrategy(5) });
    plain.spawn("main", program());
    const b = plain.run();
    expect(a.hash).toBe(b.hash);
    expect(a.choices).toEqual(b.choices);
    expect(looks.length).toBe(Math.floor(a.steps / 100));
    expect(looks.map(([, s]) => s)).toEqual(looks.map((_, i) => (i + 1) * 100));
    for (let i = 1; i < looks.length; i++) expect(looks[i][0]).toBeGreaterThanOrEqual(looks[i - 1][0]);
    expect(looks.at(-1)![0]).toBeLessThanOrEqual(a.endTimeNs);
  });

  it("refuses a period below one step", () => {
    expect(() => new Scheduler({ observer: { everySteps: 0, observe: () => {} } })).toThrow("observer.everySteps must be at least 1, got 0");
  });
});
