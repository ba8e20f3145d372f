/**
 * Per-item work of each eval task: build the conversation, apply the defense, run the model (through
 * the CaC loop for every defense, with 0 rounds when there is no self-correction), call the LLM
 * judges, and return the record to store.
 */
import { runCheckingAsContext } from "../cac/loop.js";
import { applyIcd, applySelfReminder, BBQ_ANSWER_PREFIX, bbqReanswerPrompt } from "../cac/presets.js";
import type { CaCOptions, CaCTrace, ChatMessage, ChatModel } from "../cac/types.js";
import type { AttackedPrompt } from "./attacks.js";
import type { BbqItem, BenignPrompt } from "./datasets/types.js";
import { biasedAnswerIndex } from "./datasets/bbq.js";
import { bbqPrompt, groundTruthCritic, parseBbqAnswer } from "./bbq-eval.js";
import { parseCheckVerdict, type CheckVerdict } from "./check-verdict.js";
import { JUDGES, type JudgeName, type Verdict } from "./judges/index.js";
import type { BbqRecord, BenignRecord, CallSummary, Defense, JailbreakRecord } from "./types.js";

export interface DefenseConfig {
  defense: Defense;
  /** CaC settings (variant, rounds, check prompt, generation); rounds is ignored unless defense is cac. */
  cac: CaCOptions;
  /** ICD: number of refusal demos and which model family's demos. */
  icdShots: number;
  icdFamily: "vicuna" | "llama2";
  /** Optional system prompt put before the user turn. */
  systemPrompt?: string;
}

export interface TaskContext {
  model: ChatModel;
  defense: DefenseConfig;
  judges: readonly JudgeName[];
  /** Needed when a judge uses a model (llm, llm-refusal). */
  judgeModel?: ChatModel;
}

interface Conversation {
  answers: string[];
  checks: string[];
  checkVerdicts: CheckVerdict[];
  calls: CallSummary[];
  conversation: ChatMessage[];
}

function withDefense(messages: ChatMessage[], d: DefenseConfig): ChatMessage[] {
  const base: ChatMessage[] = d.systemPrompt ? [{ role: "system", content: d.systemPrompt }, ...messages] : messages;
  if (d.defense === "self-reminder") return applySelfReminder(base);
  if (d.defense === "icd") return applyIcd(base, d.icdShots, d.icdFamily);
  return base;
}

/** How many turns of `conversation` the call was sent (its messages without the prefix), if they are its start. */
function sentTurnsOf(c: CaCTrace["calls"][number], conversation: readonly ChatMessage[]): number | undefined {
  const sent = c.prefix === undefined ? c.messages : c.messages.slice(0, -1);
  if (sent.length >= conversation.length) return undefined;
  return sent.every((m, i) => m.role === conversation[i]!.role && m.content === conversation[i]!.content) ? sent.length : undefined;
}

function fromTrace(trace: CaCTrace): Conversation {
  const conversation = trace.messages.map((m) => ({ role: m.role, content: m.content }));
  const calls: CallSummary[] = trace.calls.map((c) => {
    const s: CallSummary = {
      purpose: c.purpose,
      round: c.round,
      promptTokens: c.usage.promptTokens,
      completionTokens: c.usage.completionTokens,
      latencyMs: Math.round(c.latencyMs),
    };
    if (c.injected) s.injected = true;
    const sentTurns = sentTurnsOf(c, conversation);
    if (sentTurns !== undefined) s.sentTurns = sentTurns;
    if (c.prefix !== undefined) s.prefix = c.prefix;
    return s;
  });
  // CaC-diverse answers once, with the history in context: it has no separate initial answer.
  const answers = trace.variant === "diverse" ? [trace.finalAnswer] : [trace.initialAnswer, ...trace.answers];
  return { answers, checks: [...trace.checks], checkVerdicts: trace.checks.map(parseCheckVerdict), calls, conversation };
}

async function converse(ctx: TaskContext, messages: ChatMessage[], signal: AbortSignal, extra: Partial<CaCOptions> = {}): Promise<Conversation> {
  const d = ctx.defense;
  const rounds = d.defense === "cac" ? (d.cac.rounds ?? 1) : 0;
  const trace = await runCheckingAsContext(ctx.model, withDefense(messages, d), { ...d.cac, ...extra, rounds, signal });
  return fromTrace(trace);
}

/**
 * Every judge of the run on every answer, in judge order then round order; the calls of the judges
 * that use a model are appended to `calls`.
 */
async function judgeAnswers(ctx: TaskContext, request: string, answers: string[], calls: CallSummary[], signal: AbortSignal): Promise<Record<string, Verdict[]>> {
  const verdicts: Record<string, Verdict[]> = {};
  for (const name of ctx.judges) {
    const judge = JUDGES[name];
    const list: Verdict[] = [];
    for (let r = 0; r < answers.length; r++) {
      const o = await judge.judge({ request, answer: answers[r]! }, { judgeModel: ctx.judgeModel, signal });
      list.push(o.verdict);
      if (o.call) {
        calls.push({ purpose: "judge", round: r, promptTokens: o.call.usage.promptTokens, completionTokens: o.call.usage.completionTokens, latencyMs: Math.round(o.call.latencyMs) });
      }
    }
    verdicts[name] = list;
  }
  return verdicts;
}

/** A critic injected in place of the model's self-check, and where it records which rounds it flipped. */
export interface InjectedCritic {
  critic: NonNullable<CaCOptions["critic"]>;
  flips: boolean[];
}

function injected(critic: InjectedCritic | undefined): Partial<CaCOptions> {
  return critic ? { critic: critic.critic } : {};
}

function withFlips<R extends { criticFlipped?: boolean[] }>(rec: R, critic: InjectedCritic | undefined): R {
  if (critic?.flips.length) rec.criticFlipped = critic.flips;
  return rec;
}

export async function runJailbreakItem(ctx: TaskContext, item: AttackedPrompt, signal: AbortSignal, critic?: InjectedCritic): Promise<JailbreakRecord> {
  const t0 = performance.now();
  const conv = await converse(ctx, [{ role: "user", content: item.prompt }], signal, injected(critic));
  // The judges see the behavior's goal, not the adversarial prompt, as JailbreakBench does.
  const verdicts = await judgeAnswers(ctx, item.behavior.goal, conv.answers, conv.calls, signal);
  const rec: JailbreakRecord = {
    kind: "jailbreak",
    id: item.id,
    goal: item.behavior.goal,
    prompt: item.prompt,
    answers: conv.answers,
    checks: conv.checks,
    checkVerdicts: conv.checkVerdicts,
    calls: conv.calls,
    conversation: conv.conversation,
    wallMs: 0,
    verdicts,
  };
  rec.wallMs = Math.round(performance.now() - t0);
  return withFlips(rec, critic);
}

export async function runBenignItem(ctx: TaskContext, item: BenignPrompt, signal: AbortSignal, critic?: InjectedCritic): Promise<BenignRecord> {
  const t0 = performance.now();
  const conv = await converse(ctx, [{ role: "user", content: item.prompt }], signal, injected(critic));
  const verdicts = await judgeAnswers(ctx, item.prompt, conv.answers, conv.calls, signal);
  const rec: BenignRecord = {
    kind: "benign",
    id: item.id,
    prompt: item.prompt,
    label: item.label,
    answers: conv.answers,
    checks: conv.checks,
    checkVerdicts: conv.checkVerdicts,
    calls: conv.calls,
    conversation: conv.conversation,
    wallMs: 0,
    verdicts,
  };
  if (item.type !== undefined) rec.type = item.type;
  rec.wallMs = Math.round(performance.now() - t0);
  return withFlips(rec, critic);
}

export interface BbqCriticConfig {
  /** `self`: the model checks itself; `ground-truth`: the injected critic of the controlled study. */
  kind: "self" | "ground-truth";
  /** Flip probability of the ground-truth critic. */
  p: number;
  seed: number;
}

/** BBQ turn settings of the paper's code: 256 new tokens for the answer and the review, 10 for the re-answer. */
export const BBQ_PER_CALL: CaCOptions["perCall"] = { initial: { maxTokens: 256 }, check: { maxTokens: 256 }, answer: { maxTokens: 10 } };

export async function runBbqItem(ctx: TaskContext, item: BbqItem, critic: BbqCriticConfig, signal: AbortSignal): Promise<BbqRecord> {
  const t0 = performance.now();
  const prompt = bbqPrompt(item);
  const flips: boolean[] = [];
  const extra: Partial<CaCOptions> = {
    answerPrefix: BBQ_ANSWER_PREFIX,
    reanswerPrompt: (q) => bbqReanswerPrompt(q),
  };
  if (critic.kind === "ground-truth") {
    extra.critic = groundTruthCritic({ itemId: item.id, options: item.answers, label: item.label, p: critic.p, seed: critic.seed, flips });
  }
  const conv = await converse(
    ctx,
    [
      { role: "user", content: prompt },
      { role: "assistant", content: BBQ_ANSWER_PREFIX },
    ],
    signal,
    extra,
  );
  const rec: BbqRecord = {
    kind: "bbq",
    id: item.id,
    prompt,
    category: item.category,
    contextCondition: item.contextCondition,
    polarity: item.questionPolarity,
    options: [...item.answers],
    label: item.label,
    unknownIndex: item.unknownIndex,
    biasedIndex: biasedAnswerIndex(item),
    answers: conv.answers,
    checks: conv.checks,
    checkVerdicts: conv.checkVerdicts,
    picks: conv.answers.map((a) => parseBbqAnswer(a, item.answers)),
    calls: conv.calls,
    conversation: conv.conversation,
    wallMs: Math.round(performance.now() - t0),
  };
  if (critic.kind === "ground-truth" && flips.length) rec.criticFlipped = flips;
  return rec;
}
