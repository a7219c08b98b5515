/**
 * Reads the QMP conversations out of a libvirtd debug log written with
 * `log_filters="1:qemu.qemu_monitor 1:qemu.qemu_monitor_json"`: every
 * command libvirt wrote (`QEMU_MONITOR_IO_WRITE … buf={…}`) and every line
 * it read (`qemuMonitorJSONIOProcessLine … Line [{…}]`), split into one
 * session per QMP greeting, in order.
 */

export type QmpMessage = { send: Record<string, unknown> } | { recv: Record<string, unknown> };

export interface QmpSession {
  /** The monitor libvirt talked to (its pointer in the log). */
  mon: string;
  messages: QmpMessage[];
}

const WRITE = /QEMU_MONITOR_IO_WRITE: mon=(0x[0-9a-f]+) buf=(.*)$/;
const LINE = /qemuMonitorJSONIOProcessLine:\d+ : Line \[(.*)\]$/;
const MON = /mon=(0x[0-9a-f]+)/;

export function parseLibvirtLog(text: string): QmpSession[] {
  const sessions: QmpSession[] = [];
  let current: QmpSession | undefined;
  for (const raw of text.split("\n").map((l) => l.replace(/\r$/, ""))) {
    const w = WRITE.exec(raw);
    if (w) {
      const buf = w[2].trim();
      let msg: Record<string, unknown>;
      try { msg = JSON.parse(buf) as Record<string, unknown>; } catch { continue; }
      if (current) {
        current.mon = w[1];
        current.messages.push({ send: msg });
      }
      continue;
    }
    const l = LINE.exec(raw);
    if (l) {
      let msg: Record<string, unknown>;
      try { msg = JSON.parse(l[1]) as Record<string, unknown>; } catch { continue; }
      if ("QMP" in msg) {
        current = { mon: MON.exec(raw)?.[1] ?? "", messages: [] };
        sessions.push(current);
      }
      current?.messages.push({ recv: msg });
    }
  }
  return sessions;
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
