/**
 * Turns zod issues into Problems people can act on: the line, the path,
 * what was expected and what was found, and a "did you mean" for a
 * misspelt key or value. For a union (a step is one of several shapes) the
 * branch that fits the data best speaks, not all of them.
 */
import type { z } from "zod";
import { closest, didYouMean, formatPath, MAX_PROBLEMS, type Problem } from "./errors.js";

type Path = (string | number)[];
type Issue = z.core.$ZodIssue;
type Def = { type: string; [k: string]: unknown };

/** Where a path points in the source: line/column of the node (or of the key, for `key`). */
export type Locate = (path: Path, opts?: { key?: string }) => { line: number; column: number } | undefined;

function def(s: unknown): Def {
  return (s as { _zod: { def: Def } })._zod.def;
}

function dataAt(data: unknown, path: Path): unknown {
  let v = data;
  for (const k of path) {
    if (v === null || typeof v !== "object") return undefined;
    v = (v as Record<string | number, unknown>)[k];
  }
  return v;
}

/** Strips wrappers (optional, default, pipe…) down to the schema that judges the value. */
function unwrap(s: unknown): unknown {
  for (;;) {
    const d = def(s);
    if (["optional", "default", "nullable", "prefault", "catch", "readonly", "nonoptional"].includes(d.type)) s = d.innerType;
    else if (d.type === "pipe") s = d.in;
    else return s;
  }
}

/** The object option of a union that fits `data` best (by discriminator, then by shared keys). */
function pickOption(options: unknown[], data: unknown, discriminator?: string): unknown {
  const objs = options.map(unwrap).filter((o) => def(o).type === "object");
  if (objs.length === 0 || data === null || typeof data !== "object" || Array.isArray(data)) return undefined;
  const rec = data as Record<string, unknown>;
  if (discriminator) {
    const hit = objs.find((o) => {
      const lit = def(unwrap(shapeOf(o)[discriminator]));
      return lit.type === "literal" && (lit.values as unknown[]).includes(rec[discriminator]);
    });
    if (hit) return hit;
  }
  let best = objs[0], bestScore = -Infinity;
  for (const o of objs) {
    const keys = Object.keys(shapeOf(o));
    const other = Object.keys(rec).filter((k) => !keys.includes(k));
    // A misspelt key still points at its branch: "undran" votes for the branch with "undrain".
    const score = Object.keys(rec).length - other.length - other.length + 0.5 * other.filter((k) => closest(k, keys) !== undefined).length;
    if (score > bestScore) {
      best = o;
      bestScore = score;
    }
  }
  return best;
}

function shapeOf(o: unknown): Record<string, unknown> {
  return def(o).shape as Record<string, unknown>;
}

/** The schema judging the value at `path` below `schema`, following the data through unions. */
function schemaAt(schema: unknown, path: Path, data: unknown): unknown {
  let s: unknown = schema, v = data;
  for (const k of path) {
    s = unwrap(s);
    let d = def(s);
    if (d.type === "union") {
      s = pickOption(d.options as unknown[], v, d.discriminator as string | undefined);
      if (s === undefined) return undefined;
      d = def(s);
    }
    if (d.type === "object") s = shapeOf(s)[String(k)];
    else if (d.type === "array") s = d.element;
    else if (d.type === "record") s = d.valueType;
    else if (d.type === "tuple") s = (d.items as unknown[])[Number(k)];
    else return undefined;
    if (s === undefined) return undefined;
    v = v !== null && typeof v === "object" ? (v as Record<string | number, unknown>)[k] : undefined;
  }
  s = unwrap(s);
  if (def(s).type === "union") return pickOption(def(s).options as unknown[], v, def(s).discriminator as string | undefined) ?? s;
  return s;
}

/** What a value is, for "got …". */
export function describeValue(v: unknown): string {
  if (v === undefined) return "nothing";
  if (v === null) return "null";
  if (Array.isArray(v)) return "a list";
  if (typeof v === "object") return "a mapping";
  if (typeof v === "string") return JSON.stringify(v.length > 40 ? `${v.slice(0, 40)}…` : v);
  return `${typeof v} ${String(v)}`;
}

const TYPE_NAMES: Record<string, string> = { object: "a mapping", record: "a mapping", map: "a mapping", array: "a list", string: "a string", number: "a number", boolean: "true or false", int: "a whole number" };

/**
 * Converts zod issues for `data` (validated against `schema`) into problems
 * in `file`. Branch issues of unions are reduced to the best-fitting branch.
 */
export function issuesToProblems(issues: readonly Issue[], schema: unknown, data: unknown, file: string, locate: Locate): Problem[] {
  const out: (Problem & { missing?: string; suggests?: string; parent?: string })[] = [];
  const walk = (list: readonly Issue[], base: Path, branchSchema: unknown) => {
    for (const issue of list) {
      if (out.length >= 2 * MAX_PROBLEMS) return; // some are merged below (a missing key next to its misspelling)
      const path = [...base, ...(issue.path as Path)];
      const value = dataAt(data, path);
      const at = (p: Path, key?: string) => locate(p, key === undefined ? undefined : { key }) ?? locate(p.slice(0, -1)) ?? {};
      switch (issue.code) {
        case "unrecognized_keys": {
          const target = schemaAt(branchSchema, issue.path as Path, dataAt(data, base));
          const known = target && def(target).type === "object" ? Object.keys(shapeOf(target)) : [];
          for (const key of issue.keys) {
            const hint = didYouMean(key, known);
            const list = known.length > 0 && known.length <= 14 ? `; expected one of: ${known.join(", ")}` : "";
            out.push({
              file, path: formatPath([...path, key]), ...at(path, key),
              message: `unknown key "${key}"${hint}${hint ? "" : list}`,
              suggests: hint ? hint.slice(hint.indexOf('"') + 1, hint.lastIndexOf('"')) : undefined,
              parent: formatPath(path),
            });
          }
          break;
        }
        case "invalid_type": {
          if (value === undefined) {
            const key = String(path[path.length - 1]);
            out.push({ file, path: formatPath(path), ...at(path.slice(0, -1)), message: `missing required key "${key}"`, missing: key, parent: formatPath(path.slice(0, -1)) });
          } else {
            out.push({ file, path: formatPath(path), ...at(path), message: `expected ${TYPE_NAMES[issue.expected] ?? issue.expected}, got ${describeValue(value)}` });
          }
          break;
        }
        case "invalid_value": {
          const values = issue.values.map((x) => JSON.stringify(x));
          const hint = typeof value === "string" ? didYouMean(value, issue.values.map(String)) : "";
          out.push({
            file, path: formatPath(path), ...at(path),
            message: values.length === 1 ? `expected ${values[0]}, got ${describeValue(value)}` : `expected one of ${values.join(", ")}, got ${describeValue(value)}${hint}`,
          });
          break;
        }
        case "invalid_union": {
          const u = issue as Issue & { errors: Issue[][]; note?: string; discriminator?: string; options?: unknown[] };
          if (u.note === "No matching discriminator") {
            const opts = (u.options ?? []).map(String);
            const hint = typeof value === "string" ? didYouMean(value, opts) : "";
            out.push({
              file, path: formatPath(path), ...at(path),
              message: value === undefined
                ? `missing required key "${String(path[path.length - 1])}" (one of ${opts.join(", ")})`
                : `expected one of ${opts.map((o) => JSON.stringify(o)).join(", ")}, got ${describeValue(value)}${hint}`,
            });
            break;
          }
          const unionSchema = schemaAtRaw(branchSchema, issue.path as Path, dataAt(data, base));
          const options = unionSchema && def(unionSchema).type === "union" ? (def(unionSchema).options as unknown[]) : [];
          const isObj = value !== null && typeof value === "object" && !Array.isArray(value);
          const best = isObj ? pickOption(options, value, def(unionSchema ?? {}).discriminator as string | undefined) : undefined;
          const bi = best === undefined ? -1 : options.findIndex((o) => unwrap(o) === best);
          if (bi >= 0 && u.errors[bi]) {
            walk(u.errors[bi], path, options[bi]);
            break;
          }
          // Not an object (or no object option): pick a branch whose failure is deeper than the value itself, else say what fits.
          const deep = u.errors.find((errs) => errs.length > 0 && errs.every((e) => e.path.length > 0 || e.code === "custom"));
          if (deep && options.length > 0) {
            const i = u.errors.indexOf(deep);
            walk(deep, path, options[i]);
            break;
          }
          const custom = issue.message && issue.message !== "Invalid input" ? issue.message : "a value of another shape";
          out.push({ file, path: formatPath(path), ...at(path), message: `${custom.startsWith("expected") ? custom : `expected ${custom}`}, got ${describeValue(value)}` });
          break;
        }
        case "too_small":
        case "too_big": {
          const what = issue.origin === "array" ? "items" : issue.origin === "string" ? "characters" : "";
          const bound = issue.code === "too_small" ? `at least ${String(issue.minimum)}` : `at most ${String(issue.maximum)}`;
          out.push({ file, path: formatPath(path), ...at(path), message: `expected ${bound}${what ? ` ${what}` : ""}, got ${describeValue(value)}` });
          break;
        }
        default:
          out.push({ file, path: formatPath(path), ...at(path), message: issue.message.startsWith("Invalid input") ? `invalid value ${describeValue(value)}` : issue.message });
      }
    }
  };
  walk(issues, [], schema);
  // "unknown key 'sise' (did you mean 'size'?)" makes "missing required key 'size'" at the same place redundant.
  const suggested = new Set(out.filter((p) => p.suggests).map((p) => `${p.parent}|${p.suggests}`));
  const kept = out.filter((p) => !(p.missing && suggested.has(`${p.parent}|${p.missing}`)));
  const seen = new Set<string>();
  return kept
    .map(({ missing: _m, suggests: _s, parent: _p, ...p }) => p)
    .filter((p) => {
      const k = `${p.path}|${p.message}`;
      if (seen.has(k)) return false;
      seen.add(k);
      return true;
    })
    .slice(0, MAX_PROBLEMS);
}

/** Like schemaAt but leaves a union at the end of the path as the union itself. */
function schemaAtRaw(schema: unknown, path: Path, data: unknown): unknown {
  if (path.length === 0) return unwrap(schema);
  const parent = schemaAt(schema, path.slice(0, -1), data);
  if (parent === undefined) return undefined;
  const d = def(parent), k = path[path.length - 1];
  let s: unknown;
  if (d.type === "object") s = shapeOf(parent)[String(k)];
  else if (d.type === "array") s = d.element;
  else if (d.type === "record") s = d.valueType;
  else if (d.type === "tuple") s = (d.items as unknown[])[Number(k)];
  return s === undefined ? undefined : unwrap(s);
}
