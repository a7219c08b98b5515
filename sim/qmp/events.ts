/**
 * QEMU 7.2's QMP event catalog: every event a real QEMU 7.2 can send, with
 * the data members each carries (read from qapi/*.json of that release:
 * block-core, job, block, block-export, run-state, qdev, migration, net,
 * ui, char, dump, acpi, machine, misc-target, rdma), and which of them the
 * simulator sends. Scenario files are checked against it, so that an
 * expectation naming a misspelt event or a member the event never has is an
 * error rather than a check that cannot fail.
 */
import { JOB_STATUSES } from "../jobs/status.js";

/** A data member's QAPI type: a scalar, or an enum with its values. */
export type MemberType = "str" | "int" | "bool" | "any" | { enum: readonly string[] };

export interface EventMember {
  type: MemberType;
  optional?: boolean;
}

export interface EventSpec {
  name: string;
  /** The qapi file it is declared in. */
  schema: string;
  members: Readonly<Record<string, EventMember>>;
  /** Whether blocksim sends it. */
  modelled: boolean;
}

const str: EventMember = { type: "str" };
const int: EventMember = { type: "int" };
const bool: EventMember = { type: "bool" };
const any: EventMember = { type: "any" };
const opt = (m: EventMember): EventMember => ({ ...m, optional: true });
const oneOf = (values: readonly string[]): EventMember => ({ type: { enum: values } });

/** JobType of QEMU 7.2 (qapi/job.json). */
export const JOB_TYPES = ["commit", "stream", "mirror", "backup", "create", "amend", "snapshot-load", "snapshot-save", "snapshot-delete"] as const;
const IO_OPERATION = ["read", "write"] as const;
const BLOCK_ERROR_ACTION = ["ignore", "report", "stop"] as const;

const JOB_PROGRESS = { type: oneOf(JOB_TYPES), device: str, len: int, offset: int, speed: int };

function ev(name: string, schema: string, members: Record<string, EventMember> = {}, modelled = false): EventSpec {
  return { name, schema, members, modelled };
}

export const QEMU_EVENTS: readonly EventSpec[] = [
  // Jobs: what blocksim models.
  ev("JOB_STATUS_CHANGE", "job", { id: str, status: oneOf(JOB_STATUSES) }, true),
  ev("BLOCK_JOB_COMPLETED", "block-core", { ...JOB_PROGRESS, error: opt(str) }, true),
  ev("BLOCK_JOB_CANCELLED", "block-core", JOB_PROGRESS, true),
  ev("BLOCK_JOB_ERROR", "block-core", { device: str, operation: oneOf(IO_OPERATION), action: oneOf(BLOCK_ERROR_ACTION) }, true),
  ev("BLOCK_JOB_READY", "block-core", JOB_PROGRESS, true),
  ev("BLOCK_JOB_PENDING", "block-core", { type: oneOf(JOB_TYPES), id: str }, true),
  // Block layer events blocksim does not send.
  ev("BLOCK_IMAGE_CORRUPTED", "block-core", { device: str, "node-name": opt(str), msg: str, offset: opt(int), size: opt(int), fatal: bool }),
  ev("BLOCK_IO_ERROR", "block-core", { device: str, "node-name": opt(str), operation: oneOf(IO_OPERATION), action: oneOf(BLOCK_ERROR_ACTION), nospace: opt(bool), reason: str }),
  ev("BLOCK_WRITE_THRESHOLD", "block-core", { "node-name": str, "amount-exceeded": int, "write-threshold": int }),
  ev("QUORUM_FAILURE", "block-core", { reference: str, "sector-num": int, "sectors-count": int }),
  ev("QUORUM_REPORT_BAD", "block-core", { type: oneOf(["read", "write", "flush"]), error: opt(str), "node-name": str, "sector-num": int, "sectors-count": int }),
  ev("DEVICE_TRAY_MOVED", "block", { device: str, id: str, "tray-open": bool }),
  ev("PR_MANAGER_STATUS_CHANGED", "block", { id: str, connected: bool }),
  ev("BLOCK_EXPORT_DELETED", "block-export", { id: str }),
  // The rest of the machine.
  ev("SHUTDOWN", "run-state", { guest: bool, reason: str }, true),
  ev("POWERDOWN", "run-state"),
  ev("RESET", "run-state", { guest: bool, reason: str }),
  ev("STOP", "run-state", {}, true),
  ev("RESUME", "run-state", {}, true),
  ev("SUSPEND", "run-state"),
  ev("SUSPEND_DISK", "run-state"),
  ev("WAKEUP", "run-state"),
  ev("WATCHDOG", "run-state", { action: str }),
  ev("GUEST_PANICKED", "run-state", { action: str, info: opt(any) }),
  ev("GUEST_CRASHLOADED", "run-state", { action: str, info: opt(any) }),
  ev("MEMORY_FAILURE", "run-state", { recipient: str, action: str, flags: any }),
  ev("DEVICE_DELETED", "qdev", { device: opt(str), path: str }),
  ev("DEVICE_UNPLUG_GUEST_ERROR", "qdev", { device: opt(str), path: str }),
  ev("MIGRATION", "migration", { status: str }),
  ev("MIGRATION_PASS", "migration", { pass: int }),
  ev("COLO_EXIT", "migration", { mode: str, reason: str }),
  ev("UNPLUG_PRIMARY", "migration", { "device-id": str }),
  ev("NIC_RX_FILTER_CHANGED", "net", { name: opt(str), path: str }),
  ev("FAILOVER_NEGOTIATED", "net", { "device-id": str }),
  ev("SPICE_CONNECTED", "ui", { server: any, client: any }),
  ev("SPICE_INITIALIZED", "ui", { server: any, client: any }),
  ev("SPICE_DISCONNECTED", "ui", { server: any, client: any }),
  ev("SPICE_MIGRATE_COMPLETED", "ui"),
  ev("VNC_CONNECTED", "ui", { server: any, client: any }),
  ev("VNC_INITIALIZED", "ui", { server: any, client: any }),
  ev("VNC_DISCONNECTED", "ui", { server: any, client: any }),
  ev("VSERPORT_CHANGE", "char", { id: str, open: bool }),
  ev("DUMP_COMPLETED", "dump", { result: any, error: opt(str) }),
  ev("ACPI_DEVICE_OST", "acpi", { info: any }),
  ev("BALLOON_CHANGE", "machine", { actual: int }),
  ev("MEMORY_DEVICE_SIZE_CHANGE", "machine", { id: opt(str), size: int }),
  ev("MEM_UNPLUG_ERROR", "machine", { device: str, msg: str }),
  ev("RTC_CHANGE", "misc-target", { offset: int }),
  ev("RDMA_GID_STATUS_CHANGED", "rdma", { netdev: str, "gid-status": bool, "subnet-prefix": int, "interface-id": int }),
];

const BY_NAME = new Map(QEMU_EVENTS.map((e) => [e.name, e]));

/** The event of that name in QEMU 7.2, if any. */
export function qemuEvent(name: string): EventSpec | undefined {
  return BY_NAME.get(name);
}

/** The events blocksim sends. */
export const MODELLED_EVENTS: readonly string[] = QEMU_EVENTS.filter((e) => e.modelled).map((e) => e.name);

/** A member type for people: `str`, `int`, `"a" | "b"`. */
export function describeMemberType(t: MemberType): string {
  return typeof t === "string" ? t : t.enum.join("|");
}
