/**
 * Seed 004 on real libvirt 9.0: how long `virsh blockjob --info` waits while
 * a synchronous `virsh blockjob --abort` runs, with the blocksim stand-in
 * as the emulator and a slow simulated copy target — beside what the
 * management layer (sim/mgmt, scenarios/races/seed-004-sync-abort.yaml) predicts for the
 * same scenario: a 64 MiB disk (100 µs) copied to a 4 MiB/s target (1 ms,
 * queue depth 8), the copy started at 100 ms, the abort at 2 s, a poller
 * every 50 ms from 200 ms. The stand-in runs no guest (the model's guest
 * writes 64 KiB every 0–200 ms); virsh's own start-up is part of each
 * measured call, so the baseline (calls before the abort) is given too.
 *
 *   npx tsx serve/libvirt/seed-004.ts
 */
import { spawn } from "node:child_process";
import { chmodSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { RandomStrategy } from "../../sim/scheduler/index.js";
import type { Domain } from "../../sim/mgmt/index.js";
import { loadScenarioFile } from "../../sim/scenario/loader.js";
import { packagePath } from "../../sim/scenario/package-root.js";
import { runScenario } from "../../sim/scenario/runner.js";
import { domainXml } from "./domain.js";
import { libvirtMissing, makeImages, URI, virsh } from "./virsh.js";

const STAND_IN = fileURLToPath(new URL("../../bin/blocksim-qemu.js", import.meta.url));
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function virshAsync(args: string[]): Promise<{ startMs: number; endMs: number; out: string; status: number }> {
  const startMs = performance.now();
  return new Promise((resolve) => {
    const p = spawn("virsh", ["-c", URI, ...args]);
    let out = "";
    p.stdout.on("data", (d) => (out += d));
    p.stderr.on("data", (d) => (out += d));
    p.on("close", (status) => resolve({ startMs, endMs: performance.now(), out: out.trim(), status: status ?? -1 }));
  });
}

export interface Seed004Measurement {
  abortMs: number;
  baselineInfoMs: { median: number; max: number };
  worstInfoDuringAbortMs: number;
  calls: { startMs: number; ms: number }[];
}

export async function measureOnLibvirt(): Promise<Seed004Measurement> {
  const dir = mkdtempSync(join(tmpdir(), "blocksim-seed004-"));
  const name = `blocksim-seed004-${process.pid}`;
  try {
    const config = join(dir, "config.json");
    writeFileSync(config, JSON.stringify({
      clock: "realtime",
      devices: [{ match: "copy2", bandwidth: 4 << 20, latency: 1_000_000, "queue-depth": 8 }, { match: ".qcow2", latency: 100_000, "queue-depth": 8 }],
    }));
    const emulator = join(dir, "qemu-system-x86_64");
    writeFileSync(emulator, `#!/bin/sh\nBLOCKSIM_QEMU_CONFIG=${config} exec ${process.execPath} ${STAND_IN} "$@"\n`);
    chmodSync(emulator, 0o755);
    const disk = makeImages(dir);
    writeFileSync(join(dir, "dom.xml"), domainXml({ name, emulator, disk }));
    const c = virsh(["create", join(dir, "dom.xml")]);
    if (c.status !== 0) throw new Error(`virsh create: ${c.out}`);
    try {
      const t0 = performance.now();
      await sleep(100);
      const copy = await virshAsync(["blockcopy", name, "vda", join(dir, "copy2.qcow2"), "--transient-job"]);
      if (copy.status !== 0) throw new Error(`virsh blockcopy: ${copy.out}`);
      let abortDone = false;
      const calls: { startMs: number; ms: number }[] = [];
      const poller = (async () => {
        await sleep(Math.max(0, t0 + 200 - performance.now()));
        for (;;) {
          const r = await virshAsync(["blockjob", name, "vda", "--info"]);
          calls.push({ startMs: r.startMs - t0, ms: r.endMs - r.startMs });
          if (abortDone || /No current block job/.test(r.out)) return;
          await sleep(50);
        }
      })();
      await sleep(Math.max(0, t0 + 2000 - performance.now()));
      const abort = await virshAsync(["blockjob", name, "vda", "--abort"]);
      abortDone = true;
      await poller;
      const abortStart = abort.startMs - t0, abortEnd = abort.endMs - t0;
      const before = calls.filter((x) => x.startMs + x.ms < abortStart).map((x) => x.ms).sort((a, b) => a - b);
      const during = calls.filter((x) => x.startMs < abortEnd && x.startMs + x.ms > abortStart);
      return {
        abortMs: abort.endMs - abort.startMs,
        baselineInfoMs: { median: before[Math.floor(before.length / 2)] ?? NaN, max: before[before.length - 1] ?? NaN },
        worstInfoDuringAbortMs: Math.max(0, ...during.map((x) => x.ms)),
        calls,
      };
    } finally {
      virsh(["destroy", name]);
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/** What sim/mgmt predicts for the same scenario under the profile closest to libvirt 9.0's sync abort (libvirt-1.2.17: waits for the event holding MODIFY). */
export function predict(seeds: number[]): { abortMs: number; worstWaitMs: number; worstLatencyMs: number }[] {
  const loaded = loadScenarioFile(packagePath("scenarios", "races", "seed-004-sync-abort.yaml"));
  return seeds.map((seed) => {
    let dom: Domain | undefined;
    runScenario(loaded, { profile: "libvirt-1.2.17", seed, strategy: new RandomStrategy(seed), inspect: (w) => (dom = w.dom) });
    const abort = dom!.calls.find((c) => c.call.api === "virDomainBlockJobAbort");
    const info = dom!.calls.filter((c) => c.call.api === "virDomainGetBlockJobInfo");
    return { abortMs: abort ? abort.latencyNs / 1e6 : NaN, worstWaitMs: Math.max(0, ...info.map((c) => c.jobWaitNs)) / 1e6, worstLatencyMs: Math.max(0, ...info.map((c) => c.latencyNs)) / 1e6 };
  });
}

async function main(): Promise<void> {
  const missing = libvirtMissing();
  if (missing) {
    process.stderr.write(`seed-004: ${missing}\n`);
    process.exitCode = 2;
    return;
  }
  const runs = Number(process.argv[2] ?? 3);
  const fmt = (x: number) => `${(x / 1000).toFixed(2)} s`;
  for (let i = 0; i < runs; i++) {
    const m = await measureOnLibvirt();
    process.stdout.write(`libvirt 9.0 + blocksim-qemu run ${i + 1}: abort ${fmt(m.abortMs)}; blockjob --info: baseline median ${fmt(m.baselineInfoMs.median)}, max ${fmt(m.baselineInfoMs.max)}; longest during the abort ${fmt(m.worstInfoDuringAbortMs)} (${m.calls.length} calls)\n`);
  }
  for (const [i, p] of predict([1, 2, 3, 4, 5]).entries()) {
    process.stdout.write(`sim/mgmt libvirt-1.2.17 seed ${i + 1}: abort ${fmt(p.abortMs)}; GetBlockJobInfo longest wait for its job ${fmt(p.worstWaitMs)}, longest call ${fmt(p.worstLatencyMs)}\n`);
  }
}

if (process.argv[1] === fileURLToPath(import.meta.url)) await main();
