/**
 * Fault injection rules, in the spirit of QEMU's blkdebug `inject-error`.
 *
 * Fault model: a rule matches requests by operation, by a byte range they
 * overlap and by issuer; it may let the first N matching requests through,
 * fire once or on every eligible request, or leave each eligible request to
 * the fuzzer as a `choose(label, 2)` choice point (pick 1 = fail). A request
 * that a rule fails never reaches the medium: nothing is written, no queue
 * slot or bandwidth is used, and the error is delivered at the instant of
 * submission (as blkdebug does from a bottom half).
 *
 * Limits: rules are evaluated once, at submission, in the order they were
 * added; every rule whose filter matches counts the request (for
 * `afterRequests`), and the first eligible rule decides. A choice rule that
 * picks 0 lets the request through without consulting later rules. No
 * delayed errors, no corruption, no torn writes.
 */
import { ERRNOS, type Errno } from "./errors.js";

/** The requests a device understands. */
export type IoOp = "read" | "write" | "flush" | "write-zeroes" | "discard";

/** Every IoOp, for validation. */
export const IO_OPS: readonly IoOp[] = ["read", "write", "flush", "write-zeroes", "discard"];

/** Whether `op` is an IoOp (a switch: IO_OPS.includes was a measurable part of every request). */
export function isIoOp(op: unknown): op is IoOp {
  switch (op) {
    case "read": case "write": case "flush": case "write-zeroes": case "discard":
      return true;
    default:
      return false;
  }
}

/** A rule as configured. */
export interface FaultRule {
  /** The operation(s) it applies to (default: all). */
  op?: IoOp | readonly IoOp[];
  /** With `endBytes`: the byte range [startBytes, endBytes) a request must overlap (default: any). A rule with a range never matches a flush. */
  startBytes?: number;
  endBytes?: number;
  /** Only requests with this issuer label. */
  issuer?: string;
  /** The error to inject. */
  errno: Errno;
  /** Fire on the first eligible request only (default false: on every eligible request). */
  once?: boolean;
  /** Let this many matching requests through before the rule becomes eligible (default 0). */
  afterRequests?: number;
  /** Make every eligible request a choice point with this label: the strategy picks 1 to fail it, 0 to let it through. */
  choose?: string;
}

/** A rule in force, with its counters; also the handle to remove it. */
export class ActiveFault {
  /** Requests that matched the filter so far. */
  matched = 0;
  /** Faults injected so far. */
  fired = 0;
  /** Set once a `once` rule has fired. */
  spent = false;
  /** @internal */ readonly ops: number;
  constructor(readonly id: number, readonly rule: Readonly<FaultRule>) {
    this.ops = opMask(rule.op);
  }
}

/** The decision for one request. */
export type FaultDecision = undefined | { fault: ActiveFault; choose: boolean };

/** The rules of one device. */
export class FaultRules {
  private rules: ActiveFault[] = [];
  private nextId = 1;
  constructor(private readonly device: string) {}

  /** Validates and adds a rule; returns its handle. */
  add(rule: FaultRule): ActiveFault {
    const problem = ruleProblem(rule);
    if (problem) {
      problem.message = `device "${this.device}": fault rule ${this.nextId}: ${problem.message}`; // named only when it fails: every fuzz world adds rules
      throw problem;
    }
    const a = new ActiveFault(this.nextId++, copyRule(rule));
    this.rules.push(a);
    return a;
  }

  /** Removes a rule; returns whether it was there. */
  remove(fault: ActiveFault): boolean {
    const i = this.rules.indexOf(fault);
    if (i < 0) return false;
    this.rules.splice(i, 1);
    return true;
  }

  /** Removes every rule. */
  clear(): void {
    if (this.rules.length > 0) this.rules = []; // not `length = 0`: a slow path in V8, and most devices have no rules
  }

  /** The rules in force, in evaluation order. */
  list(): readonly ActiveFault[] {
    return this.rules;
  }

  get size(): number {
    return this.rules.length;
  }

  /** Counts the request against every matching rule and returns the first eligible one. */
  decide(op: IoOp, offset: number, bytes: number, issuer: string): FaultDecision {
    const bit = OP_BIT[op];
    let decision: FaultDecision = undefined;
    for (const a of this.rules) {
      if (a.spent || (a.ops & bit) === 0) continue;
      const r = a.rule;
      if (r.issuer !== undefined && r.issuer !== issuer) continue;
      if (r.startBytes !== undefined || r.endBytes !== undefined) {
        if (op === "flush") continue;
        const start = r.startBytes ?? 0, end = r.endBytes ?? Infinity;
        if (offset >= end || offset + bytes <= start) continue;
      }
      a.matched++;
      if (decision !== undefined || a.matched <= (r.afterRequests ?? 0)) continue;
      decision = { fault: a, choose: r.choose !== undefined };
    }
    return decision;
  }
}

/**
 * The rule's own copy, field by field: spreading a rule that fast-check or
 * zod built takes V8's slow path (~0.4 µs), and every fuzz world adds its
 * rules twice (its setup writes lift them meanwhile).
 */
function copyRule(r: FaultRule): FaultRule {
  const c: FaultRule = { errno: r.errno };
  if (r.op !== undefined) c.op = r.op;
  if (r.startBytes !== undefined) c.startBytes = r.startBytes;
  if (r.endBytes !== undefined) c.endBytes = r.endBytes;
  if (r.issuer !== undefined) c.issuer = r.issuer;
  if (r.once !== undefined) c.once = r.once;
  if (r.afterRequests !== undefined) c.afterRequests = r.afterRequests;
  if (r.choose !== undefined) c.choose = r.choose;
  return c;
}

const OP_BIT: Record<IoOp, number> = { read: 1, write: 2, flush: 4, "write-zeroes": 8, discard: 16 };

function opMask(op: FaultRule["op"]): number {
  if (op === undefined) return 31;
  const list = typeof op === "string" ? [op] : op;
  let m = 0;
  for (const o of list) m |= OP_BIT[o];
  return m;
}

/** What is wrong with a rule, as the error to throw (its message without the rule's name), or undefined. */
function ruleProblem(rule: FaultRule): TypeError | RangeError | undefined {
  if (rule === null || typeof rule !== "object") return new TypeError(`expected an object, got ${String(rule)}`);
  if (!ERRNOS.includes(rule.errno)) return new TypeError(`errno must be one of ${ERRNOS.join(", ")}, got ${JSON.stringify(rule.errno)}`);
  const op = rule.op;
  if (op !== undefined && !(typeof op === "string" ? isIoOp(op) : Array.isArray(op) && op.length > 0 && op.every(isIoOp))) {
    return new TypeError(`op must be one of ${IO_OPS.join(", ")} or a non-empty list of them, got ${JSON.stringify(op)}`);
  }
  const count = notCount(rule.startBytes, "startBytes") ?? notCount(rule.endBytes, "endBytes") ?? notCount(rule.afterRequests, "afterRequests");
  if (count) return count;
  if (rule.startBytes !== undefined && rule.endBytes !== undefined && rule.endBytes <= rule.startBytes) {
    return new RangeError(`endBytes (${rule.endBytes}) must be greater than startBytes (${rule.startBytes})`);
  }
  if (rule.choose !== undefined && (typeof rule.choose !== "string" || rule.choose === "")) {
    return new TypeError(`choose must be a non-empty choice label, got ${JSON.stringify(rule.choose)}`);
  }
  if (rule.once !== undefined && typeof rule.once !== "boolean") {
    return new TypeError(`once must be true or false, got ${JSON.stringify(rule.once)}`);
  }
  return undefined;
}

function notCount(v: number | undefined, field: string): RangeError | undefined {
  return v === undefined || (Number.isSafeInteger(v) && v >= 0) ? undefined : new RangeError(`${field} must be a whole number >= 0, got ${String(v)}`);
}
