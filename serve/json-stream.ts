/**
 * Splits a QMP byte stream into JSON values the way QEMU's JSON streamer
 * does: no line framing (a value may span lines, several may share one),
 * a value is complete when its braces and brackets balance, a stray token
 * at top level is a value of its own, and a lexical error or a limit
 * resets the parser, which goes on with the input after it.
 *
 * Limits, each with QEMU's message: the bytes of one value (QEMU allows
 * 64 MiB; the default here is 1 MiB, and on overflow the rest of that
 * line is skipped instead of QEMU's cascade of errors over the rest of the
 * value), the nesting depth (1024) and the token count (2 Mi).
 */

export type Parsed = { value: unknown } | { error: string };

export interface StreamLimits {
  maxValueBytes: number;
  maxDepth: number;
  maxTokens: number;
}

export const DEFAULT_LIMITS: StreamLimits = { maxValueBytes: 1 << 20, maxDepth: 1024, maxTokens: 2 << 20 };

const WS = new Set([" ", "\t", "\n", "\r"]);
const KEYWORD_CHAR = /[A-Za-z0-9+\-.]/;

export class JsonStream {
  private text = "";
  private depth = 0;
  private tokens = 0;
  private inString = false;
  private escape = false;
  /** A keyword or number being read. */
  private word = "";
  /** After a size overflow: drop input up to the next newline. */
  private skipping = false;

  constructor(private readonly limits: StreamLimits = DEFAULT_LIMITS) {}

  /** Whether part of a value has been read and the rest has not come yet. */
  get partial(): boolean {
    return this.text.length > 0 || this.word.length > 0 || this.inString;
  }

  /** Feeds a chunk; returns the values (or errors) it completes, in order. */
  feed(chunk: string): Parsed[] {
    const out: Parsed[] = [];
    for (const c of chunk) {
      if (this.skipping) {
        if (c === "\n") this.skipping = false;
        continue;
      }
      if (this.text.length + this.word.length >= this.limits.maxValueBytes) {
        this.reset();
        out.push({ error: "JSON token size limit exceeded" });
        this.skipping = c !== "\n";
        continue;
      }
      if (this.inString) {
        this.text += c;
        if (this.escape) this.escape = false;
        else if (c === "\\") this.escape = true;
        else if (c === '"') {
          this.inString = false;
          if (this.endToken(out) && this.depth === 0) this.complete(out);
        }
        continue;
      }
      if (this.word && !KEYWORD_CHAR.test(c)) this.endWord(out);
      this.feedChar(c, out);
    }
    return out;
  }

  private feedChar(c: string, out: Parsed[]): void {
    if (WS.has(c)) {
      if (this.depth > 0) this.text += c;
      return;
    }
    if (c === '"') {
      this.inString = true;
      this.text += c;
      return;
    }
    if (KEYWORD_CHAR.test(c)) {
      this.word += c;
      return;
    }
    if (c === "{" || c === "[") {
      this.text += c;
      this.depth++;
      if (!this.endToken(out)) return;
      if (this.depth > this.limits.maxDepth) {
        this.reset();
        out.push({ error: "JSON nesting depth limit exceeded" });
      }
      return;
    }
    if (c === "}" || c === "]") {
      if (this.depth === 0) {
        this.reset();
        out.push({ error: "JSON parse error, expecting value" });
        return;
      }
      this.text += c;
      this.depth--;
      if (this.endToken(out) && this.depth === 0) this.complete(out);
      return;
    }
    if ((c === "," || c === ":") && this.depth > 0) {
      this.text += c;
      this.endToken(out);
      return;
    }
    this.reset();
    out.push({ error: `JSON parse error, stray '${c}'` });
  }

  /** Ends a keyword or number token (an invalid one resets the parser). */
  private endWord(out: Parsed[]): void {
    const w = this.word;
    this.word = "";
    if (!/^(true|false|null|-?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?)$/.test(w)) {
      this.reset();
      out.push({ error: `JSON parse error, invalid keyword '${w}'` });
      return;
    }
    this.text += w;
    if (this.endToken(out) && this.depth === 0) this.complete(out);
  }

  private endToken(out: Parsed[]): boolean {
    if (++this.tokens > this.limits.maxTokens) {
      this.reset();
      out.push({ error: "JSON token count limit exceeded" });
      return false;
    }
    return true;
  }

  private complete(out: Parsed[]): void {
    const text = this.text;
    this.reset();
    try {
      out.push({ value: JSON.parse(text) });
    } catch {
      out.push({ error: "JSON parse error, expecting value" });
    }
  }

  private reset(): void {
    this.text = "";
    this.word = "";
    this.depth = 0;
    this.tokens = 0;
    this.inString = false;
    this.escape = false;
  }
}
