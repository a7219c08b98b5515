// Builds the shipped command line for start-up speed. `npm run build` (run
// by `npm ci` through `prepare`) writes dist/, which bin/blocksim.js runs:
// - dist/blocksim.cjs: cli/entry.ts and everything it imports in one
//   minified CommonJS file. Commands import each other lazily, so a module's
//   top-level code still runs only when its command does.
// - dist/fuzz-worker.cjs: the fuzz worker thread's entry.
// - dist/blocksim.code-cache: V8's compiled code for the bundle after one
//   `run` of a shipped scenario, so later starts skip most compilation.
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
await build({ ...common, entryPoints: ["cli/fuzz-worker.ts"], outfile: join(outdir, "fuzz-worker.cjs") });
writeFileSync(join(outdir, "BUILT"), "");
// The code cache comes from one run; its outcome does not matter (a failing
// scenario compiles the same code), so the build never fails on it.
const cacheRun = spawnSync(process.execPath, [join(root, "bin", "blocksim.js"), "run", join(root, "scenarios", "backup.yaml"), "--quiet"], {
  cwd: root,
  stdio: "ignore",
  env: { ...process.env, BLOCKSIM_DIST: outdir, BLOCKSIM_WRITE_CODE_CACHE: "1" },
});
if (!existsSync(join(outdir, "blocksim.code-cache"))) {
  console.warn(`blocksim build: no code cache written (the run exited ${cacheRun.status ?? cacheRun.signal}); blocksim will start without it`);
}
