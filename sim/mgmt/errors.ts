/**
 * libvirt-style errors of the management layer: a code and the text libvirt
 * prints for it (virErrorMsg in src/util/virerror.c, as of v1.2.9), so a
 * test or a report can compare the exact message a `virsh` user would see.
 */

/** The virErrorNumber values this layer reports. */
export type VirErrorCode =
  | "VIR_ERR_OPERATION_TIMEOUT"
  | "VIR_ERR_OPERATION_FAILED"
  | "VIR_ERR_OPERATION_INVALID"
  | "VIR_ERR_INTERNAL_ERROR"
  | "VIR_ERR_INVALID_ARG"
  | "VIR_ERR_BLOCK_COPY_ACTIVE"
  | "VIR_ERR_OPERATION_ABORTED";

/** virErrorMsg's prefix for each code ("%s" is the detail). */
const PREFIX: Record<VirErrorCode, string> = {
  VIR_ERR_OPERATION_TIMEOUT: "Timed out during operation",
  VIR_ERR_OPERATION_FAILED: "operation failed",
  VIR_ERR_OPERATION_INVALID: "Requested operation is not valid",
  VIR_ERR_INTERNAL_ERROR: "internal error",
  VIR_ERR_INVALID_ARG: "invalid argument",
  VIR_ERR_BLOCK_COPY_ACTIVE: "block copy still active",
  VIR_ERR_OPERATION_ABORTED: "operation aborted",
};

/** An API call failed (libvirt: the call returned -1 and set this error). */
export class VirError extends Error {
  override name = "VirError";
  constructor(readonly code: VirErrorCode, readonly detail: string) {
    super(`${PREFIX[code]}: ${detail}`);
  }
}

/**
 * BeginJob's timeout (qemuDomainObjBeginJobInternal, errno ETIMEDOUT): the
 * job could not be acquired within QEMU_JOB_WAIT_TIME. libvirt of this era
 * does not name the job holder in the text (the "held by" suffix came years
 * later).
 */
export const stateChangeLockTimeout = (): VirError =>
  new VirError("VIR_ERR_OPERATION_TIMEOUT", "cannot acquire state change lock");

/** BeginJob refused because more than max_queued callers already wait or hold (qemu.conf max_queued). */
export const maxQueuedExceeded = (): VirError =>
  new VirError("VIR_ERR_OPERATION_FAILED", "cannot acquire state change lock due to max_queued limit");

/** The domain is not running (checked after BeginJob, and after each of the abort loop's sleeps). */
export const domainNotRunning = (): VirError => new VirError("VIR_ERR_OPERATION_INVALID", "domain is not running");
