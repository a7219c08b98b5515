/**
 * Argument checks name the problem QEMU's input visitor meets first: the
 * spec's members in order (missing, or a bad value), then a member the spec
 * does not have. argChecker has a fast path that looks only at the members
 * an argument object has, in the object's order; these tests hold it to the
 * spec-order answer, for every command's real spec and arguments both good
 * and bad.
 */
import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { QmpError } from "../../sim/jobs/errors.js";
import { argChecker, NotModelledError, OTHER_MEMBERS, type ArgSpec, type ArgType } from "../../sim/qmp/args.js";
import { COMMANDS } from "../../sim/qmp/qemu.js";

/** What a check gives, as a user sees it: the QMP error, the not-modelled refusal, or "ok". */
function outcome(check: () => unknown): string {
  try {
    check();
    return "ok";
  } catch (e) {
    if (e instanceof QmpError) return `${e.cls}: ${e.desc}`;
    if (e instanceof NotModelledError) return `not modelled: ${e.message}`;
    throw e;
  }
}

/**
 * The answer in QEMU's order, asked member by member. Each member's value is
 * checked through the slow path: in a spec that also requires a member the
 * arguments never have, so the fast path always gives up and the spec is
 * walked in order (the value first, then the missing member: "ok").
 */
function inSpecOrder(spec: ArgSpec, args: Record<string, unknown>): string {
  for (const [name, m] of Object.entries(spec)) {
    if (name === OTHER_MEMBERS) continue;
    const v = args[name];
    if (v === undefined) {
      if (!m.optional) return `GenericError: Parameter '${name}' is missing`;
      continue;
    }
    const one = outcome(() => argChecker({ [name]: m, [ABSENT]: { type: "str" } })({ [name]: v }));
    if (one !== `GenericError: Parameter '${ABSENT}' is missing`) return one;
  }
  if (Object.hasOwn(spec, OTHER_MEMBERS)) return "ok"; // the command reads the others itself
  for (const name of Object.keys(args)) if (!Object.hasOwn(spec, name)) return `GenericError: Parameter '${name}' is unexpected`;
  return "ok";
}

const ABSENT = "#never-given";

/** The same entries, each object's keys (nested ones too) in reverse order. */
function reversed(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(reversed);
  if (v === null || typeof v !== "object") return v;
  return Object.fromEntries(Object.entries(v).reverse().map(([k, x]) => [k, reversed(x)]));
}

const badValue = fc.constantFrom<unknown>(undefined, null, "", "x", -1, 1.5, 2 ** 53, true, false, [], [1], {}, { a: 1 });

/** Mostly well-formed values of a type, sometimes not. */
function valueOf(t: ArgType, depth = 0): fc.Arbitrary<unknown> {
  const good: fc.Arbitrary<unknown> =
    t === "str" ? fc.constantFrom("src", "tgt", "j0") :
    t === "int" ? fc.constantFrom(0, 7, -3) :
    t === "uint64" ? fc.constantFrom(0, 65536, -1) :
    t === "uint32" ? fc.constantFrom(0, 65536, 2 ** 32 - 1) :
    t === "bool" ? fc.boolean() :
    t === "any" ? fc.constantFrom<unknown>("s", 1, { type: "abort" }) :
    "enum" in t ? fc.constantFrom(...t.enum, ...(t.unmodelled ?? [])) :
    "list" in t ? (depth > 2 ? fc.constant([]) : fc.array(valueOf(t.list, depth + 1), { maxLength: 3 })) :
    depth > 2 ? fc.constant({}) : argsOf(t.struct, depth + 1);
  return fc.oneof({ arbitrary: good, weight: 6 }, { arbitrary: badValue, weight: 1 });
}

/** Argument objects for a spec: a subset of its members (usually every required one) and now and then an extra one, in any key order. */
function argsOf(spec: ArgSpec, depth = 0): fc.Arbitrary<Record<string, unknown>> {
  const names = Object.keys(spec).filter((n) => n !== OTHER_MEMBERS);
  const required = names.filter((n) => !spec[n].optional);
  const members = fc.tuple(
    fc.shuffledSubarray([...names, "extra"]),
    fc.boolean(),
    fc.tuple(...names.map((n) => valueOf(spec[n].type, depth)), badValue),
  ).map(([chosen, allRequired, values]) => {
    const keys = allRequired ? [...new Set([...required, ...chosen.filter((n) => n !== "extra")]), ...chosen.filter((n) => n === "extra")] : chosen;
    return Object.fromEntries(keys.map((k) => [k, k === "extra" ? values[values.length - 1] : values[names.indexOf(k)]]));
  });
  return names.length === 0 ? fc.constantFrom({}, { extra: 1 }) : members;
}

describe("QMP argument checks", () => {
  it("name the first problem in the spec's order, whatever the order of the keys, for every command", () => {
    let ok = 0, refused = 0;
    for (const [name, command] of Object.entries(COMMANDS)) {
      const check = argChecker(command.args);
      fc.assert(
        fc.property(argsOf(command.args), (args) => {
          const got = outcome(() => check(args));
          expect(got, `${name} ${JSON.stringify(args)}`).toBe(inSpecOrder(command.args, args));
          expect(outcome(() => check(reversed(args))), `${name} ${JSON.stringify(args)} (keys reversed)`).toBe(got);
          if (got === "ok") ok++;
          else refused++;
        }),
        { seed: 17, numRuns: 60 },
      );
    }
    // Both paths were taken, often.
    expect(ok).toBeGreaterThan(300);
    expect(refused).toBeGreaterThan(300);
  });

  it("a spec with OTHER_MEMBERS lets members it does not list through, and still checks those it lists", () => {
    const check = argChecker({ [OTHER_MEMBERS]: { type: "any", optional: true }, driver: { type: "str" }, bus: { type: "any", optional: true, unmodelled: true } });
    expect(outcome(() => check({ driver: "d", foo: 1 }))).toBe("ok");
    expect(outcome(() => check({ foo: 1, driver: "d" }))).toBe("ok");
    expect(outcome(() => check({ foo: 1 }))).toBe("GenericError: Parameter 'driver' is missing");
    expect(outcome(() => check({ foo: 1, driver: 5 }))).toBe("GenericError: Invalid parameter type for 'driver', expected: string");
    expect(outcome(() => check({ foo: 1, driver: "d", bus: "pci.0" }))).toBe("not modelled: valid in QEMU 7.2, not modelled by blocksim: parameter 'bus'");
  });

  it("a bad value in an earlier member comes before a missing or unexpected one, wherever it stands in the object", () => {
    const spec: ArgSpec = {
      device: { type: "str" },
      sync: { type: { enum: ["full", "top"] } },
      speed: { type: "int", optional: true },
      compress: { type: "bool", optional: true, unmodelled: true },
    };
    const check = argChecker(spec);
    const cases: [Record<string, unknown>, string][] = [
      [{ extra: 1, sync: "full", device: "d" }, "GenericError: Parameter 'extra' is unexpected"],
      [{ extra: 1, sync: "full", device: 5 }, "GenericError: Invalid parameter type for 'device', expected: string"],
      [{ speed: "1", device: "d" }, "GenericError: Parameter 'sync' is missing"],
      [{ speed: "1", sync: "fast", device: "d" }, "GenericError: Parameter 'sync' does not accept value 'fast'"],
      [{ compress: true, speed: "1", sync: "full", device: "d" }, "GenericError: Invalid parameter type for 'speed', expected: integer"],
      [{ compress: true, sync: "full", device: "d", extra: 1 }, "not modelled: valid in QEMU 7.2, not modelled by blocksim: parameter 'compress'"],
      [{ sync: "full", device: undefined }, "GenericError: Parameter 'device' is missing"],
      [{ sync: "full", device: "d", speed: undefined }, "ok"],
      [{ sync: "full", device: "d", extra: undefined }, "GenericError: Parameter 'extra' is unexpected"],
      // a name every JavaScript object inherits is no member of a spec
      [{ sync: "full", device: "d", constructor: 1 }, "GenericError: Parameter 'constructor' is unexpected"],
    ];
    for (const [args, want] of cases) expect(outcome(() => check(args)), JSON.stringify(args)).toBe(want);
  });

  it("unsigned members answer as QEMU's input visitor does: a negative uint64 wraps, a uint32 beyond 2^32 - 1 or negative is refused (goldens/qmp_granularity_args, blockdev_add_args)", () => {
    const check = argChecker({ g: { type: "uint32", optional: true }, l: { type: "uint64", optional: true } });
    const cases: [Record<string, unknown>, string][] = [
      [{ g: 2 ** 31 }, "ok"],
      [{ g: 2 ** 32 }, "GenericError: Parameter 'g' expects uint32_t"],
      [{ g: -512 }, "GenericError: Parameter 'g' expects uint32_t"],
      [{ g: "64k" }, "GenericError: Parameter 'g' expects uint64"],
      [{ l: -5 }, "ok"],
      [{ l: 2 ** 63 }, "ok"],
      [{ l: 2 ** 64 }, "GenericError: Parameter 'l' expects uint64"],
      [{ l: 1.5 }, "GenericError: Parameter 'l' expects uint64"],
      [{ l: true }, "GenericError: Parameter 'l' expects uint64"],
    ];
    for (const [args, want] of cases) expect(outcome(() => check(args)), JSON.stringify(args)).toBe(want);
  });

  it("a bad enum value names the member alone, as QEMU's input_type_enum does; a value of the wrong type names its path (goldens/qmp_enum_member_names)", () => {
    const check = argChecker({ o: { type: { struct: { discard: { type: { enum: ["ignore", "unmap"] }, optional: true } } } } });
    const cases: [Record<string, unknown>, string][] = [
      [{ o: { discard: "bogus" } }, "GenericError: Parameter 'discard' does not accept value 'bogus'"],
      [{ o: { discard: 1 } }, "GenericError: Invalid parameter type for 'o.discard', expected: string"],
    ];
    for (const [args, want] of cases) expect(outcome(() => check(args)), JSON.stringify(args)).toBe(want);
  });
});
