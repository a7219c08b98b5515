/**
 * The scenario file schema (zod). Every object is strict: an unknown key is
 * an error (the loader adds a "did you mean"). Sizes, durations and rates
 * take human units (units.ts) and come out as integers: bytes, ns, bytes/s.
 *
 * The vocabulary is QMP's own: a step is `{execute, arguments}` exactly as a
 * client sends it, and `nodes` are blockdev-add arguments (with units
 * allowed in `size` and `latency-ns`). See scenarios/README.md for a tour.
 */
import { z } from "zod";
import { ERRNOS } from "../disk/index.js";
import { JOB_STATUSES } from "../jobs/status.js";
import { LIMITS } from "./limits.js";
import { parseDuration, parseRate, parseSize, UnitError } from "./units.js";

/** A list of at most `max` entries, with a message naming the limit. */
function list<T extends z.ZodType>(item: T, max: number, what: string) {
  return z.array(item).max(max, `at most ${max} ${what} (blocksim's limit for untrusted input)`);
}

function unit(parse: (v: unknown) => number, example: string) {
  return z.union([z.string(), z.number()], { error: `expected a number or a string like "${example}"` }).transform((v, ctx) => {
    try {
      return parse(v);
    } catch (e) {
      if (!(e instanceof UnitError)) throw e;
      ctx.issues.push({ code: "custom", message: e.message, input: v });
      return z.NEVER;
    }
  });
}

const SIZE_DOC = "A size with a unit: 512B, 4k/4KiB, 64M/64MiB, 1G/1GiB, 1T (powers of 1024) or kB, MB, GB, TB (powers of 1000). A bare number means bytes and is accepted in JSON files only (0 anywhere).";
const DURATION_DOC = "A duration with a unit: 100ns, 200us (µs), 2ms, 1.5s, 1min. A bare number means nanoseconds and is accepted in JSON files only (0 anywhere).";
const RATE_DOC = "A rate with a unit: 200MB/s, 1GiB/s (size units per second); 0 means unlimited. A bare number means bytes per second and is accepted in JSON files only.";

/** Bytes: `64MiB`, `4k`; a bare number only in JSON. */
export const Size = unit(parseSize, "64MiB").describe(SIZE_DOC);
/** Nanoseconds: `2ms`, `500us`; a bare number (ns) only in JSON. */
export const Duration = unit(parseDuration, "2ms").describe(DURATION_DOC);
/** Bytes per second: `200MB/s`, `1GiB/s`, 0 = unlimited. */
export const Rate = unit(parseRate, "200MB/s").describe(RATE_DOC);

const withDefault = (doc: string, d: string) => `${doc} Default: ${d}.`;

const Name = z.string().regex(/^[A-Za-z][A-Za-z0-9._-]*$/, "expected a name: a letter, then letters, digits, '.', '_' or '-'");

const Latency = z.union([Duration, z.strictObject({ min: Duration, max: Duration })], {
  error: `expected a duration like "100us" or { min: 50us, max: 150us }`,
});

/** A fault rule (like blkdebug's inject-error) on a device. */
export const FaultRule = z.strictObject({
  op: z.union([z.enum(["read", "write", "flush", "write-zeroes", "discard"]), z.array(z.enum(["read", "write", "flush", "write-zeroes", "discard"])).min(1)]).optional(),
  errno: z.enum(ERRNOS as unknown as [string, ...string[]]).default("EIO"),
  /** Byte range a request must overlap: { offset, length }. */
  range: z.strictObject({ offset: Size, length: Size }).optional(),
  issuer: z.string().optional(),
  once: z.boolean().optional(),
  "after-requests": z.number().int().min(0).optional(),
  /** Leave each eligible request to the strategy: a choice point with this label. */
  choose: z.string().min(1).optional(),
});
export type FaultRule = z.infer<typeof FaultRule>;

/** A simulated device: what raw and qcow2 nodes sit on (their `file`). */
export const Device = z.strictObject({
  name: z.string().min(1),
  size: Size,
  "cluster-size": Size.default(65536).describe(withDefault(SIZE_DOC, "64KiB")),
  /** Read and write latency (both), unless read-latency / write-latency say otherwise. */
  latency: Latency.optional(),
  "read-latency": Latency.optional(),
  "write-latency": Latency.optional(),
  bandwidth: Rate.default(0).describe(withDefault(RATE_DOC, "0 (unlimited)")),
  /** shared: one channel for the device's requests; per-request: each moves its bytes on its own (an image file QEMU's thread pool reads). */
  transfer: z.enum(["shared", "per-request"]).default("shared"),
  /** A flush also syncs the bytes written since the last one at this rate (an fdatasync); default 0: only its latency. */
  "flush-bandwidth": Rate.default(0).describe(withDefault(RATE_DOC, "0 (a flush takes its latency)")),
  /** A qcow2 node on it opens with QEMU's metadata caches empty (its first block status and lookup read tables). */
  "cold-metadata-caches": z.boolean().default(false),
  /** An image file, not a disk: a raw node's block status reports the clusters that read as zeroes as holes (zero). */
  sparse: z.boolean().default(false),
  "queue-depth": z.number().int().min(1).max(LIMITS.queueDepth, `expected at most ${LIMITS.queueDepth} requests in flight`).default(32),
  faults: list(FaultRule, LIMITS.deviceRanges, "fault rules").default([]),
  /** Byte ranges already written before the run (as qemu-img would), each a write of its own. */
  data: list(z.strictObject({ offset: Size, length: Size }), LIMITS.deviceRanges, "data ranges").default([]),
});
export type Device = z.infer<typeof Device>;

const InjectError = z.strictObject({
  event: z.literal("pwritev"),
  errno: z.number().int().optional(),
  once: z.boolean().optional(),
});

const NullCo = z.strictObject({
  driver: z.literal("null-co"),
  "node-name": Name,
  size: Size,
  "latency-ns": Duration.optional(),
  "read-zeroes": z.boolean().optional(),
});
const Raw = z.strictObject({ driver: z.literal("raw"), "node-name": Name, file: z.string().min(1) });
const Qcow2 = z.strictObject({ driver: z.literal("qcow2"), "node-name": Name, file: z.string().min(1), backing: z.union([Name, z.null()]).optional() });
const Image = z.discriminatedUnion("driver", [NullCo.omit({ "node-name": true }), Raw.omit({ "node-name": true }), Qcow2.omit({ "node-name": true })]);
const Blkdebug = z.strictObject({ driver: z.literal("blkdebug"), "node-name": Name, image: Image, "inject-error": z.array(InjectError).default([]) });

/** A block node: blockdev-add's arguments, issued before the first step. */
export const Node = z.discriminatedUnion("driver", [NullCo, Raw, Qcow2, Blkdebug]);
export type Node = z.infer<typeof Node>;

const GuestPattern = z.union([
  z.enum(["sequential", "random"]),
  z.strictObject({ hot: z.strictObject({ offset: Size, length: Size, fraction: z.number().min(0).max(1) }) }),
], { error: `expected "sequential", "random" or { hot: { offset, length, fraction } }` });

/** A guest workload on a virtual disk (a BlockBackend named `drive`) over `node`. */
export const Guest = z.strictObject({
  name: Name.default("guest"),
  /** The node the guest's disk sits on. */
  node: Name,
  /** The guest disk's device name (QMP `device` arguments may name it); default: the guest's name. */
  drive: Name.optional(),
  pattern: GuestPattern.default("random"),
  "read-fraction": z.number().min(0).max(1).default(0),
  "request-size": z.union([Size, z.strictObject({ min: Size, max: Size })]).default(4096).describe(withDefault(SIZE_DOC, "4KiB")),
  align: Size.default(4096).describe(withDefault(SIZE_DOC, "4KiB")),
  iodepth: z.number().int().min(1).max(LIMITS.iodepth, `expected at most ${LIMITS.iodepth} requests in flight`).default(1),
  interval: Latency.default(0).describe(withDefault(DURATION_DOC, "0 (back to back)")),
  region: z.strictObject({ offset: Size, length: Size }).optional(),
  "max-requests": z.number().int().min(0).optional(),
  /** The IOThread its device runs in (one of the scenario's `iothreads`): the disk's node graph moves there at setup. */
  iothread: Name.optional(),
  /** When the guest starts issuing (default 0) and stops (default: when the scenario ends). */
  start: Duration.default(0).describe(withDefault(DURATION_DOC, "0")),
  stop: Duration.optional(),
});
export type Guest = z.infer<typeof Guest>;

const EventMatch = z.strictObject({
  event: z.string().min(1),
  /** Fields the event's data must have (a subset match). */
  data: z.record(z.string(), z.unknown()).optional(),
});

/** An expected event: `NAME`, or { event, data } with data as a subset. */
export const ExpectedEvent = z.union([z.string().min(1), EventMatch], { error: "expected an event name or { event, data }" });
export type ExpectedEvent = z.infer<typeof ExpectedEvent>;

const OneExpect = z.union([
  z.literal("ok"),
  z.literal("error"),
  z.strictObject({ return: z.unknown() }),
  z.strictObject({
    error: z.union([
      z.string(),
      z.strictObject({ class: z.string().optional(), desc: z.string().optional(), "desc-contains": z.string().optional() }),
    ]),
  }),
], { error: `expected "ok", "error", { return: … } or { error: CLASS | { class, desc, desc-contains } }` });

/** What a step's reply must be; `any` for a reply that depends on the schedule. */
const StepExpect = z.union([
  OneExpect,
  z.strictObject({ any: z.array(OneExpect).min(1).max(16) }),
], { error: `expected "ok", "error", { return: … }, { error: CLASS | { class, desc, desc-contains } } or { any: [ … ] }` });
export type StepExpect = z.infer<typeof StepExpect>;

/**
 * A moment left to the strategy: one of from, from+step, …, to. It is a
 * logged choice point (label `steps[i].at` or `steps[i].delay`), so random,
 * PCT and exhaustive exploration try its values, shrinking moves it towards
 * `from`, and a replay takes the same one. FIFO (the default strategy) takes
 * `from`.
 */
export const ChosenMoment = z.strictObject({
  choose: z.strictObject({
    from: Duration,
    to: Duration,
    step: Duration,
  }),
});
export type ChosenMoment = z.infer<typeof ChosenMoment>;

const MOMENT_ERROR = `expected a duration like "2ms" or { choose: { from: 0ms, to: 2ms, step: 250us } }`;
const Moment = z.union([Duration, ChosenMoment], { error: MOMENT_ERROR }).describe(`${DURATION_DOC} Or { choose: { from, to, step } }: a moment the strategy picks among from, from+step, …, to (a logged choice point; FIFO takes from).`);

const StepCommon = {
  /** A name other steps can wait for (`after`). */
  id: Name.optional(),
  /** The QMP client issuing it: a lane in the timeline (default "client"). */
  client: Name.optional(),
  /** Trigger: at this virtual time since the start, or at a chosen one. */
  at: Moment.optional(),
  /** Trigger: once the step with this id has its reply. */
  after: Name.optional(),
  /** Trigger: once this event (count times, default 1) has been seen. */
  "on-event": z.strictObject({ event: z.string().min(1), data: z.record(z.string(), z.unknown()).optional(), count: z.number().int().min(1).default(1) }).optional(),
  /** Trigger: once the job with this id is in this status. */
  "on-job": z.strictObject({ id: z.string().min(1), status: z.enum(JOB_STATUSES) }).optional(),
  /** Extra wait after the trigger, or a chosen one. */
  delay: Moment.default(0).describe(withDefault(`${DURATION_DOC} Or { choose: { from, to, step } } (a logged choice point; FIFO takes from).`, "0")),
};

const QmpStep = z.strictObject({
  ...StepCommon,
  execute: z.string().min(1),
  arguments: z.record(z.string(), z.unknown()).optional(),
  /** What the reply must be (default "ok": any non-error reply). */
  expect: StepExpect.default("ok"),
});
const DrainStep = z.strictObject({ ...StepCommon, drain: z.strictObject({ node: Name }) });
const UndrainStep = z.strictObject({ ...StepCommon, undrain: z.strictObject({ node: Name }) });
const FaultStep = z.strictObject({ ...StepCommon, fault: FaultRule.extend({ device: z.string().min(1) }) });
const HealStep = z.strictObject({ ...StepCommon, heal: z.strictObject({ device: z.string().min(1) }) });

const Disk = z.string().min(1);
const MiBps = z.number().int().min(0);
/** A libvirt-style API call on the management layer (sim/mgmt), by its libvirt name. */
const LibvirtCall = z.discriminatedUnion("api", [
  z.strictObject({ api: z.literal("virDomainGetBlockJobInfo"), disk: Disk }),
  z.strictObject({ api: z.literal("virDomainBlockJobAbort"), disk: Disk, async: z.boolean().optional(), pivot: z.boolean().optional() }),
  z.strictObject({ api: z.literal("virDomainBlockJobSetSpeed"), disk: Disk, "bandwidth-mib": MiBps }),
  z.strictObject({ api: z.literal("virDomainBlockPull"), disk: Disk, "bandwidth-mib": MiBps.optional(), base: z.string().optional() }),
  z.strictObject({ api: z.literal("virDomainBlockCopy"), disk: Disk, dest: z.string().min(1), "bandwidth-mib": MiBps.optional(), shallow: z.boolean().optional(), "reuse-ext": z.boolean().optional() }),
  z.strictObject({ api: z.literal("virDomainBlockCommit"), disk: Disk, top: z.string().optional(), base: z.string().optional(), "bandwidth-mib": MiBps.optional(), active: z.boolean().optional(), "active-node": z.string().optional() }),
  /** A migration with non-shared storage (MIGRATION_OUT async job): the disk mirrored to `dest`, then the memory phase. */
  z.strictObject({ api: z.literal("virDomainMigrate"), disk: Disk, dest: z.string().min(1), "memory-phase": Duration, "bandwidth-mib": MiBps.optional() }),
]);
export type LibvirtCall = z.infer<typeof LibvirtCall>;
const LibvirtStep = z.strictObject({ ...StepCommon, libvirt: LibvirtCall, expect: StepExpect.default("ok") });
/** A polling client: virDomainGetBlockJobInfo every `interval` until `count` calls, `until`, or the job is gone. */
const PollStep = z.strictObject({
  ...StepCommon,
  poll: z.strictObject({ disk: Disk, interval: Duration, count: z.number().int().min(1).optional(), until: Duration.optional(), "stop-when-gone": z.boolean().optional() }),
});

/** A step: a QMP command, a drained section begin/end, a fault added/healed, a libvirt call or a poller. */
export const Step = z.union([QmpStep, DrainStep, UndrainStep, FaultStep, HealStep, LibvirtStep, PollStep]);
export type Step = z.infer<typeof Step>;

/** What a run must show. */
const Outcome = z.enum(["ok", "deadlock", "time-budget", "step-budget", "zeno", "failure", "qemu-crash"]);

export const Expect = z.strictObject({
  /** The events in order: `subsequence` (default) or `exact` (every event, one-to-one). */
  events: z.union([
    list(ExpectedEvent, LIMITS.expectations, "events"),
    z.strictObject({ order: z.enum(["subsequence", "exact"]).default("subsequence"), sequence: list(ExpectedEvent, LIMITS.expectations, "events") }),
  ], { error: "expected a list of events, or { order: subsequence|exact, sequence: [...] }" }).optional(),
  /** Events that must not happen. */
  never: list(ExpectedEvent, LIMITS.expectations, "events").optional(),
  /** Final job status by job id ("null" once dismissed), optionally with the error it ended with. */
  jobs: z.record(z.string(), z.union([z.enum(JOB_STATUSES), z.strictObject({ status: z.enum(JOB_STATUSES), error: z.string().optional() })], {
    error: `expected a job status (${JOB_STATUSES.join(", ")}) or { status, error }`,
  })).refine((jobs) => Object.keys(jobs).length <= LIMITS.expectJobs, {
    error: (iss) => `expected at most ${LIMITS.expectJobs} job ids (blocksim's limit for untrusted input), got ${Object.keys(iss.input as object).length}`,
  }).optional(),
  /** Data checks. */
  data: list(z.union([
    z.strictObject({ backup: z.string().min(1) }),
    z.strictObject({ mirror: z.string().min(1) }),
    z.strictObject({ same: z.tuple([Name, Name]) }),
  ], { error: "expected { backup: JOB }, { mirror: JOB } or { same: [NODE, NODE] }" }), LIMITS.expectations, "data checks").optional(),
  /** Invariants to check (default: all); see `blocksim invariants`. */
  invariants: z.union([z.literal("all"), z.literal("none"), z.array(z.string())]).refine((v) => !Array.isArray(v) || v.length <= LIMITS.invariantNames, {
    error: (iss) => `expected at most ${LIMITS.invariantNames} items (blocksim's limit for untrusted input), got ${(iss.input as unknown[]).length}`,
  }).default("all"),
  /** Invariants this scenario expects to be violated (a race reproduced). */
  violations: list(z.string(), LIMITS.invariantNames, "invariant names").default([]),
  /** How the kernel run must end (default ok); a list: any of them (QEMU itself ends either way, as a race between its threads decides). */
  outcome: z.union([Outcome, z.array(Outcome).min(1).max(Outcome.options.length)]).default("ok"),
});
export type Expect = z.infer<typeof Expect>;

/** How long and how far a run may go. */
export const Limits = z.strictObject({
  /** Virtual time the run may last (default 60s). */
  time: Duration.default(60e9).describe(withDefault(DURATION_DOC, "60s")),
  /** Kernel steps the run may take (default 20,000,000). */
  steps: z.number().int().min(1).max(LIMITS.kernelSteps, `expected at most ${LIMITS.kernelSteps} kernel steps`).default(20_000_000),
  /** Kernel steps without virtual time advancing before the run ends as a Zeno run (default 2,000,000). */
  "instant-steps": z.number().int().min(1).max(LIMITS.kernelSteps, `expected at most ${LIMITS.kernelSteps} kernel steps`).default(2_000_000),
});

/** The parts a shared fragment may hold. */
const FragmentShape = {
  import: list(z.string().min(1), LIMITS.imports, "imports").default([]),
  devices: list(Device, LIMITS.devices, "devices").default([]),
  nodes: list(Node, LIMITS.nodes, "nodes").default([]),
  guests: list(Guest, LIMITS.guests, "guests").default([]),
};

/** A shared fragment (`import`): devices, nodes and guests only. */
export const Fragment = z.strictObject({ description: z.string().optional(), ...FragmentShape });
export type Fragment = z.infer<typeof Fragment>;

/** A libvirt-style domain (sim/mgmt) over the simulated QEMU: what libvirt and poll steps talk to. */
export const DomainSpec = z.strictObject({
  /** Guest disks: the name API calls use (vda) and the QMP device (a guest's drive, also the block job id). */
  disks: list(z.strictObject({ target: Name, device: Name }), LIMITS.devices, "disks").min(1),
  /** One monitor round trip (default 1ms). */
  "qmp-round-trip": Duration.default(1_000_000).describe(withDefault(DURATION_DOC, "1ms")),
  /** The bound of the query-wait-bound invariant: a status query gets its job within this (default 100ms). */
  "query-wait-bound": Duration.default(100_000_000).describe(withDefault(DURATION_DOC, "100ms")),
});

/** A commit of QEMU's or libvirt's history. */
const Commit = z.strictObject({
  project: z.enum(["qemu", "libvirt"]),
  commit: z.string().regex(/^[0-9a-f]{7,40}$/, "expected a commit id: 7 to 40 lowercase hex digits"),
  title: z.string().min(1),
  /** The commit's author date. */
  date: z.string().regex(/^\d{4}-\d{2}-\d{2}$/, "expected a date YYYY-MM-DD"),
});

/**
 * A race from QEMU's (or libvirt's) history that this scenario reproduces:
 * the scenario holds under `fixed-profile` and breaks an invariant of
 * `breaks` under `buggy-profile` for some schedule. `blocksim races` hunts
 * every file that has this header. The race's name is the scenario's name.
 */
export const RaceHeader = z.strictObject({
  /** The commit that fixed it. */
  "fixed-by": Commit,
  /** The commit that brought it in, when it was a regression. */
  "introduced-by": Commit.optional(),
  /** The profile that restores the buggy code path. */
  "buggy-profile": z.string().min(1),
  /** A profile with the fix (default current). */
  "fixed-profile": z.string().min(1).default("current"),
  /** The invariants the race breaks (always checked, whatever expect.invariants says). */
  breaks: z.array(z.string().min(1)).min(1).max(16, "at most 16 invariants"),
  /** Where it was reported: a bug tracker link, a mailing-list thread, the commit's Reported-by, a blocksim seed. */
  reported: z.string().min(1),
  /** Anything else a reader should know (a counterfactual fixed profile, what the model leaves out). */
  note: z.string().optional(),
});
export type RaceHeader = z.infer<typeof RaceHeader>;

/** A scenario file. */
export const Scenario = z.strictObject({
  name: z.string().min(1),
  description: z.string().optional(),
  /** This scenario reproduces a historical race (see RaceHeader). */
  race: RaceHeader.optional(),
  profile: z.string().default("current"),
  seed: z.union([z.number().int(), z.string()]).default(0),
  strategy: z.enum(["fifo", "random", "pct"]).default("fifo"),
  /** IOThreads created before the nodes (object-add qom-type=iothread), for guests' `iothread`. */
  iothreads: z.array(Name).max(64).default([]),
  ...FragmentShape,
  domain: DomainSpec.optional(),
  steps: list(Step, LIMITS.steps, "steps").default([]),
  expect: Expect.default(() => Expect.parse({})),
  limits: Limits.default(() => Limits.parse({})),
});
export type Scenario = z.infer<typeof Scenario>;
export type ScenarioInput = z.input<typeof Scenario>;
