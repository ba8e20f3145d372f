/**
 * Vercel AI SDK (ai@6) middleware: Checking-as-Context for any AI SDK provider.
 *
 *   const model = wrapLanguageModel({ model: openai("gpt-4o-mini"), middleware: checkingAsContext({ rounds: 1 }) });
 *   const { text, providerMetadata } = await generateText({ model, prompt: "..." });
 *   providerMetadata.selfcorrect.trace  // the full CaC trace
 *
 * The wrapped model's own doGenerate is the ChatModel the loop drives. With streamText the earlier
 * calls (initial answer, checks) run with doGenerate and the final answer is streamed live through
 * doStream; the wrapped doStream resolves once that final call has started, so the request it reports
 * is the final call's. The trace arrives with the finish part (providerMetadata.selfcorrect.trace) and onTrace.
 * Calls with tools, or with non-text content (files, tool results), pass through untouched:
 * CaC is defined for text conversations.
 */
import type { LanguageModelMiddleware } from "ai";
import { runCheckingAsContext } from "../loop.js";
import type { CaCOptions, CaCTrace, ChatMessage, ChatModel, ChatResult, GenerateOptions, TurnOptions } from "../types.js";

type WrapGenerateArgs = Parameters<NonNullable<LanguageModelMiddleware["wrapGenerate"]>>[0];
type CallOptions = WrapGenerateArgs["params"];
type InnerModel = WrapGenerateArgs["model"];
type GenerateResult = Awaited<ReturnType<WrapGenerateArgs["doGenerate"]>>;
type StreamResult = Awaited<ReturnType<WrapGenerateArgs["doStream"]>>;
type StreamPart = StreamResult["stream"] extends ReadableStream<infer P> ? P : never;
type Prompt = CallOptions["prompt"];
type V3Usage = GenerateResult["usage"];
type FinishReason = GenerateResult["finishReason"];

export interface CheckingAsContextMiddlewareOptions extends Omit<CaCOptions, "signal" | "onFinalDelta"> {
  /** Called with the full trace once a wrapped call finishes. */
  onTrace?: (trace: CaCTrace) => void;
}

function promptToMessages(prompt: Prompt): ChatMessage[] | undefined {
  const out: ChatMessage[] = [];
  for (const m of prompt) {
    if (m.role === "system") {
      out.push({ role: "system", content: m.content });
      continue;
    }
    if (m.role !== "user" && m.role !== "assistant") return undefined;
    let text = "";
    for (const part of m.content) {
      if (part.type !== "text") return undefined;
      text += part.text;
    }
    out.push({ role: m.role, content: text });
  }
  return out;
}

function messagesToPrompt(messages: ChatMessage[]): Prompt {
  return messages.map((m) =>
    m.role === "system"
      ? { role: "system" as const, content: m.content }
      : { role: m.role, content: [{ type: "text" as const, text: m.content }] },
  ) as Prompt;
}

function turnFromParams(params: CallOptions): TurnOptions {
  const t: TurnOptions = {};
  if (params.maxOutputTokens !== undefined) t.maxTokens = params.maxOutputTokens;
  if (params.temperature !== undefined) t.temperature = params.temperature;
  if (params.topP !== undefined) t.topP = params.topP;
  if (params.stopSequences !== undefined) t.stop = params.stopSequences;
  if (params.seed !== undefined) t.seed = params.seed;
  return t;
}

function toV3Usage(u: { promptTokens: number; completionTokens: number }): V3Usage {
  return {
    inputTokens: { total: u.promptTokens, noCache: undefined, cacheRead: undefined, cacheWrite: undefined },
    outputTokens: { total: u.completionTokens, text: undefined, reasoning: undefined },
  };
}

const usageFromV3 = (u: V3Usage | undefined) => ({
  promptTokens: u?.inputTokens?.total ?? 0,
  completionTokens: u?.outputTokens?.total ?? 0,
});

interface LastCall {
  finishReason?: FinishReason;
  response?: GenerateResult["response"];
  request?: GenerateResult["request"];
  warnings: GenerateResult["warnings"];
  providerMetadata?: GenerateResult["providerMetadata"];
}

/**
 * The inner AI SDK model as a ChatModel; remembers the last call's metadata for the wrapped result.
 * onStreamStart runs once the streamed call's doStream has resolved, when its request is known.
 */
function chatModelOf(model: InnerModel, params: CallOptions, onStreamStart?: () => void): ChatModel & { last: LastCall } {
  const last: LastCall = { warnings: [] };
  const callParams = (messages: ChatMessage[], gen: GenerateOptions): CallOptions => ({
    ...params,
    prompt: messagesToPrompt(messages),
    maxOutputTokens: gen.maxTokens,
    temperature: gen.temperature,
    topP: gen.topP,
    stopSequences: gen.stop,
    seed: gen.seed,
    abortSignal: gen.signal,
  });

  async function generate(messages: ChatMessage[], gen: GenerateOptions = {}): Promise<ChatResult> {
    const t0 = performance.now();
    if (gen.onDelta) return streamFinal(messages, gen, t0);
    const r = await model.doGenerate(callParams(messages, gen));
    let text = "";
    for (const c of r.content) if (c.type === "text") text += c.text;
    Object.assign(last, {
      finishReason: r.finishReason,
      response: r.response,
      request: r.request,
      warnings: r.warnings,
      providerMetadata: r.providerMetadata,
    });
    return { text, usage: usageFromV3(r.usage), latencyMs: performance.now() - t0, finishReason: r.finishReason?.unified };
  }

  async function streamFinal(messages: ChatMessage[], gen: GenerateOptions, t0: number): Promise<ChatResult> {
    const r = await model.doStream(callParams(messages, gen));
    const reader = r.stream.getReader();
    let text = "";
    let usage = { promptTokens: 0, completionTokens: 0 };
    last.request = r.request;
    last.warnings = [];
    onStreamStart?.();
    try {
      while (true) {
        const { done, value } = await reader.read();
        if (done) break;
        switch (value.type) {
          case "text-delta":
            text += value.delta;
            gen.onDelta!(value.delta);
            break;
          case "stream-start":
            last.warnings = value.warnings;
            break;
          case "response-metadata":
            last.response = { id: value.id, timestamp: value.timestamp, modelId: value.modelId };
            break;
          case "finish":
            usage = usageFromV3(value.usage);
            last.finishReason = value.finishReason;
            last.providerMetadata = value.providerMetadata;
            break;
          case "error":
            throw value.error instanceof Error ? value.error : new Error(String(value.error));
        }
      }
    } finally {
      reader.releaseLock();
    }
    return { text, usage, latencyMs: performance.now() - t0, finishReason: last.finishReason?.unified };
  }

  return { id: `ai-sdk:${model.provider}:${model.modelId}`, generate, last };
}

function cacOptions(options: CheckingAsContextMiddlewareOptions, params: CallOptions, signal: AbortSignal | undefined): CaCOptions {
  const { onTrace: _onTrace, ...rest } = options;
  return { ...rest, generation: { ...options.generation, ...turnFromParams(params) }, signal };
}

function metadataWithTrace(base: LastCall["providerMetadata"], trace: CaCTrace) {
  return { ...(base ?? {}), selfcorrect: { trace: trace as unknown as Record<string, never> } } as NonNullable<LastCall["providerMetadata"]>;
}

function plainText(params: CallOptions): ChatMessage[] | undefined {
  if (params.tools && params.tools.length > 0) return undefined;
  return promptToMessages(params.prompt);
}

/** AI SDK middleware that applies Checking-as-Context to generateText and streamText. */
export function checkingAsContext(options: CheckingAsContextMiddlewareOptions = {}): LanguageModelMiddleware {
  return {
    specificationVersion: "v3",

    async wrapGenerate({ doGenerate, params, model }) {
      const messages = plainText(params);
      if (!messages) return doGenerate();
      const chat = chatModelOf(model, params);
      const trace = await runCheckingAsContext(chat, messages, cacOptions(options, params, params.abortSignal));
      options.onTrace?.(trace);
      return {
        content: [{ type: "text", text: trace.finalAnswer }],
        finishReason: chat.last.finishReason ?? { unified: "stop", raw: undefined },
        usage: toV3Usage(trace.usage),
        providerMetadata: metadataWithTrace(chat.last.providerMetadata, trace),
        request: chat.last.request,
        response: chat.last.response,
        warnings: chat.last.warnings,
      };
    },

    async wrapStream({ doStream, params, model }) {
      const messages = plainText(params);
      if (!messages) return doStream();
      // The wrapped result's request is the final call's, which exists only once the loop has reached
      // it: settled when that call's doStream resolves, or when the loop ends without one (an error).
      let requestKnown!: () => void;
      const requestReady = new Promise<void>((r) => (requestKnown = r));
      const chat = chatModelOf(model, params, () => requestKnown());
      const cancel = new AbortController();
      const signal = params.abortSignal ? AbortSignal.any([params.abortSignal, cancel.signal]) : cancel.signal;
      const id = "selfcorrect-final";
      const stream = new ReadableStream<StreamPart>({
        async start(controller) {
          let started = false;
          const enqueue = (p: StreamPart) => {
            try {
              controller.enqueue(p);
            } catch {
              // The consumer cancelled; the abort signal stops the loop.
            }
          };
          enqueue({ type: "stream-start", warnings: [] });
          try {
            const trace = await runCheckingAsContext(chat, messages, {
              ...cacOptions(options, params, signal),
              onFinalDelta: (delta) => {
                if (!started) {
                  started = true;
                  enqueue({ type: "text-start", id });
                }
                enqueue({ type: "text-delta", id, delta });
              },
            });
            options.onTrace?.(trace);
            if (!started) enqueue({ type: "text-start", id });
            enqueue({ type: "text-end", id });
            if (chat.last.response) enqueue({ type: "response-metadata", ...chat.last.response });
            enqueue({
              type: "finish",
              usage: toV3Usage(trace.usage),
              finishReason: chat.last.finishReason ?? { unified: "stop", raw: undefined },
              providerMetadata: metadataWithTrace(chat.last.providerMetadata, trace),
            });
          } catch (error) {
            enqueue({ type: "error", error });
          }
          requestKnown();
          try {
            controller.close();
          } catch {
            // already cancelled
          }
        },
        cancel() {
          cancel.abort();
        },
      });
      await requestReady;
      return { stream, request: chat.last.request };
    },
  };
}
