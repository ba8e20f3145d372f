/**
 * POST /v1/chat/completions: from a validated request to the CaC loop and back, within the operator's
 * limits (rounds, max_tokens, concurrency, deadline) and at the pace the client reads.
 */
import type http from "node:http";
import { runCheckingAsContext } from "../loop.js";
import { resolveCheckPrompt } from "../presets.js";
import { UpstreamError } from "../errors.js";
import type { CaCOptions, CaCTrace, ChatModel, TurnOptions } from "../types.js";
import {
  DONE_EVENT,
  HttpError,
  chatCompletion,
  chunkEvent,
  errorBody,
  finishReasonOf,
  invalidRequest,
  parseChatBody,
  sseEvent,
  toChatMessages,
  usageEvent,
  type ChatBody,
  type CompletionIdentity,
} from "./wire.js";
import { PacedWriter, readBody, requireJsonBody } from "./http.js";

export type AbortReason = "client" | "deadline" | "shutdown" | "slow_client";

export interface ChatSettings {
  model: ChatModel;
  cac: Omit<CaCOptions, "signal" | "onCall" | "onFinalDelta">;
  modelName: string;
  maxBodyBytes: number;
  bodyTimeoutMs: number;
  maxConcurrent: number;
  retryAfterSeconds: number;
  requestTimeoutMs: number;
  writeTimeoutMs: number;
  maxBufferedBytes: number;
  allowOverrides: boolean;
  maxRounds: number;
  maxTokens: number;
}

/** A chat completion holding a concurrency slot. */
export interface Inflight {
  abort(reason: AbortReason): void;
  done: Promise<void>;
}

export interface ChatState {
  inflight: Set<Inflight>;
  /** Requests still sending their body, aborted at shutdown. */
  reading: Set<AbortController>;
  closing(): boolean;
}

/** Maps a loop failure to the HTTP error the client sees; never the upstream's own words or URL. */
export function classifyFailure(e: unknown, reason: AbortReason | undefined, timeoutMs: number): HttpError {
  if (reason === "deadline") return new HttpError(504, `the request did not finish within ${timeoutMs} ms`, "timeout", "request_timeout");
  if (reason === "shutdown") return new HttpError(503, "the server is shutting down", "server_error", "server_shutting_down");
  if (reason === "client" || reason === "slow_client") return invalidRequest(499, "client closed the request", "client_closed_request");
  if (e instanceof UpstreamError) return new HttpError(502, e.publicMessage, "upstream_error", e.code);
  if (e instanceof RangeError) return invalidRequest(400, e.message, "invalid_value");
  return new HttpError(502, "the upstream model call failed", "upstream_error", "upstream_failure");
}

/** The CaC settings of one request: the operator's, with the request's allowed and capped changes. */
export function cacForRequest(s: ChatSettings, body: ChatBody): CaCOptions {
  const base = s.cac;
  const turn: TurnOptions = {};
  const asked = body.max_completion_tokens ?? body.max_tokens;
  // The operator's max_tokens is a ceiling: a client may ask for less, never for more.
  if (asked != null) turn.maxTokens = Math.min(asked, s.maxTokens);
  if (body.temperature != null) turn.temperature = body.temperature;
  if (body.top_p != null) turn.topP = body.top_p;
  if (body.stop != null) turn.stop = typeof body.stop === "string" ? [body.stop] : body.stop;
  if (body.seed != null) turn.seed = body.seed;
  const cac: CaCOptions = { ...base, generation: { ...base.generation, ...turn } };
  const o = body.selfcorrect;
  if (o) {
    if (!s.allowOverrides) {
      throw invalidRequest(400, "per-request selfcorrect settings are disabled on this server", "overrides_disabled", "selfcorrect");
    }
    if (o.rounds !== undefined && o.rounds > s.maxRounds) {
      throw invalidRequest(400, `selfcorrect.rounds is at most ${s.maxRounds} on this server`, "invalid_value", "selfcorrect.rounds");
    }
    if (Array.isArray(o.check_prompt) && o.check_prompt.length > Math.max(1, s.maxRounds)) {
      throw invalidRequest(400, `selfcorrect.check_prompt lists at most ${Math.max(1, s.maxRounds)} prompts on this server`, "invalid_value", "selfcorrect.check_prompt");
    }
    if (o.variant) cac.variant = o.variant;
    if (o.rounds !== undefined) cac.rounds = o.rounds;
    if (o.check_prompt) cac.checkPrompt = Array.isArray(o.check_prompt) ? o.check_prompt.map(resolveCheckPrompt) : resolveCheckPrompt(o.check_prompt);
    // A request that changes the variant or rounds cannot reuse a history built for other settings.
    if (o.variant || o.rounds !== undefined) delete cac.history;
  }
  return cac;
}

/**
 * Wraps the model so that the final answer's deltas wait for the client: the adapter holds off
 * reading the upstream while the promise `backpressure()` returns is pending.
 */
function pacedModel(model: ChatModel, backpressure: () => Promise<void> | undefined): ChatModel {
  return {
    id: model.id,
    generate(messages, gen) {
      const inner = gen?.onDelta;
      if (!gen || !inner) return model.generate(messages, gen);
      return model.generate(messages, {
        ...gen,
        onDelta: (text) => {
          inner(text);
          return backpressure();
        },
      });
    },
  };
}

const round2 = (x: number) => Math.round(x * 100) / 100;

export async function handleChat(
  s: ChatSettings,
  state: ChatState,
  req: http.IncomingMessage,
  res: http.ServerResponse,
  id: string,
  t0: number,
  logEntry: Record<string, unknown>,
): Promise<void> {
  requireJsonBody(req);
  const reading = new AbortController();
  state.reading.add(reading);
  let raw: string;
  try {
    const remaining = Math.max(1, s.requestTimeoutMs - (performance.now() - t0));
    raw = await readBody(req, { maxBytes: s.maxBodyBytes, timeoutMs: Math.min(s.bodyTimeoutMs, remaining), signal: reading.signal });
  } catch (e) {
    // The rest of a refused body is not read: the connection cannot be reused.
    if (e instanceof HttpError && e.status !== 499) res.once("finish", () => req.destroy());
    throw e;
  } finally {
    state.reading.delete(reading);
  }
  const body = parseChatBody(raw);
  if (body.model && body.model !== s.modelName) {
    throw invalidRequest(404, `the model "${body.model.slice(0, 100)}" is not served here; this server serves "${s.modelName}"`, "model_not_found", "model");
  }
  const messages = toChatMessages(body);
  const cac = cacForRequest(s, body);
  logEntry.stream = body.stream === true;

  if (state.closing()) throw new HttpError(503, "the server is shutting down", "server_error", "server_shutting_down", null, { "retry-after": "1" });
  if (state.inflight.size >= s.maxConcurrent) {
    throw new HttpError(429, `the server is at its concurrency limit (${s.maxConcurrent}); retry after ${s.retryAfterSeconds} s`, "rate_limit_error", "rate_limit_exceeded", null, {
      "retry-after": String(s.retryAfterSeconds),
    });
  }

  const abort = new AbortController();
  let abortReason: AbortReason | undefined;
  const stop = (reason: AbortReason) => {
    abortReason ??= reason;
    abort.abort(new Error(`request aborted: ${reason}`));
  };
  let finished!: () => void;
  const entry: Inflight = { abort: stop, done: new Promise<void>((r) => (finished = r)) };
  state.inflight.add(entry);
  const onClose = () => {
    if (!res.writableFinished) stop("client");
  };
  res.on("close", onClose);
  // Past the deadline the work is aborted; a client still trickling in its response gets one write
  // timeout more, then the connection goes, so no exchange outlives deadline + write timeout.
  let cutOff: NodeJS.Timeout | undefined;
  const deadline = setTimeout(() => {
    stop("deadline");
    cutOff = setTimeout(() => res.destroy(), s.writeTimeoutMs);
  }, Math.max(1, s.requestTimeoutMs - (performance.now() - t0)));
  const writer = new PacedWriter(res, s.writeTimeoutMs, s.maxBufferedBytes, (why) => {
    logEntry.slow_client = why;
    stop("slow_client");
  });
  const who: CompletionIdentity = { id: `chatcmpl-${id}`, created: Math.floor(Date.now() / 1000), model: s.modelName };
  const record = (trace: CaCTrace) => {
    const upstreamMs = trace.calls.reduce((sum, c) => sum + c.latencyMs, 0);
    Object.assign(logEntry, { status: 200, upstream_ms: round2(upstreamMs), calls: trace.calls.length, finish_reason: finishReasonOf(trace) });
    return upstreamMs;
  };
  try {
    if (body.stream === true) {
      let started = false;
      const start = () => {
        if (started) return;
        started = true;
        const h: Record<string, string> = { "content-type": "text/event-stream", "cache-control": "no-cache", "x-request-id": id };
        if (state.closing()) h.connection = "close";
        res.writeHead(200, h);
        writer.push(chunkEvent(who, { role: "assistant", content: "" }, null));
      };
      let trace: CaCTrace;
      try {
        trace = await runCheckingAsContext(pacedModel(s.model, () => writer.drained()), messages, {
          ...cac,
          signal: abort.signal,
          onFinalDelta: (text) => {
            if (res.destroyed) return;
            start();
            writer.push(chunkEvent(who, { content: text }, null));
          },
        });
      } catch (e) {
        if (!started) throw e;
        const err = classifyFailure(e, abortReason, s.requestTimeoutMs);
        Object.assign(logEntry, { status: err.status, error_type: err.type, error: err.message, level: err.status >= 500 ? "error" : "warn" });
        // Headers are out: the error travels in the stream, as OpenAI does.
        await writer.end(sseEvent(errorBody(err)));
        return;
      }
      start();
      record(trace);
      await writer.writeAll(chunkEvent(who, {}, finishReasonOf(trace), { selfcorrect: { trace } }));
      if (body.stream_options?.include_usage) await writer.writeAll(usageEvent(who, trace));
      await writer.end(DONE_EVENT);
      return;
    }

    const trace = await runCheckingAsContext(s.model, messages, { ...cac, signal: abort.signal });
    const upstreamMs = record(trace);
    if (res.destroyed) return;
    const payload = Buffer.from(chatCompletion(who, trace), "utf8");
    const h: Record<string, string> = {
      "content-type": "application/json",
      "content-length": String(payload.length),
      "x-request-id": id,
      "x-selfcorrect-upstream-ms": upstreamMs.toFixed(3),
      "x-selfcorrect-proxy-ms": (performance.now() - t0).toFixed(3),
    };
    if (state.closing()) h.connection = "close";
    res.writeHead(200, h);
    await writer.end(payload);
  } catch (e) {
    if (e instanceof HttpError) throw e;
    throw classifyFailure(e, abortReason, s.requestTimeoutMs);
  } finally {
    clearTimeout(deadline);
    clearTimeout(cutOff);
    res.off("close", onClose);
    state.inflight.delete(entry);
    finished();
  }
}
