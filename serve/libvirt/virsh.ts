/**
 * The virsh session the recording script runs against the real QEMU 7.2 and
 * the end-to-end test runs against the blocksim stand-in: a transient domain
 * on a two-image qcow2 chain, then blockcopy --wait --pivot, blockjob --info,
 * blockjob --abort during a slow copy, blockcommit --active --pivot,
 * blockpull and destroy. Needs a running libvirtd configured as the README
 * says (qemu:///system); installs and configures nothing.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { existsSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { domainXml } from "./domain.js";

export const URI = "qemu:///system";
export const LOG = "/var/log/libvirt/blocksim-qmp.log";

export interface VirshStep {
  args: string[];
  status: number;
  out: string;
  ms: number;
}

/** Why the libvirt session cannot run here, or undefined when it can. */
export function libvirtMissing(): string | undefined {
  for (const bin of ["virsh", "qemu-img", "qemu-io"]) {
    if (spawnSync(bin, ["--version"], { stdio: "ignore" }).status !== 0) return `${bin} is not installed (apt-get install libvirt-clients qemu-utils)`;
  }
  const v = spawnSync("virsh", ["-c", URI, "version"], { encoding: "utf8", timeout: 20_000 });
  if (v.status !== 0) return `libvirtd is not running or not reachable at ${URI} (${(v.stderr || "").trim().split("\n")[0]}); see README "Driving blocksim from libvirt"`;
  if (!existsSync(LOG)) return `${LOG} is missing: libvirtd.conf needs log_outputs="1:file:${LOG}" (README "Driving blocksim from libvirt")`;
  return undefined;
}

export function virsh(args: string[], timeoutMs = 120_000): VirshStep {
  const t = performance.now();
  const r = spawnSync("virsh", ["-c", URI, ...args], { encoding: "utf8", timeout: timeoutMs });
  return { args, status: r.status ?? -1, out: `${r.stdout ?? ""}${r.stderr ?? ""}`.replace(/\r/g, "").trim(), ms: performance.now() - t };
}

/** The images: base.qcow2 (64 MiB, 8 MiB written) under top.qcow2 (8 MiB more written). */
export function makeImages(dir: string): string {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "base.qcow2"), "64M"]);
  execFileSync("qemu-io", ["-c", "write -P 1 0 8M", join(dir, "base.qcow2")], { stdio: "ignore" });
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", "-b", join(dir, "base.qcow2"), "-F", "qcow2", join(dir, "top.qcow2")]);
  execFileSync("qemu-io", ["-c", "write -P 2 8M 8M", join(dir, "top.qcow2")], { stdio: "ignore" });
  return join(dir, "top.qcow2");
}

/** Runs the session on a domain whose <emulator> is `emulator`; returns every virsh call with its output. */
export function runSession(emulator: string, name: string, dir = mkdtempSync(join(tmpdir(), "blocksim-libvirt-"))): VirshStep[] {
  const disk = makeImages(dir);
  const xml = join(dir, "dom.xml");
  writeFileSync(xml, domainXml({ name, emulator, disk }));
  const steps: VirshStep[] = [];
  const run = (args: string[]) => {
    const s = virsh(args);
    steps.push(s);
    return s;
  };
  if (run(["create", xml]).status !== 0) return steps;
  try {
    run(["blockcopy", name, "vda", join(dir, "copy.qcow2"), "--shallow", "--transient-job", "--wait", "--pivot"]);
    run(["blockjob", name, "vda", "--info"]);
    run(["blockcopy", name, "vda", join(dir, "copy2.qcow2"), "--transient-job", "--bandwidth", "1"]);
    spawnSync("sleep", ["1"]);
    run(["blockjob", name, "vda", "--info"]);
    run(["blockjob", name, "vda", "--abort"]);
    run(["blockcommit", name, "vda", "--active", "--pivot", "--wait"]);
    run(["blockpull", name, "vda", "--wait"]);
    run(["domblklist", name]);
  } finally {
    run(["destroy", name]);
  }
  return steps;
}
