/**
 * Where blocksim's own files are (shipped scenarios, race replay files, the
 * goldens): the folder of its package.json, found by walking up from this
 * module, so the same lookup holds when it runs from the sources (sim/…) and
 * from the bundle that `npm run build` writes (dist/…).
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

function findRoot(): string {
  const start = dirname(fileURLToPath(import.meta.url));
  for (let dir = start; ; dir = dirname(dir)) {
    const pkg = join(dir, "package.json");
    if (existsSync(pkg) && (JSON.parse(readFileSync(pkg, "utf8")) as { name?: string }).name === "blocksim") return dir;
    if (dirname(dir) === dir) throw new Error(`blocksim cannot find its own package.json in any folder above ${start}`);
  }
}

export const PACKAGE_ROOT = findRoot();

/** A path inside the package, e.g. packagePath("scenarios", "races"). */
export const packagePath = (...parts: string[]): string => join(PACKAGE_ROOT, ...parts);

/** The same as a file: URL. */
export const packageUrl = (...parts: string[]): URL => pathToFileURL(packagePath(...parts));
