/**
 * Untrusted scenario files (issue 19): the import policy (inside the
 * scenario's folder tree unless allowed, regular files only, bounded size,
 * each file once, cycles refused), content of non-scenario files never
 * echoed, bounds on every dimension, `__proto__` keys and deep nesting
 * refused with a clean error.
 */
import { mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from "node:fs";
import { execFileSync } from "node:child_process";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { formatProblems, InputError, MAX_PROBLEMS } from "../../sim/scenario/errors.js";
import { loadScenarioFile, loadScenarioText, parseText, type LoadOptions } from "../../sim/scenario/loader.js";
import { LIMITS } from "../../sim/scenario/limits.js";
import { loadReplayScenario, readReplayFile } from "../../sim/scenario/replay.js";

const root = mkdtempSync(join(tmpdir(), "blocksim-untrusted-"));
afterAll(() => rmSync(root, { recursive: true, force: true }));
let n = 0;

/** Writes files into a fresh folder; returns its path. */
function tree(files: Record<string, string>): string {
  const dir = join(root, `t${n++}`);
  for (const [name, text] of Object.entries(files)) {
    mkdirSync(join(dir, name, ".."), { recursive: true });
    writeFileSync(join(dir, name), text);
  }
  return dir;
}

function problems(fn: () => unknown): string[] {
  try {
    fn();
  } catch (e) {
    if (!(e instanceof InputError)) throw e;
    return e.problems.map((p) => `${p.path ? `${p.path}: ` : ""}${p.message}`);
  }
  return [];
}

const load = (dir: string, file = "s.yaml", opts: LoadOptions = {}) => problems(() => loadScenarioFile(join(dir, file), file, opts));
const FRAG = "devices: [{ name: d, size: 1MiB }]\n";

describe("imports", () => {
  it("stay inside the scenario's folder tree: ../, absolute paths and symlinks out are refused; --allow-import widens it", () => {
    const outside = tree({ "frag.yaml": FRAG });
    const dir = tree({ "s.yaml": `name: s\nimport: [${join(outside, "frag.yaml")}]\n`, "up.yaml": `name: s\nimport: [../${outside.split("/").pop()}/frag.yaml]\n` });
    symlinkSync("/etc/passwd", join(dir, "link.yaml"));
    writeFileSync(join(dir, "l.yaml"), "name: s\nimport: [link.yaml]\n");
    for (const f of ["s.yaml", "up.yaml", "l.yaml"]) expect(load(dir, f), f).toEqual([expect.stringMatching(/^import\[0\]: cannot import .*outside the scenario's folder .*--allow-import PATH/)]);
    expect(load(dir, "s.yaml", { allowImport: [outside] })).toEqual([]);
  });

  it("only regular files: a FIFO does not block, a device does not grow memory", () => {
    const dir = tree({ "s.yaml": "name: s\nimport: [fifo]\n", "z.yaml": "name: s\nimport: [/dev/zero]\n" });
    execFileSync("mkfifo", [join(dir, "fifo")]);
    expect(load(dir)).toEqual([expect.stringMatching(/^import\[0\]: cannot import "fifo": not a regular file/)]);
    expect(load(dir, "z.yaml", { allowImport: ["/dev"] })).toEqual([expect.stringMatching(/^import\[0\]: cannot import "\/dev\/zero": not a regular file/)]);
  });

  it("a file larger than the limit is refused before it is read", () => {
    const dir = tree({ "s.yaml": "name: s\nimport: [big.yaml]\n", "big.yaml": `description: "${"x".repeat(LIMITS.fileBytes)}"\n` });
    expect(load(dir)).toEqual([expect.stringMatching(/^import\[0\]: cannot import "big.yaml": it has \d+ bytes, more than blocksim reads/)]);
    expect(load(dir, "big.yaml")).toEqual([expect.stringMatching(/^cannot read the file: it has \d+ bytes/)]);
  });

  it("each file is loaded once: a diamond is free, 25 files each importing the next twice load at once", () => {
    const files: Record<string, string> = { "s.yaml": "name: s\nimport: [f0.yaml, f0.yaml]\nnodes: [{ driver: raw, node-name: n, file: d }]\n" };
    for (let i = 0; i < 25; i++) files[`f${i}.yaml`] = i === 24 ? FRAG : `import: [f${i + 1}.yaml, f${i + 1}.yaml]\n`;
    const dir = tree(files);
    const started = Date.now();
    const loaded = loadScenarioFile(join(dir, "s.yaml"));
    expect(loaded.scenario.devices.map((d) => d.name)).toEqual(["d"]);
    expect(Date.now() - started).toBeLessThan(5_000);
  });

  it("a cycle is an error naming it", () => {
    const dir = tree({ "s.yaml": "name: s\nimport: [a.yaml]\n", "a.yaml": "import: [b.yaml]\n", "b.yaml": "import: [a.yaml]\n" });
    expect(load(dir)).toEqual([expect.stringMatching(/import cycle: .*a\.yaml -> .*b\.yaml -> .*a\.yaml/)]);
  });

  it("never echoes the content of a file that is not a scenario", () => {
    const secret = "root:x:0:0:TOPSECRET-token-123:/root:/bin/bash\nkey: TOPSECRET-value\nother: TOPSECRET\n";
    const dir = tree({ "s.yaml": "name: s\nimport: [secret.txt]\n", "secret.txt": secret, "bad.yaml": "name: s\nimport: [notyaml.txt]\n", "notyaml.txt": "a: b: c: TOPSECRET\n" });
    for (const [f, want] of [["s.yaml", /not a scenario fragment/], ["bad.yaml", /not a scenario fragment/], ["secret.txt", /not valid YAML\/JSON|not a scenario file/]] as const) {
      const p = load(dir, f);
      expect(p.join("\n"), f).toMatch(want);
      expect(p.join("\n"), f).not.toMatch(/TOPSECRET|root:x/);
    }
  });
});

describe("bounds and shapes", () => {
  const one = (text: string) => problems(() => loadScenarioText(text, "b.yaml"));

  it("every dimension has a limit with a clear message", () => {
    const devs = Array.from({ length: LIMITS.devices + 1 }, (_, i) => `{ name: d${i}, size: 1MiB }`).join(", ");
    expect(one(`name: b\ndevices: [${devs}]\n`)).toEqual([expect.stringMatching(/^devices: expected at most 1000 items/)]);
    expect(one("name: b\nnodes: [{ driver: null-co, node-name: n, size: 1MiB }]\nguests: [{ node: n, iodepth: 100000000 }]\n")).toEqual([expect.stringMatching(/^guests\[0\]\.iodepth: expected at most 1024/)]);
    expect(one("name: b\ndevices: [{ name: d, size: 1MiB, queue-depth: 1000000 }]\n")).toEqual([expect.stringMatching(/^devices\[0\]\.queue-depth: expected at most 4096/)]);
    const never = Array.from({ length: LIMITS.expectations + 1 }, () => "BLOCK_JOB_READY").join(", ");
    expect(one(`name: b\nexpect: { never: [${never}] }\n`)).toEqual([expect.stringMatching(/^expect\.never: expected at most 100000 items/)]);
    const jobs = Object.fromEntries(Array.from({ length: LIMITS.expectJobs + 1 }, (_, i) => [`j${i}`, "concluded"]));
    expect(problems(() => loadScenarioText(JSON.stringify({ name: "b", expect: { jobs } }), "b.json"))).toEqual([`expect.jobs: expected at most ${LIMITS.expectJobs} job ids (blocksim's limit for untrusted input), got ${LIMITS.expectJobs + 1}`]);
    const names = Array.from({ length: LIMITS.invariantNames + 1 }, () => "backup-point-in-time");
    for (const key of ["invariants", "violations"]) {
      expect(problems(() => loadScenarioText(JSON.stringify({ name: "b", expect: { [key]: names } }), "b.json"))).toEqual([expect.stringMatching(new RegExp(`^expect\\.${key}: expected at most ${LIMITS.invariantNames} items`))]);
    }
  });

  it("the clusters of all devices together are bounded (a thousand devices of 2^22 clusters each took over 4 GB and aborted)", () => {
    const devices = Array.from({ length: 1000 }, (_, i) => ({ name: `d${i}`, size: "256GiB", "cluster-size": 65536 }));
    expect(problems(() => loadScenarioText(JSON.stringify({ name: "b", devices }), "b.json"))).toEqual([
      expect.stringMatching(new RegExp(`^devices\\[16\\]\\.size: the devices up to this one have ${17 * 4194304} clusters together, more than blocksim's limit of ${LIMITS.clusters}`)),
    ]);
  });

  it("a file of many bad entries reports the first hundred problems and says there may be more", () => {
    const steps = Array.from({ length: 1_000 }, (_, i) => ({ at: i, exeute: "query-jobs" }));
    try {
      loadScenarioText(JSON.stringify({ name: "b", steps }), "b.json");
      expect.unreachable();
    } catch (e) {
      expect(e).toBeInstanceOf(InputError);
      expect((e as InputError).problems).toHaveLength(MAX_PROBLEMS);
      expect((e as InputError).problems[99].path).toBe("steps[99].exeute");
      expect(formatProblems((e as InputError).problems)).toMatch(/^100 or more problems:[^]*\n {2}… and 88 or more$/);
    }
  });

  it("a word of a megabyte gets no did-you-mean search over it (the edit distance table would be a megabyte squared)", () => {
    expect(one(`name: b\nsteps: [{ at: 1ms, execute: ${"x".repeat(1 << 20)} }]\n`)).toEqual([expect.stringMatching(/^steps\[0\]\.execute: unknown command "x{20,}/)]);
  });

  it("__proto__ keys are refused, not dropped", () => {
    for (const text of [
      "name: b\nexpect: { jobs: { __proto__: concluded } }\n",
      "name: b\nsteps: [{ on-event: { event: JOB_STATUS_CHANGE, data: { __proto__: { id: j } } }, execute: query-jobs }]\n",
      "name: b\nsteps: [{ at: 1ms, execute: query-jobs, arguments: { __proto__: 1 } }]\n",
      '{"name": "b", "__proto__": {"steps": []}}',
    ]) {
      expect(one(text), text).toEqual([expect.stringMatching(/the key "__proto__" is not allowed/)]);
    }
  });

  it("JSON nested 900 deep gets a clean error, not the engine's stack overflow", () => {
    for (const text of ["[".repeat(900) + "]".repeat(900), '{"a":'.repeat(900) + "1" + "}".repeat(900), `name: b\nsteps: [{ at: 1ms, execute: x, arguments: { a: ${"[".repeat(70)}${"]".repeat(70)} } }]\n`]) {
      expect(one(text)).toEqual([expect.stringMatching(/nests more than 64 levels deep/)]);
    }
  });
});

describe("replay files", () => {
  const replay = (subject: unknown, extra: Record<string, unknown> = {}) =>
    JSON.stringify({ "blocksim-replay": 2, subject, profile: "current", seed: 0, strategy: "fifo", choices: "1:", hash: "0000000000000000", ok: true, violations: [], ...extra });
  const SHA = "0".repeat(64);
  const loadIn = (dir: string, file = "r.replay.json", opts: LoadOptions = {}) => problems(() => loadReplayScenario(readReplayFile(join(dir, file)), opts));

  it("a replay naming an unknown profile gets a clean error with a did-you-mean", () => {
    const dir = tree({ "s.yaml": "name: s\n", "r.json": replay({ scenario: "s.yaml", sha256: SHA }, { profile: "curent" }) });
    expect(problems(() => readReplayFile(join(dir, "r.json")))).toEqual([expect.stringMatching(/^profile: unknown profile "curent" \(did you mean "current"\?\)/)]);
  });

  it("its scenario path stays inside the replay file's folder tree (../, absolute, symlinks out refused); --allow-import widens it", () => {
    const outside = tree({ "s.yaml": "name: s\n" });
    const dir = tree({
      "up.replay.json": replay({ scenario: `../${outside.split("/").pop()}/s.yaml`, sha256: SHA }),
      "abs.replay.json": replay({ scenario: join(outside, "s.yaml"), sha256: SHA }),
      "link.replay.json": replay({ scenario: "link.yaml", sha256: SHA }),
      "sub/in.yaml": "name: s\n", "ok.replay.json": replay({ scenario: "sub/in.yaml", sha256: SHA }),
    });
    symlinkSync(join(outside, "s.yaml"), join(dir, "link.yaml"));
    for (const f of ["up.replay.json", "abs.replay.json", "link.replay.json"]) {
      expect(loadIn(dir, f), f).toEqual([expect.stringMatching(/^subject\.scenario: the scenario ".*" resolves to .*, outside the replay file's folder .*; expected a scenario inside the replay file's folder tree \(or allow another with --allow-import PATH\)$/)]);
      expect(loadIn(dir, f, { allowImport: [outside] }), f).toEqual([]);
    }
    expect(loadIn(dir, "ok.replay.json")).toEqual([]);
  });

  it("its scenario must be a regular file within the size limit: a folder, a FIFO, a missing file and a huge file are refused by name", () => {
    const dir = tree({ "big.yaml": "name: s\n" + "#".repeat(LIMITS.fileBytes) + "\n" });
    mkdirSync(join(dir, "folder.yaml"));
    execFileSync("mkfifo", [join(dir, "fifo.yaml")]);
    for (const [name, why] of [["folder.yaml", "is a directory"], ["fifo.yaml", "not a regular file"], ["missing.yaml", "no such file"], ["big.yaml", "more than blocksim reads"]]) {
      writeFileSync(join(dir, "r.replay.json"), replay({ scenario: name, sha256: SHA }));
      expect(loadIn(dir), name).toEqual([expect.stringMatching(new RegExp(`^subject\\.scenario: the scenario "${name}" \\(.*\\): cannot read the file: .*${why}.*; expected a scenario file beside the replay file$`))]);
    }
  });
});

describe("large files load in linear time", () => {
  it("a mapping of 50,000 keys parses (the YAML parser's own repeated-key check was quadratic: 10^5 keys took minutes)", () => {
    const text = `jobs:\n${Array.from({ length: 50_000 }, (_, i) => `  j${i}: concluded\n`).join("")}`;
    expect(Object.keys((parseText(text, "b.yaml").data as { jobs: object }).jobs)).toHaveLength(50_000);
  });

  it("repeated keys are still refused, in block and flow mappings at any depth, in YAML and in JSON, with both lines", () => {
    for (const [text, file, line] of [
      ["name: a\nsteps:\n  - at: 1ms\n    execute: query-jobs\n    at: 2ms\n", "b.yaml", 5],
      ["name: a\nexpect: { jobs: { j: concluded, j: null } }\n", "b.yaml", 2],
      ['{"name": "a",\n "expect": {"jobs": {"j": "concluded",\n "\\u006a": "null"}}}', "b.json", 3],
    ] as const) {
      try {
        loadScenarioText(text, file);
        expect.unreachable(text);
      } catch (e) {
        expect((e as InputError).problems, text).toEqual([expect.objectContaining({ line, message: expect.stringMatching(/^not valid YAML\/JSON: Map keys must be unique \(this key is already at line \d\)$/) })]);
      }
    }
  });

  it("JSON read by JSON.parse gives the same scenario as the YAML parser (every shipped scenario, as JSON)", () => {
    const dir = new URL("../../scenarios/", import.meta.url).pathname;
    for (const f of readdirSync(dir).filter((x) => /\.ya?ml$/.test(x))) {
      const yamlLoaded = loadScenarioFile(join(dir, f), f);
      const json = JSON.stringify(yamlLoaded.scenario);
      // A leading comment is not JSON, so the same text goes through the YAML parser.
      const viaYaml = loadScenarioText(`# via YAML\n${json}`, `${f}.json`, dir).scenario;
      expect(loadScenarioText(json, `${f}.json`, dir).scenario, f).toEqual(viaYaml);
    }
  });
});

describe("JSON inputs", () => {
  it("get JSON's terms in errors: objects and arrays, not mappings and lists", () => {
    const p = problems(() => loadScenarioText('{"name": "j", "devices": {"a": 1}, "steps": [{"at": "1ms", "execute": "query-jobs", "arguments": [1]}]}', "j.json"));
    expect(p).toEqual(["devices: expected an array, got an object", "steps[0].arguments: expected an object, got an array"]);
    expect(problems(() => loadScenarioText("[1]", "j.json"))).toEqual([expect.stringMatching(/^expected an object .* at the top, got an array$/)]);
  });
});
