// Builds the shipped command line for start-up speed. `npm run build` (run
// by `npm ci` through `prepare`) writes dist/, which bin/blocksim.js runs:
// - dist/blocksim.cjs: cli/entry.ts and everything it imports in one
//   minified CommonJS file. Commands import each other lazily, so a module's
//   top-level code still runs only when its command does.
//   It is also what fuzz worker threads load (bin/blocksim.js is their entry).
// - dist/blocksim.code-cache: V8's compiled code for the bundle after one
//   `run` of a shipped scenario, so later starts skip most compilation.
// - dist/blocksim.campaign.code-cache: the same after a short fuzz campaign,
//   made under the campaign's V8 flags (cli/jit.ts), for `blocksim fuzz`
//   and its worker threads, which run under those flags (V8 rejects a cache
//   made under other flags).
// zod's 40 translated error locales are left out (blocksim prints its own
// messages; zod's English one is kept).
import { build } from "esbuild";
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
// `--outdir DIR` builds elsewhere (the build test does); the default is dist/.
const at = process.argv.indexOf("--outdir");
const outdir = at > 0 ? process.argv[at + 1] : join(root, "dist");

const onlyEnglish = {
  name: "zod-english-only",
  setup(b) {
    b.onResolve({ filter: /^\.\.\/locales\/index\.js$/ }, (args) =>
      args.importer.includes(`${"node_modules"}/zod/`) ? { path: join(root, "build", "zod-locales.js") } : undefined,
    );
  },
};

rmSync(outdir, { recursive: true, force: true });
mkdirSync(outdir, { recursive: true });
const common = {
  absWorkingDir: root,
  bundle: true,
  format: "cjs",
  platform: "node",
  target: "node20",
  minify: true,
  legalComments: "none",
  logLevel: "warning",
  // import.meta.resolve is used only on the from-sources path (cli/fuzz.ts's tsx worker), never in the bundle.
  logOverride: { "empty-import-meta": "silent" },
  plugins: [onlyEnglish],
  // The sources find their files from import.meta.url; in CommonJS that is the bundle's own file.
  define: { "import.meta.url": "__blocksimModuleUrl" },
  banner: { js: 'const __blocksimModuleUrl = require("node:url").pathToFileURL(__filename).href;' },
};
await build({ ...common, entryPoints: ["cli/entry.ts"], outfile: join(outdir, "blocksim.cjs") });
writeFileSync(join(outdir, "BUILT"), "");
// Each code cache comes from one run; its outcome does not matter (a failing
// run compiles the same code), so the build never fails on it.
const caches = [
  { file: "blocksim.code-cache", write: "1", argv: ["run", join(root, "scenarios", "backup.yaml"), "--quiet"] },
  { file: "blocksim.campaign.code-cache", write: "campaign", argv: ["fuzz", "--runs", "50", "--out", join(outdir, "cache-run.replay.json")] },
];
for (const c of caches) {
  const cacheRun = spawnSync(process.execPath, [join(root, "bin", "blocksim.js"), ...c.argv], {
    cwd: root,
    stdio: "ignore",
    env: { ...process.env, BLOCKSIM_DIST: outdir, BLOCKSIM_WRITE_CODE_CACHE: c.write },
  });
  rmSync(join(outdir, "cache-run.replay.json"), { force: true });
  if (!existsSync(join(outdir, c.file))) {
    console.warn(`blocksim build: no ${c.file} written (the run exited ${cacheRun.status ?? cacheRun.signal}); blocksim will start without it`);
  }
}
