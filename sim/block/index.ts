/** The block graph: nodes, backing chains, backends, op blockers, bitmaps, drained sections, guest workloads. */
export { BlockGraph, type BlockEvent, type DrainedSpan } from "./graph.js";
export { BlockNode, UNSPECIFIED_VERSION, type BlockRequest, type RequestOwner, type BeforeWriteHook, type FilterWrite, type NodeConfig, type DriverName } from "./node.js";
export { BlockBackend, type BackendOptions, type BackendRequest } from "./backend.js";
export { ParentLink, type DrainParent, type LinkRole } from "./links.js";
export { abdicate, busyError, createSuccessor, DirtyBitmap, reclaim, type BitmapHolder } from "./bitmap.js";
export { BLOCK_OP_TYPES, blockerReason, OpBlockedError, OpBlockers, type BlockOpType } from "./op-blockers.js";
export { openQcow2FromMainLoop, qcow2OpenReads } from "./qcow2-open.js";
export { VmRunState } from "./run-state.js";
export { holdSection, releaseSection, sectionHolders, yieldToDrain } from "./drain.js";
export { GuestWorkload, startGuest, type GuestConfig, type GuestPattern, type GuestStats } from "./guest.js";
export { ACTIVE_BACKEND, attachDevice, attachInMainLoop, backendContext, changeAioContext, component, deviceAttached, nodeContext } from "./aio-context.js";
export { BlockAcctStats, type AcctCookie, type AcctCounters, type AcctType } from "./accounting.js";
export {
  changeLinkPerms, checkPermissions, clearLinkPerms, DRIVE_PERMS, guestDevicePerms, linkPermsOf, permNames, PermissionConflict, PermissionDenied, ReadOnlyNode, setLinkPerms, usersPerm, usersWrite,
  PERM_ALL, PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE, PERM_WRITE_UNCHANGED, type LinkPerms, type PendingParent,
} from "./permissions.js";
