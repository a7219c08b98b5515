/**
 * Generated conformance specs: random but well-formed QMP conversations
 * about block jobs on null-co nodes, for checking the simulator against a
 * real QEMU on cases nobody wrote by hand (`blocksim record --generate`).
 *
 * A spec is drawn from its seed alone. It adds a source and two targets,
 * starts one or two jobs (backup or mirror, rate-limited so that they run
 * long enough for the commands after them to land while they run, unless a
 * wait is for an event), then sends job verbs, queries and node removals,
 * some of them meant to be refused (a job id that does not exist, a verb a
 * job type does not support, a node in use). Waits are either a short pause
 * or an event the spec's own commands make certain (a mirror's READY, a job
 * reaching null). Timing is left loose on purpose: where a real QEMU answers
 * differently from run to run, the recorder says so and the run is not
 * counted as a difference.
 */
import { Alea, below, type Rng } from "../sim/scheduler/prng.js";
import type { Spec, Wait } from "./golden.js";

const MiB = 1 << 20;

/** A node the spec made, and whether a job may still use it. */
interface JobDraw {
  id: string;
  type: "backup" | "mirror";
  target: string;
}

const pick = <T>(rng: Rng, xs: readonly T[]): T => xs[below(rng, xs.length)];

/** The spec for `seed` (any string or number: the same seed gives the same spec). */
export function generateSpec(seed: string | number, name = `gen_${seed}`): Spec {
  const alea = new Alea(`spec/${seed}`);
  const rng: Rng = () => alea.next();
  const sizeBytes = pick(rng, [4 * MiB, 16 * MiB]);
  const commands: Spec["commands"] = [];
  const waits: Record<string, Wait> = {};
  const say: string[] = [];
  for (const node of ["src", "t0", "t1"]) commands.push({ cmd: "blockdev-add", args: { driver: "null-co", "node-name": node, size: sizeBytes, "read-zeroes": false } });

  const jobs: JobDraw[] = [];
  const jobCount = 1 + below(rng, 2);
  for (let k = 0; k < jobCount; k++) {
    const type = pick(rng, ["backup", "mirror"] as const);
    const id = `j${k}`, target = `t${k}`;
    // A job that copies the whole 4-16 MiB at 4-32 MiB/s runs 0.125-4 s: long next to the pauses below.
    const speed = pick(rng, [4, 8, 32]) * MiB;
    const args: Record<string, unknown> = { "job-id": id, device: "src", target, sync: "full", speed };
    if (rng() < 0.3) args["auto-finalize"] = false;
    if (rng() < 0.3) args["auto-dismiss"] = false;
    commands.push({ cmd: type === "backup" ? "blockdev-backup" : "blockdev-mirror", args });
    jobs.push({ id, type, target });
    say.push(`${type} ${id} src→${target} at ${speed / MiB} MiB/s${args["auto-finalize"] === false ? ", auto-finalize off" : ""}${args["auto-dismiss"] === false ? ", auto-dismiss off" : ""}`);
  }

  const verbs = 2 + below(rng, 5);
  let readyWaited = 0;
  for (let v = 0; v < verbs; v++) {
    const at = commands.length;
    const job = rng() < 0.9 ? pick(rng, jobs) : { id: "nojob", type: "backup" as const, target: "t1" };
    const mirrors = jobs.filter((j) => j.type === "mirror").length;
    const w = rng();
    // Only an event the spec is sure to see is waited for: the first READY of each mirror, before any verb could stop it.
    if (w < 0.15 && readyWaited < mirrors && v === 0) waits[at] = { untilEvent: "BLOCK_JOB_READY", count: ++readyWaited };
    else if (w < 0.6) waits[at] = { afterMs: pick(rng, [20, 50, 100]) };
    commands.push(verb(rng, job, jobs));
  }
  commands.push({ cmd: "query-jobs" });
  const description = `generated (seed ${seed}): ${say.join("; ")}; then ${commands.slice(3 + jobCount, -1).map((c) => c.cmd).join(", ")}`;
  return { scenario: name, description, commands, waits };
}

/** One command about `job`: a verb, a query or a node removal, with its arguments. */
function verb(rng: Rng, job: JobDraw, jobs: JobDraw[]): Spec["commands"][number] {
  switch (below(rng, 13)) {
    case 0: return { cmd: "job-pause", args: { id: job.id } };
    case 1: return { cmd: "job-resume", args: { id: job.id } };
    case 2: return { cmd: "job-cancel", args: { id: job.id } };
    case 3: return { cmd: "block-job-cancel", args: { device: job.id, ...(rng() < 0.5 ? { force: true } : {}) } };
    case 4: return { cmd: "job-complete", args: { id: job.id } };
    case 5: return { cmd: "job-finalize", args: { id: job.id } };
    case 6: return { cmd: "job-dismiss", args: { id: job.id } };
    case 7: return { cmd: "block-job-set-speed", args: { device: job.id, speed: pick(rng, [0, 4 * MiB]) } };
    case 8: return { cmd: "block-job-pause", args: { device: job.id } };
    case 9: return { cmd: "block-job-resume", args: { device: job.id } };
    case 10: return { cmd: "query-block-jobs" };
    case 11: return { cmd: "blockdev-del", args: { "node-name": pick(rng, ["src", ...jobs.map((j) => j.target)]) } };
    default: return { cmd: "query-jobs" };
  }
}
