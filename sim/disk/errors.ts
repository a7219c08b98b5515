/**
 * I/O errors as a process sees them: thrown into the process that issued the
 * request, carrying a POSIX errno name, so error actions (report, ignore,
 * stop on ENOSPC) can branch on it the way QEMU branches on `-ret`.
 */

/** The errno values a simulated request can fail with. */
export type Errno = "EIO" | "ENOSPC" | "EPERM" | "EINVAL" | "ENOMEDIUM" | "ECANCELED" | "ENOTSUP";

/**
 * Every Errno a request can fail with, for validation (a fault rule's errno) and for fuzzers that pick one.
 * Not ENOTSUP: only a commit's truncation of a base that cannot grow returns it (sim/jobs/drivers/commit.ts).
 */
export const ERRNOS: readonly Errno[] = ["EIO", "ENOSPC", "EPERM", "EINVAL", "ENOMEDIUM", "ECANCELED"];

const STRERROR: Record<Errno, string> = {
  EIO: "Input/output error",
  ENOSPC: "No space left on device",
  EPERM: "Operation not permitted",
  EINVAL: "Invalid argument",
  ENOMEDIUM: "No medium found",
  ECANCELED: "Operation canceled",
  ENOTSUP: "Operation not supported",
};

/** glibc's strerror text for `errno`: QEMU puts it in BLOCK_JOB_COMPLETED's `error`. */
export function strerror(errno: Errno): string {
  return STRERROR[errno];
}

/**
 * The base of the errors a simulated world raises on purpose (an I/O fault,
 * an op blocker, a refused QMP command): answers, not bugs. An Error
 * (instanceof, name, message, and a stack that is just its first line, as a
 * stackless Error's) made without Error's constructor: V8 spends ~0.4 µs in
 * that even when it captures no stack, and a fuzz run makes several. A
 * subclass sets `name` and defines `message` (a getter: built when read).
 */
export interface ExpectedError extends Error {}
export class ExpectedError {
  get stack(): string {
    return `${this.name}: ${this.message}`;
  }
}
Object.setPrototypeOf(ExpectedError.prototype, Error.prototype);

/** A failed request. `message` is "<where>: <op> <offset>+<bytes>: <strerror>". A simulated fault, not a bug. */
export class IoError extends ExpectedError {
  constructor(
    readonly errno: Errno,
    /** The device or node the request failed on. */
    readonly where: string,
    readonly op: string,
    readonly offset: number,
    readonly bytes: number,
  ) {
    super();
    this.name = "IoError";
  }

  override get message(): string {
    return `${this.where}: ${this.op} ${this.offset}+${this.bytes}: ${STRERROR[this.errno]}`;
  }

  /** The strerror text alone, as QEMU reports it. */
  get strerror(): string {
    return STRERROR[this.errno];
  }
}
