/**
 * Writing output files (replay files, timelines, fuzz findings) so that a
 * kill or a full disk never leaves a half-written file where the old one
 * was: the text goes to a temporary file beside the target, then a rename
 * puts it in place. A target that cannot be a file (a folder, a device, a
 * missing folder, /proc, /sys, '') is an OutputError with a one-line reason,
 * which the command line shows as bad input (exit 2), never as a stack.
 */
import { closeSync, fsyncSync, lstatSync, openSync, renameSync, statSync, unlinkSync, writeSync } from "node:fs";
import { basename, dirname, join, resolve } from "node:path";

export class OutputError extends Error {
  override name = "OutputError";
}

const WHY: Record<string, string> = {
  ENOENT: "no such folder",
  ENOTDIR: "a part of the path is not a folder",
  EACCES: "permission denied",
  EPERM: "not permitted",
  EROFS: "read-only file system",
  ENOSPC: "no space left on the device",
  EDQUOT: "disk quota exceeded",
  EISDIR: "is a folder",
  EIO: "input/output error",
  EEXIST: "a temporary file is in the way",
};

/** One line for an errno-style error. */
export function describeErrno(e: unknown): string {
  const code = (e as NodeJS.ErrnoException).code;
  return (code && WHY[code]) ?? code ?? (e instanceof Error ? e.message : String(e));
}

/** Whether a path is on /proc, /sys or /dev (no place for files; Node's recursive mkdir even loops there). */
export function onKernelFileSystem(path: string): boolean {
  return /^\/(proc|sys|dev)(\/|$)/.test(resolve(path));
}

/** Refuses a target that cannot become a regular file, before any work is done for it. */
export function checkOutputPath(path: string, what: string): void {
  if (path.trim() === "") throw new OutputError(`${what} expects a file path, got ${JSON.stringify(path)}`);
  const abs = resolve(path);
  const dir = dirname(abs);
  const fail = (why: string) => new OutputError(`cannot write ${what} ${path}: ${why}`);
  if (onKernelFileSystem(abs)) throw fail("not a place for files (a kernel or device file system)");
  let st;
  try {
    st = statSync(dir);
  } catch (e) {
    throw fail(`its folder ${dir} does not exist or cannot be read (${describeErrno(e)})`);
  }
  if (!st.isDirectory()) throw fail(`${dir} is not a folder`);
  try {
    const target = lstatSync(abs);
    if (target.isDirectory()) throw fail("it is a folder; give a file name");
    if (!target.isFile() && !target.isSymbolicLink()) throw fail("it exists and is not a regular file");
  } catch (e) {
    if (e instanceof OutputError) throw e;
    if ((e as NodeJS.ErrnoException).code !== "ENOENT") throw fail(describeErrno(e));
  }
}

/**
 * A cell shared with a thread that may end the process (bin/orphan-guard.js,
 * which sets it up before this module is loaded, hence a global): 0 idle,
 * 1 an output file is being written, 2 the process is ending. A write takes
 * it from 0 to 1 and back; the ending thread takes it from 0 to 2, so the
 * process never ends between a temporary file's creation and its rename.
 */
const guard = (globalThis as { [key: symbol]: Int32Array | undefined })[Symbol.for("blocksim.output-guard")];

function beginWrite(): void {
  // 2: the process is ending; wait for that rather than start a file that would be left half written.
  while (guard && Atomics.compareExchange(guard, 0, 0, 1) !== 0) Atomics.wait(guard, 0, 2, 1000);
}

function endWrite(): void {
  if (!guard) return;
  Atomics.store(guard, 0, 0);
  Atomics.notify(guard, 0);
}

/** Writes `text` to `path` atomically (temp file beside it, then rename). `what` names it in errors ("--save-replay"). */
export function writeFileAtomic(path: string, text: string, what: string): void {
  checkOutputPath(path, what);
  const abs = resolve(path);
  const dir = dirname(abs);
  const fail = (why: string) => new OutputError(`cannot write ${what} ${path}: ${why}`);
  const tmp = join(dir, `.${basename(abs)}.${process.pid}.tmp`);
  let fd: number | undefined;
  beginWrite();
  try {
    fd = openSync(tmp, "wx", 0o644);
    const buf = Buffer.from(text, "utf8");
    for (let off = 0; off < buf.length;) off += writeSync(fd, buf, off, buf.length - off);
    fsyncSync(fd);
    closeSync(fd);
    fd = undefined;
    renameSync(tmp, abs);
  } catch (e) {
    if (fd !== undefined) closeSync(fd);
    try {
      unlinkSync(tmp);
    } catch {
      // nothing was created
    }
    throw fail(describeErrno(e));
  } finally {
    endWrite();
  }
}
