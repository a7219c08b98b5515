/**
 * The virsh sessions the recording script runs against the real QEMU 7.2 and
 * the end-to-end test runs against the blocksim stand-in, each on a
 * transient domain on a two-image qcow2 chain:
 * - jobs: blockcopy --wait --pivot, blockjob --info, blockjob --abort during
 *   a slow copy, blockcommit --active --pivot, blockpull, destroy;
 * - backup: push-mode backup-begin with a checkpoint (a full backup), a
 *   guest write (qemu-io through the disk), an incremental backup-begin with
 *   the next checkpoint, snapshot-create-as --disk-only, blockcommit of the
 *   layer below the new one, checkpoint-delete (bitmaps merged down the
 *   chain, the base reopened read-write and back), destroy;
 * - copy: blockcopy with bandwidth, granularity and buf-size, its speed
 *   changed (blockjob --bandwidth) and the copy aborted; blockcopy --wait
 *   --finish (the copy kept, no pivot); blockcommit --active --wait, then
 *   its abort in the synchronized phase; blockcopy --reuse-external onto an
 *   image made beforehand, --pivot; blockcopy --synchronous-writes (a
 *   write-blocking mirror) --pivot; blockcopy --wait, then blockjob --pivot;
 *   destroy;
 * - stats: domblkinfo and domblkstat after the firmware's boot read, an
 *   accounted guest read (qemu-io aio_read through the disk) and an
 *   unaccounted one (read), domblkstat --human, domstats --block --backing,
 *   domblkinfo --all; blockcopy --wait --finish (a job's I/O counts
 *   nowhere) and the statistics again; destroy.
 * Needs a running libvirtd configured as the README says (qemu:///system);
 * installs and configures nothing.
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

export type SessionName = "jobs" | "backup" | "copy" | "stats";
export const SESSIONS: readonly SessionName[] = ["jobs", "backup", "copy", "stats"];

/** A session's steps after `create`; `run` makes and records a virsh call. */
type Steps = (name: string, dir: string, run: (args: string[]) => VirshStep) => void;

/** Runs a session on a domain whose <emulator> is `emulator`; returns every virsh call with its output. */
export function runSession(emulator: string, name: string, dir = mkdtempSync(join(tmpdir(), "blocksim-libvirt-")), session: SessionName = "jobs"): VirshStep[] {
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
  // The guest's firmware (SeaBIOS) resets the virtio-blk device as it boots, and the reset drains the disk's node
  // (virtio_blk_reset's blk_drain): a job running then blips paused/running, which the guestless stand-in cannot
  // show. The backup and copy sessions start their jobs once the firmware is past it.
  if (session !== "jobs") spawnSync("sleep", ["3"]);
  try {
    SESSION_STEPS[session](name, dir, run);
  } finally {
    run(["destroy", name]);
  }
  return steps;
}

/** The jobs session's steps (see the header). */
function jobsSession(name: string, dir: string, run: (args: string[]) => VirshStep): void {
  run(["blockcopy", name, "vda", join(dir, "copy.qcow2"), "--shallow", "--transient-job", "--wait", "--pivot"]);
  run(["blockjob", name, "vda", "--info"]);
  run(["blockcopy", name, "vda", join(dir, "copy2.qcow2"), "--transient-job", "--bandwidth", "1"]);
  spawnSync("sleep", ["1"]);
  run(["blockjob", name, "vda", "--info"]);
  run(["blockjob", name, "vda", "--abort"]);
  run(["blockcommit", name, "vda", "--active", "--pivot", "--wait"]);
  run(["blockpull", name, "vda", "--wait"]);
  run(["domblklist", name]);
}

/** The backup session's steps (see the header); `run` records a virsh call. */
function backupSession(name: string, dir: string, run: (args: string[]) => VirshStep): void {
  const file = (f: string, text: string) => {
    writeFileSync(join(dir, f), text);
    return join(dir, f);
  };
  const backup = (target: string, incremental?: string) => file(`${target}.xml`, `<domainbackup mode='push'>${incremental ? `<incremental>${incremental}</incremental>` : ""}`
    + `<disks><disk name='vda' type='file'><target file='${join(dir, `${target}.qcow2`)}'/><driver type='qcow2'/></disk></disks></domainbackup>\n`);
  const checkpoint = (c: string) => file(`${c}.xml`, `<domaincheckpoint><name>${c}</name></domaincheckpoint>\n`);
  run(["backup-begin", name, backup("full"), checkpoint("c1")]);
  waitForNoJob(name);
  run(["domjobinfo", name, "--completed"]);
  run(["checkpoint-list", name, "--name"]);
  run(["qemu-monitor-command", name, "--hmp", `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "write -P 3 0 1M"`]);
  run(["backup-begin", name, backup("inc", "c1"), checkpoint("c2")]);
  waitForNoJob(name);
  run(["domjobinfo", name, "--completed"]);
  run(["snapshot-create-as", name, "s1", "--disk-only", "--no-metadata", "--diskspec", `vda,file=${join(dir, "snap.qcow2")}`]);
  run(["blockcommit", name, "vda", "--top", "vda[1]", "--wait"]);
  run(["domblklist", name, "--details"]);
  run(["checkpoint-delete", name, "c1"]);
  run(["checkpoint-list", name, "--name"]);
}

/** The copy session's steps (see the header). */
function copySession(name: string, dir: string, run: (args: string[]) => VirshStep): void {
  execFileSync("qemu-img", ["create", "-q", "-f", "qcow2", join(dir, "ext.qcow2"), "64M"]);
  run(["blockcopy", name, "vda", join(dir, "c1.qcow2"), "--transient-job", "--bandwidth", "1", "--granularity", "65536", "--buf-size", "1048576"]);
  spawnSync("sleep", ["0.5"]);
  run(["blockjob", name, "vda", "--bandwidth", "2"]);
  run(["blockjob", name, "vda", "--abort"]);
  run(["blockcopy", name, "vda", join(dir, "c2.qcow2"), "--transient-job", "--wait", "--finish"]);
  run(["blockcommit", name, "vda", "--active", "--wait"]);
  run(["blockjob", name, "vda", "--info"]);
  run(["blockjob", name, "vda", "--abort"]);
  run(["blockcopy", name, "vda", join(dir, "ext.qcow2"), "--transient-job", "--reuse-external", "--shallow", "--wait", "--pivot"]);
  run(["blockcopy", name, "vda", join(dir, "sw.qcow2"), "--transient-job", "--synchronous-writes", "--shallow", "--wait", "--pivot"]);
  run(["blockcopy", name, "vda", join(dir, "p.qcow2"), "--transient-job", "--shallow", "--wait"]);
  run(["blockjob", name, "vda", "--pivot"]);
  run(["domblklist", name]);
}

/** The stats session's steps (see the header). */
function statsSession(name: string, dir: string, run: (args: string[]) => VirshStep): void {
  const qemuIo = (command: string) => run(["qemu-monitor-command", name, "--hmp", `qemu-io -d /machine/peripheral/virtio-disk0/virtio-backend "${command}"`]);
  run(["domblkinfo", name, "vda"]);
  run(["domblkstat", name, "vda"]);
  qemuIo("aio_read 0 1M");
  qemuIo("read 1M 64k");
  spawnSync("sleep", ["0.5"]); // the aio_read lands (a real file's read takes a millisecond or so)
  run(["domblkstat", name, "vda", "--human"]);
  run(["domstats", name, "--block", "--backing"]);
  run(["domblkinfo", name, "--all"]);
  run(["blockcopy", name, "vda", join(dir, "s.qcow2"), "--transient-job", "--shallow", "--wait", "--finish"]);
  run(["domblkstat", name, "vda"]);
  run(["domstats", name, "--block"]);
}

/** Polls (unrecorded: how often depends on timing) until the domain's backup job has ended; gives up after 60 s. */
function waitForNoJob(name: string): void {
  for (let i = 0; i < 600; i++) {
    const s = virsh(["domjobinfo", name]);
    if (s.status !== 0 || /Job type:\s+None/.test(s.out)) return;
    spawnSync("sleep", ["0.1"]);
  }
}

const SESSION_STEPS: Record<SessionName, Steps> = { jobs: jobsSession, backup: backupSession, copy: copySession, stats: statsSession };
