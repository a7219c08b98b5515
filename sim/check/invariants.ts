/**
 * The named invariants. Step invariants watch trace records (job status
 * changes, events, device I/O with its issuer, the job core's own rule
 * reports) and block events (drained sections) as the run goes; end
 * invariants look at the finished run and the final state.
 *
 * The job core already reports some rules itself (JobManager.violations:
 * coroutine-reentered, pause-count-non-negative, no-io-while-paused,
 * no-io-after-conclude, job-runs-in-its-context; the QMP transaction reports
 * txn-member-completes-before-commit): those are surfaced here under their
 * own names. The `job-io-*` invariants check the same kind of rule
 * independently, at the device, from the issuer of every completed request.
 */
import { UNSPECIFIED_VERSION, type BlockNode } from "../block/index.js";
import { sameData, versionAt, type ClusterVersion, type Content } from "../disk/index.js";
import { BackupDriver } from "../jobs/drivers/backup.js";
import { CommitDriver } from "../jobs/drivers/commit.js";
import { MirrorDriver } from "../jobs/drivers/mirror.js";
import { StreamDriver } from "../jobs/drivers/stream.js";
import type { Job } from "../jobs/job.js";
import { SLICE_NS } from "../jobs/ratelimit.js";
import { IllegalTransition, isLegalTransition, type JobStatus } from "../jobs/status.js";
import { UseAfterFree } from "../scheduler/index.js";
import { jobOf, runDue } from "./facts.js";
import { JOB_IO, JOB_LABEL, type CheckContext, type Invariant, type Monitor, type World } from "./types.js";

/** A rule the job core or the QMP layer reports itself (jm.violation), surfaced by name. */
function coreRule(name: string, description: string, source?: string): Invariant {
  return {
    name, description, when: "step", source,
    kinds: ["violation"],
    attach: (ctx) => ({
      onRecord(r) {
        if (r.src === "check" && r.kind === "violation" && r.data?.invariant === name) {
          ctx.report({ job: String(r.data.job), detail: String(r.data.detail), state: { reportedBy: "job core" } });
        }
      },
    }),
  };
}

/** The nodes whose device is `device`, by device name. */
function nodesOnDevice(world: World, device: string): BlockNode[] {
  return world.graph.nodes().filter((n) => n.device?.name === device);
}

const legalTransitions: Invariant = {
  name: "legal-transitions",
  description: "every job status change is one QEMU's JobSTT allows, and starts from the status the job was in",
  when: "step",
  source: "qemu job.c JobSTT",
  kinds: ["failure", "status"],
  attach(ctx) {
    const last = new Map<string, JobStatus>();
    return {
      onRecord(r, cause) {
        if (r.src === "sched" && r.kind === "failure" && cause instanceof IllegalTransition) {
          ctx.report({ detail: String(r.data?.error), state: { process: r.data?.process } });
          return;
        }
        const job = jobOf(r.src);
        if (job === undefined || r.kind !== "status") return;
        const from = r.data?.from as JobStatus, to = r.data?.to as JobStatus;
        const prev = from === "undefined" ? undefined : last.get(job); // a job id can be reused once dismissed
        if (prev !== undefined && prev !== from) ctx.report({ job, detail: `status change ${from} -> ${to} but the job was ${prev}`, state: { previous: prev, from, to } });
        else if (!isLegalTransition(from, to)) ctx.report({ job, detail: `illegal transition ${from} -> ${to}`, state: { from, to } });
        last.set(job, to);
      },
    };
  },
};

const noUseAfterFree: Invariant = {
  name: "no-use-after-free",
  description: "nothing touches a job after its last reference was dropped",
  when: "step",
  source: "qemu job.c job_unref",
  kinds: ["failure"],
  attach(ctx) {
    return {
      onRecord(r, cause) {
        if (r.src === "sched" && r.kind === "failure" && cause instanceof UseAfterFree) {
          ctx.report({ detail: String(r.data?.error), state: { process: r.data?.process } });
        }
      },
    };
  },
};

const noCrash: Invariant = {
  name: "no-crash",
  description: "the simulated QEMU never aborts: no assertion or exception inside the simulation (illegal transitions and use-after-free have their own names)",
  when: "step",
  kinds: ["failure"],
  attach(ctx) {
    return {
      onRecord(r, cause) {
        if (r.src !== "sched" || r.kind !== "failure" || cause instanceof IllegalTransition || cause instanceof UseAfterFree) return;
        ctx.report({ detail: String(r.data?.error), state: { process: r.data?.process } });
      },
    };
  },
};

/** Device I/O issued by a job, checked against the job's own state. */
function jobIo(name: string, description: string, bad: (status: JobStatus | "freed" | undefined, world: World, job: string) => string | undefined): Invariant {
  return {
    name, description, when: "step",
    kinds: [JOB_IO],
    facts: true,
    attach(ctx) {
      const status = ctx.facts.status;
      return {
        onRecord(r) {
          if (r.kind !== "io") return;
          const job = jobOf(String(r.data?.issuer ?? ""));
          if (job === undefined) return;
          const why = bad(status.get(job), ctx.world, job);
          if (why) ctx.report({ job, detail: `${String(r.data?.op)} on ${r.src} at ${String(r.data?.offset ?? "-")}+${String(r.data?.bytes ?? "-")} ${why}`, state: { device: r.src, status: status.get(job) ?? "unknown" } });
        },
      };
    },
  };
}

const jobIoWhilePaused = jobIo(
  "job-io-while-paused",
  "no request issued by a job completes at a device while the job is paused (status paused/standby, or its paused flag set after start)",
  (status, world, job) => {
    if (status === "paused" || status === "standby") return `while the job is ${status}`;
    const live = world.jm.get(job);
    if (live && live.started && live.paused && status === "running") return "while the job's paused flag is set";
    return undefined;
  },
);

const jobIoAfterConclude = jobIo(
  "job-io-after-conclude",
  "no request issued by a job completes at a device after the job concluded or was freed",
  (status) => (status === "concluded" || status === "null" || status === "freed" ? `after the job reached ${status}` : undefined),
);

const jobIoInDrainedSection: Invariant = {
  name: "job-io-in-drained-section",
  description: "no request issued by a job completes on a node inside an established drained section (or drain-all)",
  when: "step",
  source: "qemu block/io.c bdrv_drained_begin",
  // sections from their records (facts.sections), and a job's I/O only while one is established: most I/O happens outside any
  kinds: ["drained", "drained-end", "drain-all", "drain-all-end"],
  demandKinds: [JOB_IO],
  facts: true,
  attach(ctx) {
    /** Established sections per node; a node leaves the map when its last one ends. */
    const established = new Map<BlockNode, number>();
    const sections = ctx.facts.sections;
    let all = 0, listening = false;
    return {
      onRecord(r) {
        if (r.src === "block" && r.kind !== "io") {
          const node = r.kind === "drained" ? sections.established(String(r.data?.node)) : r.kind === "drained-end" ? sections.ending(String(r.data?.node)) : undefined;
          if (r.kind === "drained" && node !== undefined) established.set(node, (established.get(node) ?? 0) + 1);
          else if (r.kind === "drained-end" && node !== undefined) {
            const n = established.get(node) ?? 0;
            if (n > 1) established.set(node, n - 1);
            else established.delete(node);
          } else if (r.kind === "drain-all") all++;
          else if (r.kind === "drain-all-end" && all > 0) all--;
          const want = all > 0 || established.size > 0;
          if (want !== listening) ctx.demand((listening = want));
          return;
        }
        if (r.kind !== "io") return;
        const job = jobOf(String(r.data?.issuer ?? ""));
        if (job === undefined) return;
        if (all > 0) {
          ctx.report({ job, detail: `${String(r.data?.op)} on ${r.src} inside a drain-all section`, state: { device: r.src, drainAll: all } });
          return;
        }
        if (established.size === 0) return;
        for (const node of nodesOnDevice(ctx.world, r.src)) {
          const n = established.get(node) ?? 0;
          if (n > 0) ctx.report({ job, detail: `${String(r.data?.op)} on ${r.src} while node '${node.name}' is drained`, state: { device: r.src, node: node.name, sections: n, quiesce: node.quiesceCount } });
        }
      },
    };
  },
};

/** `node` and every node above it (parent nodes, recursively): the nodes a drain on it quiesces. */
function withAncestors(node: BlockNode): Set<BlockNode> {
  const seen = new Set<BlockNode>([node]);
  const todo = [node];
  while (todo.length > 0) {
    for (const l of todo.pop()!.parentLinks) {
      if (l.parentIsNode && !seen.has(l.parent as BlockNode)) {
        seen.add(l.parent as BlockNode);
        todo.push(l.parent as BlockNode);
      }
    }
  }
  return seen;
}

const jobExitInDrainedSection: Invariant = {
  name: "job-exit-in-drained-section",
  description: "a drained section settles only once every job it pauses has no completion (job_exit) pending: else the job completes, changing the graph, inside the section (a completed mirror or active commit, which holds a section of its own source until its exit, excepted)",
  when: "step",
  source: "qemu b5a7a05735 (blockjob.c child_job_drained_poll, job.c job_co_entry)",
  // sections from their records (facts.sections)
  kinds: ["drained", "drain-all"],
  facts: true,
  attach(ctx) {
    const sections = ctx.facts.sections;
    return {
      onRecord(r) {
        if (r.src !== "block" || (r.kind !== "drained" && r.kind !== "drain-all")) return;
        const section = r.kind === "drained" ? sections.established(String(r.data?.node)) : undefined; // undefined: drain-all
        if (r.kind === "drained" && section === undefined) return;
        let drained: Set<BlockNode> | undefined; // the nodes the section quiesces, found once a job needs them
        for (const job of ctx.world.jm.jobs) {
          if (job.freed || !job.deferredToMainLoop || !job.busy) continue;
          // A driver that tells drains it is quiescent with its exit pending is exempt: a completed mirror or
          // active commit holds a section of its own source until its exit (QEMU mirror_drained_poll, in_drain),
          // so a section on its nodes settles, and its exit may run inside it, as in QEMU 7.2.
          if (job.driver.drainedPoll?.(job) === false) continue;
          const nodes = (job.driver as { nodes?: { nodes(): BlockNode[] } }).nodes?.nodes() ?? [];
          let hit: BlockNode | undefined;
          if (section === undefined) hit = nodes[0];
          else {
            const quiesced = (drained ??= withAncestors(section));
            hit = nodes.find((n) => quiesced.has(n));
          }
          const where = section === undefined ? "a drain-all section" : `a drained section on node '${section.name}'`;
          if (hit !== undefined) ctx.report({ job: job.name, detail: `${where} settled while job '${job.name}' (on node '${hit.name}') had its completion pending`, state: { node: hit.name, status: job.status } });
        }
      },
    };
  },
};

const eventsMatchStates: Invariant = {
  name: "events-match-states",
  description: "JOB_STATUS_CHANGE follows each status change of a named job, in order; BLOCK_JOB_READY only in ready; BLOCK_JOB_COMPLETED/CANCELLED once, before concluded",
  when: "step",
  source: "qemu job.c job_state_transition, job_event_*; conformance recordings",
  kinds: ["status", "JOB_STATUS_CHANGE", "BLOCK_JOB_READY", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"],
  facts: true,
  attach(ctx) {
    const expected: { job: string; status: string }[] = [];
    const status = ctx.facts.lastTo;
    const finished = new Set<string>();
    return {
      onRecord(r) {
        const job = jobOf(r.src);
        if (job !== undefined && r.kind === "status") {
          if (r.data?.to === "created") finished.delete(job); // a job id can be reused once dismissed
          if (r.data?.from !== r.data?.to && !job.startsWith("<internal")) expected.push({ job, status: String(r.data?.to) });
          if (r.data?.to === "concluded" && !finished.has(job) && ctx.world.jm.get(job)?.started) {
            ctx.report({ job, detail: "concluded without BLOCK_JOB_COMPLETED or BLOCK_JOB_CANCELLED", state: { status: "concluded" } });
          }
          return;
        }
        if (r.src !== "event") return;
        if (r.kind === "JOB_STATUS_CHANGE") {
          const id = String(r.data?.id), st = String(r.data?.status);
          const want = expected.shift();
          if (!want || want.job !== id || want.status !== st) {
            ctx.report({ job: id, detail: `JOB_STATUS_CHANGE ${id}:${st} but the next status change was ${want ? `${want.job}:${want.status}` : "none"}`, state: { event: st, expected: want ?? null } });
          }
        } else if (r.kind === "BLOCK_JOB_READY") {
          const id = String(r.data?.device);
          if (status.get(id) !== "ready") ctx.report({ job: id, detail: `BLOCK_JOB_READY in status ${status.get(id) ?? "unknown"}`, state: { status: status.get(id) ?? null } });
        } else if (r.kind === "BLOCK_JOB_COMPLETED" || r.kind === "BLOCK_JOB_CANCELLED") {
          const id = String(r.data?.device);
          if (finished.has(id)) ctx.report({ job: id, detail: `second ${r.kind}`, state: { status: status.get(id) ?? null } });
          finished.add(id);
          const s = status.get(id);
          if (s !== "pending" && s !== "aborting" && s !== "waiting") ctx.report({ job: id, detail: `${r.kind} in status ${s ?? "unknown"}`, state: { status: s ?? null } });
        }
      },
    };
  },
};

/** A job that, in this status, can only go on when the user acts: ready/standby, pending without auto-finalize, a sync=none backup. */
export function waitsForUser(job: { autoFinalize: boolean; driver: unknown }, s: string): boolean {
  if (s === "ready" || s === "standby" || (s === "pending" && !job.autoFinalize)) return true;
  return s === "running" && job.driver instanceof BackupDriver && job.driver.opts.sync === "none";
}

const jobsConclude: Invariant = {
  name: "jobs-conclude",
  description: "liveness: at the end every job has concluded, unless the user paused it or it waits for the user (ready, pending with auto-finalize off, a sync=none backup); the run ends without deadlock or budget",
  when: "end",
  kinds: [],
  facts: true,
  attach(ctx) {
    const facts = ctx.facts;
    return {
      end(result) {
        const stuck: { job: string; s: string; pauseCount: number; busy: boolean; paused: boolean }[] = [];
        const exempt = new Set<string>();
        for (const [job, s] of facts.status) {
          if (s === "concluded" || s === "null" || s === "freed") continue;
          const live = ctx.world.jm.get(job);
          if (!live) continue; // internal job
          if (live.userPaused || waitsForUser(live, s)) exempt.add(job);
          else stuck.push({ job, s, pauseCount: live.pauseCount, busy: live.busy, paused: live.paused });
        }
        const o = result.outcome;
        // whoever waits for a job status change (the liveness phase's administrator) is not stuck itself: the jobs are
        const watching = `signal "${ctx.world.jm.statusChanged.name}"`;
        if (o.kind === "deadlock" && !o.waiting.every((w) => exempt.has(jobOf(w.process) ?? "") || w.on === watching)) {
          ctx.report({ detail: `deadlock: ${o.waiting.map((w) => `${w.process} waits on ${w.on}`).join("; ")}`, state: { waiting: o.waiting } });
        }
        // a budget reached with only user-waiting jobs left (a ready mirror keeps ticking) is not a liveness failure
        if ((o.kind === "step-budget" || o.kind === "time-budget") && stuck.length > 0) ctx.report({ detail: `the run hit its ${o.kind}`, state: { ...o } });
        for (const j of stuck) {
          ctx.report({ job: j.job, detail: `still ${j.s} at the end of the run${j.pauseCount > 0 ? ` (pause count ${j.pauseCount})` : ""}`, state: { status: j.s, pauseCount: j.pauseCount, busy: j.busy, paused: j.paused } });
        }
      },
    };
  },
};

const txnAllOrNothing: Invariant = {
  name: "txn-all-or-nothing",
  description: "members of one job transaction all commit or all abort: none completes successfully while another is cancelled or fails",
  when: "step",
  source: "qemu job.c job_txn_apply, job_completed_txn_abort",
  kinds: ["status", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"],
  attach(ctx) {
    const txnOf = new Map<string, number>();
    const outcome = new Map<number, Map<string, "ok" | "aborted">>();
    return {
      onRecord(r) {
        const job = jobOf(r.src);
        if (job !== undefined && r.kind === "status") {
          if (r.data?.to === "created") txnOf.delete(job); // a job id can be reused once dismissed
          // jobs enter the job list just after their `created` record: take the transaction at the next one
          const txn = txnOf.has(job) ? undefined : ctx.world.jm.get(job)?.txn;
          if (txn) txnOf.set(job, txn.id);
          return;
        }
        if (r.src !== "event" || (r.kind !== "BLOCK_JOB_COMPLETED" && r.kind !== "BLOCK_JOB_CANCELLED")) return;
        const id = String(r.data?.device), txn = txnOf.get(id);
        if (txn === undefined) return;
        const res = r.kind === "BLOCK_JOB_COMPLETED" && r.data?.error === undefined ? "ok" : "aborted";
        let m = outcome.get(txn);
        if (!m) outcome.set(txn, (m = new Map()));
        for (const [other, o] of m) {
          if (o !== res) ctx.report({ job: id, detail: `${id} ${res === "ok" ? "committed" : "aborted"} but ${other} of the same transaction ${o === "ok" ? "committed" : "aborted"}`, state: { txn, members: Object.fromEntries(m), [id]: res } });
        }
        m.set(id, res);
      },
    };
  },
};

/** Compares two contents byte range by byte range; the first differing offset, or undefined. */
function firstDifference(a: readonly ClusterVersion[], aCluster: number, b: readonly ClusterVersion[], bCluster: number, sizeBytes: number): number | undefined {
  const step = Math.min(aCluster, bCluster);
  const ca = { offset: 0, clusterSizeBytes: aCluster, versions: a }, cb = { offset: 0, clusterSizeBytes: bCluster, versions: b };
  for (let off = 0; off < sizeBytes; off += step) {
    if (!sameData(versionAt(ca, off), versionAt(cb, off))) return off;
  }
  return undefined;
}

/** firstDifference over the clusters a sync=top or sync=bitmap backup chose at creation only. */
function firstDifferenceIn(d: BackupDriver, target: readonly ClusterVersion[], targetCluster: number, sizeBytes: number): number | undefined {
  const a = { offset: 0, clusterSizeBytes: d.opts.source.clusterSizeBytes, versions: d.pointInTime }, b = { offset: 0, clusterSizeBytes: targetCluster, versions: target };
  const cs = d.copy.clusterSizeBytes, step = Math.min(a.clusterSizeBytes, targetCluster);
  for (const c of d.selectedClusters) {
    for (let off = c * cs; off < Math.min((c + 1) * cs, sizeBytes); off += step) {
      if (!sameData(versionAt(a, off), versionAt(b, off))) return off;
    }
  }
  return undefined;
}

const backupPointInTime: Invariant = {
  name: "backup-point-in-time",
  description: "when a backup completes successfully its target holds the source exactly as it was at job start (sync=top or an incremental one: in the clusters it chose at creation)",
  when: "step",
  source: "qemu block/backup.c, block/copy-before-write.c",
  kinds: ["status", "BLOCK_JOB_COMPLETED"],
  attach(ctx) {
    const backups = new Map<string, BackupDriver>();
    return {
      onRecord(r) {
        const job = jobOf(r.src);
        if (job !== undefined && r.kind === "status" && r.data?.to === "created") backups.delete(job); // ids are reused once dismissed
        else if (job !== undefined && r.kind === "status" && !backups.has(job)) {
          // jobs enter the job list just after their `created` record: take the driver at the next one
          const d = ctx.world.jm.get(job)?.driver;
          if (d instanceof BackupDriver) backups.set(job, d);
        } else if (r.src === "event" && r.kind === "BLOCK_JOB_COMPLETED" && r.data?.error === undefined && r.data?.type === "backup") {
          const id = String(r.data.device), d = backups.get(id);
          if (!d) return;
          const { source, target } = d.opts;
          const size = Math.min(source.sizeBytes, target.sizeBytes);
          const t = target.content(0, target.sizeBytes);
          // sync=top and incremental backups answer only for the clusters they chose at creation
          const off = d.opts.sync === "bitmap" || d.opts.sync === "top" ? firstDifferenceIn(d, t.versions, t.clusterSizeBytes, size) : firstDifference(d.pointInTime, source.clusterSizeBytes, t.versions, t.clusterSizeBytes, size);
          if (off !== undefined) ctx.report({ job: id, detail: `target '${target.name}' differs from the source at job start at offset ${off}`, state: { offset: off, target: target.name, source: source.name } });
        }
      },
    };
  },
};

/** The device below a node and its filters (blkdebug, copy-before-write...), or undefined (null-co). */
function deviceBelow(node: BlockNode): string | undefined {
  let n: BlockNode | null = node;
  while (n && !n.device) n = n.file;
  return n?.device?.name;
}

/** A backup that froze a bitmap, as backup-bitmap-settled watches it. */
interface BitmapWatch { driver: BackupDriver; before: number[]; written: Set<number> | undefined; device: string | undefined }

/** Marks the bitmap chunks a write of `bytes` at `offset` covers as written meanwhile. */
function markWritten(w: BitmapWatch, offset: number, bytes: number): void {
  const g = w.driver.opts.bitmap!.granularityBytes;
  for (let c = Math.floor(offset / g); c <= Math.floor((offset + bytes - 1) / g); c++) w.written!.add(c);
}

const backupBitmapSettled: Invariant = {
  name: "backup-bitmap-settled",
  description: "when a backup that froze a dirty bitmap ends, the bitmap is unfrozen and holds what QEMU leaves: the writes made meanwhile, plus what it held before unless the job succeeded (bitmap-mode on-success) or bitmap-mode is always (then only the clusters not copied)",
  when: "step",
  source: "qemu block/backup.c backup_cleanup_sync_bitmap, block/dirty-bitmap.c",
  kinds: ["status"],
  // the writes, only while a backup is watched: most runs have none, and most records are device I/O
  demandKinds: ["io", "fault"],
  attach(ctx) {
    const watched = new Map<string, BitmapWatch>();
    const unwatch = (job: string) => {
      if (watched.delete(job) && watched.size === 0) ctx.demand(false);
    };
    return {
      onRecord(r) {
        const job = jobOf(r.src);
        if (job !== undefined && r.kind === "status" && r.data?.to === "created") unwatch(job);
        else if (job !== undefined && r.kind === "status" && r.data?.to !== "concluded" && !watched.has(job)) {
          const d = ctx.world.jm.get(job)?.driver;
          if (!(d instanceof BackupDriver) || !d.opts.bitmap) return;
          // frozen since creation: its bits are what it held when the job was made
          const device = deviceBelow(d.opts.source);
          watched.set(job, { driver: d, before: d.opts.bitmap.dirtyChunks(), device, written: device === undefined ? undefined : new Set() });
          if (watched.size === 1) ctx.demand(true);
        } else if (job !== undefined && r.kind === "status" && r.data?.to === "concluded") {
          const w = watched.get(job);
          if (!w) return;
          unwatch(job);
          const { source, bitmap: frozen, bitmapMode } = w.driver.opts;
          const mode = bitmapMode ?? "on-success";
          const succeeded = ctx.world.jm.get(job)?.ret === 0;
          const now = source.bitmap(frozen!.name);
          if (!now || now.busy || now.successor) {
            ctx.report({ job, detail: `bitmap '${frozen!.name}' on '${source.name}' is ${now ? "still frozen" : "gone"} after the backup ended`, state: { mode, succeeded } });
            return;
          }
          const forget = (succeeded || mode === "always") && mode !== "never";
          const has = new Set(now.dirtyChunks());
          const must = new Set([...(w.written ?? []), ...(forget ? [] : w.before)]);
          if (!succeeded && mode === "always") {
            // what the job did not copy stays marked for the next attempt
            const cs = w.driver.copy.clusterSizeBytes, g = now.granularityBytes;
            for (let c = 0; c < w.driver.copy.clusters; c++) {
              if (w.driver.copy.isDirty(c)) for (let k = Math.floor((c * cs) / g); k <= Math.floor((Math.min((c + 1) * cs, source.sizeBytes) - 1) / g); k++) must.add(k);
            }
          }
          const missing = [...must].filter((c) => !has.has(c));
          // without a device under the source, the writes made meanwhile are unknown: only the lower bound holds
          const extra = w.written ? [...has].filter((c) => !must.has(c)) : [];
          if (missing.length > 0 || extra.length > 0) {
            ctx.report({
              job,
              detail: `bitmap '${now.name}' after a ${succeeded ? "successful" : "failed"} backup with bitmap-mode ${mode}: ${missing.length > 0 ? `chunks ${missing.slice(0, 8).join(",")} should be dirty` : ""}${missing.length > 0 && extra.length > 0 ? "; " : ""}${extra.length > 0 ? `chunks ${extra.slice(0, 8).join(",")} should be clean` : ""}`,
              state: { mode, succeeded, missing: missing.slice(0, 32), extra: extra.slice(0, 32) },
            });
          }
        } else if (watched.size > 0 && (r.kind === "io" || r.kind === "fault") && r.data?.op !== "read" && r.data?.op !== "flush" && typeof r.data?.offset === "number") {
          // a write that reached the source's device (or failed there) since the job was made; a copy-on-read
          // write (BDRV_REQ_WRITE_UNCHANGED: a stream's) dirties no bitmap, QEMU writes it below
          // bdrv_co_write_req_finish; the request says so, whoever issued it
          if (r.data.unchanged === true) return;
          for (const w of watched.values()) if (w.device === r.src && w.written) markWritten(w, r.data.offset, r.data.bytes as number);
        }
      },
    };
  },
};

const mirrorPivotContent: Invariant = {
  name: "mirror-pivot-content",
  description: "when a mirror (or active commit) pivots, its target holds exactly what the source held at that moment, except where the source holds no data (null-co without read-zeroes: QEMU discards there, the target keeps what it had), and where the source reads through to a backing node that another user wrote meanwhile (QEMU's mirror tracks writes through the source only: goldens/perm_detached_top_mirror)",
  when: "step",
  source: "qemu block/mirror.c mirror_exit_common",
  kinds: ["status", "pivot"],
  attach(ctx) {
    /** What each mirror's source read through to below itself when the job started. */
    const below = new Map<MirrorDriver, Content | null>();
    return {
      onRecord(r) {
        const job = jobOf(r.src);
        if (job === undefined) return;
        const d = ctx.world.jm.get(job)?.driver;
        if (!(d instanceof MirrorDriver)) return;
        if (r.kind === "status") {
          // jobs enter the job list just after their `created` record: this is the next one, at the same instant
          if (!below.has(d)) below.set(d, d.opts.source.backing?.content(0, d.opts.source.backing.sizeBytes) ?? null);
          return;
        }
        if (r.kind !== "pivot" || !d.contentAtPivot) return;
        const { source, target } = d.opts;
        const backing = source.backing, start = below.get(d);
        const nowBelow = backing && start ? backing.content(0, backing.sizeBytes) : null;
        // A cluster the source does not hold itself, changed below it since the start by anyone but this job:
        // QEMU 7.2 lets another user write a detached top's backing node, and the mirror never sees it.
        const writtenBelow = (off: number, bytes: number) =>
          nowBelow !== null && start && off < backing!.sizeBytes && !source.isAllocated(off, Math.min(bytes, source.sizeBytes - off)) &&
          !sameData(versionAt(nowBelow, off), versionAt(start, off)) && versionAt(nowBelow, off).writer !== `${JOB_LABEL}${job}`;
        const t = target.content(0, target.sizeBytes);
        const a = { offset: 0, clusterSizeBytes: source.clusterSizeBytes, versions: d.contentAtPivot };
        const step = Math.min(source.clusterSizeBytes, t.clusterSizeBytes), size = Math.min(source.sizeBytes, target.sizeBytes);
        for (let off = 0; off < size; off += step) {
          // Where the source holds no data (null-co without read-zeroes), the mirror discards and the target keeps what it had.
          const want = versionAt(a, off);
          if (sameData(want, versionAt(t, off)) || want.writeId === UNSPECIFIED_VERSION.writeId || writtenBelow(off, step)) continue;
          ctx.report({ job, detail: `at pivot, target '${target.name}' differs from source '${source.name}' at offset ${off}`, state: { offset: off } });
          return;
        }
      },
    };
  },
};

const cancelHonoured: Invariant = {
  name: "cancel-honoured",
  description: "a job cancelled before it was ready ends with BLOCK_JOB_CANCELLED (or an error), never a plain BLOCK_JOB_COMPLETED",
  when: "step",
  source: "qemu eb36639f7b; qapi block-job-cancel",
  kinds: ["status", "BLOCK_JOB_COMPLETED"],
  attach(ctx) {
    // The status a job had at the first record after it was cancelled: its status at the cancel, or — when that
    // record is its own status change (a cancelled paused job resuming at once) — the status it changed to.
    const firstRecordStatus = new Map<object, string>();
    return {
      onRecord(r) {
        if (r.kind === "status") {
          const at = ctx.world.sim.records - 1;
          for (const j of ctx.world.jm.jobs) {
            if (j.cancelledAt?.record === at && `job:${j.name}` === r.src) firstRecordStatus.set(j, j.status);
          }
          return;
        }
        if (r.kind !== "BLOCK_JOB_COMPLETED" || r.src !== "event" || r.data?.error !== undefined) return;
        const id = String(r.data?.device), job = ctx.world.jm.get(id);
        const when = job?.cancelledAt ? (firstRecordStatus.get(job) ?? job.cancelledAt.status) : undefined;
        if (when !== undefined && when !== "ready" && when !== "standby") {
          ctx.report({ job: id, detail: `cancelled in status ${when}, yet completed successfully`, state: { cancelledIn: when } });
        }
      },
    };
  },
};

const opBlockersHonoured: Invariant = {
  name: "op-blockers-honoured",
  description: "no job writes a node that another live job holds (its target, intermediates or filter): the op blockers keep jobs apart",
  when: "step",
  source: "qemu fbe40ff780 (op blockers), block_job_add_bdrv",
  kinds: [JOB_IO],
  attach(ctx) {
    return {
      onRecord(r) {
        if (r.kind !== "io" || r.data?.op === "read") return;
        const issuer = String(r.data?.issuer ?? "");
        const at = issuer.indexOf(JOB_LABEL);
        if (at < 0) return;
        const writer = issuer.slice(at + JOB_LABEL.length);
        for (const other of ctx.world.jm.jobs) {
          if (other.name === writer || other.freed || other.completed) continue;
          const held = (other.driver as { nodes?: { nodes(): BlockNode[] } }).nodes?.nodes() ?? [];
          const hit = held.find((n) => n.device?.name === r.src);
          if (hit) ctx.report({ job: writer, detail: `${String(r.data?.op)} on ${r.src} (node '${hit.name}'), which job '${other.name}' holds`, state: { holder: other.name, node: hit.name, holderStatus: other.status } });
        }
      },
    };
  },
};

/**
 * The rate a job keeps, from what it accounts (Job.copyLedger): between any
 * two of its copies at one speed, what it copied is at most speed × the time
 * between them plus one slice's quota. QEMU's slices give exactly that: a
 * chunk is taken only once the slice's quota, stretched by what was copied,
 * has run out (the chunk that crosses the quota is not delayed, hence one
 * quota of slack). QEMU 7.2's stream, commit and mirror take their next chunk
 * at once when their sleep is cut short (a pause, resume, complete: fixed in
 * 8.1, "blockjob: Adhere to rate limit even when reentered early"), so for
 * them a window starts again after such an early wake; 7.2's backup checks
 * the limit before each chunk and gets no such exception. A READY mirror
 * does not sleep for its rate limit at all in 7.2 (mirror_run sleeps 0 while
 * anything is dirty, a slice when idle, completing or not): what it copies
 * there is not paced, and no window spans it.
 */
function rateViolation(job: Job): { detail: string; state: Record<string, unknown>; timeNs: number } | undefined {
  const earlyWakeExempt = job.type !== "backup", mirror = job.driver instanceof MirrorDriver;
  let speed = -1, copied = 0, minSlack = Infinity, minAt = 0;
  // After block-job-set-speed the limiter keeps the slice in force (ratelimit_set_speed leaves it), so
  // the new speed's first window may hold what is left of that slice's quota on top of its own: one more quota.
  let carried = false;
  for (const e of job.copyLedger) {
    if (mirror && e.ready) {
      speed = -1; // unpaced: the next paced copy starts a new window
      continue;
    }
    if (e.speed !== speed || (earlyWakeExempt && e.afterEarlyWake)) {
      carried = speed > 0 && e.speed !== speed;
      speed = e.speed;
      copied = 0;
      minSlack = Infinity;
    }
    // g = copied before this entry - speed × t; a window [t_i, t_j) holds g_j - g_i bytes beyond speed × (t_j - t_i)
    const g = copied - (speed * e.t) / 1e9;
    if (g < minSlack) {
      minSlack = g;
      minAt = e.t;
    }
    const quota = Math.max((speed * SLICE_NS) / 1e9, 1);
    const over = g - minSlack;
    if (over > quota * (carried ? 2 : 1) + speed / 1e8 + 1) { // slack for the limit's whole-ns slice ends
      const windowNs = e.t - minAt;
      return {
        timeNs: e.t,
        detail: `copied ${Math.round(over + (speed * windowNs) / 1e9)} bytes in the ${(windowNs / 1e6).toFixed(3)} ms before this chunk at speed ${speed} B/s (at most ${Math.round((speed * windowNs) / 1e9 + quota)})`,
        state: { speed, windowStartNs: minAt, windowEndNs: e.t, quota, excessBytes: Math.round(over - quota) },
      };
    }
    copied += e.bytes;
  }
  return undefined;
}

const rateLimitHonoured: Invariant = {
  name: "rate-limit-honoured",
  description: "a rate-limited job never copies faster than its speed: between two of its copies at one speed, at most speed x the time between them plus one 100 ms slice's quota (stream, commit and mirror: counted afresh after an early wake, which QEMU 7.2 lets them use, fixed in 8.1; a READY mirror is not paced in 7.2); after block-job-set-speed one more quota, as the limiter keeps the slice in force",
  when: "step",
  source: "qemu include/qemu/ratelimit.h, blockjob.c block_job_ratelimit_get_delay; 8.1 'blockjob: Adhere to rate limit even when reentered early'",
  kinds: ["status"],
  attach(ctx) {
    const checked = new Set<Job>();
    const check = (job: Job) => {
      if (checked.has(job)) return;
      checked.add(job);
      const v = rateViolation(job);
      if (v) ctx.report({ job: job.name, ...v });
    };
    return {
      onRecord(r) {
        if (r.kind !== "status" || r.data?.to !== "concluded") return;
        const id = jobOf(r.src), job = id === undefined ? undefined : ctx.world.jm.get(id);
        if (job) check(job);
      },
      end() {
        for (const job of ctx.world.jm.jobs) check(job);
      },
    };
  },
};

const pauseAtPausePoint: Invariant = {
  name: "pause-at-pause-point",
  description: "a pause takes effect at the job's next pause point: a job asked to pause while it sits in a sleep or yield (both pause points) is entered at once, never left to sleep on until its timer",
  when: "step",
  source: "qemu job.c job_pause (job_enter), job_sleep_ns, job_pause_point",
  // after each reply (job-pause, a drain step) and each status change, the state has settled
  kinds: ["return", "status"],
  attach(ctx) {
    const reported = new Set<Job>();
    return {
      onRecord(r) {
        if (r.kind !== "status" && !(r.kind === "return" && r.src === "qmp")) return;
        for (const job of ctx.world.jm.jobs) {
          const parked = job.started && !job.deferredToMainLoop && !job.busy && !job.paused && !job.isCancelled && (job.status === "running" || job.status === "ready");
          if (!parked || job.pauseCount === 0) {
            if (job.paused) reported.delete(job);
            continue;
          }
          if (reported.has(job)) continue;
          reported.add(job);
          ctx.report({ job: job.name, detail: `pause requested (pause count ${job.pauseCount}) while the job sits at a pause point in status ${job.status}, but it was not entered: the pause waits for its sleep to end`, state: { status: job.status, pauseCount: job.pauseCount, userPaused: job.userPaused } });
        }
      },
    };
  },
};

const completeNotCancelled: Invariant = {
  name: "complete-not-cancelled",
  description: "a job whose job-complete (or block-job-complete) was accepted never ends in BLOCK_JOB_CANCELLED unless a hard cancel (job-cancel, block-job-cancel force, or without force outside READY/STANDBY, quit) came after it",
  when: "step",
  source: "qemu job.c job_complete, job_cancel (force), mirror_complete",
  kinds: ["BLOCK_JOB_CANCELLED"],
  // a job that ends under a complete in flight is judged at its reply (QmpAsks.judge): the replies, only then
  demandKinds: ["return", "error"],
  facts: true,
  attach(ctx) {
    const asks = ctx.facts.asks, due: (() => void)[] = [];
    return {
      onRecord(r) {
        if (r.kind !== "BLOCK_JOB_CANCELLED") {
          if (runDue(r, due)) ctx.demand(false);
          return;
        }
        if (r.src !== "event") return;
        const id = String(r.data?.device), status = ctx.world.jm.get(id)?.status ?? null;
        const later = asks.judge(due, id, () => {
          if (asks.completed.has(id) && !asks.hardCancelled.has(id) && !asks.quit) {
            ctx.report({ job: id, detail: "BLOCK_JOB_CANCELLED after an accepted job-complete, with no hard cancel since", state: { status } });
          }
        });
        if (later) ctx.demand(true);
      },
    };
  },
};

const outcomeApplied: Invariant = {
  name: "outcome-applied",
  description: "a job's commit or abort matches the outcome reported for it: a mirror (or active commit) pivots exactly when it completes without error after an accepted job-complete; a stream or intermediate commit re-points the chain exactly when it completes without error",
  when: "step",
  source: "qemu job.c job_finalize_single (commit or abort), mirror_exit_common, stream_prepare, commit_prepare",
  kinds: ["status", "BLOCK_JOB_COMPLETED", "BLOCK_JOB_CANCELLED"],
  // a job that ends under a complete in flight is judged at its reply (QmpAsks.judge): the replies, only then
  demandKinds: ["return", "error"],
  facts: true,
  attach(ctx) {
    const asks = ctx.facts.asks, due: (() => void)[] = [];
    /** The backing a stream's top or a commit's overlay had when the job was made. */
    const chainBefore = new Map<string, { node: BlockNode; backing: BlockNode | null }>();
    return {
      onRecord(r) {
        if (r.src !== "event") {
          if (runDue(r, due)) ctx.demand(false);
          const job = jobOf(r.src);
          if (job !== undefined && r.kind === "status") {
            if (r.data?.to === "created") chainBefore.delete(job);
            else if (!chainBefore.has(job)) {
              // jobs enter the job list just after their `created` record: take the driver at the next one
              const d = ctx.world.jm.get(job)?.driver;
              const node = d instanceof StreamDriver ? d.opts.top : d instanceof CommitDriver ? d.overlay : undefined;
              if (node) chainBefore.set(job, { node, backing: node.backing });
            }
          }
          return;
        }
        if (r.kind !== "BLOCK_JOB_COMPLETED" && r.kind !== "BLOCK_JOB_CANCELLED") return;
        const id = String(r.data?.device), d = ctx.world.jm.get(id)?.driver;
        const ok = r.kind === "BLOCK_JOB_COMPLETED" && r.data?.error === undefined;
        const outcome = ok ? "completed" : r.kind === "BLOCK_JOB_CANCELLED" ? "cancelled" : "failed";
        if (d instanceof MirrorDriver) {
          const pivoted = d.pivoted;
          const later = asks.judge(due, id, () => {
            const expected = ok && asks.completed.has(id);
            if (pivoted !== expected) ctx.report({ job: id, detail: `${outcome}${asks.completed.has(id) ? " after an accepted job-complete" : " without job-complete"}, yet it ${pivoted ? "pivoted" : "did not pivot"}`, state: { pivoted, outcome } });
          });
          if (later) ctx.demand(true);
          return;
        }
        const before = chainBefore.get(id);
        if (!before || !(d instanceof StreamDriver || d instanceof CommitDriver)) return;
        const base = d.opts.base;
        const now = before.node.backing;
        if (ok && now !== base) ctx.report({ job: id, detail: `completed, yet '${before.node.name}' still has backing '${now?.name ?? "none"}', not '${base?.name ?? "none"}'`, state: { outcome } });
        else if (!ok && now !== before.backing) ctx.report({ job: id, detail: `${outcome}, yet '${before.node.name}' now has backing '${now?.name ?? "none"}' (it had '${before.backing?.name ?? "none"}')`, state: { outcome } });
      },
    };
  },
};

/** Freezes the library: checkRun plans its dispatch once, from these declarations (check.ts). */
function frozen(invariants: Invariant[]): readonly Invariant[] {
  for (const inv of invariants) {
    if (inv.kinds) Object.freeze(inv.kinds);
    if (inv.blockEvents) Object.freeze(inv.blockEvents);
    Object.freeze(inv);
  }
  return Object.freeze(invariants);
}

/** Every invariant, in report order. */
export const INVARIANTS: readonly Invariant[] = frozen([
  legalTransitions,
  coreRule("pause-count-non-negative", "a job's pause count never goes below zero", "qemu job.c job_resume"),
  coreRule("coroutine-reentered", "a job coroutine is entered only while parked at a yield point", "qemu util/qemu-coroutine.c qemu_aio_coroutine_enter"),
  coreRule("no-io-while-paused", "a job issues no I/O while it is paused (seed 000: paused before its first start stays quiet until resumed)", "qemu e3796a245a"),
  coreRule("no-io-after-conclude", "a job issues no I/O once it has concluded or been freed"),
  coreRule("job-runs-in-its-context", "a job's coroutine runs in the AioContext of its nodes (after x-blockdev-set-iothread too)", "qemu 13726123ba"),
  coreRule("txn-member-completes-before-commit", "no member of a transaction completes or is cancelled before the transaction commits (seed 001)", "qemu 111049a4ec"),
  noUseAfterFree,
  noCrash,
  jobIoWhilePaused,
  jobIoAfterConclude,
  jobIoInDrainedSection,
  jobExitInDrainedSection,
  eventsMatchStates,
  txnAllOrNothing,
  cancelHonoured,
  opBlockersHonoured,
  mirrorPivotContent,
  backupPointInTime,
  backupBitmapSettled,
  rateLimitHonoured,
  pauseAtPausePoint,
  completeNotCancelled,
  outcomeApplied,
  jobsConclude,
]);

/** The invariant with this name, or a clear error listing the known ones. */
export function invariantByName(name: string): Invariant {
  const i = INVARIANTS.find((x) => x.name === name);
  if (!i) throw new Error(`unknown invariant '${name}'; known invariants: ${INVARIANTS.map((x) => x.name).join(", ")}`);
  return i;
}

export type { CheckContext, Monitor };
