import { describe, expect, it } from "vitest";
import { ERRNOS, IoError, strerror } from "../../sim/disk/index.js";

describe("I/O errors", () => {
  it("carry glibc's strerror text, which QEMU reports in job errors", () => {
    expect(ERRNOS.map(strerror)).toEqual([
      "Input/output error", "No space left on device", "Operation not permitted",
      "Invalid argument", "No medium found", "Operation canceled",
    ]);
    expect(strerror("ENOTSUP")).toBe("Operation not supported"); // a job's, not a fault rule's
  });

  it("say where, what and why", () => {
    const e = new IoError("EIO", 'device "d0"', "read", 8192, 4096);
    expect(e).toBeInstanceOf(Error);
    expect([e.name, e.message, e.strerror]).toEqual(["IoError", 'device "d0": read 8192+4096: Input/output error', "Input/output error"]);
  });
});
