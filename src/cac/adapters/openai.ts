/**
 * ChatModel over any OpenAI-compatible /v1/chat/completions endpoint, through the official `openai`
 * SDK. Retries are ours (the SDK's are off) so that every fault the proxy can meet is handled the
 * same way: 429 (honouring Retry-After), 5xx, 408/409, connection errors, per-attempt timeouts
 * (covering the body as well as the headers) and malformed JSON are retried with exponential
 * backoff and jitter; after the last attempt an UpstreamError says what went wrong. A response over
 * `maxResponseBytes` fails at once (kind "too_large"): the next attempt would most likely be as big.
 */
import OpenAI, { APIConnectionError, APIError, APIUserAbortError } from "openai";
import type { ChatMessage, ChatModel, ChatResult, GenerateOptions, TurnOptions } from "../types.js";
import { UpstreamError, redactUrl, type UpstreamFailure } from "../errors.js";
import { abortError } from "../../util/sleep.js";
import { RetriesExhausted, retryWithBackoff } from "../../util/retry.js";
import { ResponseTooLargeError, createNodeHttpFetch, limitResponseBytes } from "./node-http-fetch.js";

export interface OpenAIModelOptions {
  /** e.g. "https://api.openai.com/v1" or "http://127.0.0.1:8080/v1". */
  baseURL: string;
  model: string;
  /** Optional for local servers (a placeholder is sent). */
  apiKey?: string;
  /** Per attempt, covering the whole response (for a streamed call: the longest silence). Default 60 000 ms. */
  timeoutMs?: number;
  /** Retries after the first attempt. Default 2. */
  maxRetries?: number;
  /** First backoff; doubles each retry, with jitter. Default 500 ms. */
  retryBaseMs?: number;
  /** Upper bound of one backoff wait, Retry-After included. Default 30 000 ms. */
  retryMaxMs?: number;
  /**
   * Largest upstream response body read, in bytes (a streamed answer counts its SSE framing). Larger
   * ones are cut off and fail with kind "too_large", so a runaway upstream cannot exhaust memory.
   * Default 32 MiB.
   */
  maxResponseBytes?: number;
  /** Defaults for every call (maxTokens, temperature...). */
  defaults?: TurnOptions;
  /** Some endpoints (OpenAI's newer models) want max_completion_tokens. Default "max_tokens". */
  maxTokensField?: "max_tokens" | "max_completion_tokens";
  headers?: Record<string, string>;
  /** Custom fetch (tests, proxies). Default: a keep-alive node:http transport (see node-http-fetch.ts). */
  fetch?: typeof fetch;
  /** "node-http" (default, much cheaper per call under load) or "fetch" (the global fetch). Ignored with `fetch`. */
  transport?: "node-http" | "fetch";
}

export const DEFAULT_MAX_RESPONSE_BYTES = 32 * 1024 * 1024;

/** The OpenAI-compatible model: a ChatModel plus the SDK client and a readiness probe. */
export interface OpenAIChatModel extends ChatModel {
  readonly client: OpenAI;
  /** One GET /models with a short deadline; rejects with an UpstreamError when the upstream is not serving. */
  ready(signal?: AbortSignal): Promise<void>;
}

interface AttemptFailure {
  kind: UpstreamFailure;
  retryable: boolean;
  status?: number;
  /** Safe to show anyone: no URL, no upstream text. */
  detail: string;
  /** The upstream's own words, if any. */
  upstreamMessage?: string;
  retryAfterMs?: number;
  cause: unknown;
}

/** A failed attempt, classified; what retryWithBackoff sees. */
class AttemptFailed extends Error {
  constructor(readonly failure: AttemptFailure) {
    super(failure.detail);
  }
}

/** An error that ends the call as it is, without being turned into an UpstreamError (aborts). */
class PassThrough extends Error {
  constructor(readonly error: unknown) {
    super("pass-through");
  }
}

/** Per-attempt deadline that progress re-arms; paused while the caller holds up the stream. */
interface AttemptTimer {
  progress(): void;
  pause(): void;
}

function parseRetryAfter(headers: Headers | undefined): number | undefined {
  if (!headers) return undefined;
  const ms = headers.get("retry-after-ms");
  if (ms && Number.isFinite(Number(ms))) return Math.max(0, Number(ms));
  const ra = headers.get("retry-after");
  if (!ra) return undefined;
  if (/^\s*\d+(\.\d+)?\s*$/.test(ra)) return Math.max(0, Number(ra) * 1000);
  const date = Date.parse(ra);
  return Number.isFinite(date) ? Math.max(0, date - Date.now()) : undefined;
}

function findInCauses<T>(e: unknown, pick: (x: unknown) => T | undefined): T | undefined {
  for (let x: unknown = e, depth = 0; x != null && depth < 6; x = (x as { cause?: unknown }).cause, depth++) {
    const hit = pick(x);
    if (hit !== undefined) return hit;
  }
  return undefined;
}

/** A system error code (ECONNRESET, ENOTFOUND...) from anywhere in the cause chain: safe to show. */
function errnoCode(e: unknown): string | undefined {
  return findInCauses(e, (x) => {
    const code = (x as { code?: unknown }).code;
    return typeof code === "string" && /^[A-Z][A-Z0-9_]{2,40}$/.test(code) ? code : undefined;
  });
}

function isPromiseLike(x: unknown): x is PromiseLike<unknown> {
  return typeof x === "object" && x !== null && typeof (x as { then?: unknown }).then === "function";
}

class MalformedResponse extends Error {}

export function createOpenAIModel(options: OpenAIModelOptions): OpenAIChatModel {
  const timeoutMs = options.timeoutMs ?? 60_000;
  const maxRetries = options.maxRetries ?? 2;
  const retryBaseMs = options.retryBaseMs ?? 500;
  const retryMaxMs = options.retryMaxMs ?? 30_000;
  const maxResponseBytes = options.maxResponseBytes ?? DEFAULT_MAX_RESPONSE_BYTES;
  const maxTokensField = options.maxTokensField ?? "max_tokens";
  const transport = options.fetch
    ? limitResponseBytes(options.fetch, maxResponseBytes)
    : options.transport === "fetch"
      ? limitResponseBytes(globalThis.fetch, maxResponseBytes)
      : createNodeHttpFetch({ maxResponseBytes });
  const client = new OpenAI({
    baseURL: options.baseURL,
    apiKey: options.apiKey || "not-needed",
    maxRetries: 0,
    // Our own per-attempt deadline is enforced through the signal; this is only a backstop.
    timeout: timeoutMs + 1000,
    defaultHeaders: options.headers,
    fetch: transport,
  });
  const safeBaseURL = redactUrl(options.baseURL);
  const where = `${safeBaseURL} (model ${options.model})`;

  function body(messages: ChatMessage[], gen: GenerateOptions) {
    const o = { ...options.defaults, ...stripUndefined(gen) };
    const b: Record<string, unknown> = {
      model: options.model,
      messages: messages.map((m) => ({ role: m.role, content: m.content })),
    };
    if (o.maxTokens !== undefined) b[maxTokensField] = o.maxTokens;
    if (o.temperature !== undefined) b.temperature = o.temperature;
    if (o.topP !== undefined) b.top_p = o.topP;
    if (o.stop?.length) b.stop = o.stop;
    if (o.seed !== undefined) b.seed = o.seed;
    return b;
  }

  function classify(e: unknown, timedOut: boolean): AttemptFailure {
    if (timedOut) return { kind: "timeout", retryable: true, detail: `timed out after ${timeoutMs} ms`, cause: e };
    if (findInCauses(e, (x) => (x instanceof ResponseTooLargeError ? x : undefined))) {
      return { kind: "too_large", retryable: false, detail: `response over the limit of ${maxResponseBytes} bytes`, cause: e };
    }
    if (e instanceof MalformedResponse || e instanceof SyntaxError) {
      return { kind: "malformed", retryable: true, detail: "malformed response", upstreamMessage: (e as Error).message, cause: e };
    }
    if (e instanceof APIConnectionError) {
      const code = errnoCode(e);
      return { kind: "connection", retryable: true, detail: `connection failed${code ? ` (${code})` : ""}`, cause: e };
    }
    if (e instanceof APIError && typeof e.status === "number") {
      const s = e.status;
      const retryable = s === 408 || s === 409 || s === 429 || s >= 500;
      const msg = (e.error as { message?: string } | undefined)?.message ?? e.message;
      const f: AttemptFailure = { kind: "http", retryable, status: s, detail: `HTTP ${s}`, cause: e };
      if (msg) f.upstreamMessage = msg;
      const retryAfterMs = parseRetryAfter(e.headers as Headers | undefined);
      if (retryAfterMs !== undefined) f.retryAfterMs = retryAfterMs;
      return f;
    }
    // fetch-level failures that the SDK did not wrap (e.g. a socket reset while reading the body).
    const err = e as { name?: string; message?: string };
    const code = errnoCode(e);
    if (err?.name === "TypeError" || code) {
      return { kind: "connection", retryable: true, detail: `connection failed${code ? ` (${code})` : ""}`, upstreamMessage: err?.message, cause: e };
    }
    return { kind: "connection", retryable: false, detail: "request failed", upstreamMessage: String(err?.message ?? e), cause: e };
  }

  /**
   * Runs attempts until one succeeds or the failure is final. The attempt's timer re-arms on progress:
   * a streamed call times out when it goes quiet for timeoutMs, not when it runs long.
   */
  async function withRetries<T>(
    signal: AbortSignal | undefined,
    attempt: (signal: AbortSignal, timer: AttemptTimer) => Promise<T>,
    retries = maxRetries,
  ): Promise<T> {
    try {
      return await retryWithBackoff(
        async () => {
          if (signal?.aborted) throw new PassThrough(abortError(signal));
          // One controller per attempt, aborted by the caller's signal or the attempt's deadline
          // (linked by hand: AbortSignal.any is slow on Node 20 and this runs for every call).
          const attemptAbort = new AbortController();
          let timedOutHere = false;
          const onTimeout = () => {
            timedOutHere = true;
            attemptAbort.abort(new Error("timeout"));
          };
          let t: NodeJS.Timeout | undefined = setTimeout(onTimeout, timeoutMs);
          const timer: AttemptTimer = {
            progress() {
              clearTimeout(t);
              t = setTimeout(onTimeout, timeoutMs);
            },
            pause() {
              clearTimeout(t);
              t = undefined;
            },
          };
          const onCallerAbort = () => attemptAbort.abort(signal!.reason);
          signal?.addEventListener("abort", onCallerAbort, { once: true });
          try {
            return await attempt(attemptAbort.signal, timer);
          } catch (e) {
            if (signal?.aborted) throw new PassThrough(abortError(signal));
            const timedOut = timedOutHere || e instanceof OpenAI.APIConnectionTimeoutError;
            if (e instanceof APIUserAbortError && !timedOut) throw new PassThrough(e);
            const failure = classify(e, timedOut);
            // Text already went out to the caller: a retry would repeat it.
            if ((e as { noRetry?: boolean })?.noRetry) failure.retryable = false;
            throw new AttemptFailed(failure);
          } finally {
            clearTimeout(t);
            signal?.removeEventListener("abort", onCallerAbort);
          }
        },
        {
          retries,
          baseDelayMs: retryBaseMs,
          maxDelayMs: retryMaxMs,
          ...(signal ? { signal } : {}),
          shouldRetry: (e) => {
            if (!(e instanceof AttemptFailed) || !e.failure.retryable) return false;
            return e.failure.retryAfterMs !== undefined ? { delayMs: e.failure.retryAfterMs } : true;
          },
        },
      );
    } catch (e) {
      if (!(e instanceof RetriesExhausted)) throw e;
      const last = e.cause;
      if (last instanceof PassThrough) throw last.error;
      if (!(last instanceof AttemptFailed)) throw last;
      const f = last.failure;
      throw new UpstreamError({
        kind: f.kind,
        attempts: e.attempts,
        detail: f.detail,
        where,
        cause: f.cause,
        ...(f.status !== undefined ? { status: f.status } : {}),
        ...(f.upstreamMessage !== undefined ? { upstreamMessage: f.upstreamMessage } : {}),
      });
    }
  }

  async function generate(messages: ChatMessage[], gen: GenerateOptions = {}): Promise<ChatResult> {
    const t0 = performance.now();
    if (gen.onDelta) return generateStreaming(messages, gen, gen.onDelta, t0);
    return withRetries(gen.signal, async (signal) => {
      const res = (await client.chat.completions.create(body(messages, gen) as never, { signal })) as unknown as OpenAI.Chat.ChatCompletion;
      const choice = res?.choices?.[0];
      if (!choice?.message || (typeof choice.message.content !== "string" && choice.message.content !== null)) {
        throw new MalformedResponse("no choices[0].message in the response");
      }
      const result: ChatResult = {
        text: choice.message.content ?? "",
        usage: { promptTokens: res.usage?.prompt_tokens ?? 0, completionTokens: res.usage?.completion_tokens ?? 0 },
        latencyMs: performance.now() - t0,
      };
      if (choice.finish_reason) result.finishReason = choice.finish_reason;
      return result;
    });
  }

  /**
   * Streams the answer to onDelta. An onDelta that returns a promise (a proxy whose client reads
   * slowly) holds off reading the upstream until it settles, so text is never piled up here; the
   * attempt's silence deadline does not run meanwhile, because the wait is ours, not the upstream's.
   */
  async function generateStreaming(messages: ChatMessage[], gen: GenerateOptions, onDelta: (text: string) => unknown, t0: number): Promise<ChatResult> {
    return withRetries(gen.signal, async (signal, timer) => {
      const stream = (await client.chat.completions.create(
        { ...body(messages, gen), stream: true, stream_options: { include_usage: true } } as never,
        { signal },
      )) as unknown as AsyncIterable<OpenAI.Chat.ChatCompletionChunk>;
      let text = "";
      let finishReason: string | undefined;
      let usage = { promptTokens: 0, completionTokens: 0 };
      let emitted = false;
      try {
        for await (const chunk of stream) {
          timer.progress();
          const choice = chunk.choices?.[0];
          const piece = choice?.delta?.content;
          if (piece) {
            text += piece;
            emitted = true;
            const ack = onDelta(piece);
            if (isPromiseLike(ack)) {
              timer.pause();
              await ack;
              signal.throwIfAborted();
              timer.progress();
            }
          }
          if (choice?.finish_reason) finishReason = choice.finish_reason;
          if (chunk.usage) usage = { promptTokens: chunk.usage.prompt_tokens ?? 0, completionTokens: chunk.usage.completion_tokens ?? 0 };
        }
      } catch (e) {
        if (emitted && e && typeof e === "object") (e as { noRetry?: boolean }).noRetry = true;
        throw e;
      }
      const result: ChatResult = { text, usage, latencyMs: performance.now() - t0 };
      if (finishReason) result.finishReason = finishReason;
      return result;
    });
  }

  async function ready(signal?: AbortSignal): Promise<void> {
    await withRetries(
      signal,
      async (s) => {
        await client.models.list({ signal: s });
      },
      0,
    );
  }

  return { id: `openai:${options.model}@${safeBaseURL}`, client, generate, ready };
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined && k !== "signal" && k !== "onDelta") (out as Record<string, unknown>)[k] = v;
  return out;
}
