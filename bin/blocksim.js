#!/usr/bin/env node
// Entry point for `blocksim`. Runs the built command line (dist/, written by
// `npm run build`, which `npm ci` runs) when it is at least as new as every
// source file, else the TypeScript sources through tsx, so an edit to the
// sources is never shadowed by an old build. The built bundle is compiled
// with V8's code cache from the build (see build/bundle.mjs); a cache this
// Node rejects only costs the compile time it would have saved.
// It is also the entry of a bundle run's fuzz worker threads (cli/fuzz.ts),
// so that they too load the bundle with a code cache.
import { existsSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import Module, { createRequire } from "node:module";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { setFlagsFromString } from "node:v8";
import { Script } from "node:vm";
import { isMainThread, workerData } from "node:worker_threads";
import { guardAgainstOrphaning } from "./orphan-guard.js";

const fuzzWorker = !isMainThread && workerData?.fuzzJob !== undefined;
if (!fuzzWorker) guardAgainstOrphaning();

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const dist = process.env.BLOCKSIM_DIST ?? join(root, "dist");

function builtIsFresh() {
  if (process.env.BLOCKSIM_FROM_SOURCE === "1" || !existsSync(join(dist, "BUILT"))) return false;
  const built = statSync(join(dist, "BUILT")).mtimeMs;
  for (const dir of ["cli", "sim", "live", "serve"]) {
    for (const entry of readdirSync(join(root, dir), { recursive: true, withFileTypes: true })) {
      if (entry.isFile() && entry.name.endsWith(".ts") && statSync(join(entry.parentPath, entry.name)).mtimeMs > built) return false;
    }
  }
  return true;
}

/**
 * V8 accepts a code cache only under the V8 flags it was made with, so there
 * are two: `blocksim.code-cache` for every command but fuzz, and
 * `blocksim.campaign.code-cache` for `blocksim fuzz` and its worker threads,
 * which run under the campaign's flags (cli/jit.ts): a fuzz process sets
 * them before it compiles the bundle, and its cache, made by a short
 * campaign, holds the code a campaign runs (CPU of a cold `fuzz --runs 2000`
 * ~3-7 % less than with the other cache). BLOCKSIM_WRITE_CODE_CACHE=1 or
 * =campaign writes one at the end of the process (build/bundle.mjs).
 */
function runBundle(cacheName) {
  const file = join(dist, "blocksim.cjs"), cacheFile = join(dist, cacheName);
  const cachedData = existsSync(cacheFile) ? readFileSync(cacheFile) : undefined;
  const script = new Script(Module.wrap(readFileSync(file, "utf8")), { filename: file, cachedData });
  const module = { exports: {} };
  script.runInThisContext()(module.exports, createRequire(file), module, file, dist);
  const write = process.env.BLOCKSIM_WRITE_CODE_CACHE;
  if (isMainThread && (write === "1" || write === "campaign")) {
    process.on("exit", () => writeFileSync(join(dist, write === "1" ? "blocksim.code-cache" : "blocksim.campaign.code-cache"), script.createCachedData()));
  }
}

function setCampaignFlags() {
  for (const flag of JSON.parse(readFileSync(join(root, "cli", "campaign-v8-flags.json"), "utf8"))) setFlagsFromString(flag);
}

// A worker is started only by a bundle run, which has checked the build already (and set the flags).
if (fuzzWorker) runBundle("blocksim.campaign.code-cache");
else if (builtIsFresh() && process.argv[2] === "fuzz") {
  setCampaignFlags();
  runBundle("blocksim.campaign.code-cache");
}
else if (builtIsFresh()) runBundle("blocksim.code-cache");
else if (process.env.BLOCKSIM_DIST) {
  // A build named explicitly (the build test does) must be used, not silently replaced by the sources.
  process.stderr.write(`blocksim: BLOCKSIM_DIST=${dist} holds no build as new as the sources; run npm run build\n`);
  process.exitCode = 2;
}
else {
  const { register } = await import("tsx/esm/api");
  register();
  await import("../cli/entry.ts");
}
