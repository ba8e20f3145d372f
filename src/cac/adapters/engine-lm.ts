/**
 * ChatModel adapter for the engine's own token LM: no native code, no server. It loads a checkpoint
 * (lm.save) or a GGUF exported by `selfcorrect lm export`, so the one .gguf file that node-llama-cpp runs
 * is also what this adapter runs.
 *
 * Each call renders the full message list as <|endoftext|> + ChatML (encodeChat, the template the
 * model was trained on; chatIds says why the first token), prefills the KV cache and decodes until
 * <|im_end|>, <|endoftext|>, a stop string, maxTokens or the context length. The model has one KV
 * cache, so calls are served one at a time, in order. Decoding yields to the event loop every few tokens, so a server stays responsive, deltas stream,
 * and an abort lands within a few tokens.
 */
import { loadLanguageModelGguf } from "../../engine/gguf/gpt2.js";
import { sampleToken } from "../../engine/lm/generate.js";
import { loadLanguageModel, type LanguageModel } from "../../engine/lm/model.js";
import { BYTE_TOKENS, ENDOFTEXT, IM_END, encode, encodeChat } from "../../engine/lm/tokenizer.js";
import { UserError } from "../../util/errors.js";
import { abortError } from "../../util/sleep.js";
import { fileFingerprint } from "../../util/fs.js";
import { Rng } from "../../util/rng.js";
import type { ChatMessage, ChatModel, ChatResult, GenerateOptions } from "../types.js";

export interface EngineModelOptions {
  /** A checkpoint written by lm.save (safetensors). */
  checkpoint?: string;
  /** A GGUF written by exportLanguageModelGguf. */
  gguf?: string;
  /** An LM already in memory (tests, the trainer). */
  model?: LanguageModel;
  /** The id reported as ChatModel.id. Default `engine:<path>`. */
  id?: string;
  /** Default completion budget per call (a call's own maxTokens wins). Default 512. */
  maxTokens?: number;
  /** Default temperature (a call's own wins). Default 0: greedy, lowest id on ties. */
  temperature?: number;
  /** Default sampling seed (a call's own wins). Default 0; the same seed gives the same text. */
  seed?: number;
}

export interface EngineChatModel extends ChatModel {
  readonly lm: LanguageModel;
  /** The token ids the model sees for these messages, ending with the generation prompt. */
  promptIds(messages: ChatMessage[]): number[];
  dispose(): Promise<void>;
}

const DEFAULT_MAX_TOKENS = 512;
const ROLES: ReadonlySet<string> = new Set(["system", "user", "assistant"]);
/** Tokens decoded between yields to the event loop. */
const YIELD_EVERY = 8;

async function loadModel(opts: EngineModelOptions): Promise<{ lm: LanguageModel; id: string; fingerprint?: string }> {
  const given = [opts.checkpoint, opts.gguf, opts.model].filter((x) => x !== undefined).length;
  if (given !== 1) throw new UserError("createEngineModel: give exactly one of checkpoint, gguf or model");
  if (opts.model) return { lm: opts.model, id: opts.id ?? "engine:in-memory" };
  if (opts.gguf !== undefined) {
    return { lm: await loadLanguageModelGguf(opts.gguf), id: opts.id ?? `engine:${opts.gguf}`, fingerprint: fileFingerprint(opts.gguf) };
  }
  const { model } = await loadLanguageModel(opts.checkpoint!, { maxBatch: 1 });
  return { lm: model, id: opts.id ?? `engine:${opts.checkpoint}`, fingerprint: fileFingerprint(opts.checkpoint!) };
}

function positiveInt(v: number | undefined, what: string): void {
  if (v !== undefined && (!Number.isSafeInteger(v) || v <= 0)) throw new UserError(`${what} must be a positive integer, got ${v}`);
}

/** Builds the engine ChatModel; loading a file validates it fully (a bad file is a UserError naming it). */
export async function createEngineModel(opts: EngineModelOptions): Promise<EngineChatModel> {
  positiveInt(opts.maxTokens, "maxTokens");
  const { lm, id, fingerprint } = await loadModel(opts);
  return new EngineLmChatModel(id, lm, opts, fingerprint);
}

/**
 * ChatML ids of the conversation after <|endoftext|>. The leading <|endoftext|> is there because
 * node-llama-cpp's ChatML wrapper always starts a chat with the model's BOS token (the export makes it
 * <|endoftext|>), whatever add_bos_token says; both backends must feed the model the same ids. A
 * trailing assistant message is continued (a prefill): it gets no <|im_end|>, so the reply is only the
 * new text, as with the llama.cpp adapter. Turns with empty content are left out, as that wrapper leaves
 * them out, so an empty prompt too reaches the model as the same ids on both backends.
 */
function chatIds(messages: ChatMessage[]): number[] {
  if (!Array.isArray(messages) || messages.length === 0) throw new UserError("messages must be a non-empty array");
  for (const [i, { role, content }] of messages.entries()) {
    if (!ROLES.has(role)) throw new UserError(`messages[${i}].role must be one of ${[...ROLES].join(", ")}; got ${JSON.stringify(role)}`);
    if (typeof content !== "string") throw new UserError(`messages[${i}].content must be a string`);
  }
  const last = messages[messages.length - 1]!;
  const turns = (ms: ChatMessage[]) => encodeChat(ms.filter((m) => m.content !== ""), { addGenerationPrompt: true }).ids;
  if (last.role !== "assistant") return [ENDOFTEXT, ...turns(messages)];
  return [ENDOFTEXT, ...turns(messages.slice(0, -1)), ...encode(last.content)];
}

class EngineLmChatModel implements EngineChatModel {
  private queue: Promise<void> = Promise.resolve();
  private readonly lifetime = new AbortController();

  constructor(readonly id: string, readonly lm: LanguageModel, private readonly opts: EngineModelOptions, readonly fingerprint?: string) {}

  promptIds(messages: ChatMessage[]): number[] {
    return chatIds(messages);
  }

  generate(messages: ChatMessage[], options: GenerateOptions = {}): Promise<ChatResult> {
    const run = this.queue.then(() => this.run(messages, options));
    this.queue = run.then(() => undefined, () => undefined);
    return run;
  }

  async dispose(): Promise<void> {
    this.lifetime.abort(new Error("model disposed"));
    await this.queue;
  }

  private async run(messages: ChatMessage[], options: GenerateOptions): Promise<ChatResult> {
    const started = performance.now();
    const signal = AbortSignal.any([this.lifetime.signal, ...(options.signal ? [options.signal] : [])]);
    if (signal.aborted) throw abortError(signal);
    const maxTokens = options.maxTokens ?? this.opts.maxTokens ?? DEFAULT_MAX_TOKENS;
    positiveInt(maxTokens, "maxTokens");
    const temperature = options.temperature ?? this.opts.temperature ?? 0;
    if (!(temperature >= 0) || !Number.isFinite(temperature)) throw new UserError(`temperature must be a finite number >= 0, got ${temperature}`);
    const topP = options.topP ?? 1;
    if (!(topP > 0 && topP <= 1)) throw new UserError(`topP must be in (0, 1], got ${topP}`);
    const prompt = chatIds(messages);
    const limit = this.lm.config.nPositions;
    if (prompt.length >= limit) {
      throw new UserError(`${this.id}: the prompt is ${prompt.length} tokens but the model's context holds ${limit}; shorten the conversation`);
    }
    const rng = new Rng(options.seed ?? this.opts.seed ?? 0);
    const stops = (options.stop ?? []).filter((s) => s.length > 0);
    const text = new TextStream(options.onDelta, stops);
    let logits = this.lm.prefill(prompt);
    let completion = 0;
    let finishReason = "length";
    while (completion < maxTokens && prompt.length + completion < limit) {
      const next = sampleToken(logits, temperature, topP, rng);
      if (next === IM_END || next === ENDOFTEXT) {
        finishReason = "stop";
        break;
      }
      completion++;
      if (text.push(next)) {
        finishReason = "stop";
        break;
      }
      if (completion % YIELD_EVERY === 0) await new Promise<void>((r) => setImmediate(r));
      // Also after onDelta, which may have aborted synchronously.
      if (signal.aborted) throw abortError(signal);
      if (completion < maxTokens && prompt.length + completion < limit) logits = this.lm.decode(next);
    }
    return {
      text: text.finish(),
      usage: { promptTokens: prompt.length, completionTokens: completion },
      latencyMs: performance.now() - started,
      finishReason,
    };
  }
}

/**
 * Generated bytes -> text: complete UTF-8 characters go to onDelta as they form, a stop string ends the
 * text (and is cut), and text that might be the start of a stop string is held back until it is not.
 * Specials other than the end tokens (a stray <|im_start|>) are dropped, as llama.cpp renders control
 * tokens as nothing.
 */
class TextStream {
  private readonly decoder = new TextDecoder("utf-8", { fatal: false });
  private text = "";
  private sent = 0;
  private stopped = false;

  constructor(private readonly onDelta: ((t: string) => void) | undefined, private readonly stops: string[]) {}

  /** Adds a token; true when a stop string has completed. */
  push(token: number): boolean {
    if (token >= BYTE_TOKENS) return false;
    this.text += this.decoder.decode(Uint8Array.of(token), { stream: true });
    return this.settle(false);
  }

  finish(): string {
    if (!this.stopped) {
      this.text += this.decoder.decode();
      this.settle(true);
    }
    return this.text;
  }

  private settle(final: boolean): boolean {
    let safe = this.text.length;
    for (const s of this.stops) {
      const at = this.text.indexOf(s);
      if (at >= 0) {
        this.text = this.text.slice(0, at);
        this.stopped = true;
        this.emit(this.text.length);
        return true;
      }
      if (!final) {
        // Hold back a tail that is a prefix of this stop string.
        for (let k = Math.min(s.length - 1, this.text.length); k > 0; k--) {
          if (s.startsWith(this.text.slice(this.text.length - k))) {
            safe = Math.min(safe, this.text.length - k);
            break;
          }
        }
      }
    }
    this.emit(safe);
    return false;
  }

  private emit(upTo: number): void {
    if (upTo > this.sent) {
      this.onDelta?.(this.text.slice(this.sent, upTo));
      this.sent = upTo;
    }
  }
}
