/**
 * Loads scenario files (YAML or JSON — JSON is read by the same YAML parser,
 * so both get line numbers), resolves `import`s of shared fragments
 * (devices, nodes, guests) with cycle detection, validates against the
 * schema, then checks what a schema cannot: names that refer to other
 * things (devices, nodes, steps, profiles, invariants, commands) exist.
 *
 * Every problem becomes an InputError naming file, line, path and what was
 * expected; nothing here throws anything else for bad input.
 */
import { createHash } from "node:crypto";
import { closeSync, constants, fstatSync, openSync, readSync, realpathSync, statSync } from "node:fs";
import { dirname, relative, resolve, sep } from "node:path";
import { isMap, isPair, isScalar, isSeq, LineCounter, parseDocument, visit, type Document } from "yaml";
import { ALL_PROFILES as PROFILES } from "../mgmt/profiles.js";
import { QUERY_WAIT_RULE } from "../mgmt/invariants.js";
import { COMMANDS } from "../qmp/qemu.js";
import { didYouMean, InputError, MAX_PROBLEMS, type Problem } from "./errors.js";
import { INVARIANTS } from "../check/index.js";
import { issuesToProblems, type Locate } from "./issues.js";
import { LIMITS } from "./limits.js";
import { withBareNumbers } from "./units.js";
import { Fragment, Scenario, type Device, type Guest, type Node } from "./schema.js";
import { allowsError } from "./reply-expect.js";
import { checkVocabulary } from "./vocabulary.js";

/** A scenario ready to run, with where it came from. */
export interface LoadedScenario {
  scenario: Scenario;
  /** The file as given (for messages), or "<inline>". */
  file: string;
  /** sha256 over the file and every import, in load order: what a replay file pins. */
  contentHash: string;
}

interface Parsed {
  file: string;
  data: unknown;
  locate: Locate;
}

/**
 * Reads a whole input file, refusing what is not a regular file (a FIFO
 * would block forever, /dev/zero never ends) and anything larger than
 * `maxBytes`. Errors name the file and the problem, never its content.
 */
export function readInputFile(path: string, display = path, maxBytes: number = LIMITS.fileBytes): string {
  const fail = (why: string) => new InputError([{ file: display, path: "", message: `cannot read the file: ${why}`, reason: { kind: "unreadable", why } }]);
  let fd: number;
  try {
    const st = statSync(path);
    if (st.isDirectory()) throw fail("is a directory, not a file");
    if (!st.isFile()) throw fail("not a regular file (a device, FIFO or socket); blocksim reads only regular files");
    fd = openSync(path, constants.O_RDONLY | constants.O_NONBLOCK);
  } catch (e) {
    if (e instanceof InputError) throw e;
    const code = (e as NodeJS.ErrnoException).code;
    throw fail(code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code === "ENOTDIR" ? "a folder on its path is a file" : code ?? "unreadable");
  }
  try {
    const st = fstatSync(fd);
    if (!st.isFile()) throw fail("not a regular file");
    if (st.size > maxBytes) throw fail(`it has ${st.size} bytes, more than blocksim reads (${maxBytes} bytes)`);
    // Read at most one byte past the limit, whatever size the file claims (it may grow).
    const buf = Buffer.alloc(Math.min(st.size, maxBytes) + 1);
    let n = 0;
    for (;;) {
      const got = readSync(fd, buf, n, buf.length - n, null);
      if (got === 0) break;
      n += got;
      if (n === buf.length) {
        if (n > maxBytes) throw fail(`it has more than ${maxBytes} bytes, more than blocksim reads`);
        break;
      }
    }
    return buf.subarray(0, n).toString("utf8");
  } catch (e) {
    if (e instanceof InputError) throw e;
    throw fail((e as NodeJS.ErrnoException).code ?? "unreadable");
  } finally {
    closeSync(fd);
  }
}

/** Reads and parses one YAML/JSON file into data plus a locator for paths. */
export function parseFile(path: string, display = path, maxBytes: number = LIMITS.fileBytes): Parsed & { text: string } {
  const text = readInputFile(path, display, maxBytes);
  return { ...parseText(text, display), text };
}

/**
 * Parses YAML/JSON text; syntax errors become problems with their line.
 * JSON text that is plain (valid JSON, no repeated key, no `__proto__`, not
 * too deep) is read by JSON.parse, which is linear and about a hundred times
 * faster than the YAML parser on a large generated file; the YAML parser
 * then runs only if a later check needs a line number. Anything else goes
 * through the YAML parser, so every error message is the same either way.
 */
export function parseText(text: string, file: string): Parsed {
  const json = plainJson(text);
  if (json !== undefined) return { file, data: json.data, locate: lazyLocator(text) };
  const lc = new LineCounter();
  const doc = parseYaml(text, lc, file);
  if (doc.errors.some((e) => /Maximum call stack/.test(e.message))) throw tooDeep(file);
  if (doc.errors.length > 0) {
    throw new InputError(doc.errors.slice(0, 5).map((e) => {
      const pos = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : undefined);
      const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      return { file, path: "", line: pos?.line, column: pos?.col, message: `not valid YAML/JSON: ${msg}`, reason: { kind: "syntax" as const } };
    }));
  }
  const locate = locator(doc, lc);
  checkShape(doc, file, lc);
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    if (e instanceof RangeError) throw tooDeep(file);
    throw new InputError([{ file, path: "", message: `cannot read the document: ${(e as Error).message}` }]);
  }
  return { file, data, locate };
}

/**
 * The YAML parser's own repeated-key check compares each key with every
 * earlier one of its mapping (quadratic: 10^5 keys took minutes), so it is
 * off and checkShape finds repeated keys with a set.
 */
function parseYaml(text: string, lc: LineCounter, file: string): Document {
  try {
    return parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false, strict: true });
  } catch (e) {
    if (e instanceof RangeError) throw tooDeep(file);
    throw e;
  }
}

/** A locator that parses the text as YAML only when first asked for a position (error paths). */
function lazyLocator(text: string): Locate {
  let locate: Locate | undefined;
  return (path, opts) => {
    if (locate === undefined) {
      const lc = new LineCounter();
      try {
        locate = locator(parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: false }), lc);
      } catch {
        locate = () => undefined;
      }
    }
    return locate(path, opts);
  };
}

/**
 * The data of `text` when it is plain JSON: JSON.parse accepts it, and a
 * scan of its tokens finds no repeated key, no `__proto__` key and no
 * nesting deeper than LIMITS.depth (JSON.parse would let each pass
 * silently). Otherwise undefined, and the YAML path says what is wrong.
 */
function plainJson(text: string): { data: unknown } | undefined {
  const start = text.trimStart()[0];
  if (start !== "{" && start !== "[") return undefined;
  let data: unknown;
  try {
    data = JSON.parse(text);
  } catch {
    return undefined;
  }
  // JSON.parse accepted the text, so its tokens are well formed: only strings, brackets and commas matter here.
  const keys: (Set<string> | null)[] = []; // per open container: the keys seen (objects) or null (arrays)
  let expectKey = false;
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i);
    if (c === 0x22 /* " */) {
      let j = i + 1, escaped = false;
      for (;; j++) {
        const d = text.charCodeAt(j);
        if (d === 0x5c /* \ */) {
          escaped = true;
          j++;
        } else if (d === 0x22) break;
      }
      if (expectKey) {
        const key = escaped ? (JSON.parse(text.slice(i, j + 1)) as string) : text.slice(i + 1, j);
        const seen = keys[keys.length - 1]!;
        if (key === "__proto__" || seen.has(key)) return undefined;
        seen.add(key);
        expectKey = false;
      }
      i = j;
    } else if (c === 0x7b /* { */ || c === 0x5b /* [ */) {
      keys.push(c === 0x7b ? new Set() : null);
      if (keys.length > LIMITS.depth) return undefined;
      expectKey = c === 0x7b;
    } else if (c === 0x7d /* } */ || c === 0x5d /* ] */) {
      keys.pop();
      expectKey = false;
    } else if (c === 0x2c /* , */) {
      expectKey = keys[keys.length - 1] instanceof Set;
    }
  }
  return { data };
}

/** Mappings and lists around a node. */
function nesting(path: readonly unknown[]): number {
  let n = 0;
  for (const x of path) if (isMap(x) || isSeq(x)) n++;
  return n;
}

function tooDeep(file: string): InputError {
  return new InputError([{ file, path: "", message: `the document nests more than ${LIMITS.depth} levels deep` }]);
}

/** Refuses documents nested deeper than LIMITS.depth and keys that would reach an object's prototype. */
function checkShape(doc: Document, file: string, lc: LineCounter): void {
  const problems: Problem[] = [];
  try {
    visit(doc, {
      Pair(_key, pair, path) {
        if (isScalar(pair.key) && pair.key.value === "__proto__") {
          const at = (pair.key as { range?: number[] }).range?.[0];
          problems.push({ file, path: "", ...(at === undefined ? {} : { line: lc.linePos(at).line, column: lc.linePos(at).col }), message: 'the key "__proto__" is not allowed (it would change an object\'s prototype, not add a key)' });
          return visit.BREAK;
        }
        if (nesting(path) > LIMITS.depth) {
          problems.push({ file, path: "", message: `the document nests more than ${LIMITS.depth} levels deep` });
          return visit.BREAK;
        }
        return undefined;
      },
      Map(_key, map) {
        // The first position of each key; the message gives lines, not the key (the file may not be a scenario).
        const seen = new Map<string, number | undefined>();
        for (const pair of map.items) {
          if (!isScalar(pair.key)) continue;
          const key = String(pair.key.value);
          const at = (pair.key as { range?: number[] }).range?.[0];
          if (seen.has(key)) {
            const first = seen.get(key);
            problems.push({
              file, path: "", ...(at === undefined ? {} : { line: lc.linePos(at).line, column: lc.linePos(at).col }),
              message: `not valid YAML/JSON: Map keys must be unique (this key is already at line ${first === undefined ? "?" : lc.linePos(first).line})`,
              reason: { kind: "syntax" },
            });
            return visit.BREAK;
          }
          seen.set(key, at);
        }
        return undefined;
      },
      Seq(_key, _seq, path) {
        if (nesting(path) > LIMITS.depth) {
          problems.push({ file, path: "", message: `the document nests more than ${LIMITS.depth} levels deep` });
          return visit.BREAK;
        }
        return undefined;
      },
    });
  } catch (e) {
    if (e instanceof RangeError) throw tooDeep(file);
    throw e;
  }
  if (problems.length > 0) throw new InputError(problems);
}


function locator(doc: Document, lc: LineCounter): Locate {
  return (path, opts) => {
    try {
      const node = path.length === 0 ? doc.contents : doc.getIn(path, true);
      let offset: number | undefined;
      if (opts?.key !== undefined && isMap(node)) {
        const pair = node.items.find((p) => isPair(p) && isScalar(p.key) && String(p.key.value) === opts.key);
        offset = (pair?.key as { range?: number[] } | undefined)?.range?.[0];
      }
      offset ??= (node as { range?: number[] } | null | undefined)?.range?.[0];
      if (offset === undefined) return undefined;
      const { line, col } = lc.linePos(offset);
      return { line, column: col };
    } catch {
      return undefined;
    }
  };
}

/** Where an item of the merged scenario came from, for messages about it. */
interface Origin {
  file: string;
  locate: Locate;
  path: (string | number)[];
}

interface Merged {
  devices: { value: Device; from: Origin }[];
  nodes: { value: Node; from: Origin }[];
  guests: { value: Guest; from: Origin }[];
  hashes: string[];
}

/** Where imports may come from. */
export interface LoadOptions {
  /**
   * Folders (or files) imports may resolve into besides the scenario's own
   * folder tree (`--allow-import PATH`).
   */
  allowImport?: string[];
  /**
   * Whether sizes, durations and rates may be bare numbers (default: in JSON
   * only — a file named .json or text that starts with "{").
   */
  bareNumbers?: boolean;
}

/** JSON keeps the default units for bare numbers; YAML, written by people, must say. */
function bareNumbersIn(file: string, text: string, opts: LoadOptions): boolean {
  return opts.bareNumbers ?? (/\.json$/i.test(file) || text.trimStart().startsWith("{"));
}

/** Loads a scenario file with its imports. */
export function loadScenarioFile(path: string, display = path, opts: LoadOptions = {}): LoadedScenario {
  const p = parseFile(path, display);
  const real = realOrResolved(path);
  return loadParsed(p, p.text, dirname(resolve(path)), real, importRoots(dirname(real), opts), bareNumbersIn(path, p.text, opts));
}

/** Loads a scenario from text (imports resolve against `baseDir`, and stay inside it). */
export function loadScenarioText(text: string, file = "<inline>", baseDir = process.cwd(), opts: LoadOptions = {}): LoadedScenario {
  return loadParsed(parseText(text, file), text, baseDir, undefined, importRoots(realOrResolved(baseDir), opts), bareNumbersIn(file, text, opts));
}

function realOrResolved(path: string): string {
  try {
    return realpathSync(path);
  } catch {
    return resolve(path);
  }
}

function importRoots(own: string, opts: LoadOptions): string[] {
  return [own, ...(opts.allowImport ?? []).map(realOrResolved)];
}

const SCENARIO_KEYS = Object.keys((Scenario as unknown as { shape: Record<string, unknown> }).shape);
const FRAGMENT_KEYS = ["import", "devices", "nodes", "guests", "description"];

/** A mapping with at least one key of `keys`: worth reporting on in detail (quoting it is fine, it is a scenario). */
function looksLike(data: unknown, keys: string[]): boolean {
  return data !== null && typeof data === "object" && !Array.isArray(data) && Object.keys(data).some((k) => keys.includes(k));
}

function loadParsed(p: Parsed, text: string, baseDir: string, absPath: string | undefined, roots: string[], bare: boolean): LoadedScenario {
  if (p.data === null || p.data === undefined) throw new InputError([{ file: p.file, path: "", message: "the file is empty: expected a mapping with at least `name`" }]);
  if (typeof p.data !== "object" || Array.isArray(p.data)) {
    throw new InputError([{ file: p.file, path: "", line: 1, message: `expected a mapping (name:, devices:, nodes:, steps:, expect: …) at the top, got ${Array.isArray(p.data) ? "a list" : typeof p.data}` }]);
  }
  if (!looksLike(p.data, SCENARIO_KEYS)) {
    // Not a scenario (a wrong file, or something sensitive): name the problem, never the file's content.
    throw new InputError([{ file: p.file, path: "", message: `not a scenario file: none of its top-level keys is a scenario key (${SCENARIO_KEYS.join(", ")})` }]);
  }
  const r = withBareNumbers(bare, () => Scenario.safeParse(p.data));
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, Scenario, p.data, p.file, p.locate));
  const scenario = r.data;
  const merged: Merged = { devices: [], nodes: [], guests: [], hashes: [sha(text)] };
  const state: ImportState = { roots, stack: absPath ? [absPath] : [], loaded: new Set(absPath ? [absPath] : []) };
  for (let i = 0; i < scenario.import.length; i++) {
    importFragment(scenario.import[i], baseDir, { file: p.file, locate: p.locate, path: ["import", i] }, state, merged);
  }
  scenario.devices.forEach((value, i) => merged.devices.push({ value, from: { file: p.file, locate: p.locate, path: ["devices", i] } }));
  scenario.nodes.forEach((value, i) => merged.nodes.push({ value, from: { file: p.file, locate: p.locate, path: ["nodes", i] } }));
  scenario.guests.forEach((value, i) => merged.guests.push({ value, from: { file: p.file, locate: p.locate, path: ["guests", i] } }));
  for (const [what, n, max] of [["devices", merged.devices.length, LIMITS.devices], ["nodes", merged.nodes.length, LIMITS.nodes], ["guests", merged.guests.length, LIMITS.guests]] as const) {
    if (n > max) throw new InputError([{ file: p.file, path: what, message: `${n} ${what} with the imported ones: at most ${max} (blocksim's limit for untrusted input)` }]);
  }
  const problems = checkReferences(scenario, merged, p);
  if (problems.length > 0) throw new InputError(problems);
  return {
    scenario: { ...scenario, import: [], devices: merged.devices.map((d) => d.value), nodes: merged.nodes.map((n) => n.value), guests: merged.guests.map((g) => g.value) },
    file: p.file,
    contentHash: sha(merged.hashes.join("\n")),
  };
}

interface ImportState {
  /** Real paths imports may resolve into (the scenario's folder, then --allow-import). */
  roots: string[];
  /** The import chain being loaded, for cycles. */
  stack: string[];
  /** Every file loaded so far: each is merged once (a diamond costs nothing). */
  loaded: Set<string>;
}

function inside(real: string, root: string): boolean {
  return real === root || real.startsWith(root.endsWith(sep) ? root : root + sep);
}

function importFragment(spec: string, baseDir: string, from: Origin, state: ImportState, merged: Merged): void {
  const abs = resolve(baseDir, spec);
  const here = from.locate(from.path);
  const refuse = (message: string) => new InputError([{ file: from.file, path: pathText(from.path), ...here, message }]);
  let real: string;
  try {
    real = realpathSync(abs);
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    throw refuse(`cannot import ${JSON.stringify(spec)}: ${code === "ENOENT" ? "no such file" : code === "EACCES" ? "permission denied" : code ?? "unreadable"} (looked for ${abs})`);
  }
  if (!state.roots.some((r) => inside(real, r))) {
    throw refuse(`cannot import ${JSON.stringify(spec)}: it resolves to ${real}, outside the scenario's folder ${state.roots[0]}; imports stay inside the scenario's folder tree unless --allow-import PATH allows another`);
  }
  if (state.stack.includes(real)) {
    const cycle = [...state.stack.slice(state.stack.indexOf(real)), real].map((f) => relative(process.cwd(), f) || f).join(" -> ");
    throw refuse(`import cycle: ${cycle}`);
  }
  if (state.loaded.has(real)) return; // already merged: a diamond
  if (state.stack.length > LIMITS.importDepth) throw refuse(`imports nest more than ${LIMITS.importDepth} deep`);
  if (state.loaded.size > LIMITS.imports) throw refuse(`more than ${LIMITS.imports} files imported (blocksim's limit)`);
  state.loaded.add(real);
  let f: Parsed & { text: string };
  const rel = relative(process.cwd(), abs);
  const display = rel === "" || rel.startsWith(`..${sep}..`) ? abs : rel;
  try {
    f = parseFile(real, display);
  } catch (e) {
    const reason = e instanceof InputError ? e.problems[0]?.reason : undefined;
    if (reason?.kind === "unreadable") throw refuse(`cannot import ${JSON.stringify(spec)}: ${reason.why} (looked for ${abs})`);
    if (e instanceof InputError && reason?.kind === "syntax") {
      // A file that is not YAML may be anything: its position, not the parser's words about its text.
      const p0 = e.problems[0];
      throw new InputError([{ file: display, path: "", line: p0.line, column: p0.column, message: "not a scenario fragment: not valid YAML/JSON here" }]);
    }
    throw e;
  }
  if (!looksLike(f.data, FRAGMENT_KEYS)) {
    // Name the file and the problem, never its lines: it may be anything readable.
    throw new InputError([{ file: f.file, path: "", message: "not a scenario fragment: expected a mapping with devices:, nodes:, guests: and/or import:" }]);
  }
  const r = withBareNumbers(bareNumbersIn(real, f.text, {}), () => Fragment.safeParse(f.data));
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, Fragment, f.data, f.file, f.locate));
  merged.hashes.push(sha(f.text));
  state.stack.push(real);
  for (let i = 0; i < r.data.import.length; i++) importFragment(r.data.import[i], dirname(abs), { file: f.file, locate: f.locate, path: ["import", i] }, state, merged);
  state.stack.pop();
  r.data.devices.forEach((value, i) => merged.devices.push({ value, from: { file: f.file, locate: f.locate, path: ["devices", i] } }));
  r.data.nodes.forEach((value, i) => merged.nodes.push({ value, from: { file: f.file, locate: f.locate, path: ["nodes", i] } }));
  r.data.guests.forEach((value, i) => merged.guests.push({ value, from: { file: f.file, locate: f.locate, path: ["guests", i] } }));
}

function pathText(path: (string | number)[]): string {
  return path.map((k, i) => (typeof k === "number" ? `[${k}]` : i === 0 ? k : `.${k}`)).join("");
}

function sha(text: string): string {
  return createHash("sha256").update(text).digest("hex");
}

/** The most clusters a device may have (one version object each). */
const MAX_CLUSTERS = 1 << 22;

/** Thrown once MAX_PROBLEMS are found: a file of 10^5 bad references stops costing more after that. */
const ENOUGH = Symbol("enough problems");

/** Cross-references: every name used is declared, every declared name is unique (at most MAX_PROBLEMS found). */
function checkReferences(s: Scenario, m: Merged, p: Parsed): Problem[] {
  const problems: Problem[] = [];
  try {
    collectReferenceProblems(s, m, p, problems);
  } catch (e) {
    if (e !== ENOUGH) throw e;
  }
  return problems;
}

function collectReferenceProblems(s: Scenario, m: Merged, p: Parsed, problems: Problem[]): void {
  const at = (o: Origin, sub: (string | number)[], message: string) => {
    problems.push({ file: o.file, path: pathText([...o.path, ...sub]), ...(o.locate([...o.path, ...sub]) ?? o.locate(o.path) ?? {}), message });
    if (problems.length >= MAX_PROBLEMS) throw ENOUGH;
  };
  const here = (path: (string | number)[], message: string) => at({ file: p.file, locate: p.locate, path: [] }, path, message);

  const checkProfile = (name: string, path: (string | number)[]) => {
    if (!PROFILES.some((x) => x.name === name)) here(path, `unknown profile "${name}"${didYouMean(name, PROFILES.map((x) => x.name))}; known profiles: ${PROFILES.map((x) => x.name).join(", ")}`);
  };
  checkProfile(s.profile, ["profile"]);
  if (s.race) {
    checkProfile(s.race["buggy-profile"], ["race", "buggy-profile"]);
    checkProfile(s.race["fixed-profile"], ["race", "fixed-profile"]);
    if (s.race["buggy-profile"] === s.race["fixed-profile"]) here(["race", "fixed-profile"], `the fixed profile is the buggy one ("${s.race["buggy-profile"]}"): a race is found under one and gone under the other`);
  }

  s.iothreads.forEach((n, i) => {
    if (s.iothreads.indexOf(n) !== i) here(["iothreads", i], `iothread "${n}" is declared twice`);
  });

  const devices = new Map<string, Origin>();
  let clusters = 0;
  for (const { value: d, from } of m.devices) {
    const prev = devices.get(d.name);
    if (prev) at(from, ["name"], `device "${d.name}" is declared twice (first in ${prev.file} at ${pathText(prev.path)})`);
    else devices.set(d.name, from);
    if (d["cluster-size"] < 512 || (d["cluster-size"] & (d["cluster-size"] - 1)) !== 0) at(from, ["cluster-size"], `expected a power of two >= 512, got ${d["cluster-size"]}`);
    if (d.size < 1) at(from, ["size"], "expected a size of at least 1 byte");
    else if (d.size / Math.max(512, d["cluster-size"]) > MAX_CLUSTERS) {
      at(from, ["size"], `${d.size} bytes make ${Math.ceil(d.size / d["cluster-size"])} clusters of ${d["cluster-size"]} bytes; blocksim keeps a version per cluster and allows at most ${MAX_CLUSTERS}: use a larger cluster-size or a smaller device`);
    } else {
      // Each device's clusters are allowed; a thousand of the largest would take tens of gigabytes together.
      clusters += Math.ceil(d.size / Math.max(512, d["cluster-size"]));
      if (clusters > LIMITS.clusters) {
        at(from, ["size"], `the devices up to this one have ${clusters} clusters together, more than blocksim's limit of ${LIMITS.clusters} (a version is kept per cluster): use larger cluster-sizes or smaller devices`);
        clusters = -Infinity; // said once
      }
    }
    d.data.forEach((r, i) => {
      if (r.length === 0) at(from, ["data", i, "length"], "expected a length of at least 1 byte");
      else if (r.offset + r.length > d.size) at(from, ["data", i], `the range ${r.offset}+${r.length} goes past the end of the device (${d.size} bytes)`);
    });
    d.faults.forEach((f, i) => checkFault(f, (sub, msg) => at(from, ["faults", i, ...sub], msg)));
  }
  const deviceNames = [...devices.keys()];

  const nodes = new Map<string, Origin>();
  const usedDevice = new Map<string, string>();
  for (const { value: n, from } of m.nodes) {
    const name = n["node-name"];
    const prev = nodes.get(name);
    if (prev) at(from, ["node-name"], `node "${name}" is declared twice (first in ${prev.file} at ${pathText(prev.path)})`);
    const checkFile = (img: { driver: string; file?: string }, sub: (string | number)[]) => {
      if (img.driver !== "raw" && img.driver !== "qcow2") return;
      const file = img.file!;
      if (!devices.has(file)) at(from, [...sub, "file"], `no device named "${file}"${didYouMean(file, deviceNames)}; declared devices: ${deviceNames.join(", ") || "none"}`);
      else if (usedDevice.has(file)) at(from, [...sub, "file"], `device "${file}" is already used by node "${usedDevice.get(file)}"`);
      else usedDevice.set(file, name);
    };
    checkFile(n, []);
    const nullSize = n.driver === "null-co" ? n.size : n.driver === "blkdebug" && n.image.driver === "null-co" ? n.image.size : undefined;
    if (nullSize !== undefined && nullSize / 65536 > MAX_CLUSTERS) {
      at(from, n.driver === "null-co" ? ["size"] : ["image", "size"], `a null-co node of ${nullSize} bytes is larger than blocksim simulates (at most ${MAX_CLUSTERS * 65536} bytes)`);
    }
    if (n.driver === "blkdebug") checkFile(n.image, ["image"]);
    if (n.driver === "qcow2" && typeof n.backing === "string" && !nodes.has(n.backing)) {
      at(from, ["backing"], `no node named "${n.backing}" declared before this one${didYouMean(n.backing, [...nodes.keys()])} (a backing node must come first)`);
    }
    if (!prev) nodes.set(name, from);
  }
  const nodeNames = [...nodes.keys()];

  const drives = new Set<string>();
  const guestNames = new Set<string>();
  for (const { value: g, from } of m.guests) {
    if (!nodes.has(g.node)) at(from, ["node"], `no node named "${g.node}"${didYouMean(g.node, nodeNames)}; declared nodes: ${nodeNames.join(", ") || "none"}`);
    const drive = g.drive ?? g.name;
    if (guestNames.has(g.name)) at(from, ["name"], `guest "${g.name}" is declared twice`);
    guestNames.add(g.name);
    if (drives.has(drive)) at(from, ["drive"], `drive "${drive}" is used by two guests`);
    else if (nodes.has(drive)) at(from, [g.drive ? "drive" : "name"], `drive "${drive}" has the name of a node; give the guest another ${g.drive ? "drive" : "name"}`);
    drives.add(drive);
    if (g.iothread !== undefined && !s.iothreads.includes(g.iothread)) {
      at(from, ["iothread"], `no iothread named "${g.iothread}"${didYouMean(g.iothread, s.iothreads)}; declared iothreads: ${s.iothreads.join(", ") || "none"} (list them in iothreads:)`);
    }
    if (g.stop !== undefined && g.stop < g.start) at(from, ["stop"], "the guest stops before it starts");
    const sizes = typeof g["request-size"] === "number" ? [g["request-size"]] : [g["request-size"].min, g["request-size"].max];
    if (g.align < 1) at(from, ["align"], "expected an alignment of at least 1 byte");
    else if (sizes.some((b) => b < g.align || b % g.align !== 0)) {
      at(from, ["request-size"], `expected a multiple of align (${g.align} bytes) of at least align, got ${sizes.join(" … ")}`);
    } else if (sizes.length === 2 && sizes[1] < sizes[0]) at(from, ["request-size"], "expected min <= max");
  }

  const ids = new Map<string, number>();
  s.steps.forEach((st, i) => {
    if (st.id === undefined) return;
    if (ids.has(st.id)) here(["steps", i, "id"], `step id "${st.id}" is already used by steps[${ids.get(st.id)}]`);
    else ids.set(st.id, i);
  });
  const commandNames = Object.keys(COMMANDS);
  s.steps.forEach((st, i) => {
    const triggers = (["at", "after", "on-event", "on-job"] as const).filter((t) => st[t] !== undefined);
    if (triggers.length > 1) here(["steps", i, triggers[1]], `a step has one trigger, this one has ${triggers.join(" and ")}; use delay: for a wait after the trigger`);
    if (st.after !== undefined) {
      const j = ids.get(st.after);
      if (j === undefined) here(["steps", i, "after"], `no step with id "${st.after}"${didYouMean(st.after, [...ids.keys()])}`);
      else if (j === i) here(["steps", i, "after"], "a step cannot wait for its own reply");
    }
    if ("execute" in st) {
      const expectsError = allowsError(st.expect);
      if (!Object.hasOwn(COMMANDS, st.execute) && !expectsError) {
        here(["steps", i, "execute"], `unknown command "${st.execute}"${didYouMean(st.execute, commandNames)}; run \`blocksim commands\` for the list (or add expect: {error: CommandNotFound} to send it anyway)`);
      }
    }
    const nodeRef = "drain" in st ? st.drain.node : "undrain" in st ? st.undrain.node : undefined;
    if (nodeRef !== undefined && !nodes.has(nodeRef)) {
      here(["steps", i, "drain" in st ? "drain" : "undrain", "node"], `no node named "${nodeRef}"${didYouMean(nodeRef, nodeNames)}`);
    }
    if ("libvirt" in st || "poll" in st) {
      const key = "libvirt" in st ? "libvirt" : "poll";
      const disk = "libvirt" in st ? st.libvirt.disk : st.poll.disk;
      const disks = s.domain?.disks.map((d) => d.target) ?? [];
      if (!s.domain) here(["steps", i, key], `a ${key} step needs a management layer: declare \`domain: { disks: [{ target: vda, device: drive0 }] }\``);
      else if (!disks.includes(disk)) here(["steps", i, key, "disk"], `no disk "${disk}" in domain.disks${didYouMean(disk, disks)}; declared: ${disks.join(", ")}`);
      if ("poll" in st && st.poll.count === undefined && st.poll.until === undefined && !st.poll["stop-when-gone"]) {
        here(["steps", i, "poll"], "a poller needs an end: count, until or stop-when-gone: true");
      }
    }
    const devRef = "fault" in st ? st.fault.device : "heal" in st ? st.heal.device : undefined;
    if (devRef !== undefined && !devices.has(devRef)) {
      here(["steps", i, "fault" in st ? "fault" : "heal", "device"], `no device named "${devRef}"${didYouMean(devRef, deviceNames)}`);
    }
    if ("fault" in st) checkFault(st.fault, (sub, msg) => here(["steps", i, "fault", ...sub], msg));
    for (const key of ["at", "delay"] as const) {
      const m = st[key];
      if (typeof m === "object") checkChosenMoment(m, (sub, msg) => here(["steps", i, key, "choose", ...sub], msg));
    }
  });

  checkVocabulary(s, here);

  const known = [...INVARIANTS.map((x) => x.name), QUERY_WAIT_RULE];
  const inv = s.expect.invariants;
  if (Array.isArray(inv)) {
    inv.forEach((n, i) => {
      if (!known.includes(n)) here(["expect", "invariants", i], `unknown invariant "${n}"${didYouMean(n, known)}; run \`blocksim invariants\` for the list`);
    });
  }
  s.expect.violations.forEach((n, i) => {
    if (!known.includes(n)) here(["expect", "violations", i], `unknown invariant "${n}"${didYouMean(n, known)}; run \`blocksim invariants\` for the list`);
  });
  if (!s.domain && [...(Array.isArray(inv) ? inv : []), ...s.expect.violations].includes(QUERY_WAIT_RULE)) {
    here(["expect"], `${QUERY_WAIT_RULE} is an invariant of the management layer: declare a domain to use it`);
  }
  s.race?.breaks.forEach((n, i) => {
    if (!known.includes(n)) here(["race", "breaks", i], `unknown invariant "${n}"${didYouMean(n, known)}; run \`blocksim invariants\` for the list`);
    else if (n === QUERY_WAIT_RULE && !s.domain) here(["race", "breaks", i], `${QUERY_WAIT_RULE} is an invariant of the management layer: declare a domain to use it`);
    if (s.race!.breaks.indexOf(n) !== i) here(["race", "breaks", i], `invariant "${n}" is listed twice`);
  });
  s.expect.data?.forEach((d, i) => {
    if ("same" in d) {
      d.same.forEach((n, j) => {
        if (!nodes.has(n)) here(["expect", "data", i, "same", j], `no node named "${n}"${didYouMean(n, nodeNames)}`);
      });
    }
  });
}

/** A chosen moment: a positive step, to >= from, whole steps between them, and not too many options. */
function checkChosenMoment(m: { choose: { from: number; to: number; step: number } }, report: (sub: (string | number)[], msg: string) => void): void {
  const { from, to, step } = m.choose;
  if (step < 1) report(["step"], "expected a step of at least 1ns");
  else if (to < from) report(["to"], `expected to >= from (${from} ns), got ${to} ns`);
  else if ((to - from) % step !== 0) report(["to"], `expected from plus a whole number of steps: ${to - from} ns from \`from\` is not a multiple of the step (${step} ns)`);
  else if ((to - from) / step + 1 > LIMITS.chooseOptions) report(["step"], `${(to - from) / step + 1} options: at most ${LIMITS.chooseOptions} (blocksim's limit for untrusted input); take a larger step`);
}

function checkFault(f: { range?: { offset: number; length: number } }, report: (sub: (string | number)[], msg: string) => void): void {
  if (f.range && f.range.length === 0) report(["range", "length"], "expected a length of at least 1 byte");
}
