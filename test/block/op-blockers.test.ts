import { describe, expect, it } from "vitest";
import { BLOCK_OP_TYPES, OpBlockedError, OpBlockers, type BlockOpType } from "../../sim/block/index.js";
import { world } from "./helpers.js";

describe("op blockers", () => {
  it("start unblocked", () => {
    const b = new OpBlockers();
    expect(BLOCK_OP_TYPES.every((t) => !b.isBlocked(t))).toBe(true);
  });

  it("report the most recently added reason with QEMU's message", () => {
    const { graph, device } = world();
    const node = graph.createNode({ name: "node4", driver: "raw", device: device("d") });
    const stream = new Error("block device is in use by block job: stream");
    const commit = new Error("block device is in use by block job: commit");
    expect(node.opBlocker("STREAM")).toBeUndefined();
    node.blockOp("STREAM", stream);
    node.blockOp("STREAM", commit);
    const err = node.opBlocker("STREAM")!;
    expect(err).toBeInstanceOf(OpBlockedError);
    expect(err.message).toBe("Node 'node4' is busy: block device is in use by block job: commit");
    expect([err.nodeName, err.op, err.reason]).toEqual(["node4", "STREAM", commit]);
    expect(node.blockers.reasons("STREAM")).toEqual([commit, stream]);
  });

  it("unblock only the entries with that exact reason object", () => {
    const b = new OpBlockers();
    const r1 = new Error("job"), lookalike = new Error("job");
    b.block("RESIZE", r1);
    b.block("RESIZE", r1);
    b.unblock("RESIZE", lookalike);
    expect(b.reasons("RESIZE")).toEqual([r1, r1]);
    b.unblock("RESIZE", r1);
    expect(b.isBlocked("RESIZE")).toBe(false);
    b.unblock("RESIZE", r1); // nothing left: no error
  });

  it("block and unblock all types, as a block job does with its main node", () => {
    const { graph, device } = world();
    const node = graph.createNode({ name: "src", driver: "raw", device: device("d") });
    const mine = new Error("block device is in use by block job: backup");
    const other = new Error("someone else");
    node.blockOp("EJECT", other);
    node.blockAllOps(mine);
    node.unblockOp("DATAPLANE", mine);
    expect(BLOCK_OP_TYPES.filter((t) => node.opBlocker(t) === undefined)).toEqual(["DATAPLANE"]);
    expect(node.opBlocker("EJECT")!.reason).toBe(mine);
    node.unblockAllOps(mine);
    expect(BLOCK_OP_TYPES.filter((t) => node.opBlocker(t) !== undefined)).toEqual(["EJECT"]);
    expect(node.opBlocker("EJECT")!.message).toBe("Node 'src' is busy: someone else");
  });

  it("name the node by its named BlockBackend, as bdrv_get_device_or_node_name does", () => {
    const { graph, device } = world();
    const node = graph.createNode({ name: "n0", driver: "raw", device: device("d") });
    graph.createBackend({ issuer: "job:x", root: node });
    node.blockAllOps(new Error("busy"));
    expect(node.opBlocker("BACKUP_SOURCE")!.message).toBe("Node 'n0' is busy: busy");
    graph.createBackend({ name: "drive0", issuer: "guest", root: node });
    expect(node.opBlocker("BACKUP_SOURCE")!.message).toBe("Node 'drive0' is busy: busy");
  });

  it("reject unknown operation types and reasons that are not Errors", () => {
    const b = new OpBlockers();
    expect(() => b.block("COMMIT" as BlockOpType, new Error("x"))).toThrow('unknown block operation type "COMMIT" (expected one of BACKUP_SOURCE, BACKUP_TARGET, CHANGE, COMMIT_SOURCE');
    expect(() => b.block("STREAM", "busy" as unknown as Error)).toThrow("an op blocker reason must be an Error object");
  });
});

describe("the op blocker on a backing node (QEMU 7.2 bdrv_backing_attach; golden op_blockers_backing)", () => {
  const CHAIN_OPS: BlockOpType[] = ["COMMIT_TARGET", "STREAM", "BACKUP_SOURCE", "BACKUP_TARGET"];

  it("blocks every operation but commit into it, stream through it and backup, naming the parent; moves with the backing link and goes when it goes", () => {
    const { graph, device } = world();
    const base = graph.createNode({ name: "base", driver: "qcow2", device: device("b") });
    const mid = graph.createNode({ name: "mid", driver: "qcow2", device: device("m"), backing: base });
    const top = graph.createNode({ name: "top", driver: "qcow2", device: device("t"), backing: mid });
    for (const op of BLOCK_OP_TYPES) {
      expect(top.opBlocker(op), op).toBeUndefined();
      expect(mid.opBlocker(op)?.message, op).toBe(CHAIN_OPS.includes(op) ? undefined : "Node 'mid' is busy: node is used as backing hd of 'top'");
      expect(base.opBlocker(op)?.message, op).toBe(CHAIN_OPS.includes(op) ? undefined : "Node 'base' is busy: node is used as backing hd of 'mid'");
    }
    // an intermediate commit's end: top's backing becomes base, mid is free
    graph.setBacking(top, base);
    expect(BLOCK_OP_TYPES.every((op) => mid.opBlocker(op) === undefined)).toBe(true);
    expect(base.opBlocker("MIRROR_TARGET")?.message).toBe("Node 'base' is busy: node is used as backing hd of 'top'");
    expect(base.blockers.reasons("MIRROR_TARGET").map((r) => r.message)).toEqual(["node is used as backing hd of 'top'", "node is used as backing hd of 'mid'"]);
    graph.setBacking(mid, null);
    expect(base.opBlocker("DRIVE_DEL")?.message).toBe("Node 'base' is busy: node is used as backing hd of 'top'");
    // a stream's end: top has no backing left
    graph.setBacking(top, null);
    expect(BLOCK_OP_TYPES.every((op) => base.opBlocker(op) === undefined)).toBe(true);
  });

  it("a job's own blocker on a backing node comes first, being newer", () => {
    const { graph, device } = world();
    const base = graph.createNode({ name: "base", driver: "qcow2", device: device("b") });
    graph.createNode({ name: "top", driver: "qcow2", device: device("t"), backing: base });
    base.blockAllOps(new Error("block device is in use by block job: commit"));
    expect(base.opBlocker("MIRROR_TARGET")?.message).toBe("Node 'base' is busy: block device is in use by block job: commit");
    expect(base.opBlocker("STREAM")?.message).toBe("Node 'base' is busy: block device is in use by block job: commit");
  });
});
