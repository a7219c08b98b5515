/**
 * A QMP client for a real QEMU over a unix socket: capabilities negotiation,
 * one command at a time with its reply, asynchronous events, and a time-out
 * on every wait. It keeps a transcript in wire order, shaped like the
 * ../shared/conformance recordings (timestamps dropped).
 *
 * Real I/O and wall-clock timers live here, outside sim/, on purpose: the
 * simulator itself never touches them.
 */
import { connect, type Socket } from "node:net";
import type { TranscriptEntry } from "../sim/qmp/types.js";

export type QmpReply = { return: unknown } | { error: { class: string; desc: string } };

export interface QmpEvent {
  event: string;
  data: Record<string, unknown>;
  timestamp?: { seconds: number; microseconds: number };
}

export interface QmpGreeting {
  QMP: { version: { qemu: { major: number; minor: number; micro: number }; package: string }; capabilities: string[] };
}

export class QmpTimeoutError extends Error {}

/** Resolves with `p`, or rejects after `ms` with an error saying what was awaited. */
export function withTimeout<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const t = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new QmpTimeoutError(`timed out after ${ms} ms waiting for ${what}`)), ms);
  });
  return Promise.race([p, t]).finally(() => clearTimeout(timer));
}

export const sleepMs = (ms: number) => new Promise<void>((r) => setTimeout(r, ms));

interface Pending {
  id: number;
  /** The reply stays out of the transcript. */
  hide: boolean;
  resolve(r: QmpReply): void;
  reject(e: Error): void;
}

export class QmpClient {
  /** Commands, replies, errors and events in the order they crossed the socket. */
  readonly transcript: TranscriptEntry[] = [];
  /** Every event received, in order. */
  readonly events: QmpEvent[] = [];
  greeting: QmpGreeting | undefined;
  private buf = "";
  private nextId = 1;
  private pending: Pending | undefined;
  private greeted: ((g: QmpGreeting) => void) | undefined;
  private waiters: { check(): boolean; resolve(): void }[] = [];
  private closed: Error | undefined;
  /** While false (negotiation), commands and replies stay out of the transcript. */
  private recording = false;

  private constructor(private readonly sock: Socket, readonly defaultTimeoutMs: number) {
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => this.onData(chunk));
    const fail = (e: Error) => {
      this.closed ??= e;
      this.pending?.reject(e);
      this.pending = undefined;
    };
    sock.on("error", fail);
    sock.on("close", () => fail(new Error("QMP connection closed")));
  }

  /**
   * Connects to QEMU's QMP socket (retrying while it does not exist yet),
   * reads the greeting and negotiates capabilities.
   */
  static async connect(path: string, opts: { timeoutMs?: number } = {}): Promise<QmpClient> {
    const timeoutMs = opts.timeoutMs ?? 10_000;
    const deadline = Date.now() + timeoutMs;
    let sock: Socket | undefined;
    let lastErr: unknown;
    while (!sock && Date.now() < deadline) {
      try {
        sock = await new Promise<Socket>((resolve, reject) => {
          const s = connect(path);
          s.once("connect", () => resolve(s));
          s.once("error", reject);
        });
      } catch (e) {
        lastErr = e;
        await sleepMs(50);
      }
    }
    if (!sock) throw new QmpTimeoutError(`could not connect to QMP socket ${path} within ${timeoutMs} ms: ${String(lastErr)}`);
    const client = new QmpClient(sock, timeoutMs);
    client.greeting = await withTimeout(new Promise<QmpGreeting>((r) => (client.greeted = r)), timeoutMs, "the QMP greeting");
    const caps = await client.execute("qmp_capabilities");
    if ("error" in caps) throw new Error(`qmp_capabilities refused: ${caps.error.desc}`);
    client.recording = true;
    return client;
  }

  private onData(chunk: string): void {
    this.buf += chunk;
    let nl: number;
    while ((nl = this.buf.indexOf("\n")) >= 0) {
      const text = this.buf.slice(0, nl).trim();
      this.buf = this.buf.slice(nl + 1);
      if (text) this.onMessage(JSON.parse(text) as Record<string, unknown>);
    }
  }

  private onMessage(msg: Record<string, unknown>): void {
    if ("QMP" in msg) {
      this.greeted?.(msg as unknown as QmpGreeting);
      return;
    }
    if ("event" in msg) {
      const ev = msg as unknown as QmpEvent;
      this.events.push(ev);
      if (this.recording) this.transcript.push({ event: ev.event, data: ev.data ?? {} });
      this.waiters = this.waiters.filter((w) => (w.check() ? (w.resolve(), false) : true));
      return;
    }
    const p = this.pending;
    if (!p || msg.id !== p.id) throw new Error(`QMP reply nobody asked for: ${JSON.stringify(msg)}`);
    this.pending = undefined;
    const reply: QmpReply = "error" in msg
      ? { error: { class: String((msg.error as { class: unknown }).class), desc: String((msg.error as { desc: unknown }).desc) } }
      : { return: msg.return };
    if (this.recording && !p.hide) this.transcript.push(reply as TranscriptEntry);
    p.resolve(reply);
  }

  /**
   * Sends one command and resolves with its reply (a QMP error is a value, not a rejection).
   * `record: false` keeps the command, its reply and the events meanwhile out of the transcript;
   * `hide: true` only the command and its reply (a driver's own commands, such as blocksim's clock steps).
   */
  async execute(cmd: string, args?: Record<string, unknown>, opts: { timeoutMs?: number; record?: boolean; hide?: boolean } = {}): Promise<QmpReply> {
    if (this.closed) throw this.closed;
    if (this.pending) throw new Error(`QMP command ${cmd} sent while ${this.pending.id} is still waiting for its reply`);
    const id = this.nextId++;
    const record = this.recording && opts.record !== false;
    const was = this.recording;
    if (record && !opts.hide) this.transcript.push(args === undefined ? { cmd } : { cmd, args });
    if (!record) this.recording = false;
    const reply = new Promise<QmpReply>((resolve, reject) => (this.pending = { id, hide: !!opts.hide, resolve, reject }));
    this.sock.write(JSON.stringify(args === undefined ? { execute: cmd, id } : { execute: cmd, arguments: args, id }) + "\n");
    try {
      return await withTimeout(reply, opts.timeoutMs ?? this.defaultTimeoutMs, `the reply to ${cmd}`);
    } finally {
      this.recording = was;
    }
  }

  /** Resolves once `check()` holds, re-checked on every event; rejects after the time-out. */
  waitFor(check: () => boolean, what: string, timeoutMs = this.defaultTimeoutMs): Promise<void> {
    if (check()) return Promise.resolve();
    if (this.closed) return Promise.reject(this.closed);
    let waiter: { check(): boolean; resolve(): void } | undefined;
    const p = new Promise<void>((resolve) => {
      waiter = { check, resolve };
      this.waiters.push(waiter);
    });
    return withTimeout(p, timeoutMs, what).finally(() => {
      this.waiters = this.waiters.filter((w) => w !== waiter);
    });
  }

  /** Resolves with the first event (from now on, or already received if `since` is given) that satisfies `pred`. */
  async waitForEvent(pred: (e: QmpEvent) => boolean, what: string, timeoutMs = this.defaultTimeoutMs, since = this.events.length): Promise<QmpEvent> {
    let found: QmpEvent | undefined;
    await this.waitFor(() => (found = this.events.slice(since).find(pred)) !== undefined, what, timeoutMs);
    return found!;
  }

  /** Resolves once no event has arrived for `quietMs` (at most `timeoutMs` in all). */
  async quiet(quietMs: number, timeoutMs = this.defaultTimeoutMs): Promise<void> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const n = this.events.length;
      await sleepMs(quietMs);
      if (this.events.length === n) return;
      if (Date.now() > deadline) throw new QmpTimeoutError(`events kept arriving for ${timeoutMs} ms`);
    }
  }

  /** Whether the connection has closed (QEMU exited or crashed). */
  isClosed(): boolean {
    return this.closed !== undefined;
  }

  /** Resolves once the connection closes, reading what QEMU still sends; rejects after the time-out. */
  waitClosed(timeoutMs = this.defaultTimeoutMs): Promise<void> {
    if (this.closed) return Promise.resolve();
    return withTimeout(new Promise<void>((r) => this.sock.once("close", () => r())), timeoutMs, "QEMU to close the QMP connection");
  }

  close(): void {
    this.sock.destroy();
  }
}
