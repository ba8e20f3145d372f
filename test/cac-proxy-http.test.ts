// The CaC proxy's HTTP surface, in-process on loopback, in front of the SCRIPTED STAND-IN upstream:
// Bearer handling, status codes (408, 415, 431, 404 for an unknown model, 400 for non-text parts),
// /healthz and /readyz, the operator's caps on overrides and max_tokens, and the write timeout.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { spawnSync } from "node:child_process";
import { startScriptedServer, type ScriptedReply } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { CLI, postChat, request } from "./support/serve-process.js";
import { waitFor } from "./support/wait.js";
import { createOpenAIModel } from "../src/cac/adapters/openai.js";
import { ProxyConfigError, startProxyServer, type LogEntry, type ProxyServerOptions } from "../src/cac/server.js";
import type { ChatMessage } from "../src/cac/types.js";

failOnUnhandledRejections();

const MODEL = "cac-stand-in";
const TOKEN = "proxy-token-0123456789";
const hello = { model: MODEL, messages: [{ role: "user", content: "hello" }] };

async function setup(extra: Partial<ProxyServerOptions> = {}, reply: (m: ChatMessage[], body: { stream?: boolean } | undefined) => ScriptedReply = (m) => conversationReply(m)) {
  const upstream = await startScriptedServer(reply);
  const logs: LogEntry[] = [];
  const proxy = await startProxyServer({
    model: createOpenAIModel({ baseURL: upstream.url, model: "stand-in", maxRetries: 0, timeoutMs: 5000 }),
    modelName: MODEL,
    cac: { variant: "self-instruct", rounds: 1, generation: { maxTokens: 100 } },
    log: (e) => logs.push(e),
    ...extra,
  });
  return {
    upstream,
    proxy,
    logs,
    async close() {
      await proxy.close();
      await upstream.close();
    },
  };
}

/** Writes raw bytes and returns what came back before the server closed the connection. */
function rawExchange(port: number, data: string, waitMs: number): Promise<{ text: string; closedAfterMs: number | undefined }> {
  return new Promise((resolve) => {
    const t0 = Date.now();
    const socket = net.connect(port, "127.0.0.1", () => socket.write(data));
    let text = "";
    socket.setEncoding("utf8");
    socket.on("data", (d: string) => (text += d));
    socket.on("error", () => {});
    const timer = setTimeout(() => {
      socket.destroy();
      resolve({ text, closedAfterMs: undefined });
    }, waitMs);
    socket.on("close", () => {
      clearTimeout(timer);
      resolve({ text, closedAfterMs: Date.now() - t0 });
    });
  });
}

test("Bearer: any case of the scheme, extra spaces, a configured token with spaces around it; wrong or other schemes get 401", async () => {
  const s = await setup({ token: `  ${TOKEN}\n` });
  try {
    const models = (authorization?: string) => request(s.proxy.url, { path: "/v1/models", headers: authorization ? { authorization } : {} });
    for (const ok of [`Bearer ${TOKEN}`, `bearer ${TOKEN}`, `BEARER ${TOKEN}`, `Bearer   ${TOKEN}  `]) assert.equal((await models(ok)).status, 200, ok);
    for (const bad of [undefined, `Bearer ${TOKEN}x`, `Basic ${TOKEN}`, `Bearer`, `${TOKEN}`, `Bearer ${TOKEN} extra`]) {
      const r = await models(bad);
      assert.equal(r.status, 401, String(bad));
      assert.equal(r.headers["www-authenticate"], "Bearer");
    }
    assert.ok(!JSON.stringify(s.logs).includes(TOKEN));
  } finally {
    await s.close();
  }
});

test("status codes: 431 for oversized headers, 408 for slow headers and slow bodies, 415, 404 for an unknown model, 400 for non-text parts", async () => {
  const s = await setup({ headersTimeoutMs: 300, bodyTimeoutMs: 300, maxHeaderBytes: 4096 });
  try {
    const big = await rawExchange(s.proxy.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\nx-big: ${"a".repeat(8000)}\r\n\r\n`, 3000);
    assert.match(big.text, /^HTTP\/1\.1 431 /);

    const slowHeaders = await rawExchange(s.proxy.port, `GET /healthz HTTP/1.1\r\nHost: 127.0.0.1\r\n`, 5000);
    assert.match(slowHeaders.text, /^HTTP\/1\.1 408 /);
    assert.ok(slowHeaders.closedAfterMs !== undefined && slowHeaders.closedAfterMs < 2000, `closed after ${slowHeaders.closedAfterMs} ms`);

    const slowBody = await rawExchange(
      s.proxy.port,
      `POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: 50\r\n\r\n{"mess`,
      5000,
    );
    assert.match(slowBody.text, /^HTTP\/1\.1 408 /);
    assert.match(slowBody.text, /"code":"body_timeout"/);
    assert.equal(s.proxy.inflight(), 0);

    const plain = await request(s.proxy.url, { method: "POST", path: "/v1/chat/completions", headers: { "content-type": "text/plain" }, body: JSON.stringify(hello) });
    assert.equal(plain.status, 415);
    assert.equal(JSON.parse(plain.body).error.code, "unsupported_media_type");

    const unknown = await postChat(s.proxy.url, { ...hello, model: "gpt-4o" });
    assert.equal(unknown.status, 404);
    assert.equal(JSON.parse(unknown.body).error.code, "model_not_found");
    const unnamed = await postChat(s.proxy.url, { messages: hello.messages });
    assert.equal(JSON.parse(unnamed.body).model, MODEL, "the served model is reported, never an echo");

    const image = await postChat(s.proxy.url, {
      model: MODEL,
      messages: [{ role: "user", content: [{ type: "image_url", image_url: { url: "http://x/y.png" } }, { type: "text", text: "what is this?" }] }],
    });
    assert.equal(image.status, 400);
    assert.equal(JSON.parse(image.body).error.param, "messages.0.content.0.type");
    const parts = await postChat(s.proxy.url, { model: MODEL, messages: [{ role: "user", content: [{ type: "text", text: "hel" }, { type: "text", text: "lo" }] }] });
    assert.equal(parts.status, 200);
    assert.equal(s.upstream.calls.at(-1)?.messages[0]?.content, "hello");
    assert.equal(s.upstream.calls.length, 6, "only the two served requests reached the upstream");
  } finally {
    await s.close();
  }
});

test("/healthz is liveness; /readyz checks the upstream and says why not", async () => {
  const s = await setup();
  try {
    const ready = await request(s.proxy.url, { path: "/readyz" });
    assert.equal(ready.status, 200);
    assert.deepEqual(JSON.parse(ready.body), { status: "ready", upstream: "ok" });
    await s.upstream.close();
    // A fresh proxy (no cached answer) in front of the stopped upstream.
    const down = await startProxyServer({ model: createOpenAIModel({ baseURL: s.upstream.url, model: "m", maxRetries: 0 }), log: () => {} });
    try {
      assert.equal((await request(down.url, { path: "/healthz" })).status, 200);
      const r = await request(down.url, { path: "/readyz" });
      assert.equal(r.status, 503);
      assert.deepEqual(JSON.parse(r.body), { status: "unready", reason: "upstream_connection" });
      assert.equal((await request(down.url, { path: "/readyz", method: "POST" })).status, 405);
    } finally {
      await down.close();
    }
  } finally {
    await s.close();
  }
});

test("overrides: off by default, capped by maxRounds when on; max_tokens is a ceiling", async () => {
  const s = await setup({ allowRequestOverrides: true, maxRounds: 2 });
  try {
    const tooMany = await postChat(s.proxy.url, { ...hello, selfcorrect: { rounds: 3 } });
    assert.equal(tooMany.status, 400);
    assert.equal(JSON.parse(tooMany.body).error.param, "selfcorrect.rounds");
    assert.equal(s.upstream.calls.length, 0);
    const two = await postChat(s.proxy.url, { ...hello, max_tokens: 1e15, selfcorrect: { rounds: 2 } });
    assert.equal(two.status, 200);
    assert.equal(s.upstream.calls.length, 5);
    assert.ok(s.upstream.calls.every((c) => c.body.max_tokens === 100), "clamped to the operator's 100");
    await postChat(s.proxy.url, { ...hello, max_tokens: 10 });
    assert.equal(s.upstream.calls.at(-1)?.body.max_tokens, 10, "a lower value is honoured");
  } finally {
    await s.close();
  }
  const off = await setup();
  try {
    const r = await postChat(off.proxy.url, { ...hello, selfcorrect: { rounds: 1 } });
    assert.equal(r.status, 400);
    assert.equal(JSON.parse(r.body).error.code, "overrides_disabled");
    assert.equal(off.upstream.calls.length, 0);
  } finally {
    await off.close();
  }
});

test("a stream client that stops reading is cut off after the write timeout and its upstream call is abandoned", async () => {
  const big = "z".repeat(16 * 1024 * 1024);
  const s = await setup({ writeTimeoutMs: 500 }, (m, body) => (body?.stream ? { text: big, chunkChars: 64 * 1024 } : conversationReply(m)));
  try {
    const socket = net.connect(s.proxy.port, "127.0.0.1");
    socket.on("error", () => {});
    const body = JSON.stringify({ ...hello, stream: true });
    socket.on("connect", () => {
      socket.pause();
      socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\n\r\n${body}`);
    });
    // (A paused socket does not notice the reset; the proxy's side tells.)
    const t0 = Date.now();
    await waitFor(() => s.logs.some((l) => typeof l.slow_client === "string"), 5000);
    assert.ok(Date.now() - t0 < 5000);
    await waitFor(() => s.proxy.inflight() === 0 && s.upstream.calls.at(-1)?.aborted === true);
    socket.destroy();
    assert.equal((await postChat(s.proxy.url, hello)).status, 200);
  } finally {
    await s.close();
  }
});

test("a non-loopback interface without a token is refused (library and CLI), unless insecure", async () => {
  await assert.rejects(
    startProxyServer({ model: { id: "x", generate: () => Promise.reject(new Error("unused")) }, host: "0.0.0.0", log: () => {} }),
    (e: unknown) => e instanceof ProxyConfigError,
  );
  const r = spawnSync(process.execPath, [CLI, "serve", "--host", "0.0.0.0", "--port", "0", "--base-url", "http://127.0.0.1:9/v1", "--model", "m"], {
    encoding: "utf8",
    env: { ...process.env, SELFCORRECT_SERVER_TOKEN: "" },
    timeout: 20_000,
  });
  assert.equal(r.status, 2);
  assert.match(r.stderr, /--host 0\.0\.0\.0 is reachable from other machines.*--insecure/);
});
