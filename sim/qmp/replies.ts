/**
 * What each QMP command answers in QEMU 7.2 (qapi/block-core.json,
 * qapi/job.json, qapi/transaction.json): nothing (`{}`), or a list of a
 * struct with these members, and which members blocksim fills in. A
 * scenario's `{ return: … }` expectation is checked against it, so a member
 * the reply never has is an error, not an expectation that silently fails
 * or, worse, a subset match that cannot see the typo.
 */

export interface ReplyMember {
  optional?: boolean;
  /** Whether blocksim's reply carries it. */
  modelled: boolean;
}

export type ReplySpec =
  | { kind: "empty" }
  | { kind: "string" }
  | { kind: "list" | "object"; type: string; members: Readonly<Record<string, ReplyMember>> };

const m: ReplyMember = { modelled: true };
const mOpt: ReplyMember = { modelled: true, optional: true };
const not: ReplyMember = { modelled: false };
const notOpt: ReplyMember = { modelled: false, optional: true };

const EMPTY: ReplySpec = { kind: "empty" };
const STRING: ReplySpec = { kind: "string" };

const JOB_INFO: ReplySpec = {
  kind: "list",
  type: "JobInfo",
  members: { id: m, type: m, status: m, "current-progress": m, "total-progress": m, error: mOpt },
};

const BLOCK_JOB_INFO: ReplySpec = {
  kind: "list",
  type: "BlockJobInfo",
  members: {
    type: m, device: m, len: m, offset: m, busy: m, paused: m, speed: m, "io-status": m, ready: m, status: m,
    "auto-finalize": m, "auto-dismiss": m, error: mOpt,
  },
};

const THROTTLE = ["bps", "bps_rd", "bps_wr", "iops", "iops_rd", "iops_wr", "bps_max", "bps_rd_max", "bps_wr_max", "iops_max", "iops_rd_max", "iops_wr_max"];
const BLOCK_DEVICE_INFO: ReplySpec = {
  kind: "list",
  type: "BlockDeviceInfo",
  members: {
    file: m, "node-name": mOpt, ro: m, drv: m, backing_file: mOpt, backing_file_depth: m, encrypted: m, image: m,
    detect_zeroes: not, cache: not, write_threshold: not, "dirty-bitmaps": mOpt, group: notOpt, iops_size: notOpt,
    ...Object.fromEntries(THROTTLE.map((k) => [k, not])),
    ...Object.fromEntries(THROTTLE.filter((k) => k.endsWith("_max")).map((k) => [`${k}_length`, notOpt])),
  },
};

const BLOCK_STATS: ReplySpec = {
  kind: "list",
  type: "BlockStats",
  members: { device: mOpt, qdev: mOpt, "node-name": mOpt, stats: m, parent: mOpt, backing: mOpt, "driver-specific": mOpt },
};

const STATUS_INFO: ReplySpec = { kind: "object", type: "StatusInfo", members: { running: m, singlestep: m, status: m } };

/** Replies by command name; a command missing here is not checked. */
export const REPLIES: Readonly<Record<string, ReplySpec>> = {
  "query-jobs": JOB_INFO,
  "query-block-jobs": BLOCK_JOB_INFO,
  "query-named-block-nodes": BLOCK_DEVICE_INFO,
  "query-blockstats": BLOCK_STATS,
  "query-status": STATUS_INFO,
  // HMP's output, as text.
  "human-monitor-command": STRING,
  ...Object.fromEntries([
    "stop", "cont", "quit", "eject", "blockdev-reopen",
    "blockdev-add", "blockdev-del", "blockdev-backup", "drive-backup", "blockdev-snapshot", "blockdev-mirror", "drive-mirror", "block-stream", "block-commit",
    "job-pause", "job-resume", "job-cancel", "job-complete", "job-finalize", "job-dismiss",
    "block-job-pause", "block-job-resume", "block-job-complete", "block-job-finalize", "block-job-dismiss", "block-job-set-speed", "block-job-cancel",
    "block-dirty-bitmap-add", "block-dirty-bitmap-remove", "block-dirty-bitmap-clear", "block-dirty-bitmap-enable", "block-dirty-bitmap-disable",
    "block-dirty-bitmap-merge", "transaction", "object-add", "object-del", "x-blockdev-set-iothread", "device_add", "block_resize",
  ].map((c) => [c, EMPTY])),
};

/**
 * Problems with a `{ return: want }` expectation for `command`: members its
 * reply never has in QEMU 7.2, members blocksim does not fill in, a list
 * expected as an object. Each problem has the path below `return`.
 */
export function checkExpectedReturn(command: string, want: unknown, didYouMean: (s: string, options: string[]) => string): { path: (string | number)[]; message: string }[] {
  const spec = Object.hasOwn(REPLIES, command) ? REPLIES[command] : undefined;
  if (!spec) return [];
  const out: { path: (string | number)[]; message: string }[] = [];
  if (spec.kind === "empty") {
    if (want !== null && typeof want === "object" && !Array.isArray(want) && Object.keys(want).length === 0) return [];
    out.push({ path: [], message: `${command} answers {} in QEMU 7.2 (no members); expected return: {} or expect: ok` });
    return out;
  }
  if (spec.kind === "string") {
    if (typeof want !== "string") out.push({ path: [], message: `${command} answers a string in QEMU 7.2 (the human monitor's output); expected return: "…"` });
    return out;
  }
  const names = Object.keys(spec.members);
  const checkItem = (item: unknown, at: (string | number)[]) => {
    if (item === null || typeof item !== "object" || Array.isArray(item)) {
      out.push({ path: at, message: `${spec.kind === "list" ? `each entry of ${command}'s reply` : `${command}'s reply`} is a ${spec.type} object` });
      return;
    }
    for (const k of Object.keys(item)) {
      const member = Object.hasOwn(spec.members, k) ? spec.members[k] : undefined;
      if (!member) out.push({ path: [...at, k], message: `${spec.type} has no member "${k}"${didYouMean(k, names)}; its members: ${names.join(", ")}` });
      else if (!member.modelled) out.push({ path: [...at, k], message: `valid in QEMU 7.2, not modelled by blocksim: ${spec.type} member "${k}" (blocksim's ${command} leaves it out)` });
    }
  };
  if (spec.kind === "object") {
    checkItem(want, []);
    return out;
  }
  if (!Array.isArray(want)) {
    out.push({ path: [], message: `${command} answers a list of ${spec.type} in QEMU 7.2; expected return: [ … ]` });
    return out;
  }
  want.forEach((item, i) => checkItem(item, [i]));
  return out;
}
