/** The help texts of the commands main.ts dispatches (fuzz, explore and races carry their own). */
import type { Io } from "./args.js";
import { EXIT_OK } from "./args.js";

export const HELP: Record<string, string> = {
  main: `blocksim — a deterministic simulator of QEMU-style block jobs

Usage: blocksim <command> [options]

Commands:
  run FILE…                 run scenario files and check their expectations
  replay REPLAY.json        repeat a recorded run exactly and verify its trace hash
  convert-replay OLD -o NEW rewrite a replay file of an older format in the current one
  check-determinism FILE    run a scenario several times and compare trace hashes
  timeline FILE|REPLAY      draw a run as a self-contained HTML page (SVG timeline)
  fuzz [FILE]               property-based fuzzing of generated scenarios or of one scenario's schedules
  explore TARGET            random, PCT or bounded exhaustive exploration of one race's schedules
  races                     the race catalog: found under the buggy profile, clean under the fixed one
  triage DIR|FILE…          merge a campaign's replay files (many shards, many machines): one line per distinct failure
  record SPEC…              record conformance goldens from a real QEMU 7.2 (needs qemu-system-x86_64)
  conform FILE|DIR…         compare goldens or ../shared/conformance recordings with the simulator
  serve [FILE] --qmp ADDR   the simulated QEMU behind a real QMP socket (unix or TCP)
  profiles                  list the profiles (historical behaviours)
  invariants                list the invariants a scenario can check
  commands                  list the QMP commands the simulator implements, with arguments and replies
  events                    list QEMU 7.2's QMP events with their data members, and which blocksim sends
  schema                    print the scenario file's JSON Schema (for editors)
  help [COMMAND]            show help for a command (also COMMAND --help)
  --version                 print blocksim's version

Exit codes: 0 expectations held, 1 an expectation failed, 2 bad input.

Examples:
  blocksim run scenarios/transaction-of-backups.yaml
  blocksim run scenarios/*.yaml --strategy random --seed 7
  blocksim replay scenarios/txn-start-in-commit.txn-start-on-create.replay.json
  blocksim help run`,
  run: `Usage: blocksim run FILE… [options]

Runs each scenario file (YAML or JSON) and prints its event log (virtual
time from the end of setup, source, what happened; a reply names the step
and command it answers; long lines folded), then PASS or FAIL with a diff of
expected versus observed for every failed expectation. On a terminal a
progress line (virtual time, each job's offset of len) shows while a run is
long; never when piped or with --json.

Options:
  --seed N             override the scenario's seed
  --profile P          override the scenario's profile (see: blocksim profiles)
  --strategy S         fifo (default), random or pct
  --trace              print the kernel trace (every record) instead of the event log
  --json               print QMP JSON lines (commands, replies, events), then one
                       {"blocksim": …} result line per scenario
  --quiet              print only the verdicts
  --save-replay PATH   write a replay file of the run (one FILE only)
  --allow-import PATH  let imports resolve inside PATH too (repeatable); by default an
                       import must stay inside the scenario file's folder tree

Exit codes: 0 all expectations held, 1 one failed, 2 bad input.

Examples:
  blocksim run scenarios/backup.yaml
  blocksim run scenarios/mirror.yaml --json
  blocksim run scenarios/txn-start-in-commit.yaml --profile txn-start-on-create --strategy random --seed 3
  blocksim run scenarios/backup.yaml --save-replay /tmp/backup.replay.json`,
  replay: `Usage: blocksim replay REPLAY.json [--json] [--trace] [--quiet] [--allow-import PATH]

Repeats a recorded run — of a scenario file, an inline scenario, a fuzz
case, a catalog race or a blocksim serve session — with the same profile,
seed and choice log. Checks
that the scenario file is unchanged (sha256), that the run takes the same
choices, ends with the same trace hash and the same violations, and says
exactly where it departs if not. Exit 0 when reproduced and the run passed,
1 otherwise (a reproduced race exits 1 every time, with the same failure),
2 bad input. A replay file's scenario must lie inside the replay file's
folder tree unless --allow-import PATH allows another. 'fuzz --replay' and
'races --replay' and 'serve --replay' are this command.

Examples:
  blocksim replay scenarios/start-shim.no-start-shim.replay.json
  blocksim run scenarios/backup.yaml --save-replay r.json && blocksim replay r.json`,
  "convert-replay": `Usage: blocksim convert-replay OLD.json -o NEW.replay.json [--allow-import PATH]

Rewrites a replay file of an older format ("blocksim-replay": 1,
"blocksim-race-replay", "blocksim-fuzz-replay", "blocksim-serve-replay", or
{ "version", "race" }) in
the current one. It replays the old run exactly and writes NEW only when the
run gives the recorded trace hash; NEW may be OLD's own path.

Exit codes: 0 converted, 1 the old run no longer reproduces (nothing written),
2 bad input.

Example:
  blocksim convert-replay old.replay.json -o old.replay.json`,
  "check-determinism": `Usage: blocksim check-determinism FILE [--runs N] [--seed N] [--profile P] [--strategy S]

Runs the scenario N times (default 3) with the same parameters and compares
trace hashes; on a difference, prints the first event where two runs differ.
Exit 0 when every run is identical, 1 otherwise, 2 bad input (as run: a
scenario whose world cannot be built is bad input here too).

Examples:
  blocksim check-determinism scenarios/transaction-of-backups.yaml --runs 5
  blocksim check-determinism scenarios/mirror.yaml --strategy random --seed 11`,
  timeline: `Usage: blocksim timeline FILE|REPLAY.json -o OUT.html [--seed N] [--profile P] [--strategy S]

Runs a scenario (or repeats a replay) and writes a self-contained HTML page
with a timeline: a lane per QMP client, job, drained node and device; job
states as coloured spans; commands and events as labelled markers with
tooltips; the first violation or failure highlighted with its full text.
Zoom and pan with + − and the arrow keys, the wheel or dragging; 0 shows
the whole run, v the window around the violation, m switches the x axis
(virtual time, log order, or both: events at one instant stand apart).

Exit codes, as run: 0 the run's expectations held, 1 one failed (the page is
written either way), 2 bad input (nothing is written).

Examples:
  blocksim timeline scenarios/transaction-of-backups.yaml -o txn.html
  blocksim timeline scenarios/txn-start-in-commit.txn-start-on-create.replay.json -o race.html`,
  profiles: `Usage: blocksim profiles

Lists the profiles: named sets of behaviour switches that restore a
historical version of the job machinery, with the change each undoes.`,
  invariants: `Usage: blocksim invariants

Lists the invariants a scenario's expect.invariants can name (default: all).`,
  commands: `Usage: blocksim commands

Lists the QMP commands the simulator implements: each with its arguments
(\`name?\` is optional; types as QAPI's: str, int, size, bool, enum values)
and what it answers (\`{}\`, or a list of a QAPI struct with its members).`,
  events: `Usage: blocksim events

Lists QEMU 7.2's QMP events with their data members (\`name?\` is optional):
first the job events blocksim sends, then those a real QEMU 7.2 can send
and blocksim does not model. Scenario files are checked against this list:
an unknown event, a data member the event never carries, or an event
blocksim never sends in on-event, expect.events or never is an error.`,
  schema: `Usage: blocksim schema

Prints the JSON Schema of scenario files (draft 2020-12, the form a person
writes: sizes, durations and rates may be strings with units). Editors that
read JSON Schema validate and complete scenario files with it, e.g. with the
YAML language server:

  npx blocksim schema > blocksim.schema.json
  # first line of a scenario:  # yaml-language-server: $schema=../blocksim.schema.json`,
};

export function help(topic: string, io: Io): number {
  io.out(HELP[topic] + "\n");
  return EXIT_OK;
}
