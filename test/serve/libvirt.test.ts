/**
 * libvirt 9.0 end to end: domains whose <emulator> is the blocksim stand-in
 * (bin/blocksim-qemu.js), driven by virsh through the four sessions of
 * serve/libvirt/virsh.ts (block jobs; backups, snapshots and checkpoints;
 * copies with options, finished, aborted and onto an existing image; block
 * statistics, where the virsh output is compared too, durations aside).
 * The block-job part of the QMP
 * libvirt sends (read from libvirtd's log) must match, command for command
 * and event for event, what it sent to the real QEMU 7.2 in the recording
 * (serve/libvirt/fixtures/qemu-7.2.json, by serve/libvirt/record.ts).
 * Installs nothing: without libvirt set up as the README says, it skips and
 * says why.
 */
import { chmodSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { blockJobLines, firstDifference } from "../../serve/libvirt/compare.js";
import { recordedSession } from "../../serve/libvirt/fixtures.js";
import { parseLibvirtLog, sessionFor } from "../../serve/libvirt/qmp-log.js";
import { FIXTURE, logSince, type Fixture } from "../../serve/libvirt/record.js";
import { libvirtMissing, LOG, runSession, type SessionName } from "../../serve/libvirt/virsh.js";
import { statSync } from "node:fs";

const WHY = process.getuid?.() !== 0 ? "not root (libvirt's qemu:///system needs it)" : libvirtMissing();
const STAND_IN = fileURLToPath(new URL("../../bin/blocksim-qemu.js", import.meta.url));

/** Runs a virsh session against the stand-in and holds it to the recording of the real QEMU 7.2. */
function matchesRecording(session: SessionName): void {
  const dir = mkdtempSync(join(tmpdir(), "blocksim-libvirt-"));
  try {
    // libvirt starts the emulator with a clean environment: a wrapper names node and the stand-in.
    const emulator = join(dir, "qemu-system-x86_64");
    writeFileSync(emulator, `#!/bin/sh\nexec ${process.execPath} ${STAND_IN} "$@"\n`);
    chmodSync(emulator, 0o755);
    const from = statSync(LOG).size;
    const steps = runSession(emulator, `blocksim-e2e-${session}-${process.pid}`, dir, session);
    const fixture = JSON.parse(readFileSync(FIXTURE, "utf8")) as Fixture;
    const recorded = recordedSession(fixture, session);
    // The same virsh calls succeed with the same output (progress percentages and elapsed times aside).
    // Durations vary run to run: domblkstat's *_total_times and "total duration of … (ns)", domstats' *.times.
    const norm = (out: string) => out.replaceAll(dir, "$DIR").replace(/\[\s*\d+ %\]/g, "[N %]").replace(/Time elapsed:\s+\d+\s+/g, "Time elapsed: N ")
      .replace(/(_total_times |\.times=|\(ns\):\s+)\d+/g, "$1N")
      .replace(/blocksim-e2e-\w+-\d+|blocksim-record(-backup|-copy|-stats)?/g, "DOM").replace(/-+/g, "-");
    expect(steps.map((s) => [s.args[0], s.status, norm(s.out)])).toEqual(recorded.virsh.map((s) => [s.args[0], s.status, norm(s.out)]));
    const sessions = parseLibvirtLog(logSince(from));
    const domain = sessionFor(sessions, dir);
    if (!domain) expect.fail(`no QMP session naming ${dir} in ${LOG}`);
    const real = blockJobLines(recorded.domain, "$DIR");
    const sim = blockJobLines(domain, dir);
    expect(real.length).toBeGreaterThan(40); // the recording holds the session (each has 50 lines or more)
    const d = firstDifference(real, sim);
    if (d) expect.fail(`the QMP libvirt sent to blocksim departs from what it sent to QEMU 7.2 at ${d}`);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

describe.skipIf(WHY !== undefined)(`libvirt 9.0 drives the blocksim stand-in${WHY ? ` (skipped: ${WHY})` : ""}`, () => {
  it("virsh create, blockcopy --pivot, blockjob --info/--abort, blockcommit --active --pivot, blockpull, destroy: the same block-job QMP as the real QEMU 7.2", () => {
    matchesRecording("jobs");
  });

  it("virsh backup-begin (full, then incremental from a checkpoint), snapshot-create-as --disk-only, blockcommit --top, checkpoint-delete: the same block-job QMP as the real QEMU 7.2", () => {
    matchesRecording("backup");
  });

  it("virsh blockcopy with bandwidth, granularity and buf-size, blockjob --bandwidth, --abort; blockcopy --finish; blockcommit --active then its abort; blockcopy --reuse-external --pivot, --synchronous-writes --pivot, --wait then blockjob --pivot: the same block-job QMP as the real QEMU 7.2", () => {
    matchesRecording("copy");
  });

  it("virsh domblkinfo, domblkstat (--human), domstats --block --backing after the firmware's boot read, an accounted qemu-io aio_read and an unaccounted read, and after a blockcopy --finish: the same output and QMP as the real QEMU 7.2", () => {
    matchesRecording("stats");
  });
});
