import { describe, expect, it } from "vitest";
import { IoError, type IoOp, type IoRequest } from "../../sim/disk/index.js";
import { FifoStrategy, RandomStrategy, ReplayStrategy, Scheduler, type Strategy } from "../../sim/scheduler/index.js";
import { issueAll, makeDevice } from "./helpers.js";

const w = (cluster: number, issuer = "g"): IoRequest => ({ op: "write", offset: cluster * 4096, bytes: 4096, issuer });
const r = (cluster: number, issuer = "g"): IoRequest => ({ op: "read", offset: cluster * 4096, bytes: 4096, issuer });

/** Issues `reqs` one after another (1 µs apart) and returns the errno of each, or "ok". */
function outcomes(sim: Scheduler, setup: (dev: ReturnType<typeof makeDevice>) => void, reqs: IoRequest[]) {
  const dev = makeDevice(sim, { queueDepth: 8 });
  setup(dev);
  const done = issueAll(sim, dev, reqs.map((req, i) => ({ req, atNs: i * 10_000 })));
  const run = sim.run();
  return { dev, run, done, result: done.map((d) => (d.error instanceof IoError ? d.error.errno : d.error ? String(d.error) : "ok")) };
}

describe("fault rules", () => {
  it("fail every matching request by op, and leave the medium untouched", () => {
    const sim = new Scheduler({ trace: true });
    const { dev, run, done, result } = outcomes(sim, (d) => d.addFault({ op: "write", errno: "EIO" }), [w(0), r(0), w(1)]);
    expect(result).toEqual(["EIO", "ok", "EIO"]);
    expect(dev.isWritten(0)).toBe(false);
    // Delivered at the instant of submission, without latency.
    expect(done[0].doneNs).toBe(done[0].submitNs);
    expect(dev.inFlight).toBe(0);
    expect(dev.stats.faulted).toBe(2);
    const faults = run.trace!.filter((t) => t.kind === "fault");
    expect(faults).toEqual([
      { t: 0, src: "d0", kind: "fault", data: { op: "write", offset: 0, bytes: 4096, issuer: "g", errno: "EIO", rule: 1 } },
      { t: 20_000, src: "d0", kind: "fault", data: { op: "write", offset: 4096, bytes: 4096, issuer: "g", errno: "EIO", rule: 1 } },
    ]);
  });

  it("throw an IoError naming the device, request and strerror", () => {
    const { done } = outcomes(new Scheduler(), (d) => d.addFault({ errno: "ENOSPC" }), [w(3)]);
    const e = done[0].error as IoError;
    expect(e).toBeInstanceOf(IoError);
    expect(e.message).toBe('device "d0": write 12288+4096: No space left on device');
    expect([e.errno, e.op, e.offset, e.bytes, e.strerror]).toEqual(["ENOSPC", "write", 12288, 4096, "No space left on device"]);
  });

  it("fire once", () => {
    const { result } = outcomes(new Scheduler(), (d) => d.addFault({ op: "write", errno: "EIO", once: true }), [w(0), w(1), w(2)]);
    expect(result).toEqual(["EIO", "ok", "ok"]);
  });

  it("let the first N matching requests through, then fire every time (or once)", () => {
    const every = outcomes(new Scheduler(), (d) => d.addFault({ op: "write", errno: "EIO", afterRequests: 2 }), [w(0), r(0), w(1), w(2), w(3)]);
    expect(every.result).toEqual(["ok", "ok", "ok", "EIO", "EIO"]);
    const once = outcomes(new Scheduler(), (d) => d.addFault({ op: "write", errno: "EIO", afterRequests: 2, once: true }), [w(0), w(1), w(2), w(3)]);
    expect(once.result).toEqual(["ok", "ok", "EIO", "ok"]);
  });

  it("match requests overlapping a byte range; a ranged rule never matches a flush", () => {
    const flush: IoRequest = { op: "flush", issuer: "g" };
    const { result } = outcomes(new Scheduler(), (d) => d.addFault({ startBytes: 8192, endBytes: 8193, errno: "EIO" }), [
      w(1), w(2), { op: "read", offset: 4096, bytes: 8192, issuer: "g" }, flush, w(3),
    ]);
    expect(result).toEqual(["ok", "EIO", "EIO", "ok", "ok"]);
    const byOp = outcomes(new Scheduler(), (d) => d.addFault({ op: ["flush", "discard"], errno: "EPERM" }), [
      flush, w(0), { op: "discard", offset: 0, bytes: 4096, issuer: "g" },
    ]);
    expect(byOp.result).toEqual(["EPERM", "ok", "EPERM"]);
  });

  it("match by issuer, so a fault can hit only job I/O", () => {
    const { result } = outcomes(new Scheduler(), (d) => d.addFault({ issuer: "job", errno: "EIO" }), [w(0, "guest"), w(0, "job"), r(0, "job")]);
    expect(result).toEqual(["ok", "EIO", "EIO"]);
  });

  it("count a request against every matching rule; the first eligible rule decides", () => {
    const { result, dev } = outcomes(new Scheduler(), (d) => {
      d.addFault({ op: "write", errno: "ENOSPC", afterRequests: 1 });
      d.addFault({ errno: "EIO", once: true });
    }, [w(0), w(1), w(2), r(0)]);
    expect(result).toEqual(["EIO", "ENOSPC", "ENOSPC", "ok"]);
    expect(dev.faults.list().map((f) => [f.matched, f.fired, f.spent])).toEqual([[3, 2, false], [1, 1, true]]);
  });

  it("can be removed and added while running", () => {
    const sim = new Scheduler();
    const dev = makeDevice(sim);
    const rule = dev.addFault({ errno: "EIO" });
    const done = issueAll(sim, dev, [{ req: w(0) }, { req: w(1), atNs: 5_000 }, { req: w(2), atNs: 9_000 }]);
    sim.at(2_000, "heal", () => dev.faults.remove(rule));
    sim.at(8_000, "break", () => dev.addFault({ errno: "EINVAL", once: true }));
    sim.run();
    expect(done.map((d) => (d.error as IoError | undefined)?.errno ?? "ok")).toEqual(["EIO", "ok", "EINVAL"]);
  });

  it("leave the decision to the strategy with choose: logged, replayable, FIFO never fails", () => {
    const reqs = [w(0), w(1), w(2), w(3), w(4), w(5), w(6), w(7)];
    const setup = (d: ReturnType<typeof makeDevice>) => d.addFault({ op: "write", errno: "EIO", choose: "d0/write-fails" });

    const fifo = outcomes(new Scheduler({ strategy: new FifoStrategy() }), setup, reqs);
    expect(fifo.result.every((x) => x === "ok")).toBe(true);
    expect(fifo.run.choices.filter((c) => c.length === 3)).toHaveLength(8);

    const alwaysFail: Strategy = { name: "fail", pickNext: () => 0, choose: (label) => (label === "d0/write-fails" ? 1 : 0) };
    expect(outcomes(new Scheduler({ strategy: alwaysFail }), setup, reqs).result.every((x) => x === "EIO")).toBe(true);

    const random = outcomes(new Scheduler({ strategy: new RandomStrategy(5) }), setup, reqs);
    expect(new Set(random.result)).toEqual(new Set(["ok", "EIO"]));
    const replay = outcomes(new Scheduler({ strategy: new ReplayStrategy(random.run.choices) }), setup, reqs);
    expect(replay.result).toEqual(random.result);
    expect(replay.run.hash).toBe(random.run.hash);
  });

  it("a choice rule with once fires at most once even when several choices say fail", () => {
    const alwaysFail: Strategy = { name: "fail", pickNext: () => 0, choose: () => 1 };
    const sim = new Scheduler({ strategy: alwaysFail });
    const dev = makeDevice(sim, { queueDepth: 8 });
    dev.addFault({ errno: "EIO", once: true, choose: "c" });
    const done = issueAll(sim, dev, [{ req: w(0) }, { req: w(1) }, { req: w(2) }]);
    sim.run();
    expect(done.map((d) => (d.error as IoError | undefined)?.errno ?? "ok")).toEqual(["EIO", "ok", "ok"]);
  });

  it("reject malformed rules with the field and what was expected", () => {
    const dev = makeDevice(new Scheduler());
    expect(() => dev.addFault({ errno: "EIO", op: "trim" as IoOp })).toThrow('device "d0": fault rule 1: op must be one of read, write, flush, write-zeroes, discard or a non-empty list of them, got "trim"');
    expect(() => dev.addFault({ errno: "EIO", startBytes: 10, endBytes: 10 })).toThrow("endBytes (10) must be greater than startBytes (10)");
    expect(() => dev.addFault({ errno: "EIO", afterRequests: -1 })).toThrow("afterRequests must be a whole number >= 0, got -1");
    expect(() => dev.addFault({ errno: "EIO", choose: "" })).toThrow('choose must be a non-empty choice label, got ""');
  });
});
