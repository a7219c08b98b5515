import fc from "fast-check";
import { describe, expect, it } from "vitest";
import { CHOICE_LOG_VERSION, type Choice, type ChoiceLog, formatChoiceLog, parseChoiceLog } from "../../sim/scheduler/index.js";

const choiceArb: fc.Arbitrary<Choice> = fc
  .tuple(fc.integer({ min: 2, max: 1000 }), fc.nat(), fc.option(fc.string({ unit: "binary", maxLength: 12 }), { nil: undefined }))
  .map(([n, p, label]): Choice => (label === undefined ? [n, p % n] : [n, p % n, label]));

describe("choice log, compact form", () => {
  it("formats with a version header, n.pick and label=n.pick", () => {
    const log: ChoiceLog = [[3, 0], [2, 1], [4, 3, "disk0/fail"]];
    expect(formatChoiceLog(log)).toBe(`${CHOICE_LOG_VERSION}:3.0,2.1,disk0/fail=4.3`);
    expect(formatChoiceLog([])).toBe(`${CHOICE_LOG_VERSION}:`);
  });

  it("escapes labels that would otherwise break the form, and reads them back", () => {
    const log: ChoiceLog = [[2, 1, "a,b"], [2, 0, ""], [3, 2, "x\ny"], [2, 1, "50%"], [2, 0, "a=2.1"], [2, 1, "two words"]];
    const text = formatChoiceLog(log);
    expect(text).toBe("1:a%2Cb=2.1,=2.0,x%0Ay=3.2,50%25=2.1,a=2.1=2.0,two%20words=2.1");
    expect(parseChoiceLog(text)).toEqual(log);
  });

  it("round-trips any log, through the compact form and through JSON (property)", () => {
    fc.assert(
      fc.property(fc.array(choiceArb, { maxLength: 20 }), (log) => {
        expect(parseChoiceLog(formatChoiceLog(log))).toEqual(log);
        expect(JSON.parse(JSON.stringify(log))).toEqual(log);
      }),
      { seed: 42, numRuns: 500 },
    );
  });

  it("tolerates whitespace around the log and its entries (a pasted log)", () => {
    expect(parseChoiceLog("  1: 3.0, 2.1 ,\n c=2.0 \n")).toEqual([[3, 0], [2, 1], [2, 0, "c"]]);
    expect(parseChoiceLog("1:")).toEqual([]);
  });

  it("names what is wrong with a malformed log", () => {
    expect(() => parseChoiceLog("3.0,2.1")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: expected "<version>:<entries>", got "3.0,2.1"]`);
    expect(() => parseChoiceLog("2:3.0")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: version 2 is not supported (this blocksim reads version 1)]`);
    expect(() => parseChoiceLog("1:3.0,x,2.1")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: entry 1 "x" is not "n.pick" or "label=n.pick"]`);
    expect(() => parseChoiceLog("1:3.0,2.2")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: entry 1 picks 2 of only 2 options]`);
    expect(() => parseChoiceLog("1:3.-1")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: entry 0 "3.-1" is not "n.pick" or "label=n.pick"]`);
    expect(() => parseChoiceLog("1:3.0,,2.1")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: entry 1 "" is not "n.pick" or "label=n.pick"]`);
    expect(() => parseChoiceLog("1:bad%E9=2.0")).toThrowErrorMatchingInlineSnapshot(`[Error: choice log: entry 0 has a badly escaped label "bad%E9"]`);
  });
});
