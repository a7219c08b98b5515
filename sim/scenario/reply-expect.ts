/**
 * Whether a step's reply is what its `expect` says: ok, error, a return
 * (subset), an error class/desc, or `any` of these — for a step whose reply
 * legitimately depends on the schedule (a race explored with random
 * strategies), so no schedule gives a false failure.
 */
import type { QmpResponse } from "../qmp/types.js";
import type { StepExpect } from "./schema.js";

type One = Exclude<StepExpect, { any: unknown }>;

/** What an expectation wants, for the diff. */
export function describeExpect(e: StepExpect): string {
  if (e === "ok") return "a return (no error)";
  if (e === "error") return "an error";
  if ("any" in e) return `any of: ${e.any.map(describeExpect).join(" | ")}`;
  if ("return" in e) return `return ${JSON.stringify(e.return)}`;
  const want = typeof e.error === "string" ? { class: e.error } : e.error;
  return `error${want.class ? ` ${want.class}` : ""}${want.desc ? `: ${want.desc}` : ""}${want["desc-contains"] ? ` (desc containing "${want["desc-contains"]}")` : ""}`;
}

/** Whether the reply `r` (undefined: none came) meets `e`; `subset` is the runner's subset match. */
export function replyMatches(e: StepExpect, r: QmpResponse | undefined, subset: (want: unknown, got: unknown) => boolean): boolean {
  if (typeof e === "object" && "any" in e) return e.any.some((x) => replyMatches(x, r, subset));
  return one(e, r, subset);
}

function one(e: One, r: QmpResponse | undefined, subset: (want: unknown, got: unknown) => boolean): boolean {
  const isErr = r !== undefined && "error" in r;
  if (e === "ok") return !isErr;
  if (e === "error") return isErr;
  if ("return" in e) return r !== undefined && !isErr && subset(e.return, (r as { return: unknown }).return);
  if (!isErr) return false;
  const want = typeof e.error === "string" ? { class: e.error } : e.error;
  const er = (r as { error: { class: string; desc: string } }).error;
  return (want.class === undefined || er.class === want.class) && (want.desc === undefined || er.desc === want.desc) &&
    (want["desc-contains"] === undefined || er.desc.includes(want["desc-contains"]));
}

/** Whether an expectation allows an error reply (an unknown command may then be sent on purpose). */
export function allowsError(e: StepExpect): boolean {
  if (e === "error") return true;
  if (e === "ok") return false;
  if ("any" in e) return e.any.some(allowsError);
  return "error" in e;
}
