/**
 * Errors a verb or a command returns to its caller, shaped like QMP's:
 * an error class and a human description. The QMP layer sends them as
 * `{"error": {"class": …, "desc": …}}`.
 */
import { ExpectedError, strerror, type Errno } from "../disk/index.js";

export type ErrorClass = "GenericError" | "DeviceNotActive" | "DeviceNotFound" | "CommandNotFound" | "KVMMissingCap";

/** An expected answer, not a bug (most of a fuzz run's commands are refused on purpose). */
export class QmpError extends ExpectedError {
  readonly cls: ErrorClass;
  readonly desc: string;
  constructor(cls: ErrorClass, desc: string) {
    super();
    this.cls = cls;
    this.desc = desc;
    this.name = "QmpError";
  }
  override get message(): string {
    return this.desc;
  }
}

export const genericError = (desc: string) => new QmpError("GenericError", desc);

/** Linux errno numbers: a job's `ret` is 0 or minus one of these (texts live with the disk's Errno). */
export const ERRNO_CODE: Readonly<Record<Errno, number>> = {
  EPERM: 1, EIO: 5, EINVAL: 22, ENOSPC: 28, ENOMEDIUM: 123, ECANCELED: 125, ENOTSUP: 95,
};

/** strerror for a negative errno return value. */
export function strerrorRet(ret: number): string {
  const name = (Object.keys(ERRNO_CODE) as Errno[]).find((e) => ERRNO_CODE[e] === -ret);
  return name ? strerror(name) : `Unknown error ${-ret}`;
}
