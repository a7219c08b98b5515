import { describe, expect, it } from "vitest";
import { main } from "../../cli/main.js";

function io() {
  const o = { out: "", err: "", tty: false };
  return { o, io: { out: (t: string) => void (o.out += t), err: (t: string) => void (o.err += t), tty: false } };
}

describe("blocksim conform and record", () => {
  it("conform replays a golden through the simulator: exit 0 when it matches", async () => {
    const { o, io: i } = io();
    expect(await main(["conform", "test/conformance/goldens/drive_backup.json"], i)).toBe(0);
    expect(o.out).toContain("ok    drive_backup");
    expect(o.out).toContain("1 of 1 match the simulator");
  });

  it("conform shows where a known difference departs, with exit 1", async () => {
    const { o, io: i } = io();
    expect(await main(["conform", "test/conformance/goldens/mirror_null_source.json"], i)).toBe(1);
    expect(o.out).toMatch(/DIFF {2}mirror_null_source: departs at entry 7/);
  });

  it("both refuse bad arguments with exit 2 and a usage line", async () => {
    for (const cmd of [["conform"], ["record"], ["record", "x.json", "--runs", "0"], ["record", "--bogus"]]) {
      const { o, io: i } = io();
      expect(await main(cmd, i), cmd.join(" ")).toBe(2);
      expect(o.err, cmd.join(" ")).toMatch(/usage|--runs|unknown option/);
    }
  });
});
