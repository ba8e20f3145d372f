/**
 * What the eval runner stores per item. Records hold the raw texts (answers, checks, judge replies),
 * the verdicts decided when the item ran (each judge's, each check's, each BBQ pick) and just enough
 * item metadata for the metrics, so every metric is recomputed from the store, the report shows the
 * same verdicts the numbers count, and a resumed run reports exactly what an uninterrupted one would.
 *
 * The schemas below are what a record read back from the store must satisfy (see store.ts).
 */
import { z } from "zod";

export type EvalTask = "jailbreak" | "bbq" | "xstest";
export type Defense = "none" | "cac" | "self-reminder" | "icd";

export const ChatMessageSchema = z.object({
  role: z.enum(["system", "user", "assistant"]),
  content: z.string(),
});

/**
 * One model or judge call. Its messages are not repeated: a call of the CaC loop was sent the first
 * `sentTurns` turns of the record's `conversation` (then the assistant `prefix`, when there is one), and
 * its reply is turn `sentTurns`.
 */
export const CallSummarySchema = z.object({
  purpose: z.enum(["initial", "check", "answer", "history", "judge"]),
  /** 0 for the initial answer, 1..R for CaC rounds; for judges, the round of the answer judged. */
  round: z.number().int().min(0),
  promptTokens: z.number(),
  completionTokens: z.number(),
  latencyMs: z.number(),
  injected: z.boolean().optional(),
  /** Absent for judges, and in records written before conversations were stored. */
  sentTurns: z.number().int().min(0).optional(),
  prefix: z.string().optional(),
});
export type CallSummary = z.infer<typeof CallSummarySchema>;

export const VerdictSchema = z.object({
  flagged: z.boolean(),
  label: z.string(),
  reply: z.string().optional(),
});

const CheckVerdictSchema = z.enum(["harmful", "not-harmful", "unclear"]);

const recordBase = {
  id: z.string(),
  /** The user turn sent (after attack/template), for the report. */
  prompt: z.string(),
  /** answers[0] is the initial answer, answers[r] the answer after CaC round r. */
  answers: z.array(z.string()).min(1),
  /** checks[r - 1] is the check of round r (empty without CaC). */
  checks: z.array(z.string()),
  /** checkVerdicts[r - 1]: what the check of round r says about the answer before it (parseCheckVerdict). */
  checkVerdicts: z.array(CheckVerdictSchema),
  calls: z.array(CallSummarySchema),
  /**
   * The whole conversation the model took part in, as the CaC loop left it: system prompt and defense
   * turns, the query, then the initial answer and each round's check prompt, check, re-answer prompt and
   * answer (CaC-diverse: the generated history before the query). Absent in records written before it
   * was stored.
   */
  conversation: z.array(ChatMessageSchema).optional(),
  /** Wall time of the whole item (model calls, judges). */
  wallMs: z.number(),
};

/** Per judge of the run, one verdict per answer (same indexing as answers). */
const VerdictsSchema = z.record(z.string(), z.array(VerdictSchema));

/** Ground-truth critic only: whether the critic of round r (index r - 1) was flipped. */
const CriticFlippedSchema = z.array(z.boolean()).optional();

export const JailbreakRecordSchema = z.object({
  kind: z.literal("jailbreak"),
  ...recordBase,
  goal: z.string(),
  verdicts: VerdictsSchema,
  criticFlipped: CriticFlippedSchema,
});

export const BenignRecordSchema = z.object({
  kind: z.literal("benign"),
  ...recordBase,
  /** safe prompts should be answered; XSTest's unsafe contrast prompts should be refused. */
  label: z.enum(["safe", "unsafe"]),
  type: z.string().optional(),
  verdicts: VerdictsSchema,
  criticFlipped: CriticFlippedSchema,
});

const answerIndex = z.number().int().min(0).max(2);

export const BbqRecordSchema = z.object({
  kind: z.literal("bbq"),
  ...recordBase,
  category: z.string(),
  contextCondition: z.enum(["ambig", "disambig"]),
  polarity: z.enum(["neg", "nonneg"]),
  options: z.tuple([z.string(), z.string(), z.string()]),
  label: answerIndex,
  unknownIndex: answerIndex,
  /** The answer that counts as biased (target for neg, non-target for nonneg); null if the item has no target. */
  biasedIndex: answerIndex.nullable(),
  /** picks[r]: the option answers[r] picks (parseBbqAnswer), -1 when undetermined. */
  picks: z.array(z.number().int().min(-1).max(2)),
  criticFlipped: CriticFlippedSchema,
});

export const ItemRecordSchema = z.discriminatedUnion("kind", [JailbreakRecordSchema, BenignRecordSchema, BbqRecordSchema]);

export type JailbreakRecord = z.infer<typeof JailbreakRecordSchema>;
export type BenignRecord = z.infer<typeof BenignRecordSchema>;
export type BbqRecord = z.infer<typeof BbqRecordSchema>;
export type ItemRecord = z.infer<typeof ItemRecordSchema>;

/** A stored outcome: a finished record, or an error with its reason. */
export type StoredResult =
  | { itemId: string; status: "done"; attempts: number; record: ItemRecord }
  | { itemId: string; status: "error"; attempts: number; error: string };
