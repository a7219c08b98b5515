/**
 * `blocksim serve`: the simulated QEMU behind real QMP sockets.
 *
 * Each connection is a QMP monitor: the greeting, capabilities negotiation,
 * then commands in order, one in flight at a time, with `id` echoed; events
 * go to every negotiated monitor. A command runs as a client process inside
 * the simulation (sim/qmp's monitor serves them one at a time, as QEMU's
 * dispatcher does); the clock (clock.ts) decides how virtual time follows
 * the wall clock. Bad input gets QMP's own errors and never touches another
 * monitor; a client that goes away leaves its jobs running.
 *
 * Every command that reaches the simulation is logged with the virtual time
 * and the monitor it came from: that list rebuilds the run exactly
 * (replay.ts), whatever the wall clock did.
 */
import { createServer, type Server, type Socket } from "node:net";
import { existsSync, unlinkSync } from "node:fs";
import { COMMANDS } from "../sim/qmp/qemu.js";
import type { QmpEvent, QmpResponse } from "../sim/qmp/types.js";
import type { Outcome, Process } from "../sim/scheduler/index.js";
import { describeListen, type Listen } from "./address.js";
import type { ClockMode } from "./clock.js";
import { DEFAULT_LIMITS, JsonStream, type Parsed, type StreamLimits } from "./json-stream.js";
import { checkRequest, errorReply, GREETING, line, reply } from "./wire.js";
import { describeOutcome } from "../sim/harness/run.js";
import { runSetup, type World } from "./world.js";

/** A command that reached the simulation: what rebuilds the run. */
export interface Action {
  /** Virtual time (ns) at which the client process was spawned. */
  t: number;
  /** The monitor (connection) number, from 1. */
  client: number;
  execute: string;
  arguments?: Record<string, unknown>;
}

/** A command outside the simulated block layer, answered by the caller (the stand-in's recorded fixtures). */
export type ExtraCommand = (execute: string, args: Record<string, unknown> | undefined) => QmpResponse | undefined;

/**
 * Sees every command first (the stand-in's translation of libvirt's block
 * layer): answers it, rewrites it for the simulation, or lets it through.
 */
export type Intercept = (execute: string, args: Record<string, unknown> | undefined) =>
  | { answer: QmpResponse }
  | { rewrite: { execute: string; arguments?: Record<string, unknown> }; after?: (r: QmpResponse) => QmpResponse }
  | undefined;

export interface ServerOptions {
  world: World;
  clock: ClockMode;
  limits?: StreamLimits;
  extra?: ExtraCommand;
  intercept?: Intercept;
  /** Called when the simulated QEMU has exited (a client's `quit`, after its reply; or a crash), once its monitors are closed. */
  onQuit?: () => void;
  /** Diagnostics (connections, a simulation that stopped). */
  log?: (msg: string) => void;
}

const CLOCK_STEP = "x-blocksim-clock-step";
/** Requests a monitor may have queued before its socket stops being read (QEMU's QMP_REQ_QUEUE_LEN_MAX is 8). */
export const MAX_QUEUED = 8;
/** Monitors served at once; a further connection is closed at once. */
export const MAX_MONITORS = 64;
/** In deterministic mode, how many kernel events one turn of the Node event loop may run before yielding to I/O. */
const EVENTS_PER_TURN = 20_000;
/** Longest the realtime driver sleeps (it wakes earlier for the next event). */
const MAX_SLEEP_MS = 200;

class Session {
  negotiated = false;
  inFlight = false;
  closed = false;
  readonly queue: Parsed[] = [];
  readonly parser: JsonStream;
  lastInputMs = 0;

  constructor(readonly id: number, readonly sock: Socket, limits: StreamLimits) {
    this.parser = new JsonStream(limits);
  }

  send(v: unknown): void {
    if (!this.closed && this.sock.writable) this.sock.write(line(v));
  }

  /** Busy from the clock's point of view: a command in flight, queued, or partly received. */
  get busy(): boolean {
    return this.inFlight || this.queue.length > 0 || this.parser.partial;
  }
}

export class QmpServer {
  readonly actions: Action[] = [];
  /** Each simulated command's reply as it went out (or would have, to a monitor since gone). */
  readonly replies: { client: number; execute: string; t: number; response: QmpResponse }[] = [];
  private readonly sessions = new Set<Session>();
  private readonly servers: Server[] = [];
  private nextClient = 1;
  private readonly limits: StreamLimits;
  private wallStartMs = 0;
  private virtStartNs = 0;
  private timer: NodeJS.Timeout | undefined;
  private immediate: NodeJS.Immediate | undefined;
  private stopped: Outcome | undefined;
  private closing = false;
  private readonly unixPaths: string[] = [];

  constructor(private readonly opts: ServerOptions) {
    this.limits = opts.limits ?? DEFAULT_LIMITS;
    opts.world.qemu.monitor.onEvent((e) => this.broadcast(e));
    // `quit` runs in the simulated QEMU (SHUTDOWN, jobs cancelled, then the reply); when the process ends
    // that way or by a crash, its monitors close as a real QEMU's do, after what was already written.
    opts.world.qemu.process.onExit((e) => {
      this.opts.log?.(`the simulated QEMU ${e.kind === "quit" ? "quit" : `crashed (${e.signal}): ${e.reason}`}; closing its monitors`);
      setImmediate(() => {
        for (const s of this.sessions) {
          s.closed = true;
          s.sock.end();
        }
        this.sessions.clear();
        this.opts.onQuit?.();
      });
    });
  }

  get world(): World { return this.opts.world; }
  /** Virtual time now (ns). */
  get now(): number { return this.opts.world.sim.now; }
  /** Why the simulation stopped, if it did (a simulator failure or a budget). */
  get outcome(): Outcome | undefined { return this.stopped; }

  /** Runs the scenario's setup (devices, data, nodes, guests) on virtual time, then starts the clock; throws what went wrong. */
  setUp(): void {
    runSetup(this.opts.world);
    this.wallStartMs = performance.now();
    this.virtStartNs = this.now;
    this.kick();
  }

  /** Listens on one address; resolves with its description. */
  listen(l: Listen): Promise<string> {
    const srv = createServer((sock) => this.attach(sock));
    this.servers.push(srv);
    return new Promise((resolve, reject) => {
      srv.once("error", reject);
      const done = () => {
        srv.off("error", reject);
        srv.on("error", (e) => this.opts.log?.(`listener ${describeListen(l)}: ${e.message}`));
        const a = srv.address();
        resolve(l.kind === "tcp" && a && typeof a === "object" ? `tcp:${a.address}:${a.port}` : describeListen(l));
      };
      if (l.kind === "unix") {
        if (existsSync(l.path)) unlinkSync(l.path); // QEMU also replaces a stale socket file
        this.unixPaths.push(l.path);
        srv.listen(l.path, done);
      } else if (l.kind === "tcp") srv.listen(l.port, l.host, done);
      else srv.listen({ fd: l.fd }, done);
    });
  }

  /** Serves QMP on one connected socket. */
  attach(sock: Socket): void {
    if (this.sessions.size >= MAX_MONITORS) {
      this.opts.log?.(`refused a connection: ${MAX_MONITORS} monitors are connected already`);
      sock.destroy();
      return;
    }
    const s = new Session(this.nextClient++, sock, this.limits);
    this.sessions.add(s);
    sock.setEncoding("utf8");
    sock.on("data", (chunk: string) => {
      s.lastInputMs = performance.now();
      s.queue.push(...s.parser.feed(chunk));
      // Like QEMU, stop reading a monitor whose requests pile up; reading resumes as they are served.
      if (s.queue.length >= MAX_QUEUED) sock.pause();
      this.kick();
    });
    const gone = () => {
      if (s.closed) return;
      s.closed = true;
      this.sessions.delete(s);
      this.opts.log?.(`monitor ${s.id} disconnected${s.inFlight ? " with a command in flight (it runs on; its reply is dropped)" : ""}`);
    };
    sock.on("error", gone);
    sock.on("close", gone);
    s.send(GREETING);
    this.opts.log?.(`monitor ${s.id} connected`);
  }

  /** Stops listening, closes every connection, stops the clock. */
  async close(): Promise<void> {
    this.closing = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.immediate) clearImmediate(this.immediate);
    for (const s of this.sessions) {
      s.closed = true;
      s.sock.destroy();
    }
    this.sessions.clear();
    await Promise.all(this.servers.map((srv) => new Promise<void>((r) => srv.close(() => r()))));
    for (const p of this.unixPaths) if (existsSync(p)) unlinkSync(p);
  }

  // ---- the clock ----

  private virtualWallNow(): number {
    const c = this.opts.clock;
    if (c.kind !== "realtime") return this.now;
    return this.virtStartNs + Math.floor((performance.now() - this.wallStartMs) * c.scale * 1e6);
  }

  /** Brings the simulation up to date and serves what the monitors have queued; then sets the next wake-up. */
  private kick(): void {
    if (this.closing) return;
    if (this.timer) { clearTimeout(this.timer); this.timer = undefined; }
    if (this.immediate) { clearImmediate(this.immediate); this.immediate = undefined; }
    const c = this.opts.clock;
    if (c.kind === "realtime") {
      // Catch up with the wall clock, a bounded number of events per turn so sockets are served meanwhile
      // (a simulation slower than the scale lags behind the wall clock; it never skips work).
      const target = Math.max(this.now, this.virtualWallNow());
      let budget = EVENTS_PER_TURN;
      for (;;) {
        const next = this.opts.world.sim.nextEventNs();
        if (next === undefined || next > target || this.stopped) {
          this.advance(target);
          break;
        }
        this.advance(next);
        if (--budget <= 0) break;
      }
      this.serveQueues();
      if (budget <= 0 && !this.stopped) {
        this.immediate = setImmediate(() => this.kick());
        return;
      }
      const next = this.opts.world.sim.nextEventNs();
      if (next === undefined || this.stopped) return;
      const ms = (next - this.virtualWallNow()) / (c.scale * 1e6);
      if (ms <= 0) this.immediate = setImmediate(() => this.kick());
      else this.timer = setTimeout(() => this.kick(), Math.min(ms, MAX_SLEEP_MS));
      return;
    }
    this.serveQueues();
    // A command in flight runs to its reply on virtual time alone, a bounded number of events per turn.
    let budget = EVENTS_PER_TURN;
    while (!this.stopped && [...this.sessions].some((s) => s.inFlight) && budget-- > 0) {
      const next = this.opts.world.sim.nextEventNs();
      if (next === undefined) break; // it waits for something only a client can bring
      this.advance(next);
      this.serveQueues();
    }
    if (this.stopped) return;
    if ([...this.sessions].some((s) => s.inFlight || s.queue.length > 0)) {
      if (budget <= 0) this.immediate = setImmediate(() => this.kick());
      return;
    }
    if (c.kind !== "deterministic") return;
    const idleFor = performance.now() - Math.max(0, ...[...this.sessions].map((s) => s.lastInputMs));
    if ([...this.sessions].some((s) => s.parser.partial) || idleFor < c.graceMs) {
      this.timer = setTimeout(() => this.kick(), Math.max(1, c.graceMs - idleFor));
      return;
    }
    this.advance(this.now + c.quantumNs);
    this.serveQueues();
    this.timer = setTimeout(() => this.kick(), c.graceMs);
  }

  private advance(t: number): void {
    if (this.stopped) return;
    const o = this.opts.world.sim.advanceTo(t);
    if (o) {
      this.stopped = o;
      this.opts.log?.(`the simulation stopped: ${describeOutcome(o)}`);
      for (const s of this.sessions) {
        if (s.inFlight) {
          s.inFlight = false;
          s.send(errorReply("GenericError", `blocksim: the simulation stopped: ${describeOutcome(o)}`));
        }
      }
    }
  }

  // ---- the monitors ----

  private broadcast(e: QmpEvent): void {
    const msg = { timestamp: e.timestamp, event: e.event, data: e.data };
    for (const s of this.sessions) if (s.negotiated) s.send(msg);
  }

  /** Serves each monitor's queue up to its next command that needs the simulation. */
  private serveQueues(): void {
    for (const s of this.sessions) {
      while (!s.inFlight && !s.closed && s.queue.length > 0) this.serveOne(s, s.queue.shift()!);
      if (s.sock.isPaused() && s.queue.length < MAX_QUEUED && !s.closed) s.sock.resume();
    }
  }

  private serveOne(s: Session, p: Parsed): void {
    if ("error" in p) return s.send(errorReply("GenericError", p.error));
    const req = checkRequest(p.value);
    if (!req.ok) return s.send(errorReply("GenericError", req.desc, req.hasId, req.id));
    const answer = (r: QmpResponse) => s.send(reply(r, req.hasId, req.id));
    if (!s.negotiated) {
      if (req.execute !== "qmp_capabilities") return answer({ error: { class: "CommandNotFound", desc: "Expecting capabilities negotiation with 'qmp_capabilities'" } });
      const enable = req.arguments?.enable;
      const extra = Object.keys(req.arguments ?? {}).find((k) => k !== "enable");
      if (extra) return answer({ error: { class: "GenericError", desc: `Parameter '${extra}' is unexpected` } });
      if (enable !== undefined && (!Array.isArray(enable) || enable.some((x) => x !== "oob"))) return answer({ error: { class: "GenericError", desc: "Parameter 'enable' expects array of QMPCapability" } });
      if (Array.isArray(enable) && enable.length > 0) return answer({ error: { class: "GenericError", desc: "Capability 'oob' is not available (blocksim runs every command in order)" } });
      s.negotiated = true;
      return answer({ return: {} });
    }
    if (req.execute === "qmp_capabilities") return answer({ error: { class: "CommandNotFound", desc: "Capabilities negotiation is already complete, command ignored" } });
    if (this.stopped) return answer({ error: { class: "GenericError", desc: `blocksim: the simulation stopped: ${describeOutcome(this.stopped)}` } });
    if (req.execute === CLOCK_STEP) return answer(this.clockStep(req.arguments));
    const hook = this.opts.intercept?.(req.execute, req.arguments);
    if (hook && "answer" in hook) return answer(hook.answer);
    if (!hook && !Object.hasOwn(COMMANDS, req.execute)) {
      const r = this.opts.extra?.(req.execute, req.arguments);
      if (r) return answer(r);
    }
    // Into the simulation: a client process spawned now, at the current virtual time.
    const { sim, qemu } = this.opts.world;
    const replies = this.replies;
    const cmd = hook ? hook.rewrite : req.arguments === undefined ? { execute: req.execute } : { execute: req.execute, arguments: req.arguments };
    const after = hook?.after;
    this.actions.push({ t: sim.now, client: s.id, ...cmd });
    s.inFlight = true;
    sim.spawn(`qmp client ${s.id}`, (function* (): Process<void> {
      const r = yield* qemu.monitor.execute(cmd);
      replies.push({ client: s.id, execute: cmd.execute, t: sim.now, response: r });
      s.inFlight = false;
      answer(after ? after(r) : r);
    })(), { daemon: true });
    this.advance(sim.now);
  }

  private clockStep(args: Record<string, unknown> | undefined): QmpResponse {
    if (this.opts.clock.kind === "realtime") return { error: { class: "GenericError", desc: `${CLOCK_STEP} needs --clock deterministic or step (the clock is realtime)` } };
    const extra = Object.keys(args ?? {}).find((k) => k !== "ns");
    if (extra) return { error: { class: "GenericError", desc: `Parameter '${extra}' is unexpected` } };
    const ns = args?.ns;
    let target: number;
    if (ns === undefined) target = this.opts.world.sim.nextEventNs() ?? this.now;
    else if (typeof ns === "number" && Number.isSafeInteger(ns) && ns >= 0 && ns <= 3600e9) target = this.now + ns;
    else return { error: { class: "GenericError", desc: "Parameter 'ns' expects an integer number of nanoseconds in [0, 3600000000000]" } };
    this.actions.push({ t: this.now, client: 0, execute: CLOCK_STEP, arguments: { to: target } });
    this.advance(Math.max(target, this.now));
    return { return: { "clock-ns": this.now } };
  }
}

