/**
 * Generated conformance specs: random but well-formed QMP conversations
 * about block jobs, for checking the simulator against a real QEMU on cases
 * nobody wrote by hand (`blocksim record --generate`).
 *
 * A spec is drawn from its seed alone, in one of two worlds:
 *  - "null": a null-co source (sometimes with latency) and two null-co
 *    targets, a target sometimes behind blkdebug with an injected write
 *    error; backup and mirror jobs, started one by one or backups as one
 *    `transaction` (completion-mode grouped or individual);
 *  - "chain": the qcow2 chain base ← mid ← top of the shared recordings and
 *    two null-co targets; stream, intermediate and active commit, backup
 *    and mirror of top.
 * Jobs are rate-limited so that the commands after them land while they
 * run, unless a wait is for an event. Then come job verbs, queries, node
 * removals and guest writes (qemu-io over HMP), some of them meant to be
 * refused (a job id that does not exist, a verb a job type does not
 * support, a node in use). Waits are a short pause or an event the spec's
 * own commands make certain (a READY before any verb could stop it).
 * Timing is left loose on purpose: where QEMU answers differently from run
 * to run, the recorder says so and it is not counted as a difference.
 */
import { Alea, below, type Rng } from "../sim/scheduler/prng.js";
import type { Image, Spec, Wait } from "./golden.js";

const MiB = 1 << 20;

interface JobDraw {
  id: string;
  type: "backup" | "mirror" | "stream" | "commit";
  /** Whether it surely goes READY (a mirror or an active commit started first, on a target that does not fail). */
  readies: boolean;
}

/** What the spec has made so far: the names verbs may pick. */
interface World {
  jobs: JobDraw[];
  /** Nodes a guest write (qemu-io) may go to. */
  writable: string[];
  /** Nodes blockdev-del may be tried on. */
  nodes: string[];
  /** IOThreads made by object-add (the iothread world). */
  iothreads: string[];
  /** Dirty bitmaps on src (the bitmap world). */
  bitmaps: string[];
  /** The blockdev-add options of each plain null-co node, for blockdev-reopen (the lifecycle world). */
  reopenable: Record<string, Record<string, unknown>>;
  /**
   * The verbs a world adds to the classic fifteen, each `count` more faces of
   * the verb die and drawn by `draw` (given which of its faces came up). The
   * classic worlds add none, so their draws are as they always were.
   */
  extraVerbs: { count: number; draw: (rng: Rng, face: number) => Command }[];
  /** Guest disks (virtio-blk-pci device ids) of the device world, on a pc machine. */
  disks: string[];
}

/** The worlds a spec can be drawn in. */
export const WORLDS = ["null", "chain", "iothread", "bitmap", "lifecycle", "mirror", "device", "snapshot"] as const;
export type WorldName = (typeof WORLDS)[number];
/** The worlds of `record --generate` without --worlds: the first two, drawn as they always were, so a seed keeps its spec. */
export const CLASSIC_WORLDS: readonly WorldName[] = ["null", "chain"];

type Command = Spec["commands"][number];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[below(rng, xs.length)];
const SPEEDS = [4 * MiB, 8 * MiB, 32 * MiB];

/** The name of the spec of `seed` drawn in `worlds`: gen_SEED in the classic worlds, else gen_WORLD_WORLD_SEED. */
export function generatedName(seed: string | number, worlds: readonly WorldName[] = CLASSIC_WORLDS): string {
  return isClassic(worlds) ? `gen_${seed}` : `gen_${worlds.join("_")}_${seed}`;
}

const isClassic = (worlds: readonly WorldName[]) => worlds.length === 2 && worlds[0] === "null" && worlds[1] === "chain";

/**
 * The spec for `seed` (any string or number: the same seed gives the same
 * spec) drawn in one of `worlds`. The classic worlds (null and chain) draw
 * exactly as before the others existed, so every recorded seed keeps its spec.
 */
export function generateSpec(seed: string | number, worlds: readonly WorldName[] = CLASSIC_WORLDS): Spec {
  if (worlds.length === 0) throw new Error("generateSpec: no world to draw in");
  const name = generatedName(seed, worlds);
  const alea = new Alea(isClassic(worlds) ? `spec/${seed}` : `spec/${worlds.join("+")}/${seed}`);
  const rng: Rng = () => alea.next();
  const commands: Command[] = [];
  const waits: Record<string, Wait> = {};
  const said: string[] = [];
  const world: World = { jobs: [], writable: [], nodes: [], iothreads: [], bitmaps: [], reopenable: {}, extraVerbs: [], disks: [] };
  const kind = isClassic(worlds) ? (rng() < 0.35 ? "chain" : "null") : pick(rng, worlds);
  const images = kind === "chain" ? chainWorld(rng, commands, world, said)
    : kind === "iothread" ? iothreadWorld(rng, commands, world, said)
    : kind === "bitmap" ? bitmapWorld(rng, commands, world, said)
    : kind === "lifecycle" ? lifecycleWorld(rng, commands, world, said)
    : kind === "mirror" ? mirrorWorld(rng, commands, world, said)
    : kind === "device" ? deviceWorld(rng, commands, world, said)
    : kind === "snapshot" ? snapshotWorld(rng, commands, world, said)
    : nullWorld(rng, commands, world, said);

  const verbs = 2 + below(rng, 5);
  let readyWaited = 0;
  const readies = world.jobs.filter((j) => j.readies).length;
  for (let v = 0; v < verbs; v++) {
    const at = commands.length;
    const w = rng();
    // Only an event the spec is sure to see is waited for: a READY, before any verb could stop its job.
    if (w < 0.15 && v === 0 && readyWaited < readies) waits[at] = { untilEvent: "BLOCK_JOB_READY", count: ++readyWaited };
    else if (w < 0.6) waits[at] = { afterMs: pick(rng, [20, 50, 100]) };
    commands.push(verb(rng, world));
  }
  commands.push({ cmd: "query-jobs" });
  const description = `generated (seed ${seed}): ${said.join("; ")}; then ${commands.slice(commands.length - verbs - 1, -1).map((c) => c.cmd === "human-monitor-command" ? "qemu-io write" : c.cmd).join(", ")}`;
  return { scenario: name, description, ...(world.disks.length ? { machine: "pc" as const } : {}), ...(images ? { images } : {}), commands, waits };
}

function nullWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  const failing = nullNodes(rng, commands, world, said);
  nullJobs(rng, commands, world, said, failing);
  return undefined;
}

/** null-co src (sometimes slow) and targets t0, t1, one of them sometimes failing writes through blkdebug; returns that one. */
function nullNodes(rng: Rng, commands: Command[], world: World, said: string[]): string | undefined {
  const sizeBytes = pick(rng, [4 * MiB, 16 * MiB]);
  const latency = rng() < 0.25 ? pick(rng, [1_000_000, 10_000_000]) : 0;
  const src = { driver: "null-co", "node-name": "src", size: sizeBytes, "read-zeroes": false, ...(latency ? { "latency-ns": latency } : {}) };
  commands.push({ cmd: "blockdev-add", args: src });
  world.reopenable.src = src;
  const failing = rng() < 0.3 ? pick(rng, ["t0", "t1"]) : undefined;
  for (const t of ["t0", "t1"]) {
    const image = { driver: "null-co", size: sizeBytes, "read-zeroes": false };
    const args = t === failing
      ? { driver: "blkdebug", "node-name": t, image, "inject-error": [{ event: "pwritev", errno: pick(rng, [5, 28]), ...(rng() < 0.7 ? { once: true } : {}) }] }
      : { "node-name": t, ...image };
    commands.push({ cmd: "blockdev-add", args });
    if (t !== failing) world.reopenable[t] = args;
  }
  world.nodes.push("src", "t0", "t1");
  world.writable.push("src");
  if (failing) said.push(`${failing} fails writes (blkdebug)`);
  return failing;
}

/** Two backups as one transaction, or one or two backups and mirrors of src. */
function nullJobs(rng: Rng, commands: Command[], world: World, said: string[], failing: string | undefined): void {
  if (rng() < 0.25) {
    // Two backups as one transaction.
    const mode = pick(rng, ["grouped", "individual"]);
    const actions = ["t0", "t1"].map((target, k) => ({ type: "blockdev-backup", data: { "job-id": `j${k}`, device: "src", target, sync: "full", speed: pick(rng, SPEEDS), ...errorPolicy(rng, "on-target-error") } }));
    commands.push({ cmd: "transaction", args: { actions, properties: { "completion-mode": mode } } });
    for (const a of actions) world.jobs.push({ id: a.data["job-id"], type: "backup", readies: false });
    said.push(`a transaction of two backups, completion-mode ${mode}`);
    return;
  }
  const count = 1 + below(rng, 2);
  for (let k = 0; k < count; k++) {
    const type = pick(rng, ["backup", "mirror"] as const);
    const args: Record<string, unknown> = { ...jobArgs(rng, `j${k}`, "src"), target: `t${k}`, sync: "full", ...errorPolicy(rng, "on-target-error") };
    if (type === "backup" && rng() < 0.4) {
      args["filter-node-name"] = `cbw${k}`;
      world.writable.push(`cbw${k}`);
    }
    commands.push({ cmd: type === "backup" ? "blockdev-backup" : "blockdev-mirror", args });
    // A second job may be refused (the first one's filter took the source's place), and a failing target may stop a mirror.
    world.jobs.push({ id: `j${k}`, type, readies: type === "mirror" && k === 0 && failing !== "t0" });
    said.push(`${type} j${k} src→t${k}${describeArgs(args)}`);
  }
}

/**
 * The null world's nodes, each left in the main loop or moved by
 * x-blockdev-set-iothread into IOThread io0 (or io1) before the jobs start
 * (a job's nodes then share one context: QEMU moves the others along).
 */
function iothreadWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  world.iothreads.push("io0");
  if (rng() < 0.4) world.iothreads.push("io1");
  world.extraVerbs.push({ count: 2, draw: (r) => setIothreadVerb(r, world) });
  for (const id of world.iothreads) commands.push({ cmd: "object-add", args: { "qom-type": "iothread", id } });
  const failing = nullNodes(rng, commands, world, said);
  for (const node of ["src", "t0", "t1"]) {
    const r = rng();
    const iothread = r < 0.45 ? "io0" : r < 0.65 && world.iothreads.length > 1 ? "io1" : undefined;
    if (!iothread) continue;
    commands.push({ cmd: "x-blockdev-set-iothread", args: { "node-name": node, iothread } });
    said.push(`${node} in ${iothread}`);
  }
  nullJobs(rng, commands, world, said, failing);
  return undefined;
}

/**
 * Dirty bitmaps on a null-co src: b0 (sometimes of a coarser granularity)
 * and sometimes a disabled b1, guest writes that dirty them, then backups
 * that use them (incremental, bitmap with a bitmap-mode, full with a
 * bitmap) or a transaction adding a bitmap with a full backup.
 */
function bitmapWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  const sizeBytes = pick(rng, [4 * MiB, 16 * MiB]);
  commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": "src", size: sizeBytes, "read-zeroes": false } });
  for (const t of ["t0", "t1"]) commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": t, size: sizeBytes, "read-zeroes": false } });
  world.nodes.push("src", "t0", "t1");
  world.writable.push("src");
  const granularity = pick(rng, [undefined, 65536, 131072, MiB]);
  commands.push({ cmd: "block-dirty-bitmap-add", args: { node: "src", name: "b0", ...(granularity ? { granularity } : {}) } });
  world.bitmaps.push("b0");
  world.extraVerbs.push({ count: 6, draw: (r, face) => bitmapVerb(r, world, face) });
  said.push(`bitmap b0${granularity ? ` (granularity ${granularity})` : ""}`);
  if (rng() < 0.4) {
    commands.push({ cmd: "block-dirty-bitmap-add", args: { node: "src", name: "b1", disabled: true } });
    world.bitmaps.push("b1");
    said.push("bitmap b1 disabled");
  }
  const writes = below(rng, 4);
  for (let w = 0; w < writes; w++) commands.push(guestWrite(rng, "src"));
  if (writes) said.push(`${writes} guest write${writes > 1 ? "s" : ""}`);
  if (rng() < 0.25) {
    // The pattern management software uses: a full backup and a new bitmap, atomically.
    const mode = pick(rng, ["grouped", "individual"]);
    const actions = [
      { type: "block-dirty-bitmap-add", data: { node: "src", name: "b2" } },
      { type: "blockdev-backup", data: { "job-id": "j0", device: "src", target: "t0", sync: "full", speed: pick(rng, SPEEDS) } },
    ];
    commands.push({ cmd: "transaction", args: { actions, ...(rng() < 0.5 ? { properties: { "completion-mode": mode } } : {}) } });
    world.jobs.push({ id: "j0", type: "backup", readies: false });
    world.bitmaps.push("b2");
    said.push("a transaction adding bitmap b2 with a full backup j0");
    return undefined;
  }
  const count = 1 + below(rng, 2);
  for (let k = 0; k < count; k++) {
    const args: Record<string, unknown> = { ...jobArgs(rng, `j${k}`, "src"), target: `t${k}` };
    const how = below(rng, 3);
    if (how === 0) Object.assign(args, { sync: "incremental", bitmap: pick(rng, world.bitmaps) });
    else if (how === 1) Object.assign(args, { sync: "bitmap", bitmap: pick(rng, world.bitmaps), "bitmap-mode": pick(rng, ["on-success", "always", "never"]) });
    else Object.assign(args, { sync: "full", bitmap: pick(rng, world.bitmaps), "bitmap-mode": pick(rng, ["on-success", "always"]) });
    commands.push({ cmd: "blockdev-backup", args });
    world.jobs.push({ id: `j${k}`, type: "backup", readies: false });
    said.push(`backup j${k} src→t${k}${describeArgs(args)}`);
  }
  return undefined;
}

function chainWorld(rng: Rng, commands: Command[], world: World, said: string[]): Image[] {
  const images = chainNodes(commands, world);
  chainJobs(rng, commands, world, said);
  return images;
}

/** The qcow2 chain base <- mid <- top (1 MiB written in each) and null-co targets t0, t1; returns the images. */
function chainNodes(commands: Command[], world: World): Image[] {
  const images: Image[] = ["base", "mid", "top"].map((n, layer, all) => ({
    file: `${n}.qcow2`, format: "qcow2", sizeBytes: 4 * MiB, writes: [[layer * MiB, MiB]], ...(layer > 0 ? { backing: `${all[layer - 1]}.qcow2` } : {}),
  }));
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "base", file: { driver: "file", filename: "$TMP/base.qcow2" } } });
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "mid", file: { driver: "file", filename: "$TMP/mid.qcow2" }, backing: "base" } });
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "top", file: { driver: "file", filename: "$TMP/top.qcow2" }, backing: "mid" } });
  for (const t of ["t0", "t1"]) commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": t, size: 4 * MiB, "read-zeroes": false } });
  world.nodes.push("base", "mid", "top", "t0", "t1");
  world.writable.push("top");
  return images;
}

/** One or two jobs of the chain's top: stream, intermediate or active commit, backup or mirror. */
function chainJobs(rng: Rng, commands: Command[], world: World, said: string[]): void {
  const count = 1 + below(rng, 2);
  for (let k = 0; k < count; k++) {
    const id = `j${k}`;
    const kind = pick(rng, ["stream", "commit-intermediate", "commit-active", "backup", "mirror"] as const);
    let cmd: Command, type: JobDraw["type"], readies = false;
    if (kind === "stream") {
      const args = { ...jobArgs(rng, id, "top"), ...(rng() < 0.5 ? { "base-node": "base" } : {}) };
      cmd = { cmd: "block-stream", args };
      type = "stream";
    } else if (kind === "commit-intermediate") {
      cmd = { cmd: "block-commit", args: { ...jobArgs(rng, id, "top"), "top-node": "mid", "base-node": "base" } };
      type = "commit";
    } else if (kind === "commit-active") {
      cmd = { cmd: "block-commit", args: { ...jobArgs(rng, id, "top") } };
      type = "commit";
      readies = true;
    } else {
      cmd = { cmd: kind === "backup" ? "blockdev-backup" : "blockdev-mirror", args: { ...jobArgs(rng, id, "top"), target: `t${k}`, sync: pick(rng, ["full", "top"]) } };
      type = kind;
      readies = kind === "mirror";
    }
    commands.push(cmd);
    world.jobs.push({ id, type, readies: readies && k === 0 });
    said.push(`${kind} ${id} of top${describeArgs(cmd.args!)}`);
  }
}

function jobArgs(rng: Rng, id: string, device: string): Record<string, unknown> {
  const args: Record<string, unknown> = { "job-id": id, device, speed: pick(rng, SPEEDS) };
  if (rng() < 0.3) args["auto-finalize"] = false;
  if (rng() < 0.3) args["auto-dismiss"] = false;
  return args;
}

function errorPolicy(rng: Rng, key: string): Record<string, string> {
  return rng() < 0.4 ? { [key]: pick(rng, ["report", "ignore", "stop", "enospc"]) } : {};
}

function describeArgs(args: Record<string, unknown>): string {
  const parts = [`${(args.speed as number) / MiB} MiB/s`];
  for (const k of ["auto-finalize", "auto-dismiss"]) if (args[k] === false) parts.push(`${k} off`);
  for (const k of ["on-target-error", "on-source-error", "filter-node-name", "sync", "copy-mode", "granularity", "buf-size", "bitmap", "bitmap-mode", "base-node", "top-node"]) if (args[k] !== undefined) parts.push(`${k} ${String(args[k])}`);
  return ` (${parts.join(", ")})`;
}

/** One command: a verb about a job (sometimes one that does not exist), a query, a node removal or a guest write. */
function verb(rng: Rng, world: World): Command {
  const job = rng() < 0.9 ? pick(rng, world.jobs).id : "nojob";
  // The classic worlds have no extra verbs, so their draws are as they always were.
  const v = below(rng, world.extraVerbs.reduce((n, e) => n + e.count, 15));
  if (v >= 15) {
    let face = v - 15;
    for (const e of world.extraVerbs) {
      if (face < e.count) return e.draw(rng, face);
      face -= e.count;
    }
  }
  switch (v) {
    case 0: return { cmd: "job-pause", args: { id: job } };
    case 1: return { cmd: "job-resume", args: { id: job } };
    case 2: return { cmd: "job-cancel", args: { id: job } };
    case 3: return { cmd: "block-job-cancel", args: { device: job, ...(rng() < 0.5 ? { force: true } : {}) } };
    case 4: return { cmd: "job-complete", args: { id: job } };
    case 5: return { cmd: "job-finalize", args: { id: job } };
    case 6: return { cmd: "job-dismiss", args: { id: job } };
    case 7: return { cmd: "block-job-set-speed", args: { device: job, speed: pick(rng, [0, 4 * MiB]) } };
    case 8: return { cmd: "block-job-pause", args: { device: job } };
    case 9: return { cmd: "block-job-resume", args: { device: job } };
    case 10: return { cmd: "query-block-jobs" };
    case 11: return { cmd: "blockdev-del", args: { "node-name": pick(rng, world.nodes) } };
    case 12:
    case 13: return guestWrite(rng, pick(rng, world.writable));
    default: return { cmd: "query-jobs" };
  }
}

/** A 64 KiB qemu-io write (over HMP) at one of the first four MiB boundaries (every disk drawn has 4 MiB or more). */
function guestWrite(rng: Rng, node: string): Command {
  const offset = below(rng, 4) * MiB;
  return { cmd: "human-monitor-command", args: { "command-line": `qemu-io ${node} "write -P 0x${(0x11 + below(rng, 200)).toString(16)} ${offset} 64k"` } };
}

/**
 * The null world, and among the verbs blockdev-reopen of its null-co nodes
 * (the same options, read-only switched, or a changed option QEMU refuses)
 * and blockdev-add of a new node (blockdev-del may then remove it).
 */
function lifecycleWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  world.extraVerbs.push({ count: 3, draw: (r, face) => lifecycleVerb(r, world, face) });
  nullJobs(rng, commands, world, said, nullNodes(rng, commands, world, said));
  return undefined;
}

/**
 * The null-co nodes and one or two mirrors of src with the options the
 * other worlds leave at their defaults (copy-mode write-blocking,
 * granularity, buf-size, sync none or top, on-source-error), and guest
 * writes to src twice as often among the verbs.
 */
function mirrorWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  world.extraVerbs.push({ count: 2, draw: (r) => guestWrite(r, pick(r, world.writable)) });
  const failing = nullNodes(rng, commands, world, said);
  const count = 1 + below(rng, 2);
  for (let k = 0; k < count; k++) {
    const args: Record<string, unknown> = { ...jobArgs(rng, `j${k}`, "src"), target: `t${k}`, sync: pick(rng, ["full", "full", "top", "none"]) };
    if (rng() < 0.5) args["copy-mode"] = "write-blocking";
    if (rng() < 0.4) args.granularity = pick(rng, [65536, 262144, MiB]);
    if (rng() < 0.3) args["buf-size"] = pick(rng, [MiB, 4 * MiB]);
    if (rng() < 0.3) args["on-source-error"] = pick(rng, ["report", "ignore", "stop"]);
    Object.assign(args, errorPolicy(rng, "on-target-error"));
    commands.push({ cmd: "blockdev-mirror", args });
    world.jobs.push({ id: `j${k}`, type: "mirror", readies: k === 0 && failing !== "t0" });
    said.push(`mirror j${k} src→t${k}${describeArgs(args)}`);
  }
  return undefined;
}

/**
 * A pc machine with a guest disk (virtio-blk-pci vda, sometimes share-rw)
 * on src and sometimes one (vdb, share-rw) on t1, then the null world's
 * jobs; guest writes through the disks (qemu-io -d on the device's
 * backend, aio_write, so the monitor never waits for one) among the verbs.
 */
function deviceWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  const failing = nullNodes(rng, commands, world, said);
  const shareRw = rng() < 0.5;
  commands.push({ cmd: "device_add", args: { driver: "virtio-blk-pci", drive: "src", id: "vda", ...(shareRw ? { "share-rw": true } : {}) } });
  world.disks.push("vda");
  world.extraVerbs.push({ count: 3, draw: (r, face) => diskVerb(r, world, face) });
  said.push(`guest disk vda on src${shareRw ? " (share-rw)" : ""}`);
  if (failing !== "t1" && rng() < 0.3) {
    commands.push({ cmd: "device_add", args: { driver: "virtio-blk-pci", drive: "t1", id: "vdb", "share-rw": true } });
    world.disks.push("vdb");
    said.push("guest disk vdb on t1 (share-rw)");
  }
  nullJobs(rng, commands, world, said, failing);
  return undefined;
}

/**
 * The chain world, then two empty qcow2 overlays o0 and o1 (no backing) added while its jobs run, and
 * among the verbs what libvirt's snapshots and resizes send:
 * blockdev-snapshot of a node onto an overlay, alone or in a transaction
 * with a persistent bitmap added on the overlay, and block_resize of a node
 * to its own size (by node name, or by a device name that is none).
 */
function snapshotWorld(rng: Rng, commands: Command[], world: World, said: string[]): Image[] {
  const images = chainWorld(rng, commands, world, said);
  // The overlays are added while the jobs run: QEMU opens a qcow2 image in a nested poll of the main loop, where
  // the jobs go on (sim/block/qcow2-open.ts).
  for (const o of ["o0", "o1"]) {
    images.push({ file: `${o}.qcow2`, format: "qcow2", sizeBytes: 4 * MiB });
    commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": o, file: { driver: "file", filename: `$TMP/${o}.qcow2` }, backing: null } });
    world.nodes.push(o);
  }
  said.push("overlays o0, o1");
  world.extraVerbs.push({ count: 4, draw: (r, face) => snapshotVerb(r, world, face) });
  return images;
}

/** The snapshot world's verbs: blockdev-snapshot (faces 0, 1), in a transaction with a bitmap add (2), block_resize (3). */
function snapshotVerb(rng: Rng, world: World, face: number): Command {
  const node = pick(rng, ["top", "top", "mid", "o0", "o1"]);
  const overlay = pick(rng, ["o0", "o1"]);
  if (face < 2) return { cmd: "blockdev-snapshot", args: { node, overlay } };
  if (face === 2) {
    const bitmap = { type: "block-dirty-bitmap-add", data: { node: overlay, name: `c${below(rng, 3)}`, persistent: true } };
    return { cmd: "transaction", args: { actions: [bitmap, { type: "blockdev-snapshot", data: { node, overlay } }] } };
  }
  return { cmd: "block_resize", args: rng() < 0.8 ? { "node-name": pick(rng, world.nodes), size: 4 * MiB } : { device: "vda", size: 4 * MiB } };
}

/** The lifecycle world's verbs: blockdev-reopen of a null-co node, or blockdev-add of a new one. */
function lifecycleVerb(rng: Rng, world: World, face: number): Command {
  const names = Object.keys(world.reopenable);
  if (face === 2) {
    const name = `n${names.length}`;
    const args = { driver: "null-co", "node-name": name, size: pick(rng, [4 * MiB, 16 * MiB]), "read-zeroes": false };
    world.reopenable[name] = args;
    world.nodes.push(name);
    return { cmd: "blockdev-add", args };
  }
  const node = pick(rng, names);
  const options: Record<string, unknown> = { ...world.reopenable[node] };
  const r = rng();
  if (r < 0.4) options["read-only"] = true;
  else if (r < 0.55) options["read-only"] = false;
  else if (r < 0.7) options["latency-ns"] = 5_000_000;
  return { cmd: "blockdev-reopen", args: { options: [options] } };
}

/** The iothread world's verb: a node moved between contexts, sometimes with force. */
function setIothreadVerb(rng: Rng, world: World): Command {
  const iothread = pick(rng, [...world.iothreads, null]);
  return { cmd: "x-blockdev-set-iothread", args: { "node-name": pick(rng, world.nodes), iothread, ...(rng() < 0.2 ? { force: true } : {}) } };
}

/** The device world's verbs: a guest aio_write (faces 0, 1) or aio_read (face 2) through a disk. */
function diskVerb(rng: Rng, world: World, face: number): Command {
  const disk = pick(rng, world.disks);
  const op = face === 2 ? "aio_read" : "aio_write";
  return { cmd: "human-monitor-command", args: { "command-line": `qemu-io -d /machine/peripheral/${disk}/virtio-backend "${op}${op === "aio_write" ? ` -P 0x${(0x11 + below(rng, 200)).toString(16)}` : ""} ${below(rng, 4) * MiB} 64k"` } };
}

/** The bitmap world's verbs: a bitmap command on src (sometimes on a bitmap that does not exist), or a query. */
function bitmapVerb(rng: Rng, world: World, face: number): Command {
  const name = pick(rng, [...world.bitmaps, "nobitmap"]);
  switch (face) {
    case 0: return { cmd: "block-dirty-bitmap-clear", args: { node: "src", name } };
    case 1: return { cmd: "block-dirty-bitmap-disable", args: { node: "src", name } };
    case 2: return { cmd: "block-dirty-bitmap-enable", args: { node: "src", name } };
    case 3: return { cmd: "block-dirty-bitmap-remove", args: { node: "src", name } };
    case 4: return { cmd: "block-dirty-bitmap-merge", args: { node: "src", target: name, bitmaps: [pick(rng, world.bitmaps)] } };
    default: return { cmd: "query-named-block-nodes" };
  }
}
