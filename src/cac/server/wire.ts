/**
 * The proxy's wire format: the request schema, OpenAI-style error bodies, and the chat.completion and
 * chat.completion.chunk objects it answers with. No I/O here.
 */
import { z } from "zod";
import type { CaCTrace, ChatMessage } from "../types.js";

const contentPart = z.looseObject({ type: z.string(), text: z.string().optional() }).superRefine((p, ctx) => {
  // Dropping an image or audio part would answer a different question than the one asked.
  if (p.type !== "text") ctx.addIssue({ code: "custom", path: ["type"], message: `only text content parts are supported, got "${p.type.slice(0, 40)}"` });
  else if (p.text === undefined) ctx.addIssue({ code: "custom", path: ["text"], message: "a text part needs a text field" });
});
const messageSchema = z.looseObject({
  role: z.enum(["system", "developer", "user", "assistant"]),
  content: z.union([z.string(), z.array(contentPart)]).nullable(),
});
const nullish = <T extends z.ZodType>(t: T) => t.nullable().optional();

export const bodySchema = z.looseObject({
  model: nullish(z.string()),
  messages: z.array(messageSchema).min(1),
  stream: nullish(z.boolean()),
  stream_options: nullish(z.looseObject({ include_usage: nullish(z.boolean()) })),
  max_tokens: nullish(z.number().int().positive()),
  max_completion_tokens: nullish(z.number().int().positive()),
  temperature: nullish(z.number().min(0).max(2)),
  top_p: nullish(z.number().gt(0).max(1)),
  stop: nullish(z.union([z.string(), z.array(z.string()).max(16)])),
  seed: nullish(z.number().int()),
  n: nullish(z.literal(1)),
  tools: nullish(z.array(z.unknown()).max(0, "tools are not supported by the CaC proxy")),
  selfcorrect: nullish(
    z.strictObject({
      variant: z.enum(["self", "self-instruct", "diverse"]).optional(),
      rounds: z.number().int().min(0).max(10).optional(),
      check_prompt: z.union([z.string().min(1), z.array(z.string().min(1)).min(1).max(10)]).optional(),
    }),
  ),
});
export type ChatBody = z.infer<typeof bodySchema>;

/** An error with the HTTP status and the OpenAI error fields it is sent as. */
export class HttpError extends Error {
  constructor(
    readonly status: number,
    message: string,
    readonly type: string,
    readonly code: string | null,
    readonly param: string | null = null,
    readonly headers: Record<string, string> = {},
  ) {
    super(message);
  }
}

export const invalidRequest = (status: number, message: string, code: string, param: string | null = null, headers: Record<string, string> = {}) =>
  new HttpError(status, message, "invalid_request_error", code, param, headers);

export function errorBody(e: HttpError): string {
  return JSON.stringify({ error: { message: e.message, type: e.type, param: e.param, code: e.code } });
}

/** Parses a JSON body into a ChatBody, or throws the 400 that names the first bad field. */
export function parseChatBody(raw: string): ChatBody {
  let json: unknown;
  try {
    json = JSON.parse(raw);
  } catch {
    throw invalidRequest(400, "the request body is not valid JSON", "invalid_json");
  }
  const parsed = bodySchema.safeParse(json);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const param = issue ? issue.path.map(String).join(".") || null : null;
    throw invalidRequest(400, `invalid request: ${param ?? "(body)"}: ${issue?.message ?? "invalid body"}`, "invalid_value", param);
  }
  return parsed.data;
}

export function toChatMessages(body: ChatBody): ChatMessage[] {
  return body.messages.map((m) => {
    const content = typeof m.content === "string" ? m.content : (m.content ?? []).map((p) => p.text ?? "").join("");
    return { role: m.role === "developer" ? "system" : m.role, content };
  });
}

export function usageOf(trace: CaCTrace) {
  return {
    prompt_tokens: trace.usage.promptTokens,
    completion_tokens: trace.usage.completionTokens,
    total_tokens: trace.usage.promptTokens + trace.usage.completionTokens,
  };
}

/** The final call's finish reason, as the upstream reported it ("stop", "length", ...). */
export function finishReasonOf(trace: CaCTrace): string {
  return trace.calls[trace.calls.length - 1]?.finishReason ?? "stop";
}

/** What every object of one response shares. */
export interface CompletionIdentity {
  id: string;
  created: number;
  model: string;
}

export function chatCompletion(who: CompletionIdentity, trace: CaCTrace): string {
  return JSON.stringify({
    id: who.id,
    object: "chat.completion",
    created: who.created,
    model: who.model,
    choices: [{ index: 0, message: { role: "assistant", content: trace.finalAnswer }, finish_reason: finishReasonOf(trace), logprobs: null }],
    usage: usageOf(trace),
    selfcorrect: { trace },
  });
}

/** One server-sent event. */
export function sseEvent(data: string): string {
  return `data: ${data}\n\n`;
}

export function chunkEvent(who: CompletionIdentity, delta: Record<string, unknown>, finish: string | null, extra?: Record<string, unknown>): string {
  return sseEvent(
    JSON.stringify({ id: who.id, object: "chat.completion.chunk", created: who.created, model: who.model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra }),
  );
}

export function usageEvent(who: CompletionIdentity, trace: CaCTrace): string {
  return sseEvent(JSON.stringify({ id: who.id, object: "chat.completion.chunk", created: who.created, model: who.model, choices: [], usage: usageOf(trace) }));
}

export const DONE_EVENT = sseEvent("[DONE]");
