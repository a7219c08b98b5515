/**
 * Where a qcow2 image keeps its guest clusters in its file, as far as the
 * end of the file's writes shows it (query-blockstats' wr_highest_offset of
 * the file node, libvirt's `allocation` of a disk; goldens/
 * blockstats_job_filters). A new image file holds four metadata clusters
 * (header, refcount table, refcount block, L1 table); the first write in a
 * range one L2 table covers allocates that table, then each guest cluster
 * first written gets the next cluster at the file's end (QEMU 7.2 allocates
 * the first free cluster, and nothing is freed here). A write reaching an
 * unallocated cluster writes the whole cluster (its copy-on-write head and
 * tail with it, or zeroes first); one into an allocated cluster writes its
 * bytes there. The image's initial data is taken as written in ascending
 * guest order (as `images` with writes in that order make it). Not
 * modelled: metadata writes (tables written back at a flush lie below the
 * data), zero clusters made by write-zeroes (no data cluster, as in QEMU),
 * freed clusters (a discard on a qcow2 node without discard=unmap frees
 * nothing), more than one refcount block (files beyond 2 GiB of 64 KiB
 * clusters).
 */
import type { Device } from "../disk/index.js";

/** Clusters a new image file starts with: header, refcount table, refcount block, L1 table. */
const METADATA_CLUSTERS = 4;

export class Qcow2Layout {
  /** Guest cluster → host cluster. */
  private readonly host = new Map<number, number>();
  /** L2 ranges (guest cluster / entries per table) that have a table. */
  private readonly l2Tables = new Set<number>();
  private next = METADATA_CLUSTERS;
  private readonly l2Entries: number;
  /** The end of the highest write that reached the file. */
  fileWrHighestOffset = 0;

  /** `device` as it is before the first write through the qcow2 node: its written clusters are the image's data. */
  constructor(device: Device, private readonly clusterBytes: number) {
    this.l2Entries = clusterBytes / 8;
    const clusters = Math.ceil(device.sizeBytes / device.clusterSizeBytes);
    for (let c = 0; c < clusters; c++) if (device.isWritten(c)) this.allocate(c);
  }

  private allocate(cluster: number): number {
    const range = Math.floor(cluster / this.l2Entries);
    if (!this.l2Tables.has(range)) {
      this.l2Tables.add(range);
      this.next++;
    }
    const h = this.next++;
    this.host.set(cluster, h);
    return h;
  }

  /** A data write of [offset, offset + bytes) through the qcow2 node: allocates, and returns where its file write ends. */
  write(offset: number, bytes: number): number {
    const cs = this.clusterBytes;
    let end = 0;
    for (let c = Math.floor(offset / cs); c * cs < offset + bytes; c++) {
      const h = this.host.get(c);
      end = h === undefined ? (this.allocate(c) + 1) * cs : h * cs + (Math.min(offset + bytes, (c + 1) * cs) - c * cs);
    }
    return end;
  }

  /** The file write has finished (failed or not): it counts. */
  written(end: number): void {
    if (end > this.fileWrHighestOffset) this.fileWrHighestOffset = end;
  }
}
