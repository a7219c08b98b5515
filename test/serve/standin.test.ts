/**
 * The qemu-system-x86_64 stand-in without libvirt: libvirt 9.0's command
 * line (as it started the real QEMU 7.2 for the recording), QMP on its
 * monitor socket with the block commands libvirt's blockcopy sends, the
 * block statistics libvirt reads, the recorded replies for the rest,
 * SIGTERM, -daemonize and a bad option.
 */
import { spawn, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, statSync, truncateSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { afterEach, describe, expect, it } from "vitest";
import { QmpClient } from "../../live/qmp-client.js";
import { parseCommandLine } from "../../serve/libvirt/qemu-standin.js";

const STAND_IN = fileURLToPath(new URL("../../bin/blocksim-qemu.js", import.meta.url));

/** libvirt 9.0's command line for the recorded domain (ps of the real QEMU), with the monitor on a path instead of an inherited fd. */
function libvirtArgs(dir: string): string[] {
  return [
    "-name", "guest=blocksim-test,debug-threads=on", "-S",
    "-object", `{"qom-type":"secret","id":"masterKey0","format":"raw","file":"${dir}/master-key.aes"}`,
    "-machine", "pc-i440fx-7.2,usb=off,dump-guest-core=off,memory-backend=pc.ram", "-accel", "tcg", "-cpu", "qemu64", "-m", "128",
    "-object", '{"qom-type":"memory-backend-ram","id":"pc.ram","size":134217728}', "-overcommit", "mem-lock=off",
    "-smp", "1,sockets=1,cores=1,threads=1", "-uuid", "488683f5-e4ff-428a-87e7-abf7717de722", "-display", "none",
    "-no-user-config", "-nodefaults",
    "-chardev", `socket,id=charmonitor,path=${dir}/monitor.sock,server=on,wait=off`, "-mon", "chardev=charmonitor,id=monitor,mode=control",
    "-rtc", "base=utc", "-no-shutdown", "-no-acpi", "-boot", "strict=on",
    "-device", '{"driver":"piix3-usb-uhci","id":"usb","bus":"pci.0","addr":"0x1.0x2"}',
    "-blockdev", `{"driver":"file","filename":"${dir}/disk.raw","node-name":"libvirt-1-storage","auto-read-only":true,"discard":"unmap"}`,
    "-blockdev", '{"node-name":"libvirt-1-format","read-only":false,"driver":"raw","file":"libvirt-1-storage"}',
    "-device", '{"driver":"virtio-blk-pci","bus":"pci.0","addr":"0x2","drive":"libvirt-1-format","id":"virtio-disk0","bootindex":1}',
    "-audiodev", '{"id":"audio1","driver":"none"}', "-sandbox", "on,obsolete=deny,elevateprivileges=deny,spawn=deny,resourcecontrol=deny",
    "-msg", "timestamp=on",
  ];
}

let dirs: string[] = [];
afterEach(() => {
  for (const d of dirs.splice(0)) rmSync(d, { recursive: true, force: true });
});
function tempDir(): string {
  const d = mkdtempSync(join(tmpdir(), "blocksim-standin-"));
  dirs.push(d);
  return d;
}

describe("blocksim-qemu, the qemu-system-x86_64 stand-in", () => {
  it("reads libvirt 9.0's command line: its -blockdev nodes and its monitor", () => {
    const cl = parseCommandLine(libvirtArgs("/d"));
    expect(cl.blockdevs.map((b) => b["node-name"])).toEqual(["libvirt-1-storage", "libvirt-1-format"]);
    expect(cl.monitors.listens()).toEqual([{ kind: "unix", path: "/d/monitor.sock" }]);
    expect(parseCommandLine(["-chardev", "socket,id=charmonitor,fd=31,server=on,wait=off", "-mon", "chardev=charmonitor,id=monitor,mode=control"]).monitors.listens()).toEqual([{ kind: "fd", fd: 31 }]);
    expect(() => parseCommandLine(["-frobnicate"])).toThrow("-frobnicate: invalid option");
    expect(() => parseCommandLine(["-blockdev", "driver=file,filename=x"])).toThrow(/only the JSON form/);
  });

  it("serves libvirt's blockcopy over its monitor: block commands simulated, the rest as QEMU 7.2 answered; SIGTERM sends SHUTDOWN and exits", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "disk.raw"), "");
    truncateSync(join(dir, "disk.raw"), 64 << 20);
    const p = spawn(process.execPath, [STAND_IN, ...libvirtArgs(dir)], { stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    p.stderr.on("data", (d) => (stderr += d));
    const exited = new Promise<number | null>((r) => p.on("exit", (code) => r(code)));
    try {
      const c = await QmpClient.connect(join(dir, "monitor.sock"), { timeoutMs: 30_000 });
      // Recorded from QEMU 7.2 through libvirt: the first qom-get libvirt sends, and query-cpus-fast.
      expect(await c.execute("query-cpus-fast")).toMatchObject({ return: [{ "cpu-index": 0, target: "x86_64" }] });
      expect(await c.execute("cont")).toEqual({ return: {} });
      await c.waitForEvent((e) => e.event === "RESUME", "RESUME", 30_000, 0); // QEMU sends RESUME before cont's reply
      // libvirt's blockcopy: a protocol node, a create job, the format node, the mirror.
      expect(await c.execute("blockdev-add", { driver: "file", filename: join(dir, "copy.qcow2"), "node-name": "libvirt-2-storage", "auto-read-only": true, discard: "unmap" })).toEqual({ return: {} });
      expect(await c.execute("blockdev-create", { "job-id": "create-libvirt-2-format", options: { driver: "qcow2", file: "libvirt-2-storage", size: 64 << 20, "cluster-size": 65536 } })).toEqual({ return: {} });
      expect(await c.execute("query-jobs")).toEqual({ return: [{ "current-progress": 1, status: "concluded", "total-progress": 1, type: "create", id: "create-libvirt-2-format" }] });
      expect(await c.execute("job-dismiss", { id: "create-libvirt-2-format" })).toEqual({ return: {} });
      expect(await c.execute("blockdev-add", { "node-name": "libvirt-2-format", "read-only": false, driver: "qcow2", file: "libvirt-2-storage", backing: null })).toEqual({ return: {} });
      expect(await c.execute("blockdev-mirror", { "job-id": "copy-vda", device: "libvirt-1-format", target: "libvirt-2-format", sync: "full", "auto-finalize": true, "auto-dismiss": false })).toEqual({ return: {} });
      await c.waitForEvent((e) => e.event === "BLOCK_JOB_READY", "BLOCK_JOB_READY", 30_000, 0);
      expect(await c.execute("query-named-block-nodes", { flat: true })).toMatchObject({ return: expect.arrayContaining([expect.objectContaining({ "node-name": "libvirt-2-format", image: expect.objectContaining({ "virtual-size": 64 << 20, "cluster-size": 65536, filename: join(dir, "copy.qcow2") }) })]) });
      expect(await c.execute("query-no-such-thing")).toMatchObject({ error: { class: "CommandNotFound" } });
      const statuses = c.events.filter((e) => e.event === "JOB_STATUS_CHANGE" && e.data.id === "create-libvirt-2-format").map((e) => e.data.status);
      expect(statuses).toEqual(["created", "running", "waiting", "pending", "concluded", "null"]);
      p.kill("SIGTERM");
      await c.waitForEvent((e) => e.event === "SHUTDOWN", "SHUTDOWN", 30_000, 0);
      expect(await exited).toBe(0);
    } finally {
      p.kill("SIGKILL");
    }
    expect(stderr).toBe("");
  });

  it("answers libvirt's block statistics: query-blockstats names libvirt's storage node and counts the firmware's boot-sector read after cont and qemu-io's aio_read, not its read", async () => {
    const dir = tempDir();
    writeFileSync(join(dir, "disk.raw"), Buffer.alloc(1 << 20, 1));
    truncateSync(join(dir, "disk.raw"), 64 << 20);
    const p = spawn(process.execPath, [STAND_IN, ...libvirtArgs(dir)], { stdio: ["ignore", "ignore", "pipe"] });
    type Stats = { device: string; qdev?: string; "node-name": string; stats: Record<string, number>; parent?: { "node-name": string; "driver-specific"?: unknown } };
    try {
      const c = await QmpClient.connect(join(dir, "monitor.sock"), { timeoutMs: 30_000 });
      const device = async () => ((await c.execute("query-blockstats")) as { return: Stats[] }).return;
      const before = await device();
      expect(before.map((s) => [s.device, s.qdev, s["node-name"], s.parent?.["node-name"]])).toEqual([["", "/machine/peripheral/virtio-disk0/virtio-backend", "libvirt-1-format", "libvirt-1-storage"]]);
      expect(before[0].stats).toMatchObject({ rd_operations: 0, rd_bytes: 0, account_invalid: true, account_failed: true });
      expect(before[0].stats).not.toHaveProperty("idle_time_ns"); // nothing accounted yet
      expect(await c.execute("cont")).toEqual({ return: {} });
      let after = before;
      for (let i = 0; i < 300 && after[0].stats.rd_operations === 0; i++) {
        await new Promise((r) => setTimeout(r, 100));
        after = await device();
      }
      expect(after[0].stats).toMatchObject({ rd_operations: 1, rd_bytes: 512 }); // the firmware's boot-sector read
      expect(await c.execute("human-monitor-command", { "command-line": 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "aio_read 0 64k"' })).toEqual({ return: "" });
      expect(await c.execute("human-monitor-command", { "command-line": 'qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "read 0 64k"' })).toEqual({ return: "" });
      expect((await device())[0].stats).toMatchObject({ rd_operations: 2, rd_bytes: 512 + 65536 }); // the read is not accounted
      const nodes = ((await c.execute("query-blockstats", { "query-nodes": true })) as { return: Stats[] }).return;
      expect(nodes.map((s) => [s["node-name"], s.parent?.["node-name"], "driver-specific" in s])).toEqual([["libvirt-1-storage", undefined, true], ["libvirt-1-format", "libvirt-1-storage", false]]);
      // libvirt's allocation and physical size of the disk: the image file's allocated bytes
      expect(await c.execute("query-named-block-nodes", { flat: true })).toMatchObject({ return: [{ "node-name": "libvirt-1-format", image: { "actual-size": statSync(join(dir, "disk.raw")).blocks * 512 } }] });
      c.close();
    } finally {
      p.kill("SIGKILL");
    }
  });

  it("-daemonize: the parent exits once the child serves QMP; -pidfile names the child", async () => {
    const dir = tempDir();
    const pidfile = join(dir, "qemu.pid");
    const r = spawnSync(process.execPath, [STAND_IN, "-S", "-no-user-config", "-nodefaults", "-nographic", "-machine", "none,accel=kvm:tcg",
      "-qmp", `unix:${dir}/probe.sock,server=on,wait=off`, "-pidfile", pidfile, "-daemonize"], { timeout: 60_000 });
    expect(r.status).toBe(0);
    const pid = Number(readFileSync(pidfile, "utf8"));
    try {
      const c = await QmpClient.connect(join(dir, "probe.sock"));
      // The probe's replies are the kvm probe's: libvirt asked query-kvm of the real QEMU 7.2.
      expect(await c.execute("query-kvm")).toHaveProperty("return");
      expect(await c.execute("query-version")).toMatchObject({ return: { qemu: { major: 7, minor: 2, micro: 22 } } });
      c.close();
    } finally {
      process.kill(pid, "SIGTERM");
    }
    for (let i = 0; i < 100 && existsSync(`${dir}/probe.sock`); i++) await new Promise((res) => setTimeout(res, 50));
    expect(existsSync(`${dir}/probe.sock`)).toBe(false);
  });

  it("refuses an option QEMU would not know, as QEMU does", () => {
    const r = spawnSync(process.execPath, [STAND_IN, "-frobnicate"], { encoding: "utf8", timeout: 60_000 });
    expect(r.status).toBe(1);
    expect(r.stderr).toBe("qemu-system-x86_64: -frobnicate: invalid option\n");
  });
});
