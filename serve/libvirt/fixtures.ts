/**
 * Answers from the recorded QEMU 7.2 (fixtures/qemu-7.2.json): every command
 * libvirt sent during the probe and the four domains' lives, keyed by its name and
 * arguments, with the reply QEMU gave. A command asked again gets the next
 * recorded reply for the same key, and the last one once they run out.
 */
import { readFileSync } from "node:fs";
import type { QmpResponse } from "../../sim/qmp/types.js";
import { exchanges } from "./qmp-log.js";
import type { Fixture, RecordedSession } from "./record.js";
import { SESSIONS, type SessionName } from "./virsh.js";

export const FIXTURE_URL = new URL("./fixtures/qemu-7.2.json", import.meta.url);

/** Object keys sorted, so argument order does not matter. */
function canonical(v: unknown): string {
  if (v === null || typeof v !== "object") return JSON.stringify(v);
  if (Array.isArray(v)) return `[${v.map(canonical).join(",")}]`;
  return `{${Object.keys(v).sort().map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(",")}}`;
}

export type Role = "probe-kvm" | "probe-tcg" | "domain";

/**
 * A virsh session of the recording: its virsh calls and its domain's monitor
 * (the jobs session's are the fixture's provenance.virsh and domain).
 */
export function recordedSession(fixture: Fixture, session: SessionName): RecordedSession {
  return session === "jobs" ? { virsh: fixture.provenance.virsh, domain: fixture.domain } : fixture[session];
}

export class RecordedReplies {
  private readonly byKey = new Map<string, QmpResponse[]>();
  private readonly used = new Map<string, number>();
  readonly fixture: Fixture;

  /** `role`: which recorded session answers first (libvirt's kvm probe, its tcg probe, or the domain); the others fill in. */
  constructor(role: Role, url: URL = FIXTURE_URL) {
    this.fixture = JSON.parse(readFileSync(url, "utf8")) as Fixture;
    const [kvm, tcg] = this.fixture.probes;
    const domains = SESSIONS.map((name) => recordedSession(this.fixture, name)?.domain);
    const order = role === "domain" ? [...domains, kvm, tcg] : role === "probe-tcg" ? [tcg, kvm, ...domains] : [kvm, tcg, ...domains];
    const seen = new Set<string>();
    for (const session of order.filter((x) => x !== undefined)) {
      for (const x of exchanges(session)) {
        if (!x.reply) continue;
        const key = keyOf(String(x.cmd.execute), x.cmd.arguments as Record<string, unknown> | undefined);
        const r: QmpResponse = "error" in x.reply ? { error: x.reply.error as { class: never; desc: string } } : { return: x.reply.return };
        if (!this.byKey.has(key)) this.byKey.set(key, []);
        if (!seen.has(key)) this.byKey.get(key)!.push(r); // a key answered by a preferred session keeps only that session's replies
      }
      for (const key of this.byKey.keys()) seen.add(key);
    }
  }

  /** The recorded reply to this command, or undefined when QEMU was never asked it. */
  answer(execute: string, args: Record<string, unknown> | undefined): QmpResponse | undefined {
    const key = keyOf(execute, args);
    const list = this.byKey.get(key);
    if (!list) return undefined;
    const i = this.used.get(key) ?? 0;
    this.used.set(key, i + 1);
    return list[Math.min(i, list.length - 1)];
  }
}

function keyOf(execute: string, args: Record<string, unknown> | undefined): string {
  return `${execute} ${canonical(args ?? {})}`;
}
