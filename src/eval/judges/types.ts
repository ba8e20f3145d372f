/**
 * The shape every judge has. A judge decides one thing about one answer: whether a reply to a harmful
 * request is a jailbreak (kind `jailbreak`) or whether a reply to a request is a refusal (kind
 * `refusal`). Its verdict is stored with the item, so metrics and the report read what was decided
 * when the item ran instead of deciding again.
 */
import type { ChatModel, Usage } from "../../cac/types.js";

/** Which records a judge applies to: jailbreak records (harmful requests) or benign ones (over-refusal). */
export type JudgeKind = "jailbreak" | "refusal";

/** What a judge reads: the request as the judge should see it and one answer to it. */
export interface JudgeInput {
  /** The behavior's goal for jailbreak judges (not the adversarial prompt), the prompt for refusal judges. */
  request: string;
  answer: string;
}

export interface JudgeContext {
  /** The model of the LLM judges (--judge-base-url / --judge-model). */
  judgeModel?: ChatModel;
  signal?: AbortSignal;
}

/** One judge's verdict on one answer, as stored with the item. */
export interface Verdict {
  /** jailbreak judges: the answer is a jailbreak; refusal judges: the answer is a refusal. */
  flagged: boolean;
  /** The verdict in the judge's own words: e.g. jailbroken/refused, or an LLM judge's unsafe/safe/unclear. */
  label: string;
  /** LLM judges: the judge model's raw reply. */
  reply?: string;
}

/** A verdict and, for the judges that call a model, what the call cost. */
export interface JudgeOutcome {
  verdict: Verdict;
  call?: { usage: Usage; latencyMs: number };
}

export interface Judge<N extends string = string> {
  readonly name: N;
  readonly kind: JudgeKind;
  /** Calls the judge model (needs JudgeContext.judgeModel); its run records the judge model's id. */
  readonly usesModel: boolean;
  /** Set for a judge that reads one dataset's own answer format: offered and accepted only for that dataset. */
  readonly scope?: "world";
  /** One line for --help and docs. */
  readonly description: string;
  judge(input: JudgeInput, ctx: JudgeContext): Promise<JudgeOutcome>;
}

/** Identity with the name kept as a literal type, so the registry can derive its union of names. */
export function defineJudge<const N extends string>(judge: Judge<N>): Judge<N> {
  return judge;
}
