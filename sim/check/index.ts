/** The invariant library: named invariants checked on every step and at the end of a run. */
export * from "./types.js";
export { INVARIANTS, invariantByName } from "./invariants.js";
export { checkRun, formatViolation, listInvariants, type RunCheck, type InvariantSelection } from "./check.js";
