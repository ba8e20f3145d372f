/**
 * A SCRIPTED STAND-IN for an OpenAI-compatible upstream, for tests and benchmarks only.
 * It is NOT a model: every reply comes from the `reply` function the test supplies, which sees the
 * conversation, so a test can make replies depend on what is in context (e.g. answer differently
 * once a self-check is present) and can inject faults (HTTP errors, hangs, resets, malformed JSON).
 *
 * Serves on 127.0.0.1 (random port):
 *   POST /v1/chat/completions  non-stream JSON with usage, or `stream: true` SSE chunks ending with
 *                              `data: [DONE]` (usage in the last chunk when stream_options.include_usage)
 *   GET  /v1/models
 * close() ends hung requests and destroys every socket.
 */
import http from "node:http";
import type { AddressInfo, Socket } from "node:net";
import type { ChatMessage } from "../../src/cac/types.js";
import { sleep } from "../../src/util/sleep.js";

export type ScriptedReply =
  | string
  | {
      text: string;
      delayMs?: number;
      promptTokens?: number;
      completionTokens?: number;
      /** Streaming only: wait this long before each text chunk (to see deltas arrive live). */
      chunkDelayMs?: number;
      /** Streaming only: destroy the socket after this many text chunks (a mid-stream failure). */
      resetAfterChunks?: number;
      /** Streaming only: split the text into pieces of this many characters instead of words. */
      chunkChars?: number;
      /** The finish_reason to report. Default "stop". */
      finishReason?: string;
    }
  | { status: number; headers?: Record<string, string>; body?: string }
  | { hang: true }
  | { reset: true }
  | { malformed: true };

export interface ScriptedCall {
  body: any;
  messages: ChatMessage[];
  /** True once the client went away before the reply was complete. */
  aborted: boolean;
  /** True once the reply was fully written. */
  completed: boolean;
}

export interface ScriptedServer {
  /** Base URL including /v1, e.g. "http://127.0.0.1:PORT/v1". */
  url: string;
  calls: ScriptedCall[];
  close(): Promise<void>;
}

export type ScriptedReplyFn = (
  messages: ChatMessage[],
  body: any,
  callIndex: number,
) => ScriptedReply | Promise<ScriptedReply>;

/** Rough token count so usage looks plausible; the stand-in has no tokenizer. */
function wordCount(s: string): number {
  const t = s.trim();
  return t ? t.split(/\s+/).length : 0;
}

function normaliseMessages(raw: unknown): ChatMessage[] {
  if (!Array.isArray(raw)) return [];
  return raw.map((m: any) => {
    let content = "";
    if (typeof m?.content === "string") content = m.content;
    else if (Array.isArray(m?.content))
      content = m.content.map((p: any) => (typeof p?.text === "string" ? p.text : "")).join("");
    return { role: m?.role, content } as ChatMessage;
  });
}

/** Waits, or stops waiting when the call is abandoned (the caller checks the signal afterwards). */
const pause = (ms: number, signal: AbortSignal) => sleep(ms, signal).catch(() => {});

/** Writes like a well-behaved server: when the client stops reading, so does the writer. */
function writePaced(res: http.ServerResponse, data: string, signal: AbortSignal): Promise<void> | undefined {
  if (res.write(data) || signal.aborted) return undefined;
  return new Promise((resolve) => {
    const done = () => {
      res.off("drain", done);
      res.off("close", done);
      signal.removeEventListener("abort", done);
      resolve();
    };
    res.on("drain", done);
    res.on("close", done);
    signal.addEventListener("abort", done, { once: true });
  });
}

function splitText(text: string, chunkChars: number | undefined): string[] {
  if (!chunkChars) return text.match(/\S+\s*|\s+/g) ?? [];
  const out: string[] = [];
  for (let i = 0; i < text.length; i += chunkChars) out.push(text.slice(i, i + chunkChars));
  return out;
}

export async function startScriptedServer(reply: ScriptedReplyFn): Promise<ScriptedServer> {
  const calls: ScriptedCall[] = [];
  const sockets = new Set<Socket>();
  const closing = new AbortController();
  let created = 0;

  const server = http.createServer((req, res) => {
    handle(req, res).catch((e) => {
      if (!res.headersSent && !res.destroyed) {
        res.writeHead(500, { "content-type": "application/json" });
        res.end(JSON.stringify({ error: { message: String(e?.message ?? e), type: "server_error" } }));
      } else res.destroy();
    });
  });
  server.keepAliveTimeout = 5000;
  server.on("connection", (s) => {
    sockets.add(s);
    s.on("close", () => sockets.delete(s));
  });

  async function readBody(req: http.IncomingMessage): Promise<string> {
    const chunks: Buffer[] = [];
    for await (const c of req) chunks.push(c as Buffer);
    return Buffer.concat(chunks).toString("utf8");
  }

  async function handle(req: http.IncomingMessage, res: http.ServerResponse): Promise<void> {
    const url = new URL(req.url ?? "/", "http://x");
    if (req.method === "GET" && url.pathname === "/v1/models") {
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ object: "list", data: [{ id: "scripted", object: "model", created: 0, owned_by: "test" }] }));
      return;
    }
    if (req.method !== "POST" || url.pathname !== "/v1/chat/completions") {
      res.writeHead(404, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "not found", type: "invalid_request_error" } }));
      return;
    }
    const raw = await readBody(req);
    let body: any;
    try {
      body = JSON.parse(raw);
    } catch {
      res.writeHead(400, { "content-type": "application/json" });
      res.end(JSON.stringify({ error: { message: "invalid JSON body", type: "invalid_request_error" } }));
      return;
    }
    const messages = normaliseMessages(body?.messages);
    const call: ScriptedCall = { body, messages, aborted: false, completed: false };
    const index = calls.length;
    calls.push(call);

    // The request is aborted when the client goes away before we finished the reply.
    const aborted = new AbortController();
    res.on("close", () => {
      if (!res.writableFinished) {
        call.aborted = true;
        aborted.abort();
      }
    });
    const stop = AbortSignal.any([aborted.signal, closing.signal]);

    const r = await reply(messages, body, index);
    if (stop.aborted) return;

    if (typeof r === "object" && "hang" in r) {
      await new Promise<void>((resolve) => {
        if (stop.aborted) return resolve();
        stop.addEventListener("abort", () => resolve(), { once: true });
      });
      res.destroy();
      return;
    }
    if (typeof r === "object" && "reset" in r) {
      req.socket.destroy();
      return;
    }
    if (typeof r === "object" && "malformed" in r) {
      res.writeHead(200, { "content-type": "application/json" });
      res.end('{"id": "chatcmpl-broken", "choices": [ {"message": ');
      call.completed = true;
      return;
    }
    if (typeof r === "object" && "status" in r) {
      res.writeHead(r.status, { "content-type": "application/json", ...(r.headers ?? {}) });
      res.end(r.body ?? JSON.stringify({ error: { message: `scripted status ${r.status}`, type: "server_error" } }));
      call.completed = true;
      return;
    }

    const spec = typeof r === "string" ? { text: r } : r;
    if (spec.delayMs) await pause(spec.delayMs, stop);
    if (stop.aborted) return;
    const promptTokens = spec.promptTokens ?? messages.reduce((n, m) => n + wordCount(m.content), 0);
    const completionTokens = spec.completionTokens ?? wordCount(spec.text);
    const usage = { prompt_tokens: promptTokens, completion_tokens: completionTokens, total_tokens: promptTokens + completionTokens };
    const id = `chatcmpl-scripted-${++created}`;
    const model = typeof body?.model === "string" ? body.model : "scripted";
    const createdAt = Math.floor(Date.now() / 1000);

    if (body?.stream === true) {
      res.writeHead(200, { "content-type": "text/event-stream", "cache-control": "no-cache", connection: "keep-alive" });
      const chunk = (delta: Record<string, unknown>, finish: string | null, extra: Record<string, unknown> = {}) =>
        `data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: createdAt, model, choices: [{ index: 0, delta, finish_reason: finish }], ...extra })}\n\n`;
      res.write(chunk({ role: "assistant", content: "" }, null));
      // Split into a few pieces so clients really assemble a stream.
      const pieces = splitText(spec.text, spec.chunkChars);
      for (let i = 0; i < pieces.length; i++) {
        if (spec.resetAfterChunks !== undefined && i >= spec.resetAfterChunks) {
          // Let the chunks already written reach the client before the reset.
          await pause(30, stop);
          req.socket.destroy();
          return;
        }
        if (spec.chunkDelayMs) await pause(spec.chunkDelayMs, stop);
        if (stop.aborted) return;
        const wait = writePaced(res, chunk({ content: pieces[i] }, null), stop);
        if (wait) await wait;
      }
      if (stop.aborted) return;
      res.write(chunk({}, spec.finishReason ?? "stop"));
      if (body?.stream_options?.include_usage) {
        res.write(`data: ${JSON.stringify({ id, object: "chat.completion.chunk", created: createdAt, model, choices: [], usage })}\n\n`);
      }
      res.end("data: [DONE]\n\n");
      call.completed = true;
      return;
    }
    res.writeHead(200, { "content-type": "application/json" });
    res.end(
      JSON.stringify({
        id,
        object: "chat.completion",
        created: createdAt,
        model,
        choices: [{ index: 0, message: { role: "assistant", content: spec.text }, finish_reason: spec.finishReason ?? "stop", logprobs: null }],
        usage,
      }),
    );
    call.completed = true;
  }

  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  const port = (server.address() as AddressInfo).port;

  return {
    url: `http://127.0.0.1:${port}/v1`,
    calls,
    close: () =>
      new Promise<void>((resolve) => {
        closing.abort();
        server.close(() => resolve());
        for (const s of sockets) s.destroy();
      }),
  };
}
