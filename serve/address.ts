/**
 * Where QMP listens, in QEMU's own syntax: `-qmp unix:PATH[,server=on,wait=off]`,
 * `-qmp tcp:HOST:PORT[,…]`, or `-chardev socket,id=ID,path=…|host=…,port=…|fd=N`
 * with `-mon chardev=ID,mode=control` (fd=N: a listening socket the parent
 * passed down, as libvirt does).
 */

export type Listen =
  | { kind: "unix"; path: string }
  | { kind: "tcp"; host: string; port: number }
  | { kind: "fd"; fd: number };

export class AddressError extends Error {}

/** Splits QEMU's `a=b,c=d` option syntax (`,,` is a literal comma). */
export function parseOpts(s: string): { head: string; opts: Map<string, string> } {
  const parts: string[] = [];
  let cur = "";
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "," && s[i + 1] === ",") { cur += ","; i++; }
    else if (s[i] === ",") { parts.push(cur); cur = ""; }
    else cur += s[i];
  }
  parts.push(cur);
  const opts = new Map<string, string>();
  const head = parts[0].includes("=") ? "" : parts.shift()!;
  for (const p of parts) {
    const eq = p.indexOf("=");
    opts.set(eq < 0 ? p : p.slice(0, eq), eq < 0 ? "on" : p.slice(eq + 1));
  }
  return { head, opts };
}

function checkServer(opts: Map<string, string>, what: string): void {
  const server = opts.get("server");
  if (server !== undefined && server !== "on" && server !== "yes") throw new AddressError(`${what}: only server=on is supported (blocksim listens; it does not connect out)`);
}

/** `unix:PATH…` or `tcp:HOST:PORT…` (the -qmp argument). */
export function parseQmpAddress(spec: string): Listen {
  const { head, opts } = parseOpts(spec);
  checkServer(opts, `-qmp ${spec}`);
  if (head.startsWith("unix:")) {
    const path = head.slice(5);
    if (!path) throw new AddressError(`-qmp ${spec}: expected unix:PATH`);
    return { kind: "unix", path };
  }
  if (head.startsWith("tcp:")) {
    const rest = head.slice(4);
    const colon = rest.lastIndexOf(":");
    const port = Number(rest.slice(colon + 1));
    if (colon < 0 || !Number.isInteger(port) || port < 0 || port > 65535) throw new AddressError(`-qmp ${spec}: expected tcp:HOST:PORT with a port 0..65535`);
    return { kind: "tcp", host: rest.slice(0, colon) || "127.0.0.1", port };
  }
  throw new AddressError(`-qmp ${spec}: expected unix:PATH or tcp:HOST:PORT`);
}

/** A `-chardev socket,…` argument: its id and where it listens. */
export function parseChardev(spec: string): { id: string; listen: Listen } {
  const { head, opts } = parseOpts(spec);
  const id = opts.get("id");
  if (head !== "socket") throw new AddressError(`-chardev ${spec}: only socket chardevs are supported`);
  if (!id) throw new AddressError(`-chardev ${spec}: expected id=ID`);
  checkServer(opts, `-chardev ${spec}`);
  const fd = opts.get("fd"), path = opts.get("path"), host = opts.get("host"), port = opts.get("port");
  if (fd !== undefined) {
    if (!/^[0-9]+$/.test(fd)) throw new AddressError(`-chardev ${spec}: fd=${fd} is not a file descriptor number`);
    return { id, listen: { kind: "fd", fd: Number(fd) } };
  }
  if (path !== undefined) return { id, listen: { kind: "unix", path } };
  if (port !== undefined) {
    const p = Number(port);
    if (!Number.isInteger(p) || p < 0 || p > 65535) throw new AddressError(`-chardev ${spec}: port=${port} is not 0..65535`);
    return { id, listen: { kind: "tcp", host: host ?? "127.0.0.1", port: p } };
  }
  throw new AddressError(`-chardev ${spec}: expected path=…, host=…,port=… or fd=N`);
}

/** A `-mon chardev=ID,mode=control` argument: the chardev it serves QMP on. */
export function parseMon(spec: string): string {
  const { opts } = parseOpts(spec);
  const id = opts.get("chardev");
  if (!id) throw new AddressError(`-mon ${spec}: expected chardev=ID`);
  const mode = opts.get("mode") ?? "readline";
  if (mode !== "control") throw new AddressError(`-mon ${spec}: only mode=control (QMP) is supported, not the human monitor`);
  return id;
}

/** Collects the QMP listen addresses of a command line's -qmp, -chardev and -mon options. */
export class MonitorArgs {
  private readonly chardevs = new Map<string, Listen>();
  private readonly mons: string[] = [];
  private readonly qmps: Listen[] = [];

  qmp(spec: string): void { this.qmps.push(parseQmpAddress(spec)); }
  chardev(spec: string): void {
    const { id, listen } = parseChardev(spec);
    this.chardevs.set(id, listen);
  }
  mon(spec: string): void { this.mons.push(parseMon(spec)); }

  listens(): Listen[] {
    const out = [...this.qmps];
    for (const id of this.mons) {
      const l = this.chardevs.get(id);
      if (!l) throw new AddressError(`-mon chardev=${id}: no -chardev with id=${id}`);
      out.push(l);
    }
    return out;
  }
}

export function describeListen(l: Listen): string {
  return l.kind === "unix" ? `unix:${l.path}` : l.kind === "tcp" ? `tcp:${l.host}:${l.port}` : `fd:${l.fd}`;
}
