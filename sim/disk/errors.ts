/**
 * I/O errors as a process sees them: thrown into the process that issued the
 * request, carrying a POSIX errno name, so error actions (report, ignore,
 * stop on ENOSPC) can branch on it the way QEMU branches on `-ret`.
 */

/** The errno values a simulated request can fail with. */
export type Errno = "EIO" | "ENOSPC" | "EPERM" | "EINVAL" | "ENOMEDIUM" | "ECANCELED";

/** Every Errno, for validation and for fuzzers that pick one. */
export const ERRNOS: readonly Errno[] = ["EIO", "ENOSPC", "EPERM", "EINVAL", "ENOMEDIUM", "ECANCELED"];

const STRERROR: Record<Errno, string> = {
  EIO: "Input/output error",
  ENOSPC: "No space left on device",
  EPERM: "Operation not permitted",
  EINVAL: "Invalid argument",
  ENOMEDIUM: "No medium found",
  ECANCELED: "Operation canceled",
};

/** glibc's strerror text for `errno`: QEMU puts it in BLOCK_JOB_COMPLETED's `error`. */
export function strerror(errno: Errno): string {
  return STRERROR[errno];
}

/**
 * A failed request. `message` is "<where>: <op> <offset>+<bytes>: <strerror>".
 * A simulated fault, not a bug: it carries no stack (capturing one was ~2 %
 * of a fuzz run, whose devices fail on purpose).
 */
export class IoError extends Error {
  override name = "IoError";
  constructor(
    readonly errno: Errno,
    /** The device or node the request failed on. */
    readonly where: string,
    readonly op: string,
    readonly offset: number,
    readonly bytes: number,
  ) {
    const limit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    super(`${where}: ${op} ${offset}+${bytes}: ${STRERROR[errno]}`);
    Error.stackTraceLimit = limit;
  }

  /** The strerror text alone, as QEMU reports it. */
  get strerror(): string {
    return STRERROR[this.errno];
  }
}
