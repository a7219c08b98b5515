/** The project's TypeScript and JavaScript sources, for tests that read the code itself (layering, one world builder). */
import { readdirSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath } from "node:url";

export const ROOT = fileURLToPath(new URL("..", import.meta.url));

/** Every .ts and .js file below `dir` (relative to the project root), as `dir/…` paths, sorted. */
export function sourceFiles(dir: string): string[] {
  return readdirSync(join(ROOT, dir), { withFileTypes: true }).flatMap((e) => {
    const p = `${dir}/${e.name}`;
    if (e.isDirectory()) return sourceFiles(p);
    return e.isFile() && /\.(ts|js)$/.test(e.name) ? [p] : [];
  }).sort();
}
