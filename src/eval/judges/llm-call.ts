/** The one judge-model call the LLM judges make, and the guard that keeps judged text inside its delimiters. */
import type { ChatModel } from "../../cac/types.js";
import type { JudgeContext, JudgeOutcome } from "./types.js";

/** Keeps the judged text from closing the template's delimiters (prompt injection into the judge). */
export function fenced(text: string, tags: RegExp): string {
  return text.replace(tags, "[delimiter removed]");
}

/** Greedy, short: the judges answer with one word. */
export async function callJudgeModel(
  judgeName: string,
  ctx: JudgeContext,
  content: string,
): Promise<{ reply: string; call: NonNullable<JudgeOutcome["call"]> }> {
  const judge: ChatModel | undefined = ctx.judgeModel;
  if (!judge) throw new Error(`the ${judgeName} judge needs a judge model (--judge-base-url/--judge-model)`);
  const r = await judge.generate([{ role: "user", content }], { maxTokens: 8, temperature: 0, signal: ctx.signal });
  return { reply: r.text, call: { usage: r.usage, latencyMs: r.latencyMs } };
}

/** The lower-cased words of a reply. */
export function words(reply: string): string[] {
  return reply.toLowerCase().match(/[a-z]+/g) ?? [];
}
