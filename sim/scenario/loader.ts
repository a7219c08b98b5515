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
import { readFileSync } from "node:fs";
import { dirname, relative, resolve } from "node:path";
import { isMap, isPair, isScalar, LineCounter, parseDocument, type Document } from "yaml";
import { ALL_PROFILES as PROFILES } from "../mgmt/profiles.js";
import { QUERY_WAIT_RULE } from "../mgmt/invariants.js";
import { COMMANDS } from "../qmp/qemu.js";
import { didYouMean, InputError, type Problem } from "./errors.js";
import { INVARIANTS } from "../check/index.js";
import { issuesToProblems, type Locate } from "./issues.js";
import { Fragment, Scenario, type Device, type Guest, type Node } from "./schema.js";
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

/** Reads and parses one YAML/JSON file into data plus a locator for paths. */
export function parseFile(path: string, display = path): Parsed & { text: string } {
  let text: string;
  try {
    text = readFileSync(path, "utf8");
  } catch (e) {
    const code = (e as NodeJS.ErrnoException).code;
    const why = code === "ENOENT" ? "no such file" : code === "EISDIR" ? "is a directory, not a file" : code === "EACCES" ? "permission denied" : (e as Error).message;
    throw new InputError([{ file: display, path: "", message: `cannot read the file: ${why}` }]);
  }
  return { ...parseText(text, display), text };
}

/** Parses YAML/JSON text; syntax errors become problems with their line. */
export function parseText(text: string, file: string): Parsed {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false, uniqueKeys: true, strict: true });
  if (doc.errors.length > 0) {
    throw new InputError(doc.errors.slice(0, 5).map((e) => {
      const pos = e.linePos?.[0] ?? (e.pos ? lc.linePos(e.pos[0]) : undefined);
      const msg = e.message.split("\n")[0].replace(/ at line \d+, column \d+:?$/, "");
      return { file, path: "", line: pos?.line, column: pos?.col, message: `not valid YAML/JSON: ${msg}` };
    }));
  }
  let data: unknown;
  try {
    data = doc.toJS({ maxAliasCount: 1000 });
  } catch (e) {
    throw new InputError([{ file, path: "", message: `cannot read the document: ${(e as Error).message}` }]);
  }
  return { file, data, locate: locator(doc, lc) };
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

/** Loads a scenario file with its imports. */
export function loadScenarioFile(path: string, display = path): LoadedScenario {
  const p = parseFile(path, display);
  return loadParsed(p, p.text, dirname(resolve(path)), resolve(path));
}

/** Loads a scenario from text (imports resolve against `baseDir`). */
export function loadScenarioText(text: string, file = "<inline>", baseDir = process.cwd()): LoadedScenario {
  return loadParsed(parseText(text, file), text, baseDir, undefined);
}

function loadParsed(p: Parsed, text: string, baseDir: string, absPath: string | undefined): LoadedScenario {
  if (p.data === null || p.data === undefined) throw new InputError([{ file: p.file, path: "", message: "the file is empty: expected a mapping with at least `name`" }]);
  if (typeof p.data !== "object" || Array.isArray(p.data)) {
    throw new InputError([{ file: p.file, path: "", line: 1, message: `expected a mapping (name:, devices:, nodes:, steps:, expect: …) at the top, got ${Array.isArray(p.data) ? "a list" : typeof p.data}` }]);
  }
  const r = Scenario.safeParse(p.data);
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, Scenario, p.data, p.file, p.locate));
  const scenario = r.data;
  const merged: Merged = { devices: [], nodes: [], guests: [], hashes: [sha(text)] };
  const stack = absPath ? [absPath] : [];
  for (let i = 0; i < scenario.import.length; i++) {
    importFragment(scenario.import[i], baseDir, { file: p.file, locate: p.locate, path: ["import", i] }, stack, merged);
  }
  scenario.devices.forEach((value, i) => merged.devices.push({ value, from: { file: p.file, locate: p.locate, path: ["devices", i] } }));
  scenario.nodes.forEach((value, i) => merged.nodes.push({ value, from: { file: p.file, locate: p.locate, path: ["nodes", i] } }));
  scenario.guests.forEach((value, i) => merged.guests.push({ value, from: { file: p.file, locate: p.locate, path: ["guests", i] } }));
  const problems = checkReferences(scenario, merged, p);
  if (problems.length > 0) throw new InputError(problems);
  return {
    scenario: { ...scenario, import: [], devices: merged.devices.map((d) => d.value), nodes: merged.nodes.map((n) => n.value), guests: merged.guests.map((g) => g.value) },
    file: p.file,
    contentHash: sha(merged.hashes.join("\n")),
  };
}

function importFragment(spec: string, baseDir: string, from: Origin, stack: string[], merged: Merged): void {
  const abs = resolve(baseDir, spec);
  const here = from.locate(from.path);
  if (stack.includes(abs)) {
    const cycle = [...stack.slice(stack.indexOf(abs)), abs].map((f) => relative(process.cwd(), f) || f).join(" -> ");
    throw new InputError([{ file: from.file, path: pathText(from.path), ...here, message: `import cycle: ${cycle}` }]);
  }
  if (stack.length > 32) throw new InputError([{ file: from.file, path: pathText(from.path), ...here, message: "imports nest more than 32 deep" }]);
  let f: Parsed & { text: string };
  try {
    f = parseFile(abs, relative(process.cwd(), abs) || abs);
  } catch (e) {
    if (e instanceof InputError && e.problems[0]?.message.startsWith("cannot read")) {
      throw new InputError([{ file: from.file, path: pathText(from.path), ...here, message: `cannot import ${JSON.stringify(spec)}: ${e.problems[0].message.replace("cannot read the file: ", "")} (looked for ${abs})` }]);
    }
    throw e;
  }
  if (f.data === null || typeof f.data !== "object" || Array.isArray(f.data)) {
    throw new InputError([{ file: f.file, path: "", line: 1, message: "a fragment must be a mapping with devices:, nodes: and/or guests:" }]);
  }
  const r = Fragment.safeParse(f.data);
  if (!r.success) throw new InputError(issuesToProblems(r.error.issues, Fragment, f.data, f.file, f.locate));
  merged.hashes.push(sha(f.text));
  stack.push(abs);
  for (let i = 0; i < r.data.import.length; i++) importFragment(r.data.import[i], dirname(abs), { file: f.file, locate: f.locate, path: ["import", i] }, stack, merged);
  stack.pop();
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

/** Cross-references: every name used is declared, every declared name is unique. */
function checkReferences(s: Scenario, m: Merged, p: Parsed): Problem[] {
  const problems: Problem[] = [];
  const at = (o: Origin, sub: (string | number)[], message: string) =>
    problems.push({ file: o.file, path: pathText([...o.path, ...sub]), ...(o.locate([...o.path, ...sub]) ?? o.locate(o.path) ?? {}), message });
  const here = (path: (string | number)[], message: string) => at({ file: p.file, locate: p.locate, path: [] }, path, message);

  if (!PROFILES.some((x) => x.name === s.profile)) {
    here(["profile"], `unknown profile "${s.profile}"${didYouMean(s.profile, PROFILES.map((x) => x.name))}; known profiles: ${PROFILES.map((x) => x.name).join(", ")}`);
  }

  s.iothreads.forEach((n, i) => {
    if (s.iothreads.indexOf(n) !== i) here(["iothreads", i], `iothread "${n}" is declared twice`);
  });

  const devices = new Map<string, Origin>();
  for (const { value: d, from } of m.devices) {
    const prev = devices.get(d.name);
    if (prev) at(from, ["name"], `device "${d.name}" is declared twice (first in ${prev.file} at ${pathText(prev.path)})`);
    else devices.set(d.name, from);
    if (d["cluster-size"] < 512 || (d["cluster-size"] & (d["cluster-size"] - 1)) !== 0) at(from, ["cluster-size"], `expected a power of two >= 512, got ${d["cluster-size"]}`);
    if (d.size < 1) at(from, ["size"], "expected a size of at least 1 byte");
    else if (d.size / Math.max(512, d["cluster-size"]) > MAX_CLUSTERS) {
      at(from, ["size"], `${d.size} bytes make ${Math.ceil(d.size / d["cluster-size"])} clusters of ${d["cluster-size"]} bytes; blocksim keeps a version per cluster and allows at most ${MAX_CLUSTERS}: use a larger cluster-size or a smaller device`);
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
      const expectsError = st.expect === "error" || (typeof st.expect === "object" && "error" in st.expect);
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
  s.expect.data?.forEach((d, i) => {
    if ("same" in d) {
      d.same.forEach((n, j) => {
        if (!nodes.has(n)) here(["expect", "data", i, "same", j], `no node named "${n}"${didYouMean(n, nodeNames)}`);
      });
    }
  });
  return problems;
}

function checkFault(f: { range?: { offset: number; length: number } }, report: (sub: (string | number)[], msg: string) => void): void {
  if (f.range && f.range.length === 0) report(["range", "length"], "expected a length of at least 1 byte");
}
