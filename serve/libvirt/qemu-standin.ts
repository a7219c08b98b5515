/**
 * `blocksim-qemu`: a qemu-system-x86_64 stand-in that libvirt 9.0 can start
 * and drive. It accepts the command line libvirt builds, creates the block
 * nodes its -blockdev options describe on simulated devices and attaches
 * its virtio-blk-pci -device disks to them (device_add), and serves QMP
 * on its -qmp / -chardev+-mon sockets (a listening fd libvirt passed, or a
 * path): block commands go to the simulated QEMU (through block-layer.ts),
 * every other command is answered from the replies recorded from the real
 * QEMU 7.2 through libvirt (fixtures.ts). -daemonize forks, as QEMU does
 * for libvirt's capability probe; -pidfile is written.
 *
 * BLOCKSIM_QEMU_CONFIG=FILE (JSON) tunes it: {"clock": "realtime:1",
 * "devices": [{"match": "copy2", "bandwidth": 4194304, "latency": 1000000,
 * "queue-depth": 8}]} gives image files whose path contains `match` that
 * bandwidth (bytes/s), latency (ns) and queue depth (default: instant);
 * BLOCKSIM_QEMU_LOG=FILE logs what the stand-in did.
 */
import { spawn } from "node:child_process";
import { appendFileSync, readFileSync, writeFileSync } from "node:fs";
import { createConnection } from "node:net";
import { MonitorArgs } from "../address.js";
import { parseClock } from "../clock.js";
import { QmpServer } from "../server.js";
import { buildWorld } from "../world.js";
import type { World as HarnessWorld } from "../../sim/harness/world.js";
import { LibvirtBlockLayer } from "./block-layer.js";
import { RecordedReplies } from "./fixtures.js";
import { IoError } from "../../sim/disk/index.js";
import { diskByQomPath } from "../../sim/qmp/device-commands.js";
import { sleep, wait, type Process } from "../../sim/scheduler/index.js";

const NO_VALUE = new Set(["-S", "-no-user-config", "-nodefaults", "-nographic", "-no-shutdown", "-no-acpi", "-daemonize", "-enable-kvm", "-no-reboot", "-no-hpet", "-snapshot", "-only-migratable"]);
const WITH_VALUE = new Set(["-name", "-machine", "-M", "-accel", "-cpu", "-m", "-smp", "-uuid", "-chardev", "-mon", "-qmp", "-blockdev", "-device", "-pidfile",
  "-object", "-msg", "-sandbox", "-overcommit", "-rtc", "-global", "-boot", "-display", "-audiodev", "-serial", "-parallel", "-vga", "-k", "-add-fd",
  "-incoming", "-netdev", "-fw_cfg", "-smbios", "-numa", "-drive", "-D", "-d", "-L", "-bios", "-kernel", "-initrd", "-append", "-mem-path", "-monitor", "-set"]);

interface Config {
  clock?: string;
  devices?: { match: string; bandwidth?: number; latency?: number; "queue-depth"?: number }[];
}

export class StandInUsageError extends Error {}

export interface CommandLine {
  blockdevs: Record<string, unknown>[];
  /** The guest disks (-device virtio-blk-pci in JSON form, as libvirt writes it), as device_add arguments. */
  disks: Record<string, unknown>[];
  monitors: MonitorArgs;
  pidfile?: string;
  daemonize: boolean;
  /** -S: the VM starts stopped; libvirt's `cont` starts it (RESUME). */
  startStopped: boolean;
  name?: string;
  machine?: string;
}

export function parseCommandLine(argv: string[]): CommandLine {
  const cl: CommandLine = { blockdevs: [], disks: [], monitors: new MonitorArgs(), daemonize: false, startStopped: false };
  for (let i = 0; i < argv.length; i++) {
    const opt = argv[i].startsWith("--") ? argv[i].slice(1) : argv[i];
    if (NO_VALUE.has(opt)) {
      if (opt === "-daemonize") cl.daemonize = true;
      if (opt === "-S") cl.startStopped = true;
      continue;
    }
    if (!WITH_VALUE.has(opt)) throw new StandInUsageError(`${argv[i]}: invalid option`);
    const v = argv[++i];
    if (v === undefined) throw new StandInUsageError(`${argv[i - 1]}: requires an argument`);
    if (opt === "-blockdev") {
      if (!v.trim().startsWith("{")) throw new StandInUsageError(`-blockdev ${v}: only the JSON form is supported (as libvirt writes it)`);
      try {
        cl.blockdevs.push(JSON.parse(v) as Record<string, unknown>);
      } catch (e) {
        throw new StandInUsageError(`-blockdev ${v}: ${(e as Error).message}`);
      }
    } else if (opt === "-device") {
      const disk = guestDisk(v);
      if (disk) cl.disks.push(disk);
    } else if (opt === "-chardev") {
      // Only socket chardevs can be monitors; others (pty, file for a serial console) are not served.
      if (v.startsWith("socket,")) cl.monitors.chardev(v);
    }
    else if (opt === "-mon") cl.monitors.mon(v);
    else if (opt === "-qmp") cl.monitors.qmp(v);
    else if (opt === "-pidfile") cl.pidfile = v;
    else if (opt === "-name") cl.name = v;
    else if (opt === "-machine" || opt === "-M") cl.machine = v;
  }
  return cl;
}

/**
 * A virtio-blk-pci -device as device_add arguments (the properties the
 * simulator models: the rest, bus, addr, bootindex, only place it on the
 * guest's PCI bus); undefined for any other device, which is not simulated.
 */
function guestDisk(v: string): Record<string, unknown> | undefined {
  if (!v.trim().startsWith("{")) return undefined;
  let d: Record<string, unknown>;
  try {
    d = JSON.parse(v) as Record<string, unknown>;
  } catch (e) {
    throw new StandInUsageError(`-device ${v}: ${(e as Error).message}`);
  }
  if (d.driver !== "virtio-blk-pci") return undefined;
  return { driver: d.driver, id: d.id, drive: d.drive, ...(d["share-rw"] !== undefined ? { "share-rw": d["share-rw"] } : {}) };
}

function log(msg: string): void {
  const f = process.env.BLOCKSIM_QEMU_LOG;
  if (f) appendFileSync(f, `${new Date().toISOString()} [${process.pid}] ${msg}\n`);
}

export async function standInMain(argv: string[]): Promise<number> {
  if (argv.includes("-version") || argv.includes("--version")) {
    process.stdout.write("QEMU emulator version 7.2.22 (blocksim stand-in)\n");
    return 0;
  }
  let cl: CommandLine;
  try {
    cl = parseCommandLine(argv);
  } catch (e) {
    process.stderr.write(`qemu-system-x86_64: ${(e as Error).message}\n`);
    return 1;
  }
  if (cl.daemonize && !process.env.BLOCKSIM_QEMU_DAEMON) return daemonize(argv);
  const config: Config = process.env.BLOCKSIM_QEMU_CONFIG ? JSON.parse(readFileSync(process.env.BLOCKSIM_QEMU_CONFIG, "utf8")) as Config : {};
  log(`start ${argv.join(" ")}`);
  let worldRef: HarnessWorld | undefined;
  const layer = new LibvirtBlockLayer(() => worldRef!, (filename) => {
    const d = config.devices?.find((x) => filename.includes(x.match));
    if (!d) return {};
    return { ...(d.bandwidth !== undefined ? { bandwidthBytesPerSec: d.bandwidth } : {}), ...(d.latency !== undefined ? { latencyNs: d.latency } : {}), ...(d["queue-depth"] !== undefined ? { queueDepth: d["queue-depth"] } : {}) };
  });
  const replies = new RecordedReplies(cl.machine?.startsWith("none") ? (/accel=kvm/.test(cl.machine) ? "probe-kvm" : "probe-tcg") : "domain");
  const world = buildWorld(undefined, {
    setup: function* (w) {
      worldRef = w;
      const qemu = w.qemu;
      if (cl.startStopped) qemu.graph.vm.running = false; // stop/cont are simulated: cont sends RESUME
      for (const b of cl.blockdevs) {
        const args = layer.blockdev(b);
        if (!args) continue;
        const r = yield* qemu.monitor.execute({ execute: "blockdev-add", arguments: args });
        if ("error" in r) throw new Error(`-blockdev ${JSON.stringify(b)}: ${r.error.desc}`);
      }
      // The guest's disks take their permissions on the nodes, as QEMU's realize does: jobs and pivots then meet them.
      for (const d of cl.disks) {
        const r = yield* qemu.monitor.execute({ execute: "device_add", arguments: d });
        if ("error" in r) throw new Error(`-device ${JSON.stringify(d)}: ${r.error.desc}`);
      }
      if (cl.disks.length > 0) bootSectorRead(w, String(cl.disks[0].id));
    },
  });
  worldRef = world.harness;
  let quit: () => void = () => {};
  const stopped = new Promise<void>((r) => (quit = r));
  const server = new QmpServer({
    world, clock: parseClock(config.clock ?? "realtime"),
    intercept: (execute, args) => {
      const hook = layer.intercept(execute, args);
      log(`${execute} ${JSON.stringify(args ?? {})}${hook ? ("answer" in hook ? " (answered by the block layer)" : " (rewritten for the simulator)") : ""}`);
      return hook;
    },
    extra: (execute, args) => replies.answer(execute, args) ?? { error: { class: "CommandNotFound", desc: `The command ${execute} has not been found (blocksim stand-in: no reply recorded from QEMU 7.2 for these arguments)` } },
    onQuit: () => quit(),
    log,
  });
  try {
    server.setUp();
  } catch (e) {
    process.stderr.write(`qemu-system-x86_64: ${(e as Error).message}\n`);
    return 1;
  }
  for (const l of cl.monitors.listens()) log(`QMP on ${await server.listen(l)}`);
  if (cl.pidfile) writeFileSync(cl.pidfile, `${process.pid}\n`);
  if (process.env.BLOCKSIM_QEMU_DAEMON) {
    // Tell the parent we are ready: it exits, as QEMU's -daemonize parent does once the child is set up.
    await new Promise<void>((r) => {
      const c = createConnection(process.env.BLOCKSIM_QEMU_DAEMON!, () => c.end("ready\n", () => r()));
      c.on("error", () => r());
    });
  }
  const onSignal = (sig: string) => {
    log(`${sig}: shutting down`);
    world.qemu.monitor.event("SHUTDOWN", { guest: false, reason: "host-signal" });
    setTimeout(() => quit(), 20);
  };
  process.once("SIGTERM", () => onSignal("SIGTERM"));
  process.once("SIGINT", () => onSignal("SIGINT"));
  process.once("SIGHUP", () => onSignal("SIGHUP"));
  await stopped;
  await server.close();
  log("exit");
  return 0;
}

/**
 * When the VM first runs (libvirt's `cont`), the guest's firmware (SeaBIOS)
 * reads the boot disk's first sector through the virtio disk, a read the
 * disk's BlockBackend accounts: real QEMU 7.2 shows it in query-blockstats
 * (`virsh domblkstat`: rd_req 1, rd_bytes 512; serve/libvirt/fixtures/
 * qemu-7.2.json, the stats session), about 0.17 s after `cont` (libvirtd's
 * log of that recording: query-blockstats 3.05 s after `cont` found
 * idle_time_ns 2.88 s). The images hold no boot sector; SeaBIOS reads
 * nothing more (domblkstat 65 s after `cont` still shows the one read).
 * Nothing else of the boot (the device reset's drain, README "Driving
 * blocksim from libvirt") is shown.
 */
const BOOT_SECTOR_READ_DELAY_NS = 170_000_000;

function bootSectorRead(w: HarnessWorld, diskId: string): void {
  const blk = diskByQomPath(w.qemu.monitor.ctx, `${diskId}/virtio-backend`); // the commands' context, where device_add keeps its disks
  if (blk === undefined || blk === "no-backend") return;
  const { sim } = w;
  const vm = w.qemu.graph.vm;
  sim.spawn("firmware: boot sector read", (function* (): Process<void> {
    while (!vm.running) yield wait(vm.resumed);
    yield sleep(BOOT_SECTOR_READ_DELAY_NS);
    const acct = blk.acct.start("rd", 512, sim.now);
    try {
      yield* blk.read(0, 512);
      blk.acct.end(acct, false, sim.now);
    } catch (e) {
      if (!(e instanceof IoError)) throw e;
      blk.acct.end(acct, true, sim.now);
    }
  })(), { daemon: true });
}

/** -daemonize: run a detached copy and exit once it is listening. */
async function daemonize(argv: string[]): Promise<number> {
  const { createServer } = await import("node:net");
  const { mkdtempSync, rmSync } = await import("node:fs");
  const { tmpdir } = await import("node:os");
  const { join } = await import("node:path");
  const dir = mkdtempSync(join(tmpdir(), "blocksim-qemu-"));
  const sock = join(dir, "ready.sock");
  const ready = new Promise<boolean>((resolve) => {
    const srv = createServer((c) => c.on("data", () => { srv.close(); resolve(true); }));
    srv.listen(sock);
    setTimeout(() => { srv.close(); resolve(false); }, 60_000);
  });
  const child = spawn(process.execPath, [...process.execArgv, process.argv[1], ...argv], {
    detached: true, stdio: "ignore", env: { ...process.env, BLOCKSIM_QEMU_DAEMON: sock },
  });
  child.unref();
  const listening = await ready;
  rmSync(dir, { recursive: true, force: true }); // the copy has said it listens: the ready socket is done with
  return listening ? 0 : 1;
}
