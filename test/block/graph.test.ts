import { describe, expect, it } from "vitest";
import type { NodeConfig } from "../../sim/block/index.js";
import { RecordingParent, world } from "./helpers.js";

const C = 4096;

describe("BlockGraph names and structure", () => {
  it("validates node names as QEMU does", () => {
    const { graph, device } = world();
    graph.createNode({ name: "ok-1.a_b", driver: "null-co", sizeBytes: C });
    expect(() => graph.createNode({ name: "1bad", driver: "null-co", sizeBytes: C })).toThrow("Invalid node-name: '1bad'");
    expect(() => graph.createNode({ name: "a".repeat(32), driver: "null-co", sizeBytes: C })).toThrow("Node name too long");
    expect(() => graph.createNode({ name: "ok-1.a_b", driver: "null-co", sizeBytes: C })).toThrow("Duplicate nodes with node-name='ok-1.a_b'");
    graph.createBackend({ name: "drive0", issuer: "guest" });
    expect(() => graph.createNode({ name: "drive0", driver: "null-co", sizeBytes: C })).toThrow("node-name=drive0 is conflicting with a device id");
    expect(() => graph.createBackend({ name: "drive0", issuer: "guest" })).toThrow("Device with id 'drive0' already exists");
    expect(() => graph.createBackend({ name: "ok-1.a_b", issuer: "guest" })).toThrow("Device name 'ok-1.a_b' conflicts with an existing node name");
    expect(() => graph.createBackend({ issuer: "" })).toThrow('backend: issuer must be a non-empty label, got ""');
    expect(() => graph.node("nope")).toThrow("Cannot find node 'nope'");
    const d = device("d");
    graph.createNode({ name: "n1", driver: "raw", device: d });
    expect(() => graph.createNode({ name: "n2", driver: "raw", device: d })).toThrow('node "n2": device "d" is already used by node "n1"');
    expect(() => graph.createNode({ name: "n3", driver: "null-co", sizeBytes: -1 })).toThrow('node "n3": sizeBytes must be a whole number >= 0, got -1');
    // QEMU 7.2 opens a null-co of size 0 (goldens/null_co_size_zero); its whole content is nothing
    expect(graph.createNode({ name: "n0", driver: "null-co", sizeBytes: 0 }).content(0, 0).versions).toEqual([]);
    expect(() => graph.createNode({ name: "n4", driver: "vmdk" } as unknown as NodeConfig)).toThrow('node "n4": driver must be one of raw, qcow2, null-co, filter, got "vmdk"');
  });

  it("setBacking drops or replaces a backing link, refusing cycles and drivers without backing", () => {
    const { graph, device } = world();
    const base = graph.createNode({ name: "base", driver: "qcow2", device: device("b") });
    const mid = graph.createNode({ name: "mid", driver: "qcow2", device: device("m"), backing: base });
    const top = graph.createNode({ name: "top", driver: "qcow2", device: device("t"), backing: mid });
    const raw = graph.createNode({ name: "raw", driver: "raw", device: device("r") });
    expect(top.chain().map((n) => n.name)).toEqual(["top", "mid", "base"]);
    graph.setBacking(top, base); // stream/commit finishing: the intermediate drops out
    expect(top.chain().map((n) => n.name)).toEqual(["top", "base"]);
    expect(mid.parents()).toEqual([]);
    expect(base.parents().map((l) => [l.role, (l.parent as { name: string }).name])).toEqual([["backing", "top"], ["backing", "mid"]]); // newest first
    expect(() => graph.setBacking(base, top)).toThrow("Making 'top' a backing child of 'base' would create a cycle");
    expect(() => graph.setBacking(raw, base)).toThrow("Driver 'raw' of node 'raw' does not support backing files");
    graph.setBacking(top, null);
    expect(top.backing).toBeNull();
  });

  it("removeNode refuses a node in use and frees its device", () => {
    const { graph, device } = world();
    const d = device("d");
    const base = graph.createNode({ name: "base", driver: "raw", device: d });
    const top = graph.createNode({ name: "top", driver: "qcow2", device: device("t"), backing: base });
    expect(() => graph.removeNode(base)).toThrow("Node base is in use");
    graph.removeNode(top);
    expect(base.parents()).toEqual([]);
    graph.removeNode(base);
    expect(graph.findNode("base")).toBeUndefined();
    expect(graph.createNode({ name: "again", driver: "raw", device: d }).device).toBe(d);
  });

  it("replaceNode moves parent nodes and backends, not jobs, and skips parents that would form a cycle", () => {
    const { graph, device } = world();
    const src = graph.createNode({ name: "src", driver: "raw", device: device("s") });
    const filter = graph.createNode({ name: "mirror_top", driver: "filter", file: src });
    const guest = graph.createBackend({ name: "drive0", issuer: "guest", root: filter });
    const jobBlk = graph.createBackend({ issuer: "job:m", root: src });
    const job = new RecordingParent("job:m");
    graph.attachParent(src, job);
    const tgt = graph.createNode({ name: "tgt", driver: "qcow2", device: device("t"), backing: src });
    const moved = graph.replaceNode(src, tgt);
    expect(moved.map((l) => l.role)).toEqual(["root", "file"]); // src's parents, newest first
    expect(filter.file).toBe(tgt);
    expect(jobBlk.root).toBe(tgt);
    expect(guest.root).toBe(filter);
    expect(tgt.backing).toBe(src); // the target's own link to src is not moved onto itself
    expect(src.parents().map((l) => l.role)).toEqual(["backing", "user"]);
  });
});
