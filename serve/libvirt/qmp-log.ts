/**
 * Reads the QMP conversations out of a libvirtd debug log written with
 * `log_filters="1:qemu.qemu_monitor 1:qemu.qemu_monitor_json"`: every
 * command libvirt wrote (`QEMU_MONITOR_IO_WRITE: mon=… buf={…}`), every
 * reply and event it read (`QEMU_MONITOR_RECV_REPLY` / `_EVENT: mon=…`),
 * one session per monitor from its `qmp_capabilities` on, in the order the
 * sessions began. Keyed by monitor, so sessions of domains started at the
 * same time do not mix.
 */

export type QmpMessage = { send: Record<string, unknown> } | { recv: Record<string, unknown> };

export interface QmpSession {
  /** The monitor libvirt talked to (its pointer in the log). */
  mon: string;
  messages: QmpMessage[];
}

const ENTRY = /(QEMU_MONITOR_IO_WRITE|QEMU_MONITOR_RECV_REPLY|QEMU_MONITOR_RECV_EVENT): mon=(0x[0-9a-f]+) (?:buf|reply|event)=(.*)$/;

export function parseLibvirtLog(text: string): QmpSession[] {
  const sessions: QmpSession[] = [];
  const open = new Map<string, QmpSession>();
  for (const raw of text.split("\n")) {
    const m = ENTRY.exec(raw.replace(/\r$/, ""));
    if (!m) continue;
    let msg: Record<string, unknown>;
    try {
      msg = JSON.parse(m[3].trim()) as Record<string, unknown>;
    } catch {
      continue;
    }
    const mon = m[2];
    if (m[1] === "QEMU_MONITOR_IO_WRITE" && msg.execute === "qmp_capabilities") {
      const s = { mon, messages: [] as QmpMessage[] };
      sessions.push(s);
      open.set(mon, s);
    }
    open.get(mon)?.messages.push(m[1] === "QEMU_MONITOR_IO_WRITE" ? { send: msg } : { recv: msg });
  }
  return sessions;
}

/** The session of the domain whose image directory is `dir` (its commands name files there). */
export function sessionFor(sessions: QmpSession[], dir: string): QmpSession | undefined {
  return sessions.filter((s) => s.messages.some((m) => "send" in m && JSON.stringify(m.send).includes(dir))).pop();
}

/** The commands of a session with the reply each got (matched by id) and the events after it. */
export function exchanges(s: QmpSession): { cmd: Record<string, unknown>; reply?: Record<string, unknown> }[] {
  const out: { cmd: Record<string, unknown>; reply?: Record<string, unknown> }[] = [];
  const byId = new Map<unknown, { cmd: Record<string, unknown>; reply?: Record<string, unknown> }>();
  for (const m of s.messages) {
    if ("send" in m) {
      const x = { cmd: m.send };
      out.push(x);
      byId.set(m.send.id, x);
    } else if ("id" in m.recv) {
      const x = byId.get(m.recv.id);
      if (x) x.reply = m.recv;
    }
  }
  return out;
}
