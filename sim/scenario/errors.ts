/**
 * Errors in scenario and replay files: each names the file, the line and
 * column where known, the path inside the document and what was expected.
 * They are user errors, so the CLI prints them (exit code 2), never a stack.
 */

/** One problem in an input file. */
export interface Problem {
  file: string;
  /** 1-based, when the position is known. */
  line?: number;
  column?: number;
  /** Path inside the document, like `steps[2].arguments.device` ("" for the whole file). */
  path: string;
  message: string;
  /**
   * What kind of problem, for a caller that words it its own way (an import,
   * a replay's scenario): the file could not be read (and why), or is not
   * YAML/JSON. Callers look here, never at the message's words.
   */
  reason?: { kind: "unreadable"; why: string } | { kind: "syntax" };
}

/**
 * The most problems one file reports: enough for any screen, and a file of
 * 10^5 bad entries costs no more to report than one of a hundred.
 */
export const MAX_PROBLEMS = 100;

/** Bad input: one or more problems. */
export class InputError extends Error {
  override name = "InputError";
  readonly problems: Problem[];
  constructor(problems: Problem[]) {
    const inTerms = problems.map(inJsonTerms);
    super(inTerms.map(formatProblem).join("\n"));
    this.problems = inTerms;
  }
}

/** Throws an InputError for one problem. */
export function inputError(file: string, message: string, extra: Partial<Problem> = {}): InputError {
  return new InputError([{ file, path: "", message, ...extra }]);
}

/** A problem in a JSON file in JSON's terms: objects and arrays, not YAML's mappings and lists. */
export function inJsonTerms(p: Problem): Problem {
  if (!/\.json\b/i.test(p.file)) return p;
  const message = p.message
    .replace(/\ba mapping\b/g, "an object").replace(/\bmappings\b/g, "objects").replace(/\bmapping\b/g, "object")
    .replace(/\ba list\b/g, "an array").replace(/\blists\b/g, "arrays").replace(/(?<!for the )\blist\b/g, "array")
    .replace(/\(name:, devices:, nodes:, steps:, expect: …\)/, '("name", "devices", "nodes", "steps", "expect" …)');
  return { ...p, message };
}

/** `file:line:col: at path: message`. */
export function formatProblem(p: Problem): string {
  const where = p.line === undefined ? p.file : `${p.file}:${p.line}${p.column === undefined ? "" : `:${p.column}`}`;
  return `${where}: ${p.path ? `at ${p.path}: ` : ""}${p.message}`;
}

/** The problems as a one-screen report (at most `max` problems, then a count). */
export function formatProblems(problems: Problem[], max = 12): string {
  const shown = problems.slice(0, max).map((p) => `  ${formatProblem(p)}`);
  // A list cut at MAX_PROBLEMS counts "at least".
  const more = problems.length >= MAX_PROBLEMS ? " or more" : "";
  if (problems.length > max) shown.push(`  … and ${problems.length - max}${more} more`.replace(" or more more", " or more"));
  return `${problems.length === 1 ? "1 problem" : `${problems.length}${more} problems`}:\n${shown.join("\n")}`;
}

/** `a.b[2].c` from a path of keys and indices. */
export function formatPath(path: readonly PropertyKey[]): string {
  let out = "";
  for (const k of path) {
    if (typeof k === "number") out += `[${k}]`;
    else if (typeof k === "string" && /^[A-Za-z_][A-Za-z0-9_-]*$/.test(k)) out += out ? `.${k}` : k;
    else out += `[${JSON.stringify(String(k))}]`;
  }
  return out;
}

/** Edit distance (insertions, deletions, substitutions, adjacent swaps). */
export function editDistance(a: string, b: string): number {
  const d: number[][] = [];
  for (let i = 0; i <= a.length; i++) d.push([i, ...new Array<number>(b.length).fill(0)]);
  for (let j = 0; j <= b.length; j++) d[0][j] = j;
  for (let i = 1; i <= a.length; i++) {
    for (let j = 1; j <= b.length; j++) {
      const cost = a[i - 1] === b[j - 1] ? 0 : 1;
      d[i][j] = Math.min(d[i - 1][j] + 1, d[i][j - 1] + 1, d[i - 1][j - 1] + cost);
      if (i > 1 && j > 1 && a[i - 1] === b[j - 2] && a[i - 2] === b[j - 1]) d[i][j] = Math.min(d[i][j], d[i - 2][j - 2] + 1);
    }
  }
  return d[a.length][b.length];
}

/** The closest candidate to `word`, if close enough to be a likely typo. */
export function closest(word: string, candidates: readonly string[]): string | undefined {
  let best: string | undefined, bestD = Infinity;
  const lw = word.toLowerCase();
  for (const c of candidates) {
    // No limit below exceeds 3 and the distance is at least the difference in length: skip the rest unmeasured
    // (a megabyte-long word costs nothing, not a megabyte-squared table).
    if (Math.abs(c.length - word.length) > 3) continue;
    const d = editDistance(lw, c.toLowerCase());
    if (d < bestD) {
      best = c;
      bestD = d;
    }
  }
  const limit = best === undefined ? 0 : Math.max(1, Math.min(3, Math.floor(Math.max(word.length, best.length) / 3)));
  return best !== undefined && bestD <= limit ? best : oneWordMissing(lw, candidates);
}

/** A name's words: what hyphens, underscores, dots and spaces separate (a leading `--` gives none). */
const wordsOf = (name: string) => name.toLowerCase().split(/[-_.\s]+/).filter((w) => w !== "");

/**
 * The one candidate that is `word` with one word added (`no-shim` for
 * `no-start-shim`): every typed word in order, whole, at least two of them,
 * so a single or an unrelated word matches nothing; none when several would.
 */
function oneWordMissing(word: string, candidates: readonly string[]): string | undefined {
  // Longer than any candidate could be with one word more: nothing to split.
  if (word.length > 1000) return undefined;
  const typed = wordsOf(word);
  if (typed.length < 2) return undefined;
  const found = candidates.filter((c) => {
    const known = wordsOf(c);
    if (known.length !== typed.length + 1) return false;
    let i = 0;
    for (const w of known) if (i < typed.length && w === typed[i]) i++;
    return i === typed.length;
  });
  return found.length === 1 ? found[0] : undefined;
}

/** ` (did you mean "x"?)` or "". */
export function didYouMean(word: string, candidates: readonly string[]): string {
  const c = closest(word, candidates);
  return c === undefined ? "" : ` (did you mean "${c}"?)`;
}
