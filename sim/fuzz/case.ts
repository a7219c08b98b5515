/**
 * The schema of a generated fuzz case as a replay file holds it (subject
 * `fuzz`): checked before it runs, with the limits of untrusted input, so a
 * hand-edited or hostile case gets an error naming the path inside it.
 */
import { z } from "zod";
import { ERRNOS } from "../disk/index.js";
import { InputError } from "../scenario/errors.js";
import { issuesToProblems, type Locate } from "../scenario/issues.js";
import { LIMITS } from "../scenario/limits.js";
import type { FuzzScenario } from "./model.js";

const ns = z.number().int().nonnegative().max(3_600e9);
const name = z.string().min(1).max(200);
const OPS = ["read", "write", "flush", "write-zeroes", "discard"] as const;

const Fault = z.strictObject({
  op: z.union([z.enum(OPS), z.array(z.enum(OPS)).max(5)]).optional(),
  startBytes: z.number().int().nonnegative().optional(),
  endBytes: z.number().int().nonnegative().optional(),
  issuer: z.string().max(200).optional(),
  errno: z.enum(ERRNOS as unknown as [string, ...string[]]),
  once: z.boolean().optional(),
  afterRequests: z.number().int().nonnegative().max(1e9).optional(),
  choose: z.string().max(200).optional(),
});

const Action = z.union([
  z.strictObject({ atNs: ns, execute: name, arguments: z.record(z.string(), z.unknown()).optional() }),
  z.strictObject({ atNs: ns, drain: name, forNs: ns }),
  z.strictObject({ atNs: ns, guest: name, requests: z.number().int().nonnegative().max(1_000_000), intervalNs: ns }),
]);

export const FuzzCase = z.strictObject({
  name: z.string().max(200).optional(),
  devices: z.array(z.strictObject({
    name, sizeBytes: z.number().int().positive().max(2 ** 40), latencyNs: ns, latencyMaxNs: ns.optional(),
    faults: z.array(Fault).max(LIMITS.deviceRanges).optional(),
  })).max(LIMITS.devices),
  nodes: z.array(z.record(z.string(), z.unknown())).max(LIMITS.nodes),
  actions: z.array(Action).max(LIMITS.steps),
  maxTimeNs: ns.optional(),
});

/** The fuzz case at `path` inside a replay file, checked; an InputError naming file and path otherwise. */
export function parseFuzzCase(data: unknown, file: string, at: (string | number)[], locate: Locate = () => undefined): FuzzScenario {
  const r = FuzzCase.safeParse(data);
  if (!r.success) {
    const prefix = at.map((k) => (typeof k === "number" ? `[${k}]` : `.${k}`)).join("").replace(/^\./, "");
    const problems = issuesToProblems(r.error.issues, FuzzCase, data, file, (p, o) => locate([...at, ...p], o));
    throw new InputError(problems.map((p) => ({ ...p, path: p.path ? `${prefix}${p.path.startsWith("[") ? "" : "."}${p.path}` : prefix })));
  }
  return r.data as FuzzScenario;
}
