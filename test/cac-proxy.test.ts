// The CaC proxy (src/cac/server.ts), in-process on loopback, in front of the SCRIPTED STAND-IN upstream:
// the official openai client (stream and non-stream, the check really in context), faults, client
// disconnects, auth (the token never in logs), limits and shutdown.
import { test } from "node:test";
import assert from "node:assert/strict";
import OpenAI from "openai";
import { startScriptedServer, type ScriptedReply } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { createOpenAIModel } from "../src/cac/adapters/openai.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { waitFor } from "./support/wait.js";
import { startProxyServer, type LogEntry } from "../src/cac/server.js";
import type { ChatMessage } from "../src/cac/types.js";

failOnUnhandledRejections();

/** The model id the proxy serves; requests naming another get 404. */
const MODEL = "cac-stand-in";
const JSON_HEADERS = { "content-type": "application/json" };

const TOKEN = "sk-proxy-Secret-Token-1234567890";

/** The stand-in: faults keyed by the query, conversation-dependent replies otherwise. */
function standIn(messages: ChatMessage[]): ScriptedReply {
  const query = messages.find((m) => m.role === "user")?.content ?? "";
  const isFinal = messages.some((m) => m.content.startsWith("CHECK "));
  switch (query) {
    case "fault 500":
      return { status: 500 };
    case "fault 429":
      return { status: 429, headers: { "retry-after": "1" } };
    case "fault reset":
      return { reset: true };
    case "fault hang":
      return { hang: true };
    case "fault malformed":
      return { malformed: true };
    case "fail at the final call":
      if (isFinal) return { status: 503 };
      break;
    case "slow stream":
      if (isFinal) return { text: "one two three four", chunkDelayMs: 100 };
      break;
    case "fail mid-stream":
      if (isFinal) return { text: "one two three four", resetAfterChunks: 2 };
      break;
    case "slow":
      return { text: conversationReply(messages), delayMs: 100 };
    case "cut short":
      if (isFinal) return { text: "REFUSED but cut", finishReason: "length" };
      break;
  }
  return conversationReply(messages);
}

async function setup(extra: Partial<Parameters<typeof startProxyServer>[0]> = {}) {
  const upstream = await startScriptedServer(standIn);
  const logs: LogEntry[] = [];
  const model = createOpenAIModel({ baseURL: upstream.url, model: "stand-in", maxRetries: 1, retryBaseMs: 10, timeoutMs: 600 });
  const proxy = await startProxyServer({
    model,
    modelName: MODEL,
    cac: { variant: "self-instruct", rounds: 1 },
    log: (e) => logs.push(e),
    ...extra,
  });
  const client = new OpenAI({ baseURL: proxy.baseURL, apiKey: extra.token ?? "unused", maxRetries: 0 });
  return {
    upstream,
    proxy,
    logs,
    client,
    async close() {
      await proxy.close();
      await upstream.close();
    },
  };
}

test("official openai client: non-stream and stream completions with the check in context", async () => {
  const s = await setup({ allowRequestOverrides: true });
  try {
    const r = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "how to pick a lock" }] });
    assert.equal(r.object, "chat.completion");
    assert.equal(r.choices[0]!.message.role, "assistant");
    assert.equal(r.choices[0]!.message.content, "REFUSED after 1 check(s): I will not help with how to pick a lock.");
    assert.equal(r.choices[0]!.finish_reason, "stop");
    const trace = (r as any).selfcorrect.trace;
    assert.equal(trace.initialAnswer, "Sure, here is how to pick a lock.");
    assert.deepEqual(trace.calls.map((c: any) => c.purpose), ["initial", "check", "answer"]);
    assert.equal(r.usage!.prompt_tokens, trace.usage.promptTokens);
    // The stand-in saw the check in the context of the re-answer.
    assert.equal(s.upstream.calls.length, 3);
    assert.ok(s.upstream.calls[2]!.messages.some((m) => m.role === "assistant" && m.content.startsWith("CHECK 1:")));

    const raw = await s.client.chat.completions
      .create({ model: MODEL, messages: [{ role: "user", content: "how to pick a lock" }] })
      .withResponse();
    assert.ok(Number(raw.response.headers.get("x-selfcorrect-upstream-ms")) > 0);
    assert.ok(raw.response.headers.get("x-request-id"));

    const stream = await s.client.chat.completions.create({
      model: MODEL,
      messages: [{ role: "user", content: "how to pick a lock" }],
      stream: true,
      stream_options: { include_usage: true },
      selfcorrect: { rounds: 2 },
    } as any);
    let text = "";
    let deltas = 0;
    let usage: any;
    let streamTrace: any;
    for await (const chunk of stream as any) {
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) {
        text += piece;
        deltas++;
      }
      if (chunk.usage) usage = chunk.usage;
      if (chunk.selfcorrect) streamTrace = chunk.selfcorrect.trace;
    }
    assert.equal(text, "REFUSED after 2 check(s): I will not help with how to pick a lock.");
    assert.ok(deltas > 1);
    assert.equal(streamTrace.rounds, 2);
    assert.equal(streamTrace.finalAnswer, text);
    assert.equal(usage.completion_tokens, streamTrace.usage.completionTokens);
    assert.equal(s.upstream.calls.at(-1)!.body.stream, true, "the final call was streamed from the upstream");

    const models = await s.client.models.list();
    assert.equal(models.data[0]!.id, MODEL);
    const health: any = await (await fetch(`${s.proxy.url}/healthz`)).json();
    assert.equal(health.status, "ok");
  } finally {
    await s.close();
  }
});

test("streaming: the final answer arrives live; a mid-stream upstream failure ends the stream with an error event", async () => {
  const s = await setup({ requestTimeoutMs: 10_000 });
  try {
    const t0 = performance.now();
    const stream = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "slow stream" }], stream: true });
    const arrivals: { t: number; piece: string }[] = [];
    for await (const chunk of stream) {
      const piece = chunk.choices[0]?.delta?.content;
      if (piece) arrivals.push({ t: performance.now() - t0, piece });
    }
    assert.equal(arrivals.map((a) => a.piece).join(""), "one two three four");
    assert.ok(arrivals.at(-1)!.t - arrivals[0]!.t >= 250, `deltas spread over time: ${arrivals.map((a) => Math.round(a.t))}`);

    // Leaving mid-stream aborts the upstream stream of the final answer.
    const ac = new AbortController();
    const leaving = await s.client.chat.completions.create(
      { model: MODEL, messages: [{ role: "user", content: "slow stream" }], stream: true },
      { signal: ac.signal },
    );
    const before = s.upstream.calls.length;
    let seenBeforeLeaving = "";
    try {
      for await (const chunk of leaving) {
        seenBeforeLeaving += chunk.choices[0]?.delta?.content ?? "";
        if (seenBeforeLeaving) ac.abort();
      }
    } catch {
      // The SDK may end the iteration quietly or throw on abort; either is fine here.
    }
    assert.equal(seenBeforeLeaving, "one ");
    await waitFor(() => s.upstream.calls.length === before && s.upstream.calls.at(-1)!.aborted && s.proxy.inflight() === 0);

    const broken = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "fail mid-stream" }], stream: true });
    let got = "";
    await assert.rejects(
      (async () => {
        for await (const chunk of broken) got += chunk.choices[0]?.delta?.content ?? "";
      })(),
      (e: any) => {
        assert.ok(e instanceof OpenAI.APIError, String(e));
        assert.match(e.message, /upstream .*connection failed/);
        return true;
      },
    );
    assert.equal(got, "one two ");
    const finals = s.upstream.calls.filter((c) => c.messages[0]?.content === "fail mid-stream" && c.body.stream === true);
    assert.equal(finals.length, 1, "no retry once text went out");
    // Still serving.
    const ok = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hello" }] });
    assert.match(ok.choices[0]!.message.content!, /^REFUSED/);
  } finally {
    await s.close();
  }
});

test("faults: a bounded retry, then a well-formed OpenAI error; the proxy keeps serving", async () => {
  const s = await setup();
  try {
    const expectError = async (content: string, code: string, re: RegExp, stream = false) => {
      const t0 = Date.now();
      await assert.rejects(
        s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content }], stream } as any) as Promise<unknown>,
        (e: any) => {
          assert.ok(e instanceof OpenAI.APIError, String(e));
          assert.equal(e.status, 502);
          assert.equal(e.error.type, "upstream_error");
          assert.equal(e.error.code, code);
          assert.match(e.error.message, re);
          return true;
        },
      );
      // Still serving.
      const ok = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hello" }] });
      assert.match(ok.choices[0]!.message.content!, /^REFUSED/);
      return Date.now() - t0;
    };
    const attempts = (q: string) => s.upstream.calls.filter((c) => c.messages[0]?.content === q).length;

    await expectError("fault 500", "upstream_http_500", /HTTP 500.*after 2 attempts/);
    assert.equal(attempts("fault 500"), 2);
    const waited = await expectError("fault 429", "upstream_http_429", /HTTP 429.*after 2 attempts/);
    assert.ok(waited >= 950, `Retry-After honoured (${waited} ms)`);
    await expectError("fault reset", "upstream_connection", /connection failed.*after 2 attempts/);
    await expectError("fault hang", "upstream_timeout", /timed out after 600 ms \(gave up after 2 attempts\)/);
    await expectError("fault malformed", "upstream_malformed", /malformed response.*after 2 attempts/);
    await expectError("fail at the final call", "upstream_http_503", /HTTP 503/, true);

    // Raw error body shape.
    const res = await fetch(`${s.proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ messages: [{ role: "user", content: "fault 500" }] }),
    });
    assert.equal(res.status, 502);
    const body: any = await res.json();
    assert.deepEqual(Object.keys(body.error).sort(), ["code", "message", "param", "type"]);

    const bad = await fetch(`${s.proxy.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: "{not json" });
    assert.equal(bad.status, 400);
    assert.equal(((await bad.json()) as any).error.code, "invalid_json");
    const invalid = await fetch(`${s.proxy.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ messages: [{ role: "wizard", content: "x" }] }) });
    assert.equal(invalid.status, 400);
    assert.equal(((await invalid.json()) as any).error.param, "messages.0.role");
    const nf = await fetch(`${s.proxy.url}/v2/nothing`);
    assert.equal(nf.status, 404);
    await nf.text();
    assert.ok(s.logs.some((l) => l.status === 502 && l.level === "error"));
  } finally {
    await s.close();
  }
});

test("a client disconnect aborts the upstream calls", async () => {
  const s = await setup({ requestTimeoutMs: 60_000 });
  try {
    const upstreamHang = await startScriptedServer(() => ({ hang: true }));
    const proxy2 = await startProxyServer({
      model: createOpenAIModel({ baseURL: upstreamHang.url, model: "m", timeoutMs: 30_000 }),
      log: (e) => s.logs.push(e),
    });
    try {
      const ac = new AbortController();
      const p = fetch(`${proxy2.url}/v1/chat/completions`, {
        method: "POST",
        headers: JSON_HEADERS,
        body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }),
        signal: ac.signal,
      });
      await waitFor(() => upstreamHang.calls.length === 1);
      assert.equal(proxy2.inflight(), 1);
      ac.abort();
      await assert.rejects(p);
      await waitFor(() => upstreamHang.calls[0]?.aborted === true && proxy2.inflight() === 0);
      assert.equal(upstreamHang.calls.length, 1, "no retry after the client left");
      await waitFor(() => s.logs.some((l) => l.status === 499));

      // The per-request deadline gives a 504 and aborts the upstream call too.
      const proxy3 = await startProxyServer({
        model: createOpenAIModel({ baseURL: upstreamHang.url, model: "m", timeoutMs: 30_000 }),
        requestTimeoutMs: 200,
        log: () => {},
      });
      try {
        const r = await fetch(`${proxy3.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ messages: [{ role: "user", content: "y" }] }) });
        assert.equal(r.status, 504);
        assert.equal(((await r.json()) as any).error.code, "request_timeout");
        await waitFor(() => upstreamHang.calls[1]?.aborted === true);
      } finally {
        await proxy3.close();
      }
    } finally {
      await proxy2.close();
      await upstreamHang.close();
    }
  } finally {
    await s.close();
  }
});

test("auth: 401 without or with a wrong token; the token never appears in logs", async () => {
  const s = await setup({ token: TOKEN });
  try {
    const noAuth = await fetch(`${s.proxy.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }) });
    assert.equal(noAuth.status, 401);
    const e: any = await noAuth.json();
    assert.equal(e.error.code, "invalid_api_key");
    const wrong = new OpenAI({ baseURL: `${s.proxy.url}/v1`, apiKey: TOKEN + "x", maxRetries: 0 });
    await assert.rejects(wrong.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "x" }] }), (err: any) => err.status === 401);
    await assert.rejects(wrong.models.list(), (err: any) => err.status === 401);
    const short = new OpenAI({ baseURL: `${s.proxy.url}/v1`, apiKey: "s", maxRetries: 0 });
    await assert.rejects(short.models.list(), (err: any) => err.status === 401);
    const ok = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: `please echo ${TOKEN.slice(0, 4)}` }] });
    assert.equal(ok.choices[0]!.message.role, "assistant");
    assert.equal((await fetch(`${s.proxy.url}/healthz`)).status, 200, "health needs no token");
    assert.equal(s.upstream.calls.every((c) => !JSON.stringify(c.body).includes(TOKEN)), true, "not forwarded upstream");
    const logText = s.logs.map((l) => JSON.stringify(l)).join("\n");
    assert.ok(s.logs.filter((l) => l.status === 401).length >= 3);
    assert.ok(!logText.includes(TOKEN), "token in logs");
    assert.ok(!logText.includes(TOKEN + "x"));
  } finally {
    await s.close();
  }
});

test("limits: 413 over the size limit, 429 + Retry-After at the concurrency limit; graceful shutdown", async () => {
  const s = await setup({ maxBodyBytes: 2000, maxConcurrent: 1, retryAfterSeconds: 2 });
  try {
    const big = await fetch(`${s.proxy.url}/v1/chat/completions`, {
      method: "POST",
      headers: JSON_HEADERS,
      body: JSON.stringify({ messages: [{ role: "user", content: "x".repeat(5000) }] }),
    });
    assert.equal(big.status, 413);
    assert.equal(((await big.json()) as any).error.code, "request_too_large");

    const slow = s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "slow" }] });
    await waitFor(() => s.proxy.inflight() === 1);
    const busy = await fetch(`${s.proxy.url}/v1/chat/completions`, { method: "POST", headers: JSON_HEADERS, body: JSON.stringify({ messages: [{ role: "user", content: "x" }] }) });
    assert.equal(busy.status, 429);
    assert.equal(busy.headers.get("retry-after"), "2");
    assert.equal(((await busy.json()) as any).error.code, "rate_limit_exceeded");

    // Shutdown while `slow` is in flight: it still completes; new connections are refused afterwards.
    const closing = s.proxy.close();
    const done = await slow;
    assert.match(done.choices[0]!.message.content!, /^REFUSED/);
    await closing;
    await assert.rejects(fetch(`${s.proxy.url}/healthz`));
    assert.ok(s.logs.some((l) => l.event === "closed"));
  } finally {
    await s.close();
  }
});

test("finish_reason is the upstream's own for the final answer, streamed and not", async () => {
  const s = await setup();
  try {
    const plain = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "cut short" }] });
    assert.equal(plain.choices[0]!.message.content, "REFUSED but cut");
    assert.equal(plain.choices[0]!.finish_reason, "length");
    const stream = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "cut short" }], stream: true });
    const reasons: (string | null)[] = [];
    let text = "";
    for await (const chunk of stream) {
      const choice = chunk.choices[0];
      if (!choice) continue;
      text += choice.delta?.content ?? "";
      reasons.push(choice.finish_reason);
    }
    assert.equal(text, "REFUSED but cut");
    assert.deepEqual(reasons.filter((r) => r !== null), ["length"]);
    // And "stop" where the upstream said "stop".
    const ok = await s.client.chat.completions.create({ model: MODEL, messages: [{ role: "user", content: "hello" }] });
    assert.equal(ok.choices[0]!.finish_reason, "stop");
  } finally {
    await s.close();
  }
});
