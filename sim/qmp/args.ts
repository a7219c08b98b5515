/**
 * QAPI-style argument checking, with the messages QEMU's QObject input
 * visitor gives: a missing member, a member of the wrong JSON type, an
 * unexpected member, or an enum value it does not know.
 */
import { genericError } from "../jobs/errors.js";

export type ArgType =
  | "str" | "int" | "bool" | "any" | "size"
  /** `unmodelled`: values QEMU 7.2 accepts that blocksim does not model. */
  | { enum: readonly string[]; unmodelled?: readonly string[] }
  | { struct: ArgSpec }
  | { list: ArgType };

/**
 * `unmodelled`: a member QEMU 7.2 accepts that blocksim does not model (any use is refused as such);
 * `unmodelledValues`: values of a scalar member that are refused so (the others are modelled).
 */
export type ArgSpec = Readonly<Record<string, { type: ArgType; optional?: boolean; unmodelled?: boolean; unmodelledValues?: readonly unknown[] }>>;

/**
 * A command uses something valid in QEMU 7.2 that blocksim does not model.
 * Not a QmpError: a real QEMU would accept it, so no QMP error class is
 * right; the scenario loader reports it before a run, and inside a run it
 * ends the run as a failure naming what is missing.
 */
export class NotModelledError extends Error {
  override name = "NotModelledError";
  constructor(what: string) {
    super(`valid in QEMU 7.2, not modelled by blocksim: ${what}`);
  }
}

/** What of `value` is valid in QEMU 7.2 but not modelled (paths like `copy-mode: write-blocking`), without judging the rest. */
export function unmodelledArgs(spec: ArgSpec, value: unknown, path = ""): string[] {
  if (value === null || typeof value !== "object" || Array.isArray(value)) return [];
  const out: string[] = [];
  for (const [name, v] of Object.entries(value as Record<string, unknown>)) {
    const m = Object.hasOwn(spec, name) ? spec[name] : undefined;
    if (!m || v === undefined) continue;
    const p = path ? `${path}.${name}` : name;
    if (m.unmodelled) out.push(`parameter '${p}'`);
    else if (m.unmodelledValues?.includes(v)) out.push(`'${p}': ${JSON.stringify(v)}`);
    else out.push(...unmodelledValue(m.type, v, p));
  }
  return out;
}

function unmodelledValue(t: ArgType, v: unknown, p: string): string[] {
  if (typeof t === "string") return [];
  if ("enum" in t) return typeof v === "string" && t.unmodelled?.includes(v) ? [`'${p}': '${v}'`] : [];
  if ("list" in t) return Array.isArray(v) ? v.flatMap((x, i) => unmodelledValue(t.list, x, `${p}[${i}]`)) : [];
  return unmodelledArgs(t.struct, v, p);
}

const JSON_NAME: Record<string, string> = { str: "string", int: "integer", size: "integer", bool: "boolean" };

/** A spec's members in order, listed once per spec (specs are module constants; every command checks one). */
const MEMBERS = new WeakMap<ArgSpec, [string, ArgSpec[string]][]>();
function membersOf(spec: ArgSpec): [string, ArgSpec[string]][] {
  let list = MEMBERS.get(spec);
  if (list === undefined) MEMBERS.set(spec, (list = Object.entries(spec)));
  return list;
}

/** Checks `value` against `spec`; throws a GenericError naming the parameter (path like `actions[0].data.device`). */
export function checkArgs(spec: ArgSpec, value: unknown, path = ""): Record<string, unknown> {
  if (value === undefined || value === null) value = {};
  if (typeof value !== "object" || Array.isArray(value)) {
    throw genericError(path ? `Invalid parameter type for '${path}', expected: object` : "QMP input member 'arguments' must be an object");
  }
  const obj = value as Record<string, unknown>;
  for (const [name, m] of membersOf(spec)) {
    const v = obj[name];
    if (v === undefined) {
      if (!m.optional) throw genericError(`Parameter '${path ? `${path}.${name}` : name}' is missing`);
      continue;
    }
    const p = path ? `${path}.${name}` : name;
    checkValue(m.type, v, p);
    if (m.unmodelled) throw new NotModelledError(`parameter '${p}'`);
    if (m.unmodelledValues?.includes(v)) throw new NotModelledError(`'${p}': ${JSON.stringify(v)}`);
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
    if (t.unmodelled?.includes(v)) throw new NotModelledError(`'${p}': '${v}'`);
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
