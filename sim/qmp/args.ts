/**
 * QAPI-style argument checking, with the messages QEMU's QObject input
 * visitor gives: a missing member, a member of the wrong JSON type, an
 * unexpected member, or an enum value it does not know.
 */
import { genericError } from "../jobs/errors.js";

export type ArgType =
  | "str" | "int" | "bool" | "any" | "size"
  | { enum: readonly string[] }
  | { struct: ArgSpec }
  | { list: ArgType };

export type ArgSpec = Readonly<Record<string, { type: ArgType; optional?: boolean }>>;

const JSON_NAME: Record<string, string> = { str: "string", int: "integer", size: "integer", bool: "boolean" };

/** Checks `value` against `spec`; throws a GenericError naming the parameter (path like `actions[0].data.device`). */
export function checkArgs(spec: ArgSpec, value: unknown, path = ""): Record<string, unknown> {
  if (value === undefined || value === null) value = {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw genericError(path ? `Invalid parameter type for '${path}', expected: object` : "QMP input member 'arguments' must be an object");
  }
  const obj = value as Record<string, unknown>;
  for (const [name, m] of Object.entries(spec)) {
    const p = path ? `${path}.${name}` : name;
    if (obj[name] === undefined) {
      if (!m.optional) throw genericError(`Parameter '${p}' is missing`);
      continue;
    }
    checkValue(m.type, obj[name], p);
  }
  for (const name of Object.keys(obj)) {
    if (!(name in spec)) throw genericError(`Parameter '${path ? `${path}.${name}` : name}' is unexpected`);
  }
  return obj;
}

function checkValue(t: ArgType, v: unknown, p: string): void {
  if (t === "any") return;
  if (typeof t === "string") {
    const ok =
      t === "str" ? typeof v === "string" :
      t === "bool" ? typeof v === "boolean" :
      t === "int" ? Number.isSafeInteger(v) :
      Number.isSafeInteger(v) && (v as number) >= 0;
    if (!ok) throw genericError(`Invalid parameter type for '${p}', expected: ${JSON_NAME[t]}`);
    return;
  }
  if ("enum" in t) {
    if (typeof v !== "string") throw genericError(`Invalid parameter type for '${p}', expected: string`);
    if (!t.enum.includes(v)) throw genericError(`Parameter '${p}' does not accept value '${v}'`);
    return;
  }
  if ("list" in t) {
    if (!Array.isArray(v)) throw genericError(`Invalid parameter type for '${p}', expected: array`);
    v.forEach((x, i) => checkValue(t.list, x, `${p}[${i}]`));
    return;
  }
  checkArgs(t.struct, v, p);
}
