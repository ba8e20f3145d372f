/**
 * The judge registry. Each judge lives in its own file and is listed once below; its name joins the
 * JudgeName union from here, so adding a judge is one new file plus one line in JUDGE_LIST.
 */
import { UserError } from "../../util/errors.js";
import { gcgListJudge } from "./gcg-list.js";
import { llmRefusalJudge } from "./llm-refusal.js";
import { llmJudge } from "./llm.js";
import { refusalJudge } from "./refusal.js";
import { substringJudge } from "./substring.js";
import type { Judge, JudgeKind } from "./types.js";
import { worldJudge, worldRefusalJudge } from "./world.js";

const JUDGE_LIST = [substringJudge, gcgListJudge, llmJudge, refusalJudge, llmRefusalJudge, worldJudge, worldRefusalJudge] as const;

export type JudgeName = (typeof JUDGE_LIST)[number]["name"];

export const JUDGES: { readonly [N in JudgeName]: Judge<N> } = Object.fromEntries(JUDGE_LIST.map((j) => [j.name, j])) as never;

/**
 * Judge names of one kind, in registry order. Scoped judges (the world's) only with `scope`, where they
 * come first: they are the ones that read that dataset's answers.
 */
export function judgeNames(kind: JudgeKind, scope?: "world"): JudgeName[] {
  const judges: readonly Judge<JudgeName>[] = JUDGE_LIST;
  const of = judges.filter((j) => j.kind === kind);
  return [...of.filter((j) => scope !== undefined && j.scope === scope), ...of.filter((j) => j.scope === undefined)].map((j) => j.name);
}

/** Jailbreak judges, by the name `--judge` takes. */
export const JAILBREAK_JUDGES: readonly JudgeName[] = judgeNames("jailbreak");
/** Refusal judges for the benign sets (over-refusal). */
export const REFUSAL_JUDGES: readonly JudgeName[] = judgeNames("refusal");

export function isJudgeName(name: string): name is JudgeName {
  return Object.hasOwn(JUDGES, name);
}

/** A judge name that is not in the registry, or not of the kind the task needs. */
export class UnknownJudgeError extends UserError {
  readonly judge: string;
  readonly allowed: readonly JudgeName[];
  constructor(judge: string, what: string, allowed: readonly JudgeName[]) {
    super(`--judge ${judge}: unknown judge for ${what}; use a comma-separated list of ${allowed.join(", ")}`);
    this.name = "UnknownJudgeError";
    this.judge = judge;
    this.allowed = allowed;
  }
}

/** The judge called `name`; an UnknownJudgeError unless it is registered (and of `kind`, when given). */
export function getJudge(name: string, kind?: JudgeKind): Judge<JudgeName> {
  const allowed = kind ? judgeNames(kind) : JUDGE_LIST.map((j) => j.name);
  if (!isJudgeName(name) || !allowed.includes(name)) throw new UnknownJudgeError(name, kind ?? "any task", allowed);
  return JUDGES[name];
}

export { defineJudge, type Judge, type JudgeContext, type JudgeInput, type JudgeKind, type JudgeOutcome, type Verdict } from "./types.js";
export { substringJailbroken, substringVerdict, TEST_PREFIXES } from "./substring.js";
export { gcgListJailbroken, gcgListVerdict, GCG_REFUSAL_LIST } from "./gcg-list.js";
export { worldJailbreakVerdict, worldRefusalVerdict } from "./world.js";
export { stringRefusal, refusalVerdict, XSTEST_REFUSAL_PREFIXES } from "./refusal.js";
export { parseJailbreakVerdict, jailbreakJudgeMessages, JBB_JAILBREAK_JUDGE_PROMPT, type LlmVerdict } from "./llm.js";
export { parseRefusalVerdict, refusalJudgeMessages, JBB_REFUSAL_JUDGE_PROMPT, type RefusalVerdict } from "./llm-refusal.js";
