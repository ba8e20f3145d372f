/**
 * ChatModel adapter for local GGUF models through node-llama-cpp (CPU, prebuilt binary only: it never
 * downloads or builds llama.cpp). Each call renders the FULL message history with the model's own chat
 * template (node-llama-cpp resolves it from `tokenizer.chat_template`), so the CaC loop can pass a
 * different multi-turn history every time; llama.cpp reuses the KV cache of the common prefix.
 *
 * One context sequence per model: calls are served one at a time, in order.
 */
import { sleep } from "../../util/sleep.js";
import { statSync } from "node:fs";
import { resolve } from "node:path";
import {
  getLlama,
  LlamaChat,
  LlamaLogLevel,
  type ChatHistoryItem,
  type Llama,
  type LlamaContext,
  type LlamaModel,
  type Token,
} from "node-llama-cpp";
import { GgufFormatError, validateGgufFile } from "../../engine/gguf/reader.js";
import { fileFingerprint } from "../../util/fs.js";
import { UserError } from "../../util/errors.js";
import type { ChatMessage, ChatModel, ChatResult, GenerateOptions } from "../types.js";

export interface LlamaCppModelOptions {
  modelPath: string;
  /** KV-cache size in tokens. Default: the model's training context, at most 4096. */
  contextSize?: number;
  /** Default completion budget per call (a call's own maxTokens wins). Default 512. */
  maxTokens?: number;
  /** Default sampling seed per call (a call's own seed wins). Only matters with temperature > 0. */
  seed?: number;
  /** Default temperature (a call's own temperature wins). Default 0: greedy. */
  temperature?: number;
  /** CPU threads. Default: 1 for files under 64 MB (thread hand-off dominates tiny models), else llama.cpp's choice. */
  threads?: number;
  /** Aborts loading, and every call of this model for as long as it lives. */
  signal?: AbortSignal;
  /** llama.cpp's own log lines (warnings and errors). They are never printed by default. */
  onLog?: (level: string, message: string) => void;
}

export interface LlamaCppModelInfo {
  modelPath: string;
  fileBytes: number;
  /** Loading time; for the first model of a process it includes starting the native backend. */
  loadMs: number;
  contextSize: number;
  trainContextSize: number;
  threads: number;
  /** The chat wrapper node-llama-cpp resolved from the model's template (e.g. "ChatML", "JinjaTemplate"). */
  chatWrapper: string;
}

export interface LlamaCppModel extends ChatModel {
  readonly info: LlamaCppModelInfo;
  /** The exact prompt text the model sees for these messages (special tokens included), ending with the generation prompt. */
  renderPrompt(messages: ChatMessage[]): string;
  /** Prompt tokens for these messages: what `usage.promptTokens` reports. */
  countPromptTokens(messages: ChatMessage[]): number;
  /** Aborts calls in flight, then frees the context and the model. Idempotent. */
  dispose(): Promise<void>;
}

/** The model file cannot be used; the message names the file. A user input error (exit code 2). */
export class LlamaCppLoadError extends UserError {
  constructor(readonly modelPath: string, detail: string) {
    super(`cannot load GGUF model ${modelPath}: ${detail}`);
    this.name = "LlamaCppLoadError";
  }
}

/** Thrown when a call is cancelled; carries whatever had been generated. */
export class LlamaCppAbortError extends Error {
  constructor(readonly partialText: string, readonly completionTokens: number, readonly reason?: unknown) {
    super(`llama.cpp generation aborted after ${completionTokens} tokens`);
    this.name = "AbortError";
  }
}

const DEFAULT_MAX_TOKENS = 512;
const DEFAULT_MAX_CONTEXT = 4096;
const SMALL_MODEL_BYTES = 64 * 1024 * 1024;
const LOG_LINES_KEPT = 40;

// ---- one native backend per process, shared by all models ----
// It is created once and kept until the process exits (node-llama-cpp frees it then). Disposing and
// re-creating it is worse than keeping it: a second getLlama() in the same process does not re-attach
// the log callback, so llama.cpp would then print straight to the terminal. Without models it holds
// almost nothing; models and contexts are freed by dispose().

let backend: Promise<Llama> | undefined;
const recentLogs: string[] = [];
let logCount = 0;
const logListeners = new Set<(level: string, message: string) => void>();

function onLlamaLog(level: string, message: string): void {
  const line = message.trimEnd();
  if (!line) return;
  logCount++;
  recentLogs.push(`${level}: ${line}`);
  if (recentLogs.length > LOG_LINES_KEPT) recentLogs.shift();
  for (const l of logListeners) l(level, line);
}

async function sharedLlama(): Promise<Llama> {
  backend ??= getLlama({
    gpu: false,
    build: "never",
    skipDownload: true,
    usePrebuiltBinaries: true,
    progressLogs: false,
    logLevel: LlamaLogLevel.warn,
    logger: onLlamaLog,
  });
  try {
    return await backend;
  } catch (e) {
    backend = undefined;
    throw new Error(`node-llama-cpp could not start its prebuilt CPU backend (it never builds or downloads one): ${(e as Error).message}`);
  }
}

/**
 * Error lines llama.cpp logged since `mark`. Its log callback runs a moment after a failed call has
 * returned (later still on a busy machine), so wait for the "failed to load model" line that closes a
 * failed load, for at most a second.
 */
async function llamaErrorsSince(mark: number): Promise<string[]> {
  const since = () => recentLogs.slice(recentLogs.length - Math.min(logCount - mark, recentLogs.length));
  for (let waited = 0; waited < 1000 && !since().some((l) => /failed to load model$/.test(l)); waited += 10) {
    await sleep(10);
  }
  return since().filter((l) => l.startsWith("error"));
}

/** One line per distinct cause: node-llama-cpp loads twice (a dry run, then the real one), and llama.cpp adds a generic trailer. */
function summariseLlamaErrors(lines: string[]): string {
  const causes = lines
    .map((l) => l.replace(/^error: /, "").replace(/^llama_model_load: error loading model: /, "").replace(/\s+/g, " "))
    .filter((l) => !/failed to load model$/.test(l));
  return [...new Set(causes)].join("; ") || "failed to load model";
}

// ---- the adapter ----

export async function createLlamaCppModel(opts: LlamaCppModelOptions): Promise<LlamaCppModel> {
  const modelPath = resolve(opts.modelPath);
  opts.signal?.throwIfAborted();
  let fileBytes: number;
  try {
    validateGgufFile(modelPath);
    fileBytes = statSync(modelPath).size;
  } catch (e) {
    if (e instanceof GgufFormatError) throw new LlamaCppLoadError(opts.modelPath, e.message.slice(modelPath.length + 2));
    throw new LlamaCppLoadError(opts.modelPath, (e as Error).message);
  }
  for (const [k, v] of Object.entries({ contextSize: opts.contextSize, maxTokens: opts.maxTokens, threads: opts.threads })) {
    if (v !== undefined && (!Number.isInteger(v) || v <= 0)) throw new UserError(`${k} must be a positive integer, got ${v}`);
  }

  const started = performance.now();
  const llama = await sharedLlama();
  let model: LlamaModel | undefined;
  let context: LlamaContext | undefined;
  const logMark = logCount;
  if (opts.onLog) logListeners.add(opts.onLog);
  try {
    try {
      model = await llama.loadModel({ modelPath, gpuLayers: 0, loadSignal: opts.signal });
    } catch (e) {
      if (opts.signal?.aborted) throw e;
      const errors = await llamaErrorsSince(logMark);
      const detail = errors.length ? summariseLlamaErrors(errors) : (e as Error).message;
      throw new LlamaCppLoadError(opts.modelPath, `llama.cpp rejected it: ${detail}`);
    }
    const trainContextSize = model.trainContextSize;
    const contextSize = opts.contextSize ?? Math.min(trainContextSize || DEFAULT_MAX_CONTEXT, DEFAULT_MAX_CONTEXT);
    const threads = opts.threads ?? (fileBytes < SMALL_MODEL_BYTES ? 1 : Math.max(1, llama.cpuMathCores));
    context = await model.createContext({ contextSize, threads, sequences: 1 });
    const chat = new LlamaChat({ contextSequence: context.getSequence(), chatWrapper: "auto" });
    const info: LlamaCppModelInfo = {
      modelPath,
      fileBytes,
      loadMs: performance.now() - started,
      contextSize: context.contextSize,
      trainContextSize,
      threads,
      chatWrapper: chat.chatWrapper.wrapperName,
    };
    return new LlamaCppChatModel(opts, info, model, context, chat);
  } catch (e) {
    if (opts.onLog) logListeners.delete(opts.onLog);
    await context?.dispose().catch(() => undefined);
    await model?.dispose().catch(() => undefined);
    throw e;
  }
}

class LlamaCppChatModel implements LlamaCppModel {
  readonly id: string;
  readonly fingerprint: string;
  private queue: Promise<void> = Promise.resolve();
  private readonly lifetime = new AbortController();
  private readonly inFlight = new Set<Promise<unknown>>();
  private disposed: Promise<void> | undefined;

  constructor(
    private readonly opts: LlamaCppModelOptions,
    readonly info: LlamaCppModelInfo,
    private readonly model: LlamaModel,
    private readonly context: LlamaContext,
    private readonly chat: LlamaChat,
  ) {
    this.id = `gguf:${info.modelPath}`;
    this.fingerprint = fileFingerprint(info.modelPath);
  }

  generate(messages: ChatMessage[], options: GenerateOptions = {}): Promise<ChatResult> {
    const p = this.run(messages, options);
    this.track(p);
    return p;
  }

  renderPrompt(messages: ChatMessage[]): string {
    return this.model.detokenize(this.promptTokens(toChatHistory(messages)), true);
  }

  countPromptTokens(messages: ChatMessage[]): number {
    return this.promptTokens(toChatHistory(messages)).length;
  }

  dispose(): Promise<void> {
    this.disposed ??= (async () => {
      this.lifetime.abort(new Error("model disposed"));
      await Promise.allSettled([...this.inFlight]);
      if (this.opts.onLog) logListeners.delete(this.opts.onLog);
      this.chat.dispose({ disposeSequence: true });
      await this.context.dispose();
      await this.model.dispose();
    })();
    return this.disposed;
  }

  private track(p: Promise<unknown>): void {
    this.inFlight.add(p);
    const done = () => this.inFlight.delete(p);
    p.then(done, done);
  }

  private promptTokens(history: ChatHistoryItem[]): Token[] {
    const { contextText } = this.chat.chatWrapper.generateContextState({ chatHistory: history });
    return contextText.tokenize(this.model.tokenizer);
  }

  private async run(messages: ChatMessage[], options: GenerateOptions): Promise<ChatResult> {
    if (this.disposed) throw new Error(`${this.id}: model is disposed`);
    validateMessages(messages);
    const signals = [this.lifetime.signal, options.signal, this.opts.signal].filter((s): s is AbortSignal => s !== undefined);
    const signal = AbortSignal.any(signals);
    const maxTokens = options.maxTokens ?? this.opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    if (!Number.isInteger(maxTokens) || maxTokens <= 0) throw new UserError(`maxTokens must be a positive integer, got ${maxTokens}`);

    const started = performance.now();
    const release = await this.lock(signal);
    try {
      signal.throwIfAborted();
      const history = toChatHistory(messages);
      const promptTokens = this.promptTokens(history).length;
      if (promptTokens >= this.info.contextSize) {
        throw new UserError(
          `${this.id}: the prompt is ${promptTokens} tokens but the context holds ${this.info.contextSize}; raise contextSize or shorten the conversation`,
        );
      }
      let completionTokens = 0;
      let text = "";
      const res = await this.chat.generateResponse(history, {
        maxTokens,
        temperature: options.temperature ?? this.opts.temperature ?? 0,
        topP: options.topP,
        seed: options.seed ?? this.opts.seed,
        customStopTriggers: options.stop?.length ? options.stop : undefined,
        signal,
        stopOnAbortSignal: true,
        onToken: (tokens) => {
          completionTokens += tokens.length;
        },
        onTextChunk: (chunk) => {
          text += chunk;
          options.onDelta?.(chunk);
        },
      });
      const stopReason = res.metadata.stopReason;
      if (stopReason === "abort" || signal.aborted) {
        throw new LlamaCppAbortError(res.response || text, completionTokens, signal.reason);
      }
      return {
        text: res.response,
        usage: { promptTokens, completionTokens },
        latencyMs: performance.now() - started,
        finishReason: stopReason === "maxTokens" ? "length" : "stop",
      };
    } catch (e) {
      if (signal.aborted && !(e instanceof LlamaCppAbortError)) throw new LlamaCppAbortError("", 0, signal.reason);
      throw e;
    } finally {
      release();
    }
  }

  /** Serialises calls on the single sequence; a call cancelled while waiting leaves the queue at once. */
  private async lock(signal: AbortSignal): Promise<() => void> {
    let release!: () => void;
    const mine = new Promise<void>((r) => (release = r));
    const previous = this.queue;
    this.queue = previous.then(() => mine);
    if (signal.aborted) {
      previous.then(release);
      throw new LlamaCppAbortError("", 0, signal.reason);
    }
    let onAbort: (() => void) | undefined;
    try {
      await Promise.race([
        previous,
        new Promise<never>((_, reject) => {
          onAbort = () => reject(new LlamaCppAbortError("", 0, signal.reason));
          signal.addEventListener("abort", onAbort, { once: true });
        }),
      ]);
    } catch (e) {
      previous.then(release);
      throw e;
    } finally {
      if (onAbort) signal.removeEventListener("abort", onAbort);
    }
    return release;
  }
}

function validateMessages(messages: ChatMessage[]): void {
  if (!Array.isArray(messages) || messages.length === 0) throw new UserError("messages must be a non-empty array");
  messages.forEach((m, i) => {
    if (m.role !== "system" && m.role !== "user" && m.role !== "assistant") {
      throw new UserError(`messages[${i}].role must be system, user or assistant, got ${JSON.stringify(m.role)}`);
    }
    if (typeof m.content !== "string") throw new UserError(`messages[${i}].content must be a string`);
  });
}

/**
 * ChatMessage[] to node-llama-cpp history, ending with the model turn to generate. A trailing assistant
 * message is continued (a prefill), so the reply is only the new text.
 */
function toChatHistory(messages: ChatMessage[]): ChatHistoryItem[] {
  const history: ChatHistoryItem[] = messages.map((m): ChatHistoryItem => {
    if (m.role === "system") return { type: "system", text: m.content };
    if (m.role === "user") return { type: "user", text: m.content };
    return { type: "model", response: [m.content] };
  });
  if (messages[messages.length - 1]?.role !== "assistant") history.push({ type: "model", response: [] });
  return history;
}
