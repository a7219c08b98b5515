/** `blocksim profiles | invariants | commands | schema`: what the simulator knows, listed. */
import { z } from "zod";
import { listInvariants } from "../sim/check/index.js";
import { QUERY_WAIT_RULE } from "../sim/mgmt/invariants.js";
import { ALL_PROFILES as PROFILES } from "../sim/mgmt/profiles.js";
import { COMMANDS } from "../sim/qmp/qemu.js";
import { Scenario } from "../sim/scenario/schema.js";
import { EXIT_OK, type Io } from "./args.js";

export function listProfiles(io: Io): number {
  for (const p of PROFILES) io.out(`${p.name}\n  ${p.description}\n  change: ${p.change}\n`);
  return EXIT_OK;
}

export function printInvariants(io: Io): number {
  const mgmt = { name: QUERY_WAIT_RULE, when: "step" as const, description: `management layer (scenarios with a domain): no status query (virDomainGetBlockJobInfo) waits longer than domain.query-wait-bound (default 100ms) for its job (seed 004)`, source: "libvirt cefe0ba3d" };
  for (const i of [...listInvariants(), mgmt]) io.out(`${i.name} (${i.when === "step" ? "checked at every step" : "checked at the end of the run"})\n  ${i.description}${i.source ? `\n  source: ${i.source}` : ""}\n`);
  return EXIT_OK;
}

export function printSchema(io: Io): number {
  const schema = z.toJSONSchema(Scenario, { io: "input", unrepresentable: "any" });
  io.out(JSON.stringify({ ...schema, title: "blocksim scenario file" }, null, 1) + "\n");
  return EXIT_OK;
}

export function listCommands(io: Io): number {
  io.out(Object.keys(COMMANDS).sort().join("\n") + "\n");
  return EXIT_OK;
}
