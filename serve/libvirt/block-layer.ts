/**
 * What libvirt 9.0's block layer sends that the simulated QEMU does not
 * model, turned into what it does: protocol nodes (`driver: file`) are
 * remembered, not simulated — the format node above one sits on a simulated
 * device named by the file's path, its size the image's virtual size (read
 * from a qcow2 header or a raw file's length; contents are not read), and
 * a blockdev-reopen names the file a format node was opened on instead;
 * `blockdev-create` of a qcow2 is a `create` job that concludes at once
 * (QEMU's formats the file, here the device gets the size it asks for).
 * query-named-block-nodes gains the image fields libvirt reads (filename,
 * cluster-size, actual-size), query-blockstats names the file nodes after
 * libvirt's storage nodes.
 */
import { closeSync, existsSync, openSync, readSync, statSync } from "node:fs";
import type { QmpResponse } from "../../sim/qmp/types.js";
import type { DeviceSpec, World } from "../../sim/harness/world.js";
import type { Intercept } from "../server.js";
import { nameFileNode } from "../../sim/qmp/stats-commands.js";

/** The device parameters of a simulated image file (latency, bandwidth…); what is left out takes the harness's device defaults (an instant device). */
export type DeviceTuning = (filename: string) => Omit<DeviceSpec, "name" | "sizeBytes">;

const FORMAT_KEYS = new Set(["driver", "node-name", "file", "backing", "read-only", "cache", "discard"]);

/** An image's virtual size: a qcow2 header's size field, or a raw file's length. */
export function imageSize(path: string): number | undefined {
  if (!existsSync(path)) return undefined;
  const fd = openSync(path, "r");
  try {
    const h = Buffer.alloc(32);
    const n = readSync(fd, h, 0, 32, 0);
    if (n >= 32 && h.readUInt32BE(0) === 0x514649fb) return Number(h.readBigUInt64BE(24));
    return statSync(path).size;
  } finally {
    closeSync(fd);
  }
}

/**
 * The image file's allocated bytes (QEMU file-posix: st_blocks × 512), which
 * libvirt shows as a disk's allocation and physical size (`virsh domblkinfo`,
 * `domstats --block`); none for a file blockdev-create made here (not on disk).
 */
function actualSize(path: string): { "actual-size"?: number } {
  return existsSync(path) ? { "actual-size": statSync(path).blocks * 512 } : {};
}

export class LibvirtBlockLayer {
  /** Protocol node name → file path. */
  private readonly storage = new Map<string, string>();
  /** Sizes blockdev-create asked for, by file path. */
  private readonly created = new Map<string, number>();
  /** create jobs: id → status. */
  private readonly createJobs = new Map<string, string>();

  /** `world`: the harness's world the stand-in serves, which declares the devices. */
  constructor(private readonly world: () => World, private readonly tuning: DeviceTuning = () => ({})) {}

  private qemu() {
    return this.world().qemu;
  }

  /** A -blockdev option or a blockdev-add: undefined for a protocol node (kept here), else the simulator's arguments. */
  blockdev(a: Record<string, unknown>): Record<string, unknown> | undefined {
    if (a.driver === "file") {
      this.storage.set(String(a["node-name"]), String(a.filename));
      return undefined;
    }
    const out: Record<string, unknown> = {};
    for (const [k, v] of Object.entries(a)) if (FORMAT_KEYS.has(k)) out[k] = v;
    if (typeof a.file === "string" && this.storage.has(a.file)) {
      const filename = this.storage.get(a.file)!;
      this.ensureDevice(filename);
      // query-blockstats shows the file node below the format node: libvirt's storage node, by its name
      nameFileNode(this.qemu().monitor.ctx, this.qemu().devices.get(filename)!, a.file);
      out.file = { driver: "file", filename };
    }
    return out;
  }

  private ensureDevice(filename: string): void {
    const w = this.world();
    if (w.qemu.devices.has(filename)) return;
    const size = this.created.get(filename) ?? imageSize(filename) ?? 0;
    w.declareDevice({ ...this.tuning(filename), name: filename, sizeBytes: size });
  }

  private event(status: string, id: string): void {
    this.createJobs.set(id, status);
    this.qemu().monitor.event("JOB_STATUS_CHANGE", { status, id });
  }

  readonly intercept: Intercept = (execute, args) => {
    const a = args ?? {};
    switch (execute) {
      case "blockdev-add": {
        const sim = this.blockdev(a);
        return sim ? { rewrite: { execute, arguments: sim } } : { answer: { return: {} } };
      }
      case "blockdev-reopen": {
        // A format node names its protocol node, which is not simulated: reopen it with the file it was opened on.
        const list = Array.isArray(a.options) ? (a.options as Record<string, unknown>[]) : undefined;
        if (!list) return undefined;
        const options = list.map((o) => (o !== null && typeof o === "object" ? this.blockdev(o) : o)).filter((o) => o !== undefined);
        return options.length > 0 ? { rewrite: { execute, arguments: { ...a, options } } } : { answer: { return: {} } };
      }
      case "blockdev-del":
        if (typeof a["node-name"] === "string" && this.storage.delete(a["node-name"])) return { answer: { return: {} } };
        return undefined;
      case "blockdev-create": {
        const o = (a.options ?? {}) as Record<string, unknown>;
        const id = String(a["job-id"]);
        const filename = typeof o.file === "string" ? this.storage.get(o.file) : undefined;
        if (!filename || typeof o.size !== "number") return { answer: { error: { class: "GenericError", desc: `blocksim stand-in: blockdev-create needs options.file naming a protocol node and options.size` } } };
        this.created.set(filename, o.size);
        for (const st of ["created", "running", "waiting", "pending", "concluded"]) this.event(st, id);
        return { answer: { return: {} } };
      }
      case "job-dismiss":
        if (this.createJobs.get(String(a.id)) === "concluded") {
          this.event("null", String(a.id));
          this.createJobs.delete(String(a.id));
          return { answer: { return: {} } };
        }
        return undefined;
      case "query-jobs":
        return { rewrite: { execute }, after: (r) => this.withCreateJobs(r) };
      case "query-named-block-nodes":
        return { rewrite: { execute, ...(args ? { arguments: args } : {}) }, after: (r) => this.withImageDetails(r) };
    }
    return undefined;
  };

  /** The image fields libvirt reads from query-named-block-nodes (it copies cluster-size into the images it creates). */
  private withImageDetails(r: QmpResponse): QmpResponse {
    if (!("return" in r) || !Array.isArray(r.return)) return r;
    return {
      return: r.return.map((n: Record<string, unknown>) => {
        const node = typeof n["node-name"] === "string" ? this.qemu().graph.findNode(n["node-name"]) : undefined;
        if (!node?.device || typeof n.image !== "object" || n.image === null) return n;
        return { ...n, file: node.device.name, image: { ...(n.image as Record<string, unknown>), filename: node.device.name, "cluster-size": node.clusterSizeBytes, ...actualSize(node.device.name) } };
      }),
    };
  }

  private withCreateJobs(r: QmpResponse): QmpResponse {
    if (!("return" in r) || !Array.isArray(r.return) || this.createJobs.size === 0) return r;
    const extra = [...this.createJobs].map(([id, status]) => ({ "current-progress": 1, status, "total-progress": 1, type: "create", id }));
    return { return: [...r.return, ...extra] };
  }
}
