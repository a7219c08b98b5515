/** The README's "Running untrusted scenarios" states the limits the loader enforces (sim/scenario/limits.ts). */
import { readFileSync } from "node:fs";
import { expect, it } from "vitest";
import { LIMITS } from "../sim/scenario/limits.js";

it("the README's limits table matches sim/scenario/limits.ts, and the command block lists every command", () => {
  const readme = readFileSync(new URL("../README.md", import.meta.url), "utf8");
  const section = readme.slice(readme.indexOf("## Running untrusted scenarios"), readme.indexOf("## Set up, run, test"));
  const n = (x: number) => x.toLocaleString("en-US");
  for (const row of [
    `| a scenario or fragment file | ${LIMITS.fileBytes / 1024 / 1024} MiB |`,
    `| a replay file | ${LIMITS.replayBytes / 1024 / 1024} MiB |`,
    `| imported files / import nesting | ${LIMITS.imports} / ${LIMITS.importDepth} |`,
    `| nesting of mappings and lists | ${LIMITS.depth} levels |`,
    `| devices, nodes, guests (with imports) | ${n(LIMITS.devices)} each |`,
    `| a guest's \`iodepth\` / a device's \`queue-depth\` | ${n(LIMITS.iodepth)} / ${n(LIMITS.queueDepth)} |`,
    `| a device's data ranges or fault rules | ${n(LIMITS.deviceRanges)} |`,
    `| steps | ${n(LIMITS.steps)} |`,
    `| clusters of all devices together | ${n(LIMITS.clusters)} `,
    `| options of one chosen moment (\`at: { choose: … }\`) | ${n(LIMITS.chooseOptions)} |`,
    `| entries in \`expect.events\`, \`never\`, \`data\` | ${n(LIMITS.expectations)} each |`,
    `| job ids in \`expect.jobs\` | ${n(LIMITS.expectJobs)} |`,
    `| names in \`expect.invariants\`, \`violations\` | ${n(LIMITS.invariantNames)} each |`,
    `| a replay's choice log | ${n(LIMITS.choices)} entries |`,
  ]) expect(section).toContain(row);
  const block = readme.slice(readme.indexOf("## Command line"), readme.indexOf("Exit codes:"));
  for (const c of ["run", "replay", "check-determinism", "timeline", "record", "conform", "events", "commands", "fuzz", "serve", "--version"]) expect(block).toContain(c);
});
