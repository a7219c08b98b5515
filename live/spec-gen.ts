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
}

type Command = Spec["commands"][number];

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[below(rng, xs.length)];
const SPEEDS = [4 * MiB, 8 * MiB, 32 * MiB];

/** The spec for `seed` (any string or number: the same seed gives the same spec). */
export function generateSpec(seed: string | number, name = `gen_${seed}`): Spec {
  const alea = new Alea(`spec/${seed}`);
  const rng: Rng = () => alea.next();
  const commands: Command[] = [];
  const waits: Record<string, Wait> = {};
  const said: string[] = [];
  const world: World = { jobs: [], writable: [], nodes: [] };
  const chain = rng() < 0.35;
  const images = chain ? chainWorld(rng, commands, world, said) : nullWorld(rng, commands, world, said);

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
  return { scenario: name, description, ...(images ? { images } : {}), commands, waits };
}

function nullWorld(rng: Rng, commands: Command[], world: World, said: string[]): undefined {
  const sizeBytes = pick(rng, [4 * MiB, 16 * MiB]);
  const latency = rng() < 0.25 ? pick(rng, [1_000_000, 10_000_000]) : 0;
  commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": "src", size: sizeBytes, "read-zeroes": false, ...(latency ? { "latency-ns": latency } : {}) } });
  const failing = rng() < 0.3 ? pick(rng, ["t0", "t1"]) : undefined;
  for (const t of ["t0", "t1"]) {
    const image = { driver: "null-co", size: sizeBytes, "read-zeroes": false };
    commands.push({ cmd: "blockdev-add", args: t === failing
      ? { driver: "blkdebug", "node-name": t, image, "inject-error": [{ event: "pwritev", errno: pick(rng, [5, 28]), ...(rng() < 0.7 ? { once: true } : {}) }] }
      : { "node-name": t, ...image } });
  }
  world.nodes.push("src", "t0", "t1");
  world.writable.push("src");
  if (failing) said.push(`${failing} fails writes (blkdebug)`);
  if (rng() < 0.25) {
    // Two backups as one transaction.
    const mode = pick(rng, ["grouped", "individual"]);
    const actions = ["t0", "t1"].map((target, k) => ({ type: "blockdev-backup", data: { "job-id": `j${k}`, device: "src", target, sync: "full", speed: pick(rng, SPEEDS), ...errorPolicy(rng, "on-target-error") } }));
    commands.push({ cmd: "transaction", args: { actions, properties: { "completion-mode": mode } } });
    for (const a of actions) world.jobs.push({ id: a.data["job-id"], type: "backup", readies: false });
    said.push(`a transaction of two backups, completion-mode ${mode}`);
    return undefined;
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
  return undefined;
}

function chainWorld(rng: Rng, commands: Command[], world: World, said: string[]): Image[] {
  const images: Image[] = ["base", "mid", "top"].map((n, layer, all) => ({
    file: `${n}.qcow2`, format: "qcow2", sizeBytes: 4 * MiB, writes: [[layer * MiB, MiB]], ...(layer > 0 ? { backing: `${all[layer - 1]}.qcow2` } : {}),
  }));
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "base", file: { driver: "file", filename: "$TMP/base.qcow2" } } });
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "mid", file: { driver: "file", filename: "$TMP/mid.qcow2" }, backing: "base" } });
  commands.push({ cmd: "blockdev-add", args: { driver: "qcow2", "node-name": "top", file: { driver: "file", filename: "$TMP/top.qcow2" }, backing: "mid" } });
  for (const t of ["t0", "t1"]) commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": t, size: 4 * MiB, "read-zeroes": false } });
  world.nodes.push("base", "mid", "top", "t0", "t1");
  world.writable.push("top");
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
  return images;
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
  for (const k of ["on-target-error", "filter-node-name", "sync", "base-node", "top-node"]) if (args[k] !== undefined) parts.push(`${k} ${String(args[k])}`);
  return ` (${parts.join(", ")})`;
}

/** One command: a verb about a job (sometimes one that does not exist), a query, a node removal or a guest write. */
function verb(rng: Rng, world: World): Command {
  const job = rng() < 0.9 ? pick(rng, world.jobs).id : "nojob";
  switch (below(rng, 15)) {
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
    case 13: {
      const node = pick(rng, world.writable);
      const offset = below(rng, 4) * MiB;
      return { cmd: "human-monitor-command", args: { "command-line": `qemu-io ${node} "write -P 0x${(0x11 + below(rng, 200)).toString(16)} ${offset} 64k"` } };
    }
    default: return { cmd: "query-jobs" };
  }
}
