/** `blocksim profiles | invariants | commands | events`: what the simulator knows, listed. */
import { listInvariants } from "../sim/check/index.js";
import { QUERY_WAIT_RULE } from "../sim/mgmt/invariants.js";
import { ALL_PROFILES as PROFILES } from "../sim/mgmt/profiles.js";
import type { ArgSpec, ArgType } from "../sim/qmp/args.js";
import { describeMemberType, QEMU_EVENTS, type EventSpec } from "../sim/qmp/events.js";
import { COMMANDS } from "../sim/qmp/qemu.js";
import { REPLIES } from "../sim/qmp/replies.js";
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

/** Each command with its arguments (`name?` is optional) and what it answers. */
export function listCommands(io: Io): number {
  for (const name of Object.keys(COMMANDS).sort()) {
    const reply = Object.hasOwn(REPLIES, name) ? REPLIES[name] : undefined;
    const answers = !reply ? "" : reply.kind === "empty" ? "  → {}" : reply.kind === "string" ? "  → str" :
      `  → ${reply.kind === "list" ? `[${reply.type}]` : reply.type}: ${Object.entries(reply.members).filter(([, m]) => m.modelled).map(([k, m]) => k + (m.optional ? "?" : "")).join(", ")}`;
    io.out(`${name}${answers}\n${describeArgs(COMMANDS[name].args, "    ") || "    (no arguments)"}\n`);
  }
  return EXIT_OK;
}

function describeArgs(spec: ArgSpec, indent: string): string {
  return Object.entries(spec).map(([k, a]) => `${indent}${k}${a.optional ? "?" : ""}: ${describeArgType(a.type)}`).join("\n");
}

function describeArgType(t: ArgType): string {
  if (typeof t === "string") return t;
  if ("enum" in t) return t.enum.join(" | ");
  if ("list" in t) return `[${describeArgType(t.list)}]`;
  return `{ ${Object.entries(t.struct).map(([k, a]) => `${k}${a.optional ? "?" : ""}: ${describeArgType(a.type)}`).join(", ")} }`;
}

/** QEMU 7.2's events with their data members (`name?` is optional): those blocksim sends, then the others. */
export function listEvents(io: Io): number {
  const line = (e: EventSpec) => `${e.name}\n${Object.entries(e.members).map(([k, m]) => `    ${k}${m.optional ? "?" : ""}: ${describeMemberType(m.type)}`).join("\n") || "    (no data)"}\n`;
  io.out("Sent by blocksim:\n" + QEMU_EVENTS.filter((e) => e.modelled).map(line).join(""));
  io.out("\nValid in QEMU 7.2, not modelled by blocksim (an expectation naming one is an error):\n" + QEMU_EVENTS.filter((e) => !e.modelled).map(line).join(""));
  return EXIT_OK;
}
