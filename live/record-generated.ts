/**
 * `blocksim record --generate N`: the simulator against a real QEMU on
 * specs nobody wrote. Each generated spec (live/spec-gen.ts) is recorded
 * from QEMU (several runs, merged as for a hand-written spec), replayed
 * through the simulator and compared like a golden. A spec whose recorded
 * runs disagree among themselves where the simulator departs is QEMU's own
 * nondeterminism, not a finding; a spec QEMU could not run (a wait that
 * timed out) is skipped with its reason. Every departing golden is written
 * to the output folder, where `blocksim conform DIR` shows it again: each
 * is a model question answered by QEMU.
 */
import { join } from "node:path";
import { compareGolden } from "./conform.js";
import { writeGolden, type Golden, type Spec } from "./golden.js";
import { CLASSIC_WORLDS, generateSpec, type WorldName } from "./spec-gen.js";

export type GeneratedVerdict =
  | { kind: "match"; entries: number }
  | { kind: "departs"; at: number; diff: string; file: string }
  | { kind: "qemu-varies"; at: number }
  | { kind: "skipped"; why: string };

/**
 * Records (with `record`: live/record.ts's recordGolden) the generated spec of `seed` in `worlds`, compares it and, when the simulator
 * departs, writes the golden to `outDir`. A departure at an entry the runs
 * did not agree on is QEMU's nondeterminism (the runs are the evidence).
 */
export async function checkGenerated(seed: number, outDir: string, record: (spec: Spec) => Promise<Golden>, worlds: readonly WorldName[] = CLASSIC_WORLDS): Promise<GeneratedVerdict> {
  const spec = generateSpec(seed, worlds);
  let golden: Golden;
  try {
    golden = await record(spec);
  } catch (e) {
    return { kind: "skipped", why: `QEMU: ${(e instanceof Error ? e.message : String(e)).split("\n")[0]}` };
  }
  let d: { at: number; diff: string } | undefined;
  try {
    d = compareGolden(golden).departs;
  } catch (e) {
    // The simulator could not replay what QEMU ran: that is a finding too.
    d = { at: -1, diff: e instanceof Error ? e.message : String(e) };
  }
  if (!d) return { kind: "match", entries: golden.sequence.length };
  if (d.at >= 0 && !golden.deterministic && variesAt(golden, d.at)) return { kind: "qemu-varies", at: d.at };
  const file = join(outDir, `${spec.scenario}.json`);
  writeGolden(file, golden);
  return { kind: "departs", at: d.at, diff: d.diff, file };
}

/**
 * Whether the recorded runs disagreed before the end of the round trip that
 * holds expected entry `at` (so QEMU itself gives more than one answer
 * there): at or before it, or later among the events and the reply of the
 * same command (runs that agree on the events but not on the command's own
 * reply still say the command raced them).
 */
export function variesAt(golden: Golden, at: number): boolean {
  // Index `at` counts entries without notes; the nondeterminism paths count the sequence with them.
  const entries = golden.sequence.filter((e) => !("note" in e));
  const notes = golden.sequence.length - entries.length;
  let end = at + 1;
  while (end < entries.length && !("cmd" in entries[end])) end++;
  return golden.nondeterministic.some((n) => {
    const index = "path" in n ? Number(/^sequence\[(\d+)\]/.exec(n.path)?.[1]) : n.only_in_some_runs.after_sequence_index + 1;
    return index - notes < end;
  });
}
