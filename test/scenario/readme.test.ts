import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import { runScenario } from "../../sim/scenario/runner.js";
import { verdict } from "../../sim/report/text.js";

it("the README's scenario example is valid and runs green", () => {
  const readme = readFileSync(new URL("../../README.md", import.meta.url), "utf8");
  const m = /## Scenario files[\s\S]*?```yaml\n([\s\S]*?)```/.exec(readme);
  expect(m, "README has a yaml block under 'Scenario files'").not.toBeNull();
  const loaded = loadScenarioText(m![1], "README.md", new URL("../../scenarios/", import.meta.url).pathname);
  const r = runScenario(loaded);
  expect(r.ok, verdict(r)).toBe(true);
  expect(r.steps.every((s) => s.state === "done")).toBe(true);
});
