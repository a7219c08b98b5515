/**
 * query-blockstats from a guest workload (the harness's guests stand for a
 * virtio-blk device): the device's BlockBackend counts what the guest's
 * requests added up to, a job's BlockBackend is not listed and its I/O
 * counts nowhere but in the nodes' highest write.
 */
import { describe, expect, it } from "vitest";
import { attachDevice, guestDevicePerms, startGuest, type GuestWorkload } from "../../sim/block/index.js";
import { sleep } from "../../sim/scheduler/index.js";
import { MiB, session } from "./harness.js";

type Entry = { device?: string; "node-name"?: string; stats: Record<string, number> };

describe("query-blockstats", () => {
  it("counts a guest's requests on its BlockBackend, and a job's writes only in the target node's highest offset", () => {
    let guest: GuestWorkload | undefined;
    const replies: unknown[] = [];
    session(function* (q, qmp) {
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "a", file: "d1" });
      yield* qmp("blockdev-add", { driver: "raw", "node-name": "t", file: "d2" });
      const blk = q.graph.createBackend({ name: "drive0", issuer: "g", root: q.graph.findNode("a")!, queueWhenDrained: true, perms: guestDevicePerms() });
      attachDevice(blk);
      guest = startGuest(q.sim, { name: "g", backend: blk, pattern: "random", readFraction: 0.5, requestBytes: 65536, maxRequests: 20, regionBytes: 4 * MiB });
      yield* qmp("blockdev-backup", { "job-id": "b0", device: "a", target: "t", sync: "full" });
      yield sleep(2_000_000_000);
      replies.push((yield* qmp("query-blockstats")), (yield* qmp("query-blockstats", { "query-nodes": true })));
    });
    const g = guest!.stats;
    expect(g.completed).toBe(20);
    const blk = (replies[0] as { return: Entry[] }).return;
    expect(blk.map((e) => e.device)).toEqual(["drive0"]); // the backup's own BlockBackend has no name and no device
    const s = blk[0].stats;
    expect([s.rd_operations, s.wr_operations]).toEqual([g.reads, g.writes]);
    expect([s.rd_bytes, s.wr_bytes]).toEqual([g.reads * 65536, g.writes * 65536]);
    expect(s.rd_total_time_ns).toBeGreaterThanOrEqual(g.reads * 1_000_000); // each request at least the device's 1 ms
    expect(s.idle_time_ns).toBeGreaterThan(0);
    const nodes = (replies[1] as { return: Entry[] }).return;
    expect(nodes.map((e) => e["node-name"]).filter((n) => !n!.startsWith("#block"))).toEqual(["a", "t"]);
    expect(nodes.find((e) => e["node-name"] === "t")!.stats.wr_highest_offset).toBe(16 * MiB);
    expect(nodes.find((e) => e["node-name"] === "t")!.stats.wr_operations).toBe(0); // a node has no accounting of its own
  });
});
