/**
 * The world of one run, built from one `WorldSpec`: the scheduler (seed,
 * strategy, limits), a simulated QEMU under the profile's behaviour, its
 * devices (with the one set of device defaults), nodes added through the
 * monitor, guests, the management layer when the spec has a domain, and the
 * invariants that watch it all. Every user — scenario runner, fuzzer, race
 * catalog, the conformance replay (live/spec-driver.ts), `blocksim serve` and
 * its QEMU stand-in — builds its world here and nowhere else
 * (test/harness/one-world.test.ts holds shipped code to that).
 */
import { attachDevice, changeAioContext, guestDevicePerms, startGuest, type GuestConfig, type GuestWorkload } from "../block/index.js";
import { DEVICE_DEFAULTS, type Device, type FaultRule, type LatencyNs } from "../disk/index.js";
import { checkRun, INVARIANTS, type Invariant, type RunCheck } from "../check/index.js";
import { Domain, queryWaitInvariant, QUERY_WAIT_RULE, type DiskConfig } from "../mgmt/index.js";
import { lookupProfile } from "../mgmt/profiles.js";
import { createQemu, type Qemu } from "../qmp/qemu.js";
import type { QmpResponse } from "../qmp/types.js";
import { AioContexts, FifoStrategy, join, Scheduler, sleep, type Process, type ProcHandle, type SchedulerOptions, type Strategy } from "../scheduler/index.js";

/** A simulated device; what is left out takes the defaults below. */
export interface DeviceSpec {
  name: string;
  sizeBytes: number;
  /** Default 64 KiB. */
  clusterSizeBytes?: number;
  /** Both directions (default 0); readLatencyNs / writeLatencyNs override it. */
  latencyNs?: LatencyNs;
  readLatencyNs?: LatencyNs;
  writeLatencyNs?: LatencyNs;
  /** Default 0: unlimited. */
  bandwidthBytesPerSec?: number;
  /** Default 32. */
  queueDepth?: number;
  /** Faults in force from the start. */
  faults?: FaultRule[];
  /** Written before the run (setup), faults not applied. */
  data?: { offset: number; length: number }[];
  /** Each request transfers on its own, not over a shared channel (sim/disk DeviceConfig.transferPerRequest; default false). */
  transferPerRequest?: boolean;
  /** A flush also syncs the bytes written since the last one at this rate (sim/disk DeviceConfig.flushBytesPerSec; default 0). */
  flushBytesPerSec?: number;
  /** A qcow2 image on it opens with empty metadata caches (sim/disk DeviceConfig.coldMetadataCaches; default false). */
  coldMetadataCaches?: boolean;
  /** The backing file a qcow2 image on it names in its header (sim/disk DeviceConfig.backingFile). */
  backingFile?: string;
  /** An image file: a raw node's block status reports its zero clusters as holes (sim/disk DeviceConfig.sparse; default false). */
  sparse?: boolean;
}

export { DEVICE_DEFAULTS };

/** A guest workload on a node: the block layer's guest config, with the node instead of a backend. */
export type GuestSpec = Omit<GuestConfig, "backend" | "stopAtNs"> & {
  node: string;
  /** The virtual disk's name (default: the guest's name). */
  drive?: string;
  /** Starts this long after setup (default 0). */
  startNs?: number;
  /** Stops this long after setup. */
  stopNs?: number;
  /** The IOThread its device is realized in (-device …,iothread=): the disk's graph moves there. */
  iothread?: string;
};

export interface DomainSpec {
  disks: DiskConfig[];
  qmpRoundTripNs?: number;
  /** The bound of the query-wait-bound invariant (default 100 ms). */
  queryWaitBoundNs?: number;
}

export interface WorldSpec {
  /** Default "current"; any profile of the catalog (QMP or management). */
  profile?: string;
  /** Root of every PRNG stream (default 0). */
  seed?: number | string;
  /** Who decides at choice points (default FIFO). */
  strategy?: Strategy;
  /** Kernel steps, virtual time, and steps at one instant before a run is a Zeno run. */
  limits?: { timeNs?: number; steps?: number; instantSteps?: number };
  /** Keep the kernel trace. */
  trace?: boolean;
  /** Looks at the run every so many kernel steps without touching it (a progress line). */
  observer?: SchedulerOptions["observer"];
  devices?: DeviceSpec[];
  /** IOThreads (object-add at setup, before the nodes). */
  iothreads?: string[];
  /** blockdev-add arguments, added in order during setup. */
  nodes?: Record<string, unknown>[];
  guests?: GuestSpec[];
  /** A libvirt-style management layer over the QEMU. */
  domain?: DomainSpec;
  /** Invariant names or objects (default: all); query-wait-bound needs a domain. */
  invariants?: readonly (string | Invariant)[];
}

/** Every invariant name a world can check: the library's and the management layer's. */
export function invariantNames(): string[] {
  return [...INVARIANTS.map((i) => i.name), QUERY_WAIT_RULE];
}

export interface World {
  readonly spec: WorldSpec;
  readonly profile: string;
  readonly sim: Scheduler;
  readonly qemu: Qemu;
  readonly dom?: Domain;
  readonly check: RunCheck;
  /** Guests started so far (setup starts them). */
  readonly guests: GuestWorkload[];
  /** The replies to setup's blockdev-adds, in order. */
  readonly nodeReplies: QmpResponse[];
  /** Problems building the world (a device, node or guest refused): the run stops at setup. */
  readonly setupFailures: string[];
  /** Virtual time at which setup ended (steps count their `at` from here). */
  readonly t0: number;
  /** Devices get their data, nodes are added, guests start. Sets t0. */
  setup(): Process<void>;
  /**
   * Declares one more device, with the defaults (for a device that appears
   * while the world runs: the QEMU stand-in's images, named by libvirt's
   * blockdev-add). Throws when QEMU refuses it (a name declared twice, a bad size).
   */
  declareDevice(d: DeviceSpec): Device;
}

/** The simulated QEMU's device for a DeviceSpec: what is left out takes DEVICE_DEFAULTS. */
function declareDevice(qemu: Qemu, d: DeviceSpec): Device {
  return qemu.addDevice({
    name: d.name, sizeBytes: d.sizeBytes, clusterSizeBytes: d.clusterSizeBytes ?? DEVICE_DEFAULTS.clusterSizeBytes,
    readLatencyNs: d.readLatencyNs ?? d.latencyNs ?? DEVICE_DEFAULTS.latencyNs, writeLatencyNs: d.writeLatencyNs ?? d.latencyNs ?? DEVICE_DEFAULTS.latencyNs,
    bandwidthBytesPerSec: d.bandwidthBytesPerSec ?? DEVICE_DEFAULTS.bandwidthBytesPerSec, queueDepth: d.queueDepth ?? DEVICE_DEFAULTS.queueDepth,
    ...(d.faults && d.faults.length > 0 ? { faults: d.faults } : {}),
    ...(d.transferPerRequest ? { transferPerRequest: true } : {}),
    ...(d.flushBytesPerSec ? { flushBytesPerSec: d.flushBytesPerSec } : {}),
    ...(d.coldMetadataCaches ? { coldMetadataCaches: true } : {}),
    ...(d.backingFile !== undefined ? { backingFile: d.backingFile } : {}),
    ...(d.sparse ? { sparse: true } : {}),
  });
}

/** Builds the world; nothing runs until the scheduler does. */
export function createWorld(spec: WorldSpec): World {
  const profile = spec.profile ?? "current";
  const behaviour = lookupProfile(profile);
  const sim = new Scheduler({
    seed: spec.seed ?? 0, strategy: spec.strategy ?? new FifoStrategy(), trace: spec.trace ?? false,
    ...(spec.limits?.steps !== undefined ? { maxSteps: spec.limits.steps } : {}), ...(spec.limits?.timeNs !== undefined ? { maxTimeNs: spec.limits.timeNs } : {}),
    ...(spec.limits?.instantSteps !== undefined ? { maxInstantSteps: spec.limits.instantSteps } : {}),
    ...(spec.observer ? { observer: spec.observer } : {}),
  });
  const qemu = createQemu(sim, behaviour.qemu);
  const dom = spec.domain ? new Domain(qemu, { behaviour: behaviour.mgmt, disks: spec.domain.disks, ...(spec.domain.qmpRoundTripNs !== undefined ? { qmpRoundTripNs: spec.domain.qmpRoundTripNs } : {}) }) : undefined;
  const setupFailures: string[] = [];
  for (const d of spec.devices ?? []) {
    try {
      declareDevice(qemu, d);
    } catch (e) {
      setupFailures.push(`device "${d.name}": ${(e as Error).message}`);
      break;
    }
  }
  const check = checkRun(qemu, checkedInvariants(spec, dom !== undefined));
  const guests: GuestWorkload[] = [];
  const nodeReplies: QmpResponse[] = [];
  const world: World = {
    spec, profile, sim, qemu, ...(dom ? { dom } : {}), check, guests, nodeReplies, setupFailures, t0: 0,
    declareDevice: (d) => declareDevice(qemu, d),
    setup: () => setup(world),
  };
  return world;
}

/**
 * The invariants a world checks: the spec's selection (default: every name),
 * the management layer's query-wait rule made with the domain's bound, and
 * left out without a domain.
 */
function checkedInvariants(spec: WorldSpec, hasDomain: boolean): readonly (string | Invariant)[] {
  const selection = spec.invariants ?? invariantNames();
  // The library's list (the fuzzer's) holds no management rule: taken as it is. (Reading `name` off
  // its differently shaped invariant objects, twice, cost ~2 µs per world.)
  if (selection === INVARIANTS) return INVARIANTS;
  const wantsQueryWait = selection.some((i) => (typeof i === "string" ? i : i.name) === QUERY_WAIT_RULE);
  const chosen = selection.filter((i) => (typeof i === "string" ? i : i.name) !== QUERY_WAIT_RULE);
  if (hasDomain && wantsQueryWait) chosen.push(queryWaitInvariant(spec.domain!.queryWaitBoundNs ?? 100_000_000) as Invariant);
  return chosen;
}

/** World.setup: devices get their data, nodes are added, guests start. Sets t0. */
function* setup(world: World): Process<void> {
  const { spec, sim, qemu, setupFailures, nodeReplies, guests } = world;
  if (setupFailures.length > 0) return;
  // Every device is filled at once (each by its own process), so setup lasts as long as the slowest device.
  const fills: ProcHandle[] = [];
  for (const d of spec.devices ?? []) {
    if (!d.data || d.data.length === 0) continue;
    fills.push(sim.spawn(`fill ${d.name}`, fill(qemu.devices.get(d.name)!, d.data)));
  }
  for (const f of fills) yield join(f);
  for (const id of spec.iothreads ?? []) {
    const r = yield* qemu.monitor.execute({ execute: "object-add", arguments: { "qom-type": "iothread", id } });
    if ("error" in r) {
      setupFailures.push(`iothread "${id}": object-add failed: ${r.error.class}: ${r.error.desc}`);
      return;
    }
  }
  for (const n of spec.nodes ?? []) {
    const r = yield* qemu.monitor.execute({ execute: "blockdev-add", arguments: n });
    nodeReplies.push(r);
    if ("error" in r) {
      setupFailures.push(`node "${String(n["node-name"])}": blockdev-add failed: ${r.error.class}: ${r.error.desc}`);
      return;
    }
  }
  const t0 = sim.now;
  (world as { t0: number }).t0 = t0;
  for (const g of spec.guests ?? []) {
    try {
      const node = qemu.graph.findNode(g.node);
      if (!node) throw new Error(`no node named '${g.node}'`);
      const { node: _n, drive, startNs, stopNs, iothread: iothreadId, ...rest } = g;
      const backend = qemu.graph.createBackend({ name: drive ?? g.name, issuer: g.name, root: node, queueWhenDrained: true, perms: guestDevicePerms() });
      // The guest's device: realized in its IOThread, the disk's graph moves there.
      const iothread = iothreadId === undefined ? undefined : AioContexts.of(sim).get(iothreadId)!;
      if (iothread) changeAioContext(qemu.graph, node, iothread, backend);
      attachDevice(backend);
      const cfg: GuestConfig = { ...rest, backend, ...(stopNs !== undefined ? { stopAtNs: t0 + stopNs } : {}), ...(iothread ? { context: iothread.id } : {}) };
      if (!startNs) guests.push(startGuest(sim, cfg));
      else sim.spawn(`${g.name} start`, startLater(sim, startNs, cfg, guests), { daemon: true });
    } catch (e) {
      const msg = (e as Error).message;
      setupFailures.push(msg.startsWith(`guest "${g.name}"`) ? msg : `guest "${g.name}": ${msg}`);
      return;
    }
  }
}

/** Writes a device's initial data (faults lifted meanwhile). */
function* fill(dev: Device, data: { offset: number; length: number }[]): Process<void> {
  const rules = dev.faults.list().map((f) => f.rule);
  dev.faults.clear();
  for (const r of data) yield dev.io({ op: "write", offset: r.offset, bytes: r.length, issuer: "qemu-img" });
  for (const r of rules) dev.faults.add(r);
}

function* startLater(sim: Scheduler, startNs: number, cfg: GuestConfig, guests: GuestWorkload[]): Process<void> {
  yield sleep(startNs);
  guests.push(startGuest(sim, cfg));
}
