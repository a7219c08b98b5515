/**
 * What every command shares: where output goes, exit codes, option parsing
 * with "did you mean" errors, the run options (--seed, --profile,
 * --strategy), and the progress line (a terminal only; wall-clock time is
 * read here, outside the simulation).
 */
import { parseArgs, type ParseArgsConfig } from "node:util";
import { STRATEGY_NAMES, strategyByName, type StrategyName } from "../sim/harness/strategy.js";
import { EXPLORE_STRATEGIES, type ExploreStrategy } from "../sim/harness/explore.js";
import { lookupProfile, UnknownProfileError } from "../sim/mgmt/profiles.js";
import { didYouMean } from "../sim/scenario/errors.js";
import { escapeTerminal } from "./terminal.js";
import { UsageError, wholeNumberOption } from "../sim/scenario/limits.js";
import type { LoadedScenario, LoadOptions } from "../sim/scenario/loader.js";
import type { RunOptions } from "../sim/scenario/runner.js";

export interface Io {
  out(text: string): void;
  err(text: string): void;
  /** Whether stderr is a terminal (progress lines). */
  tty: boolean;
  /** stderr without escaping, for blocksim's own terminal control (the progress line); default err. */
  rawErr?(text: string): void;
  /** The terminal's width, if known: a progress line longer than this would wrap and could not be redrawn in place. */
  columns?: number;
}

export const EXIT_OK = 0, EXIT_FAIL = 1, EXIT_INPUT = 2;

export { UsageError } from "../sim/scenario/limits.js";

export const RUN_OPTIONS = {
  seed: { type: "string" },
  profile: { type: "string" },
  strategy: { type: "string" },
  trace: { type: "boolean" },
  json: { type: "boolean" },
  quiet: { type: "boolean" },
  "save-replay": { type: "string" },
  runs: { type: "string" },
  output: { type: "string", short: "o" },
  "allow-import": { type: "string", multiple: true },
  help: { type: "boolean", short: "h" },
} as const satisfies ParseArgsConfig["options"];

export type Values = {
  [K in keyof typeof RUN_OPTIONS]?: (typeof RUN_OPTIONS)[K] extends { multiple: true } ? string[] : (typeof RUN_OPTIONS)[K]["type"] extends "boolean" ? boolean : string;
};

/** Where imports may come from besides the scenario's folder tree (--allow-import PATH, repeatable). */
export function loadOptions(v: Values): LoadOptions {
  return v["allow-import"] ? { allowImport: v["allow-import"] } : {};
}

export function parse(args: string[], allowed: (keyof typeof RUN_OPTIONS)[], command: string): { values: Values; files: string[] } {
  const options = Object.fromEntries(allowed.map((k) => [k, RUN_OPTIONS[k]]));
  for (let i = 0; i < args.length - 1; i++) {
    const name = args[i].startsWith("--") ? args[i].slice(2) : undefined;
    const takesValue = name !== undefined && (allowed as string[]).includes(name) && RUN_OPTIONS[name as keyof typeof RUN_OPTIONS].type === "string";
    if (takesValue && args[i + 1].startsWith("-") && args[i + 1] !== "-") {
      throw new UsageError(`--${name} expects a value, got ${JSON.stringify(args[i + 1])}, which reads as an option (write --${name}=${args[i + 1]} to pass it); see: blocksim help ${command}`);
    }
  }
  try {
    const r = parseArgs({ args, options, allowPositionals: true, strict: true });
    return { values: r.values as Values, files: r.positionals };
  } catch (e) {
    const msg = (e as Error).message;
    const m = /Unknown option '(-{1,2}[^']+)'/.exec(msg);
    if (m) {
      const names = allowed.map((k) => `--${k}`);
      throw new UsageError(`unknown option ${m[1]} for '${command}'${didYouMean(m[1], names)}; see: blocksim help ${command}`);
    }
    throw new UsageError(`${msg.replace(/\. To specify a positional argument.*$/, "")}; see: blocksim help ${command}`);
  }
}

/** The error `run` gives for a scenario whose world could not be built (every command gives the same, exit 2). */
export function setupFailure(file: string, r: { failures: { kind: string; message: string }[] }): UsageError | undefined {
  const setup = r.failures.filter((f) => f.kind === "setup");
  if (setup.length === 0) return undefined;
  return new UsageError(`${file}: the scenario's world could not be built:\n${setup.map((f) => `  ${f.message}`).join("\n")}`);
}

/**
 * --seed, --profile and --strategy, checked now; the options for a loaded
 * scenario come later, because a --strategy without --seed is seeded with
 * the scenario's own seed.
 */
export function runOptions(v: Values): (loaded: LoadedScenario) => RunOptions {
  // Exact or refused: 2^64 would otherwise round to the same double as 2^64+1 and give the same run.
  const seed = v.seed === undefined ? undefined : wholeNumberOption("--seed", v.seed, 0);
  const profile = v.profile !== undefined ? profileOption(v.profile) : undefined;
  let name: StrategyName | undefined;
  if (v.strategy !== undefined) {
    const names: readonly string[] = STRATEGY_NAMES;
    if (!names.includes(v.strategy)) throw new UsageError(`unknown strategy "${v.strategy}"${didYouMean(v.strategy, [...names])}; expected ${names.join(", ")}`);
    name = v.strategy as StrategyName;
  }
  return (loaded) => ({
    ...(seed !== undefined ? { seed } : {}), ...(profile !== undefined ? { profile } : {}),
    ...(name !== undefined ? { strategy: strategyByName(name, seed ?? loaded.scenario.seed) } : {}),
  });
}

/** A --profile value, looked up in the one profile catalog; the same error for an unknown one in every command. */
export function profileOption(name: string): string {
  try {
    lookupProfile(name);
  } catch (e) {
    if (!(e instanceof UnknownProfileError)) throw e;
    throw new UsageError(`unknown profile "${name}"${didYouMean(name, [...e.known])}; known profiles: ${e.known.join(", ")}`);
  }
  return name;
}

/**
 * The progress line on a terminal: one line redrawn in place (carriage
 * return, erase line), never wider than the terminal, cleared before any
 * other output. Calls from inside a run are throttled by wall time here;
 * the simulation only offers a look every so many kernel steps.
 */
export class Progress {
  private shown = false;
  private readonly started = Date.now();
  /** When tick last drew (wall ms); the first tick always draws. */
  private lastMs = -Infinity;
  constructor(private readonly io: Io, private readonly enabled: boolean, private readonly intervalMs = 200) {}
  /** A throttled show for calls from inside a run (at most once per interval of wall time); `text` is built only when drawn. */
  tick(text: () => string): void {
    if (!this.enabled) return;
    const now = Date.now();
    if (now - this.lastMs < this.intervalMs) return;
    this.lastMs = now;
    this.show(text());
  }
  show(text: string): void {
    if (!this.enabled) return;
    const secs = ((Date.now() - this.started) / 1000).toFixed(1);
    let line = `${escapeTerminal(text)} (${secs}s)`;
    const width = this.io.columns;
    if (width !== undefined && width > 10 && line.length > width - 1) line = `${line.slice(0, width - 2)}…`;
    (this.io.rawErr ?? this.io.err)(`\r\x1b[2K${line}`);
    this.shown = true;
  }
  clear(): void {
    if (this.shown) (this.io.rawErr ?? this.io.err)("\r\x1b[2K");
    this.shown = false;
  }
}

/**
 * `fuzz --replay FILE`, `races --replay FILE` and `serve --replay FILE` are
 * spellings of `blocksim replay FILE`: the arguments of the replay command
 * they stand for (the file first, then the rest, which replay checks as its
 * own options), or undefined without --replay.
 */
export function replaySpelling(args: readonly string[]): string[] | undefined {
  const i = args.findIndex((a) => a === "--replay" || a.startsWith("--replay="));
  if (i < 0) return undefined;
  const before = args.slice(0, i);
  if (args[i] !== "--replay") return [args[i].slice("--replay=".length), ...before, ...args.slice(i + 1)];
  // No value: replay says it needs exactly one file.
  return i + 1 < args.length ? [args[i + 1], ...before, ...args.slice(i + 2)] : [...before];
}

/** An explorer's --strategy (explore, races): random (the default), pct or exhaustive; the same error in both. */
export function exploreStrategyOption(v: string | undefined): ExploreStrategy {
  if (v === undefined) return "random";
  const names: readonly string[] = EXPLORE_STRATEGIES;
  if (!names.includes(v)) throw new UsageError(`--strategy expects ${EXPLORE_STRATEGIES.slice(0, -1).join(", ")} or ${EXPLORE_STRATEGIES[EXPLORE_STRATEGIES.length - 1]}, got "${v}"`);
  return v as ExploreStrategy;
}
