/**
 * The choice log: every decision a run took, in order. A scheduling choice is
 * `[n, pick]` (which of n entries ready at the same instant ran); an
 * environment choice from `choose(label, n)` is `[n, pick, label]`. Replaying
 * the log reproduces the run; a shrunk log is a bug report.
 */
export type Choice = [n: number, pick: number] | [n: number, pick: number, label: string];
export type ChoiceLog = Choice[];

export const CHOICE_LOG_VERSION = 1;

/**
 * Characters of a label that would break the compact form (the entry
 * separator, whitespace that pasting may mangle, control characters) and the
 * escape character itself are written as %XX (UTF-8, like encodeURIComponent).
 */
const LABEL_UNSAFE = /[%,\s\x00-\x1f\x7f]/gu;

/**
 * Compact, pasteable form: `1:3.0,2.1,c/fail=2.1` (version, then n.pick or
 * label=n.pick). Labels are escaped so that any string survives a round trip
 * through `parseChoiceLog`.
 */
export function formatChoiceLog(log: ChoiceLog): string {
  const parts = log.map((c) =>
    c.length === 3 ? `${c[2].replace(LABEL_UNSAFE, encodeURIComponent)}=${c[0]}.${c[1]}` : `${c[0]}.${c[1]}`,
  );
  return `${CHOICE_LOG_VERSION}:${parts.join(",")}`;
}

/** Parses the compact form (whitespace around entries is ignored); throws an Error naming the bad entry. */
export function parseChoiceLog(text: string): ChoiceLog {
  const m = /^(\d+):(.*)$/s.exec(text.trim());
  if (!m) throw new Error(`choice log: expected "<version>:<entries>", got ${JSON.stringify(text.slice(0, 40))}`);
  if (Number(m[1]) !== CHOICE_LOG_VERSION) {
    throw new Error(`choice log: version ${m[1]} is not supported (this blocksim reads version ${CHOICE_LOG_VERSION})`);
  }
  if (m[2].trim() === "") return [];
  return m[2].split(",").map((raw, i) => {
    const part = raw.trim();
    const e = /^(?:(.*)=)?(\d+)\.(\d+)$/s.exec(part);
    if (!e) throw new Error(`choice log: entry ${i} ${JSON.stringify(part)} is not "n.pick" or "label=n.pick"`);
    const n = Number(e[2]), pick = Number(e[3]);
    if (!Number.isSafeInteger(n) || pick >= n) throw new Error(`choice log: entry ${i} picks ${pick} of only ${n} options`);
    if (e[1] === undefined) return [n, pick];
    let label: string;
    try {
      label = e[1].replace(/(?:%[0-9A-Fa-f]{2})+/g, decodeURIComponent);
    } catch {
      throw new Error(`choice log: entry ${i} has a badly escaped label ${JSON.stringify(e[1])}`);
    }
    return [n, pick, label];
  });
}
