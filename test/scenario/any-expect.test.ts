/**
 * `expect: { any: [ … ] }` (issue 18): a step whose reply depends on the
 * schedule accepts any of several outcomes, so exploring a race does not
 * fail on the schedules where the other answer is right.
 */
import { RandomStrategy } from "../../sim/scheduler/index.js";
import { describe, expect, it } from "vitest";
import { InputError } from "../../sim/scenario/errors.js";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";

const scenario = (expectText: string) => `name: any
nodes: [{ driver: null-co, node-name: src, size: 64MiB }, { driver: null-co, node-name: tgt, size: 64MiB }]
steps:
  - at: 1ms
    execute: blockdev-backup
    arguments: { job-id: j, device: src, target: tgt, sync: full }
  - at: 1ms
    execute: job-pause
    arguments: { id: j }
    expect: ${expectText}
`;

describe("expect: { any: [ … ] }", () => {
  it("passes when the reply is one of the alternatives, whichever schedule gives it", () => {
    const loaded = loadScenarioText(scenario("{ any: [ok, { error: { class: GenericError, desc-contains: \"not found\" } }] }"));
    for (let seed = 0; seed < 6; seed++) {
      const r = runScenario(loaded, { strategy: new RandomStrategy(seed), seed });
      expect(r.failures.filter((f) => f.kind === "step"), `seed ${seed}`).toEqual([]);
    }
  });

  it("fails when the reply is none of them, listing every alternative", () => {
    const r = runScenario(loadScenarioText(scenario("{ any: [{ error: DeviceNotActive }, { error: { desc: nope } }] }")));
    const f = r.failures.find((x) => x.kind === "step");
    expect(f?.expected).toEqual(["any of: error DeviceNotActive | error: nope"]);
  });

  it("is checked like any expectation: an empty list and a misspelt reply member are errors", () => {
    for (const [text, want] of [["{ any: [] }", /any/], ["{ any: [{ return: { stauts: x } }] }", /expect\.any\[0\]\.return: job-pause answers \{\}/]] as const) {
      let err: unknown;
      try {
        loadScenarioText(scenario(text));
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(InputError);
      expect((err as InputError).problems.map((p) => `${p.path}: ${p.message}`).join("\n")).toMatch(want);
    }
  });
});
