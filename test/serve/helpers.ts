import { mkdtempSync, rmSync } from "node:fs";
import { connect, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { loadScenarioText } from "../../sim/scenario/loader.js";
import type { ClockMode } from "../../serve/clock.js";
import { QmpServer, type ServerOptions } from "../../serve/server.js";
import { buildWorld } from "../../serve/world.js";

/** A raw QMP connection: what it sends, and every line it gets back, parsed. */
export class RawClient {
  readonly lines: Record<string, unknown>[] = [];
  private buf = "";
  private waiters: (() => void)[] = [];
  closed = false;

  private constructor(readonly sock: Socket) {
    sock.setEncoding("utf8");
    sock.on("data", (d: string) => {
      this.buf += d;
      let i: number;
      while ((i = this.buf.indexOf("\r\n")) >= 0) {
        this.lines.push(JSON.parse(this.buf.slice(0, i)));
        this.buf = this.buf.slice(i + 2);
      }
      for (const w of this.waiters.splice(0)) w();
    });
    sock.on("close", () => {
      this.closed = true;
      for (const w of this.waiters.splice(0)) w();
    });
  }

  static connect(path: string): Promise<RawClient> {
    return new Promise((resolve, reject) => {
      const s = connect(path, () => resolve(new RawClient(s)));
      s.once("error", reject);
    });
  }

  send(text: string): void {
    this.sock.write(text);
  }

  /** Waits for the first line (from index `from`) matching `pred`; fails after 10 s of wall time (a hang, not a timing). */
  async until(pred: (l: Record<string, unknown>) => boolean, from = 0): Promise<Record<string, unknown>> {
    const deadline = Date.now() + 10_000;
    for (;;) {
      const hit = this.lines.slice(from).find(pred);
      if (hit) return hit;
      if (this.closed) throw new Error(`connection closed; lines so far: ${JSON.stringify(this.lines)}`);
      if (Date.now() > deadline) throw new Error(`no matching line within 10 s; lines so far: ${JSON.stringify(this.lines).slice(0, 2000)}`);
      await new Promise<void>((r) => {
        this.waiters.push(r);
        setTimeout(r, 200);
      });
    }
  }

  /** Sends one command and waits for its reply (the next return or error line after what was there). */
  async cmd(execute: string, args?: Record<string, unknown>, id?: unknown): Promise<Record<string, unknown>> {
    const from = this.lines.length;
    this.send(JSON.stringify({ execute, ...(args ? { arguments: args } : {}), ...(id !== undefined ? { id } : {}) }) + "\n");
    return this.until((l) => "return" in l || "error" in l, from);
  }

  async negotiate(): Promise<void> {
    await this.until((l) => "QMP" in l);
    const r = await this.cmd("qmp_capabilities");
    if (!("return" in r)) throw new Error(`negotiation failed: ${JSON.stringify(r)}`);
  }

  close(): void {
    this.sock.destroy();
  }
}

/** A server on a fresh unix socket, over a world built from scenario text (or an empty QEMU). */
export async function startServer(opts: { scenario?: string; clock: ClockMode } & Partial<ServerOptions>): Promise<{ server: QmpServer; path: string; stop(): Promise<void> }> {
  const dir = mkdtempSync(join(tmpdir(), "blocksim-serve-"));
  const path = join(dir, "q.sock");
  const loaded = opts.scenario ? loadScenarioText(opts.scenario, "test.yaml") : undefined;
  const world = opts.world ?? buildWorld(loaded);
  const server = new QmpServer({ ...opts, world, clock: opts.clock });
  server.setUp();
  await server.listen({ kind: "unix", path });
  return { server, path, stop: async () => { await server.close(); rmSync(dir, { recursive: true, force: true }); } };
}
