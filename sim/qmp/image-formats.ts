/**
 * The image formats QEMU 7.2 knows by name, as bdrv_img_create judges a
 * format when drive-backup or drive-mirror creates its target file: a name
 * no registered driver has is "Unknown file format 'X'" (mirror_top and
 * commit_top are drivers QEMU never registers), a driver without
 * create_opts "Format driver 'X' does not support image creation"; of the
 * others blocksim creates raw and qcow2 (its nodes sit on devices, so there
 * is no protocol node, no vmdk...). The lists are qemu-system-x86_64
 * `-drive format=help` of Debian 12's QEMU 7.2, split by what `qemu-img
 * create -f X` answers (blkreplay, which qemu-img lacks, has no create_opts);
 * goldens/drive_target_format_refused and drive_target_format_of_filter.
 */
import { genericError } from "../jobs/errors.js";
import { NotModelledError } from "./args.js";

const NO_IMAGE_CREATION: ReadonlySet<string> = new Set([
  "blkdebug", "blklogwrites", "blkreplay", "blkverify", "bochs", "cloop", "compress", "copy-before-write", "copy-on-read",
  "dmg", "ftp", "ftps", "http", "https", "null-aio", "null-co", "preallocate", "quorum", "replication", "snapshot-access",
  "throttle", "vvfat",
]);

const CREATES_IMAGES: ReadonlySet<string> = new Set([
  "file", "gluster", "host_cdrom", "host_device", "iscsi", "iser", "luks", "nbd", "nfs", "nvme", "parallels", "qcow",
  "qcow2", "qed", "raw", "rbd", "ssh", "vdi", "vhdx", "vmdk", "vpc",
]);

/** The driver a new target image of `format` gets (raw or qcow2), or QEMU 7.2's refusal, or NotModelledError. */
export function creatableFormat(format: string): "raw" | "qcow2" {
  if (format === "raw" || format === "qcow2") return format;
  if (NO_IMAGE_CREATION.has(format)) throw genericError(`Format driver '${format}' does not support image creation`);
  if (!CREATES_IMAGES.has(format)) throw genericError(`Unknown file format '${format}'`);
  throw new NotModelledError(`a new target image in format '${format}' (blocksim creates raw and qcow2 ones)`);
}
