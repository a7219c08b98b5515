/**
 * QMP on the wire as QEMU 7.2 writes it: `{"a": 1, "b": [1, 2]}` with a
 * space after every `:` and `,`, lines ending in CRLF, the greeting, and the
 * checks QEMU's dispatcher makes on a request object before it looks the
 * command up (messages as QEMU 7.2 gives them, probed over its socket).
 */

/** QEMU 7.2's greeting (the version this simulator models); no out-of-band capability: commands run in order. */
export const GREETING = { QMP: { version: { qemu: { micro: 22, minor: 2, major: 7 }, package: "blocksim" }, capabilities: [] as string[] } };

/** Serialises like QEMU's JSON writer (compact but with `": "` and `", "`). */
export function qjson(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v) ?? "null";
  if (Array.isArray(v)) return `[${v.map(qjson).join(", ")}]`;
  const parts: string[] = [];
  for (const [k, x] of Object.entries(v)) if (x !== undefined) parts.push(`${JSON.stringify(k)}: ${qjson(x)}`);
  return `{${parts.join(", ")}}`;
}

export function line(v: unknown): string {
  return `${qjson(v)}\r\n`;
}

/** A request as the dispatcher accepts it, or QEMU's error for it. */
export type Request =
  | { ok: true; execute: string; arguments?: Record<string, unknown>; id?: unknown; hasId: boolean }
  | { ok: false; desc: string; id?: unknown; hasId: boolean };

export function checkRequest(v: unknown): Request {
  if (v === null || typeof v !== "object" || Array.isArray(v)) return { ok: false, desc: "QMP input must be a JSON object", hasId: false };
  const o = v as Record<string, unknown>;
  const hasId = Object.hasOwn(o, "id");
  const id = o.id;
  for (const k of Object.keys(o)) {
    if (k !== "execute" && k !== "arguments" && k !== "id" && k !== "exec-oob") return { ok: false, desc: `QMP input member '${k}' is unexpected`, id, hasId };
  }
  if (Object.hasOwn(o, "exec-oob")) return { ok: false, desc: "QMP input member 'exec-oob' is unexpected", id, hasId };
  if (!Object.hasOwn(o, "execute")) return { ok: false, desc: "QMP input lacks member 'execute'", id, hasId };
  if (typeof o.execute !== "string") return { ok: false, desc: "QMP input member 'execute' must be a string", id, hasId };
  if (Object.hasOwn(o, "arguments") && (o.arguments === null || typeof o.arguments !== "object" || Array.isArray(o.arguments))) {
    return { ok: false, desc: "QMP input member 'arguments' must be an object", id, hasId };
  }
  return { ok: true, execute: o.execute, ...(o.arguments !== undefined ? { arguments: o.arguments as Record<string, unknown> } : {}), id, hasId };
}

/** A reply object in QEMU's key order: `return` before `id`, `id` before `error`. */
export function reply(r: { return: unknown } | { error: { class: string; desc: string } }, hasId: boolean, id: unknown): Record<string, unknown> {
  if ("return" in r) return hasId ? { return: r.return, id } : { return: r.return };
  return hasId ? { id, error: r.error } : { error: r.error };
}

export function errorReply(cls: string, desc: string, hasId = false, id?: unknown): Record<string, unknown> {
  return reply({ error: { class: cls, desc } }, hasId, id);
}
