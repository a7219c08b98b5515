import { describe, expect, it } from "vitest";
import { ALL_PROFILES, DEFAULT_MGMT_BEHAVIOUR, MGMT_PROFILES, mgmtBehaviour, qemuBehaviour } from "../../sim/mgmt/index.js";
import { CURRENT_BEHAVIOUR, PROFILES } from "../../sim/qmp/profiles.js";

describe("management profiles", () => {
  it("extend the QMP catalog without clashing names", () => {
    const names = ALL_PROFILES.map((p) => p.name);
    expect(new Set(names).size).toBe(names.length);
    expect(names.slice(0, PROFILES.length)).toEqual(PROFILES.map((p) => p.name));
    expect(MGMT_PROFILES.map((p) => p.name)).toEqual(["info-modify-job", "libvirt-1.2.9", "libvirt-1.2.17", "query-beside-modify"]);
  });

  it("the pre-seed-004 profile takes MODIFY for block job info, the fixed one QUERY; only the counterfactual lets QUERY beside MODIFY", () => {
    expect(mgmtBehaviour("info-modify-job").blockJobInfoJob).toBe("modify");
    expect(mgmtBehaviour("libvirt-1.2.9")).toEqual({ blockJobInfoJob: "query", syncAbortWait: "poll", queryBesideModify: false });
    expect(mgmtBehaviour("libvirt-1.2.17").syncAbortWait).toBe("event");
    expect(MGMT_PROFILES.filter((p) => p.mgmt.queryBesideModify).map((p) => [p.name, p.counterfactual])).toEqual([["query-beside-modify", true]]);
  });

  it("QMP profile names get the default (v1.2.9) management behaviour; management profiles keep QEMU current", () => {
    expect(mgmtBehaviour("current")).toEqual(DEFAULT_MGMT_BEHAVIOUR);
    expect(qemuBehaviour("info-modify-job")).toEqual(CURRENT_BEHAVIOUR);
  });

  it("an unknown name is refused with the list of known ones", () => {
    expect(() => mgmtBehaviour("libvirt-9")).toThrow(/^unknown profile "libvirt-9"; known profiles: current, .*info-modify-job, libvirt-1\.2\.9, libvirt-1\.2\.17, query-beside-modify$/);
  });
});
