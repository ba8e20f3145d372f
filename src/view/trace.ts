/**
 * One item's CaC trace as a conversation, with the messages each model call was sent. Records store the
 * whole conversation and, per call, how many of its turns the call was sent (src/eval/types.ts); the
 * turns are labelled here from those calls. Records written before conversations were stored keep only
 * the texts (prompt, answers, checks): for them the conversation is rebuilt the way the CaC loop
 * (src/cac/loop.ts) builds it from the item and the run's config (the defense's system prompt /
 * self-reminder / ICD demos, the user turn, then per round the check prompt, the check, the re-answer
 * prompt and the answer); a CaC-diverse history cannot be rebuilt, and such a trace says so (exact: false).
 */
import { applyIcd, applySelfReminder, BBQ_ANSWER_PREFIX, bbqReanswerPrompt, DEFAULT_CHECK_PROMPT, SELF_INSTRUCT_PROMPT } from "../cac/presets.js";
import type { ChatMessage } from "../cac/types.js";
import type { CallSummary, ItemRecord } from "../eval/types.js";

export interface TraceTurn {
  role: ChatMessage["role"];
  content: string;
  /** What the turn is in the CaC loop. */
  kind: "system" | "demo" | "query" | "initial" | "check-prompt" | "check" | "reanswer-prompt" | "answer";
  round: number;
}

export interface TraceCall extends Omit<CallSummary, "sentTurns"> {
  /** The call was sent turns[0, sentTurns), then the assistant prefix when there is one; null for judges. */
  sentTurns: number | null;
  prefix?: string;
}

export interface Trace {
  turns: TraceTurn[];
  calls: TraceCall[];
  /** `stored`: the record's own conversation; `rebuilt`: reconstructed from an older record's texts. */
  source: "stored" | "rebuilt";
  exact: boolean;
  note?: string;
}

/** What the user turn before a call's reply is, by the call's purpose. */
const PROMPT_KIND: Record<string, TraceTurn["kind"]> = { initial: "query", check: "check-prompt", answer: "reanswer-prompt" };

/** The stored conversation, each turn labelled by the call that answered it or the prompt before that call. */
function storedTrace(rec: ItemRecord, conversation: NonNullable<ItemRecord["conversation"]>): Trace {
  const turns: TraceTurn[] = conversation.map((m) => ({ ...m, kind: m.role === "system" ? "system" : "demo", round: 0 }));
  const label = (i: number, kind: TraceTurn["kind"], round: number) => {
    if (turns[i]) Object.assign(turns[i]!, { kind, round });
  };
  const hasInitial = rec.calls.some((c) => c.purpose === "initial");
  for (const c of rec.calls) {
    if (c.sentTurns === undefined || c.purpose === "judge" || c.purpose === "history") continue;
    const at = c.sentTurns;
    label(at, c.purpose, c.round);
    // CaC-diverse answers once, after its history, with no initial answer: the turn before is the query.
    label(at - 1, c.purpose === "answer" && !hasInitial ? "query" : PROMPT_KIND[c.purpose]!, c.round);
  }
  const calls: TraceCall[] = rec.calls.map((c) => {
    const { sentTurns, ...rest } = c;
    return { ...rest, sentTurns: sentTurns ?? null };
  });
  return { turns, calls, source: "stored", exact: true };
}

interface DefenseView {
  defense?: string;
  variant?: string;
  systemPrompt?: string;
  checkPrompt?: string | string[];
  reanswerPrompt?: string;
  icdShots?: number;
  icdFamily?: "vicuna" | "llama2";
}

function checkPromptFor(d: DefenseView, round: number): string {
  const p = d.checkPrompt ?? DEFAULT_CHECK_PROMPT;
  if (typeof p === "string") return p;
  return p[Math.min(round - 1, p.length - 1)] ?? DEFAULT_CHECK_PROMPT;
}

export function buildTrace(rec: ItemRecord, config: Record<string, unknown>): Trace {
  if (rec.conversation) return storedTrace(rec, rec.conversation);
  const d = (config.defense ?? {}) as DefenseView;
  const bbq = rec.kind === "bbq";
  let base: ChatMessage[] = [...(d.systemPrompt ? [{ role: "system" as const, content: d.systemPrompt }] : []), { role: "user", content: rec.prompt }];
  if (d.defense === "self-reminder") base = applySelfReminder(base);
  if (d.defense === "icd") base = applyIcd(base, d.icdShots ?? 1, d.icdFamily ?? "vicuna");
  const queryAt = base.length - 1;
  const turns: TraceTurn[] = base.map((m, i) => ({ ...m, kind: i === queryAt ? "query" : m.role === "system" ? "system" : "demo", round: 0 }));
  const query = base[queryAt]!.content;
  const sentAt = new Map<string, number>();
  sentAt.set("initial:0", turns.length);
  turns.push({ role: "assistant", content: rec.answers[0] ?? "", kind: "initial", round: 0 });
  for (let r = 1; r <= rec.checks.length; r++) {
    turns.push({ role: "user", content: checkPromptFor(d, r), kind: "check-prompt", round: r });
    sentAt.set(`check:${r}`, turns.length);
    turns.push({ role: "assistant", content: rec.checks[r - 1]!, kind: "check", round: r });
    const reanswer = bbq ? bbqReanswerPrompt(query) : d.variant === "self" ? query : (d.reanswerPrompt ?? SELF_INSTRUCT_PROMPT);
    turns.push({ role: "user", content: reanswer, kind: "reanswer-prompt", round: r });
    sentAt.set(`answer:${r}`, turns.length);
    if (rec.answers[r] !== undefined) turns.push({ role: "assistant", content: rec.answers[r]!, kind: "answer", round: r });
  }
  const calls: TraceCall[] = rec.calls.map(({ sentTurns: _stored, ...c }) => {
    const sent = c.purpose === "judge" ? null : (sentAt.get(`${c.purpose}:${c.round}`) ?? null);
    const call: TraceCall = { ...c, sentTurns: sent };
    if (bbq && (c.purpose === "initial" || c.purpose === "answer")) call.prefix = BBQ_ANSWER_PREFIX;
    return call;
  });
  const trace: Trace = { turns, calls, source: "rebuilt", exact: true };
  if (d.variant === "diverse") {
    trace.exact = false;
    trace.note = "CaC-diverse answers once after a generated history of checks, which the store does not keep; the messages shown lack that history.";
  }
  return trace;
}
