/**
 * Records what libvirt 9.0 says to a real QEMU 7.2 and what QEMU answers:
 * the capability probe (libvirt probes an emulator path it has not seen, so
 * the real binary is reached through a fresh symlink) and four domains'
 * lives, one through each virsh session of virsh.ts (jobs, backup, copy,
 * stats). Reads the QMP from libvirtd's debug log and writes
 * serve/libvirt/fixtures/qemu-7.2.json with its provenance. `--only
 * SESSION` records that session alone (not jobs, whose domain is the
 * provenance's) into the fixture, the rest of it kept as it was.
 * The stand-in (qemu-standin.ts) answers every command outside the block
 * layer from this file; the end-to-end test compares the block-job part.
 *
 *   npx tsx serve/libvirt/record.ts [--qemu /usr/bin/qemu-system-x86_64] [--only backup|copy|stats]
 *
 * Needs libvirtd configured and running as README "Driving blocksim from
 * libvirt" says; writes nothing outside a temporary directory but the fixture.
 */
import { execFileSync } from "node:child_process";
import { closeSync, mkdtempSync, openSync, readFileSync, readSync, statSync, symlinkSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { parseLibvirtLog, sessionFor, type QmpSession } from "./qmp-log.js";
import { libvirtMissing, LOG, runSession, SESSIONS, virsh, type SessionName, type VirshStep } from "./virsh.js";

export const FIXTURE = fileURLToPath(new URL("./fixtures/qemu-7.2.json", import.meta.url));

export interface Fixture {
  provenance: {
    recorded: string;
    by: string;
    libvirt: string;
    qemu: string;
    host: string;
    virsh: RecordedStep[];
  };
  /** libvirt's probes of the emulator (first with accel=kvm:tcg, then accel=tcg), then the domain's monitor, as libvirt logged them. */
  probes: QmpSession[];
  /** The jobs session's domain (its virsh calls are provenance.virsh). */
  domain: QmpSession;
  /** The backup, copy and stats sessions: each one's virsh calls and its domain's monitor. */
  backup: RecordedSession;
  copy: RecordedSession;
  stats: RecordedSession;
}

/** A session's virsh calls and its domain's monitor; `recorded`: when, if later than the provenance's date (`--only`). */
export type RecordedSession = { virsh: RecordedStep[]; domain: QmpSession; recorded?: string };

export type RecordedStep = { args: string[]; status: number; out: string };

/** A session's virsh calls with its image directory written as $DIR. */
function recorded(steps: VirshStep[], dir: string): RecordedStep[] {
  return steps.map((s) => ({ args: s.args.map((a) => a.replaceAll(dir, "$DIR")), status: s.status, out: s.out.replaceAll(dir, "$DIR") }));
}

/** The bytes appended to the log since `from`. */
export function logSince(from: number): string {
  const size = statSync(LOG).size;
  const buf = Buffer.alloc(Math.max(0, size - from));
  const fd = openSync(LOG, "r");
  try {
    readSync(fd, buf, 0, buf.length, from);
  } finally {
    closeSync(fd);
  }
  return buf.toString("utf8");
}

async function main(argv: string[]): Promise<void> {
  const qemu = argv[argv.indexOf("--qemu") + 1] && argv.includes("--qemu") ? argv[argv.indexOf("--qemu") + 1] : "/usr/bin/qemu-system-x86_64";
  const missing = libvirtMissing();
  if (missing) {
    process.stderr.write(`record: ${missing}\n`);
    process.exitCode = 2;
    return;
  }
  const dir = mkdtempSync(join(tmpdir(), "blocksim-record-"));
  const emulator = join(dir, "qemu-system-x86_64");
  symlinkSync(qemu, emulator);
  const from = statSync(LOG).size;
  const only = argv.includes("--only") ? argv[argv.indexOf("--only") + 1] : undefined;
  if (only !== undefined) {
    if (!SESSIONS.includes(only as SessionName) || only === "jobs") {
      process.stderr.write(`record: --only takes one of ${SESSIONS.filter((x) => x !== "jobs").join(", ")}, got ${JSON.stringify(only)}\n`);
      process.exitCode = 2;
      return;
    }
    return recordOne(only as Exclude<SessionName, "jobs">, emulator, from);
  }
  const steps = runSession(emulator, "blocksim-record", dir);
  const more = SESSIONS.filter((s) => s !== "jobs").map((session) => {
    const d = mkdtempSync(join(tmpdir(), `blocksim-record-${session}-`));
    return { d, steps: runSession(emulator, `blocksim-record-${session}`, d, session) };
  });
  const sessions = parseLibvirtLog(logSince(from));
  const domain = sessionFor(sessions, dir);
  const domains = more.map((m) => sessionFor(sessions, m.d));
  const probes = sessions.filter((s) => s !== domain && !domains.includes(s) && !s.messages.some((m) => "send" in m && m.send.execute === "cont"));
  if (!domain || domains.some((d) => !d) || probes.length === 0) throw new Error(`expected libvirt's probe and the four domains' sessions in the log, found ${sessions.length} session(s)`);
  const withDir = (session: QmpSession, d: string) => JSON.parse(JSON.stringify(session).replaceAll(d, "$DIR")) as QmpSession;
  const [backup, copy, stats] = more.map((m, i): RecordedSession => ({ virsh: recorded(m.steps, m.d), domain: withDir(domains[i]!, m.d) }));
  const version = virsh(["version"]).out;
  const fixture: Fixture = {
    provenance: {
      recorded: new Date().toISOString(),
      by: "serve/libvirt/record.ts",
      libvirt: /Using library: libvirt ([\d.]+)/.exec(version)?.[1] ?? version,
      qemu: execFileSync(qemu, ["--version"], { encoding: "utf8" }).split("\n")[0],
      host: execFileSync("uname", ["-srm"], { encoding: "utf8" }).trim(),
      virsh: recorded(steps, dir),
    },
    probes,
    domain: withDir(domain, dir),
    backup,
    copy,
    stats,
  };
  writeFixture(fixture);
  process.stdout.write(`wrote ${FIXTURE}: probes ${probes.map((p) => p.messages.length).join(" + ")} messages, domains ${[domain, ...domains].map((d) => d!.messages.length).join(", ")}; virsh:\n`);
  printSteps([...fixture.provenance.virsh, ...backup.virsh, ...copy.virsh, ...stats.virsh]);
}

/** `--only SESSION`: that session against the real QEMU, put into the fixture in place of its old recording. */
function recordOne(session: Exclude<SessionName, "jobs">, emulator: string, from: number): void {
  const d = mkdtempSync(join(tmpdir(), `blocksim-record-${session}-`));
  const steps = runSession(emulator, `blocksim-record-${session}`, d, session);
  const domain = sessionFor(parseLibvirtLog(logSince(from)), d);
  if (!domain) throw new Error(`expected the ${session} domain's session in ${LOG}, found none naming ${d}`);
  const fixture = JSON.parse(readFileSync(FIXTURE, "utf8")) as Fixture;
  fixture[session] = { virsh: recorded(steps, d), domain: JSON.parse(JSON.stringify(domain).replaceAll(d, "$DIR")) as QmpSession, recorded: new Date().toISOString() };
  writeFixture(fixture);
  process.stdout.write(`wrote the ${session} session into ${FIXTURE}: ${domain.messages.length} messages; virsh:\n`);
  printSteps(fixture[session].virsh);
}

function writeFixture(fixture: Fixture): void {
  writeFileSync(FIXTURE, JSON.stringify(fixture, null, 0).replace(/\},\{"(send|recv)"/g, '},\n{"$1"') + "\n");
}

function printSteps(steps: RecordedStep[]): void {
  for (const s of steps) process.stdout.write(`  virsh ${s.args.join(" ")} -> ${s.status}${s.out ? `: ${s.out.split("\n").join(" | ")}` : ""}\n`);
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main(process.argv.slice(2));
