/**
 * Errors a verb or a command returns to its caller, shaped like QMP's:
 * an error class and a human description. The QMP layer sends them as
 * `{"error": {"class": …, "desc": …}}`.
 */
export type ErrorClass = "GenericError" | "DeviceNotActive" | "DeviceNotFound" | "CommandNotFound" | "KVMMissingCap";

export class QmpError extends Error {
  constructor(readonly cls: ErrorClass, readonly desc: string) {
    super(desc);
    this.name = "QmpError";
  }
}

export const genericError = (desc: string) => new QmpError("GenericError", desc);

/** errno names the simulator uses, with QEMU's strerror text and Linux numbers. */
export const ERRNO = {
  EPERM: { code: 1, text: "Operation not permitted" },
  ENOENT: { code: 2, text: "No such file or directory" },
  EIO: { code: 5, text: "Input/output error" },
  EBUSY: { code: 16, text: "Device or resource busy" },
  EINVAL: { code: 22, text: "Invalid argument" },
  ENOSPC: { code: 28, text: "No space left on device" },
  ECANCELED: { code: 125, text: "Operation canceled" },
} as const;
export type Errno = keyof typeof ERRNO;

/** strerror for a negative errno return value. */
export function strerror(ret: number): string {
  for (const e of Object.values(ERRNO)) if (e.code === -ret) return e.text;
  return `Unknown error ${-ret}`;
}
