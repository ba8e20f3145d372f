/**
 * One item's CaC trace as a conversation, with the messages each model call was sent. The store keeps
 * the texts (prompt, answers, checks) and per-call usage but not the messages (they follow from the
 * item and the run's config), so they are rebuilt here the way the CaC loop (src/cac/loop.ts) builds
 * them: the defense's system prompt / self-reminder / ICD demos, the user turn, then per round the
 * check prompt, the check, the re-answer prompt and the answer. CaC-diverse runs put a generated
 * history before the query that the store does not keep; their trace says so (exact: false).
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

export interface TraceCall extends CallSummary {
  /** The call was sent turns[0, sentTurns), then the assistant prefix when there is one. */
  sentTurns: number | null;
  prefix?: string;
}

export interface Trace {
  turns: TraceTurn[];
  calls: TraceCall[];
  exact: boolean;
  note?: string;
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
  const calls: TraceCall[] = rec.calls.map((c) => {
    const sent = c.purpose === "judge" ? null : (sentAt.get(`${c.purpose}:${c.round}`) ?? null);
    const call: TraceCall = { ...c, sentTurns: sent };
    if (bbq && (c.purpose === "initial" || c.purpose === "answer")) call.prefix = BBQ_ANSWER_PREFIX;
    return call;
  });
  const trace: Trace = { turns, calls, exact: true };
  if (d.variant === "diverse") {
    trace.exact = false;
    trace.note = "CaC-diverse answers once after a generated history of checks, which the store does not keep; the messages shown lack that history.";
  }
  return trace;
}
