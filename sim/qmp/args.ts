/**
 * QAPI-style argument checking, with the messages QEMU's QObject input
 * visitor gives: a missing member, a member of the wrong JSON type, an
 * unexpected member, or an enum value it does not know.
 */
import { genericError } from "../jobs/errors.js";

export type ArgType =
  | "str" | "int" | "bool" | "any"
  /** QAPI uint64 and uint32: the input visitor takes a negative integer as its two's complement (so -1 is a uint64, not a uint32). */
  | "uint64" | "uint32"
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
 * A spec member of this name lets members the spec does not list through to
 * the command as they are: QEMU 7.2's commands without a generated schema
 * check ('gen': false, such as device_add) read their arguments themselves.
 */
export const OTHER_MEMBERS = "*";

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

const JSON_NAME: Record<string, string> = { str: "string", int: "integer", bool: "boolean" };

/** Whether a JSON number is one QEMU's input visitor reads as a uint64 (an int64 or a uint64, negatives wrapping). */
const asUint64 = (v: unknown): boolean => typeof v === "number" && Number.isInteger(v) && v >= -(2 ** 63) && v < 2 ** 64;

/** Checks arguments against a spec; throws a GenericError naming the parameter (path like `actions[0].data.device`). */
export type ArgCheck = (value: unknown, path?: string) => Record<string, unknown>;

/** A member's value check: its type, then whether blocksim models it. Throws on a bad value. */
type ValueCheck = (v: unknown, p: string) => void;

interface Member {
  name: string;
  optional: boolean;
  check: ValueCheck;
}

/**
 * Compiles a spec's check once (specs are module constants; every command's
 * arguments are checked against one). Errors come in the order QEMU's input
 * visitor meets them: the spec's members in order (missing, or a bad value),
 * then a member the spec does not have.
 */
export function argChecker(spec: ArgSpec): ArgCheck {
  const open = Object.hasOwn(spec, OTHER_MEMBERS);
  const members: Member[] = Object.entries(spec).filter(([name]) => name !== OTHER_MEMBERS)
    .map(([name, m]) => ({ name, optional: m.optional === true, check: memberCheck(m) }));
  const byName = new Map(members.map((m) => [m.name, m]));
  const required = members.filter((m) => !m.optional).length;

  /** The spec walked in its order: the first problem is the one QEMU reports. */
  const inOrder = (obj: Record<string, unknown>, path: string): void => {
    for (const m of members) {
      const v = obj[m.name];
      if (v === undefined) {
        if (!m.optional) throw genericError(`Parameter '${path ? `${path}.${m.name}` : m.name}' is missing`);
        continue;
      }
      m.check(v, path ? `${path}.${m.name}` : m.name);
    }
    for (const name of Object.keys(obj)) {
      if (!open && !Object.hasOwn(spec, name)) throw genericError(`Parameter '${path ? `${path}.${name}` : name}' is unexpected`);
    }
  };

  /**
   * Whether `obj` is well formed, looking only at the members it has: for
   * nearly every command this is all, and it is cheap (a lookup of a member
   * an argument object lacks is a slow miss). Throws or returns false on a
   * problem, which inOrder then names.
   */
  const wellFormed = (obj: Record<string, unknown>, path: string): boolean => {
    let present = 0;
    for (const name in obj) {
      const m = byName.get(name);
      if (m === undefined) {
        if (open) continue;
        return false;
      }
      const v = obj[name];
      if (v === undefined) continue;
      if (!m.optional) present++;
      m.check(v, path ? `${path}.${name}` : name);
    }
    return present === required;
  };

  return (value, path = "") => {
    if (value === undefined || value === null) value = {};
    if (typeof value !== "object" || Array.isArray(value)) {
      throw genericError(path ? `Invalid parameter type for '${path}', expected: object` : "QMP input member 'arguments' must be an object");
    }
    const obj = value as Record<string, unknown>;
    let ok: boolean;
    try {
      ok = wellFormed(obj, path);
    } catch {
      ok = false;
    }
    if (!ok) inOrder(obj, path);
    return obj;
  };
}

function memberCheck(m: ArgSpec[string]): ValueCheck {
  const type = valueCheck(m.type);
  if (m.unmodelled) {
    return (v, p) => {
      type(v, p);
      throw new NotModelledError(`parameter '${p}'`);
    };
  }
  const values = m.unmodelledValues;
  if (values === undefined) return type;
  return (v, p) => {
    type(v, p);
    if (values.includes(v)) throw new NotModelledError(`'${p}': ${JSON.stringify(v)}`);
  };
}

/** The last member of a path (`options[0].discard` → `discard`); "null" for a list element. */
function memberName(path: string): string {
  const last = path.slice(path.lastIndexOf(".") + 1);
  return /\]$/.test(last) ? "null" : last;
}

function valueCheck(t: ArgType): ValueCheck {
  if (t === "any") return () => {};
  // QEMU's unsigned visitors answer QERR_INVALID_PARAMETER_VALUE ("expects"), not a type error.
  if (t === "uint64") {
    return (v, p) => {
      if (!asUint64(v)) throw genericError(`Parameter '${p}' expects uint64`);
    };
  }
  if (t === "uint32") {
    return (v, p) => {
      if (!asUint64(v)) throw genericError(`Parameter '${p}' expects uint64`);
      if ((v as number) < 0 || (v as number) > 0xffffffff) throw genericError(`Parameter '${p}' expects uint32_t`);
    };
  }
  if (typeof t === "string") {
    const ok: (v: unknown) => boolean =
      t === "str" ? (v) => typeof v === "string" :
      t === "bool" ? (v) => typeof v === "boolean" :
      (v) => Number.isSafeInteger(v);
    const expected = JSON_NAME[t];
    return (v, p) => {
      if (!ok(v)) throw genericError(`Invalid parameter type for '${p}', expected: ${expected}`);
    };
  }
  if ("enum" in t) {
    return (v, p) => {
      if (typeof v !== "string") throw genericError(`Invalid parameter type for '${p}', expected: string`);
      if (t.unmodelled?.includes(v)) throw new NotModelledError(`'${p}': '${v}'`);
      // QEMU's input_type_enum names the member alone, not its path (a list element has no name: "null")
      if (!t.enum.includes(v)) throw genericError(`Parameter '${memberName(p)}' does not accept value '${v}'`);
    };
  }
  if ("list" in t) {
    const item = valueCheck(t.list);
    return (v, p) => {
      if (!Array.isArray(v)) throw genericError(`Invalid parameter type for '${p}', expected: array`);
      v.forEach((x, i) => item(x, `${p}[${i}]`));
    };
  }
  const struct = argChecker(t.struct);
  return (v, p) => void struct(v, p);
}
