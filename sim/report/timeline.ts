/** The HTML timeline of a run (placeholder until the renderer lands). */
import type { RunReport } from "../scenario/runner.js";

export function renderTimeline(r: RunReport): string {
  return `<!doctype html><title>${r.name}</title>`;
}
