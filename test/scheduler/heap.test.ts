import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { SlotHeap } from "../../sim/scheduler/heap.js";

/** Pops everything, returning [slot, ...] in pop order. */
function drain(h: SlotHeap): number[] {
  const out: number[] = [];
  while (h.size > 0) out.push(h.pop());
  return out;
}

describe("SlotHeap", () => {
  it("pops by time, then by sequence number", () => {
    const h = new SlotHeap(2); // small capacity: forces growth
    h.push(0, 30, 0);
    h.push(1, 10, 1);
    h.push(2, 20, 2);
    h.push(3, 10, 3);
    h.push(4, 10, 4);
    expect(h.peekTime()).toBe(10);
    expect(h.peekSlot()).toBe(1);
    expect(drain(h)).toEqual([1, 3, 4, 2, 0]);
  });

  it("keeps same-time entries in sequence order whatever the push order", () => {
    const h = new SlotHeap();
    for (const [slot, seq] of [[5, 9], [6, 2], [7, 4], [8, 0], [9, 7]]) h.push(slot, 100, seq);
    expect(drain(h)).toEqual([8, 6, 7, 9, 5]);
  });

  it("removes an entry from anywhere and keeps the order of the rest", () => {
    const h = new SlotHeap();
    for (let s = 0; s < 10; s++) h.push(s, 10 * (s % 3), s);
    h.remove(4); // time 10
    h.remove(0); // time 0, the root
    expect(h.has(4)).toBe(false);
    expect(h.has(0)).toBe(false);
    expect(h.has(5)).toBe(true);
    expect(drain(h)).toEqual([3, 6, 9, 1, 7, 2, 5, 8]);
  });

  it("removing the last entry and re-pushing a slot works", () => {
    const h = new SlotHeap();
    h.push(1, 5, 0);
    h.push(2, 6, 1);
    h.remove(2);
    expect(h.size).toBe(1);
    h.push(2, 1, 2);
    expect(drain(h)).toEqual([2, 1]);
    expect(h.has(1)).toBe(false);
  });

  it("grows its slot index for large slot numbers", () => {
    const h = new SlotHeap(4);
    h.push(1000, 3, 0);
    h.push(7, 3, 1);
    expect(h.has(1000)).toBe(true);
    expect(h.has(5000)).toBe(false);
    expect(drain(h)).toEqual([1000, 7]);
  });

  it("matches a sorted-array model under random push/pop/remove (property)", () => {
    type Op = { op: "push"; time: number } | { op: "pop" } | { op: "remove"; which: number };
    const opArb: fc.Arbitrary<Op> = fc.oneof(
      { weight: 5, arbitrary: fc.record({ op: fc.constant("push" as const), time: fc.integer({ min: 0, max: 20 }) }) },
      { weight: 2, arbitrary: fc.constant({ op: "pop" as const }) },
      { weight: 2, arbitrary: fc.record({ op: fc.constant("remove" as const), which: fc.nat(1000) }) },
    );
    fc.assert(
      fc.property(fc.array(opArb, { maxLength: 300 }), (ops) => {
        const h = new SlotHeap(1);
        const model: { slot: number; time: number; seq: number }[] = []; // kept sorted by (time, seq)
        const free: number[] = [];
        let nextSlot = 0, seq = 0;
        for (const o of ops) {
          if (o.op === "push") {
            const slot = free.length > 0 ? free.pop()! : nextSlot++;
            const e = { slot, time: o.time, seq: seq++ };
            h.push(e.slot, e.time, e.seq);
            let i = model.length;
            while (i > 0 && (model[i - 1].time > e.time || (model[i - 1].time === e.time && model[i - 1].seq > e.seq))) i--;
            model.splice(i, 0, e);
          } else if (o.op === "pop") {
            if (model.length === 0) continue;
            expect(h.peekTime()).toBe(model[0].time);
            expect(h.peekSlot()).toBe(model[0].slot);
            const got = h.pop();
            const want = model.shift()!;
            expect(got).toBe(want.slot);
            free.push(got);
          } else {
            if (model.length === 0) continue;
            const [victim] = model.splice(o.which % model.length, 1);
            expect(h.has(victim.slot)).toBe(true);
            h.remove(victim.slot);
            expect(h.has(victim.slot)).toBe(false);
            free.push(victim.slot);
          }
          expect(h.size).toBe(model.length);
        }
        expect(drain(h)).toEqual(model.map((e) => e.slot));
      }),
      { seed: 42, numRuns: 300 },
    );
  });
});
