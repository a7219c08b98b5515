import { describe, expect, it } from "vitest";
import {
  checkPermissions, guestDevicePerms, permNames, PermissionConflict, ReadOnlyNode, setLinkPerms,
  PERM_ALL, PERM_CONSISTENT_READ, PERM_RESIZE, PERM_WRITE, PERM_WRITE_UNCHANGED,
} from "../../sim/block/index.js";
import { world } from "./helpers.js";

/** base <- mid <- top (qcow2) and a raw t0. */
function chain() {
  const w = world();
  const base = w.graph.createNode({ name: "base", driver: "qcow2", device: w.device("base.img") });
  const mid = w.graph.createNode({ name: "mid", driver: "qcow2", device: w.device("mid.img"), backing: base });
  const top = w.graph.createNode({ name: "top", driver: "qcow2", device: w.device("top.img"), backing: mid });
  return { ...w, base, mid, top };
}

const WRITER = { perm: PERM_WRITE, shared: PERM_ALL, user: "a writer", childName: "target" };

describe("block permissions (sim/block/permissions.ts)", () => {
  it("names permissions as QEMU lists them, in bit order", () => {
    expect(permNames(PERM_WRITE | PERM_CONSISTENT_READ)).toBe("consistent read, write");
    expect(permNames(PERM_RESIZE | PERM_WRITE_UNCHANGED)).toBe("write unchanged, resize");
  });

  it("a guest disk on the overlay makes its backing link unshare write down the chain; share-rw lifts that", () => {
    const { graph, mid, base, top } = chain();
    expect(() => checkPermissions(mid, { node: mid, perms: WRITER })).not.toThrow(); // nobody on top yet: the links share all
    graph.createBackend({ name: "vda", issuer: "guest", root: top, perms: guestDevicePerms() });
    expect(() => checkPermissions(mid, { node: mid, perms: WRITER })).toThrow(PermissionConflict);
    expect(() => checkPermissions(mid, { node: mid, perms: WRITER })).toThrow("and unshared by node 'top' (uses node 'mid' as 'backing' child).");
    expect(() => checkPermissions(base, { node: base, perms: WRITER })).toThrow(
      "Permission conflict on node 'base': permissions 'write' are both required by a writer (uses node 'base' as 'target' child) and unshared by node 'mid' (uses node 'base' as 'backing' child).",
    );
    const { graph: g2, mid: mid2, top: top2 } = chain();
    g2.createBackend({ name: "vda", issuer: "guest", root: top2, perms: guestDevicePerms(true) });
    expect(() => checkPermissions(mid2, { node: mid2, perms: WRITER })).not.toThrow();
  });

  it("a read-only node refuses a user that writes, also through a filter above it, and takes readers and read-only disks", () => {
    const { graph, top } = chain();
    top.readOnly = true;
    expect(() => checkPermissions(top, { node: top, perms: WRITER })).toThrow(ReadOnlyNode);
    expect(() => checkPermissions(top, { node: top, perms: { ...WRITER, perm: PERM_WRITE_UNCHANGED } })).toThrow("Block node is read-only");
    expect(() => graph.createBackend({ name: "vda", issuer: "guest", root: top, perms: guestDevicePerms(false, true) })).not.toThrow();
    const filter = graph.createNode({ name: "f", driver: "filter", file: top, filterDriver: "copy-on-read" });
    expect(() => checkPermissions(filter, { node: filter, perms: { ...WRITER, perm: PERM_CONSISTENT_READ } })).toThrow("Block node is read-only"); // copy-on-read adds write unchanged
  });

  it("refuses a BlockBackend whose permissions conflict before it is attached, naming the newest user first", () => {
    const { graph, top } = chain();
    graph.createBackend({ name: "vda", issuer: "guest", root: top, perms: guestDevicePerms() });
    expect(() => graph.createBackend({ name: "vdb", issuer: "guest2", root: top, perms: guestDevicePerms() })).toThrow(
      "Permission conflict on node 'top': permissions 'write' are both required by block device 'vda' (uses node 'top' as 'root' child) and unshared by block device 'vdb' (uses node 'top' as 'root' child).",
    );
    expect(graph.backends().map((b) => b.name)).toEqual(["vda"]);
    expect(top.parents()).toHaveLength(1);
  });

  it("a declared link can be undone: a job's link that unshares write stops refusing once it is gone", () => {
    const { graph, mid } = chain();
    const job = { name: "job", drainedBegin() {}, drainedEnd() {}, drainedPoll: () => false };
    const link = graph.attachParent(mid, job);
    setLinkPerms(link, { perm: 0, shared: PERM_CONSISTENT_READ | PERM_WRITE_UNCHANGED, user: "stream job 'j1'", childName: "intermediate node" });
    expect(() => checkPermissions(mid, { node: mid, perms: WRITER })).toThrow(/unshared by stream job 'j1' \(uses node 'mid' as 'intermediate node' child\)/);
    graph.detachParent(link);
    expect(() => checkPermissions(mid, { node: mid, perms: WRITER })).not.toThrow();
  });
});
