/**
 * Opening a qcow2 image from the main loop (QEMU 7.2 qcow2_open): the driver
 * enters a coroutine that reads the image's metadata (qcow2_do_open) and
 * polls the main loop (BDRV_POLL_WHILE) until that coroutine is done. So
 * whatever is due meanwhile — jobs' I/O completions and timers, their exit
 * bottom halves — runs inside the command that opens it (blockdev-add,
 * drive_add), before its reply: goldens/qcow2_open_nested_poll.
 *
 * Only on a device that models qcow2's metadata (coldMetadataCaches: the
 * replay's image files); elsewhere the metadata costs nothing and the open
 * is instant, as before.
 */
import { IoError, strerror, type Device } from "../disk/index.js";
import { coSleep, type Process, type Scheduler } from "../scheduler/index.js";

/**
 * What QEMU 7.2 does from blockdev-add's dispatch to the open's first read (the options parsed, the image file
 * opened, locked and probed): 165-184 µs in QEMU's trace (qmp_enter_blockdev_add to bdrv_co_preadv_part, four
 * opens). The main loop does not poll meanwhile, but what became due then (an I/O completion, a timer) runs in
 * the open's first poll, before the reply: so it is part of the open's window.
 */
export const QCOW2_OPEN_SETUP_NS = 170_000;

/** One read of qcow2_do_open, and what QEMU 7.2 says when it fails. */
interface OpenRead {
  what: string;
  offset: number;
  bytes: number;
}

/** The on-disk header QEMU 7.2 reads first (QCowHeader up to compression_type and its padding). */
const HEADER_BYTES = 112;
/** A header extension's type and length, read before its data. */
const EXTENSION_HEADER_BYTES = 8;
/** The backing format extension's data: "qcow2". */
const BACKING_FORMAT_BYTES = 5;
/** The feature name table qemu-img writes (its data is skipped, not read, on open). */
const FEATURE_TABLE_BYTES = 384;

/**
 * The reads, one after another, of opening a qcow2 image qemu-img created on
 * `dev` (measured with QEMU 7.2's bdrv_co_preadv_part trace: the header, the
 * L1 table, the refcount table, then each header extension's type and length
 * — the backing format's data too — up to the end marker, then the backing
 * file's name). qemu-img lays a small image out as header, refcount table,
 * refcount block, L1 table, one cluster each.
 */
export function qcow2OpenReads(dev: Device): OpenRead[] {
  const cs = dev.clusterSizeBytes;
  const at = (offset: number, bytes: number) => Math.max(0, Math.min(offset, dev.sizeBytes - bytes));
  const l1Entries = Math.max(1, Math.ceil(dev.sizeBytes / (cs * (cs / 8))));
  const reads: OpenRead[] = [
    { what: "Could not read qcow2 header", offset: 0, bytes: HEADER_BYTES },
    { what: "Could not read L1 table", offset: at(3 * cs, l1Entries * 8), bytes: Math.min(l1Entries * 8, dev.sizeBytes) },
    { what: "Could not initialize refcount handling", offset: at(cs, cs), bytes: Math.min(cs, dev.sizeBytes) },
  ];
  let ext = HEADER_BYTES;
  const extension = (dataBytes: number, readData: boolean) => {
    reads.push({ what: `qcow2_read_extension: ERROR: pread fail from offset ${ext}`, offset: ext, bytes: EXTENSION_HEADER_BYTES });
    if (readData) reads.push({ what: "ERROR: ext_backing_format: Could not read format name", offset: ext + EXTENSION_HEADER_BYTES, bytes: dataBytes });
    ext += EXTENSION_HEADER_BYTES + Math.ceil(dataBytes / 8) * 8;
  };
  if (dev.backingFile !== undefined) extension(BACKING_FORMAT_BYTES, true);
  extension(FEATURE_TABLE_BYTES, false);
  reads.push({ what: `qcow2_read_extension: ERROR: pread fail from offset ${ext}`, offset: ext, bytes: EXTENSION_HEADER_BYTES }); // the end marker
  if (dev.backingFile !== undefined) {
    const name = new TextEncoder().encode(dev.backingFile).length;
    reads.push({ what: "Could not read backing file name", offset: ext + EXTENSION_HEADER_BYTES, bytes: name });
  }
  return reads.filter((r) => r.bytes >= 1 && r.offset + r.bytes <= dev.sizeBytes);
}

/**
 * Opens a qcow2 image on `dev` for node `name` from the main loop: a coroutine
 * takes QCOW2_OPEN_SETUP_NS, then issues qcow2OpenReads one after another, and the caller polls the main loop
 * until it ends (Scheduler.pollWhile). Throws an Error with QEMU's words when
 * a read fails.
 */
export function openQcow2FromMainLoop(sim: Scheduler, dev: Device, name: string): void {
  if (!dev.coldMetadataCaches) return;
  let done = false;
  let failed: string | undefined;
  const open = function* (): Process<void> {
    try {
      yield coSleep(QCOW2_OPEN_SETUP_NS);
      for (const r of qcow2OpenReads(dev)) {
        try {
          yield dev.io({ op: "read", offset: r.offset, bytes: r.bytes, issuer: `qcow2 open of ${name}` });
        } catch (e) {
          if (!(e instanceof IoError)) throw e;
          failed = `${r.what}: ${strerror(e.errno)}`;
          return;
        }
      }
    } finally {
      done = true;
    }
  };
  const proc = sim.spawn(`qcow2_open of ${name}`, open(), { daemon: true, coroutine: true, context: 0 });
  sim.enterNow(proc);
  if (!done) sim.pollWhile(`qcow2_open of ${name}`, () => !done);
  if (failed !== undefined) throw new Error(failed);
}
