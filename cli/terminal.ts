/**
 * Terminal safety: scenario and replay files are untrusted, and their text
 * (names, ids, arguments, error messages quoting them) reaches the
 * terminal. Control characters (NUL, ESC/OSC sequences, carriage returns)
 * and bidirectional overrides (U+202E…) could print a fake PASS over a FAIL
 * or hide text, so every character of those kinds is shown as a \uXXXX
 * escape instead — which inside a JSON string is the same character again.
 */
const UNSAFE = /[\u0000-\u0008\u000b-\u001f\u007f-\u009f\u061c\u200e\u200f\u202a-\u202e\u2066-\u2069]/g;

export function escapeTerminal(text: string): string {
  return text.replace(UNSAFE, (c) => `\\u${c.charCodeAt(0).toString(16).padStart(4, "0")}`);
}
