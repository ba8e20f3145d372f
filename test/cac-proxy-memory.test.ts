// `selfcorrect serve` as a child process under memory attack, in front of the SCRIPTED STAND-IN upstream:
// clients that never read their stream, and an upstream that answers far too much. The proxy must keep
// its memory bounded per connection and keep serving.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startScriptedServer, type ScriptedReply } from "./support/scripted-openai-server.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { postChat, startServe } from "./support/serve-process.js";

import type { ChatMessage } from "../src/cac/types.js";
import { sleep } from "../src/util/sleep.js";

failOnUnhandledRejections();

const MB = 1024 * 1024;
const isFinal = (messages: ChatMessage[]) => messages.some((m) => m.role === "assistant" && m.content.startsWith("CHECK"));

/** A client that sends its request and then never reads a byte of the answer. */
function nonReadingClient(url: string, body: string): net.Socket {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  socket.on("error", () => {});
  socket.on("connect", () => {
    socket.pause();
    socket.write(
      `POST /v1/chat/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: ${Buffer.byteLength(body)}\r\n\r\n`,
    );
    socket.write(body);
  });
  return socket;
}

test("eight non-reading stream clients with 1 MB prompts and large answers: RSS stays bounded, a legitimate request gets 200", async () => {
  const bigAnswer = "x".repeat(24 * MB);
  const upstream = await startScriptedServer((messages, body): ScriptedReply => {
    if (body?.stream === true && isFinal(messages)) return { text: bigAnswer, chunkChars: 64 * 1024 };
    return isFinal(messages) ? "final answer" : messages.at(-1)?.content.startsWith("Isn") ? "CHECK 1: fine" : "first answer";
  });
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in"], { env: { NODE_OPTIONS: "--max-old-space-size=1024" } });
  const clients: net.Socket[] = [];
  try {
    const prompt = JSON.stringify({ model: "stand-in", stream: true, messages: [{ role: "user", content: "p".repeat(1_000_000) }] });
    for (let i = 0; i < 8; i++) clients.push(nonReadingClient(serve.url, prompt));
    const finalCalls = () => upstream.calls.filter((c) => c.body?.stream === true).length;
    let maxRss = serve.rssMb();
    const t0 = Date.now();
    while (finalCalls() < 8 && Date.now() - t0 < 20_000 && serve.alive()) {
      await sleep(100);
      maxRss = Math.max(maxRss, serve.rssMb() || 0);
    }
    // The stalled streams now sit there: watch the memory for a while.
    for (let i = 0; i < 40 && serve.alive(); i++) {
      await sleep(100);
      maxRss = Math.max(maxRss, serve.rssMb() || 0);
    }
    const legit = serve.alive() ? await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "hello" }] }, {}, 15_000).catch((e: Error) => e) : new Error("process gone");
    maxRss = Math.max(maxRss, serve.rssMb() || 0);
    const status = legit instanceof Error ? legit.message : legit.status;
    console.log(`[probe 1] final streams started: ${finalCalls()}/8, max RSS ${maxRss.toFixed(0)} MB, alive: ${serve.alive()}, legitimate request: ${status}`);
    assert.ok(serve.alive(), `the proxy died: ${serve.stderr().slice(-2000)}`);
    assert.ok(maxRss < 600, `RSS reached ${maxRss.toFixed(0)} MB`);
    assert.equal(status, 200);
  } finally {
    for (const c of clients) c.destroy();
    await serve.kill();
    await upstream.close();
  }
});

test("a 50 MB upstream answer gives 502 upstream_too_large (or an error event once streaming), with memory bounded", async () => {
  const huge = "y".repeat(50 * MB);
  const upstream = await startScriptedServer((messages, body): ScriptedReply => {
    if (body?.stream === true) return { text: huge, chunkChars: 256 * 1024 };
    return messages[0]?.content === "tell me everything" ? huge : isFinal(messages) ? "fine" : "short";
  });
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in"]);
  try {
    let maxRss = serve.rssMb();
    const sampler = setInterval(() => (maxRss = Math.max(maxRss, serve.rssMb() || 0)), 50);
    const r = await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "tell me everything" }] }, {}, 60_000);
    clearInterval(sampler);
    let code: string | undefined;
    try {
      code = JSON.parse(r.body).error?.code;
    } catch {
      code = `(not JSON: ${r.body.length} bytes)`;
    }
    console.log(`[probe 7] non-stream: status ${r.status}, code ${code}, max RSS ${maxRss.toFixed(0)} MB, upstream calls ${upstream.calls.length}`);
    assert.equal(r.status, 502);
    assert.equal(code, "upstream_too_large");
    assert.equal(upstream.calls.length, 1, "not retried, and the loop stopped");
    assert.ok(maxRss < 400, `RSS reached ${maxRss.toFixed(0)} MB`);

    // Streamed: the final answer is cut off at the limit and the stream ends with an error event.
    const s = await postChat(serve.url, { model: "stand-in", stream: true, messages: [{ role: "user", content: "q" }] }, {}, 60_000);
    const events = s.body.split("\n\n").filter(Boolean);
    const last = events.at(-1) ?? "";
    console.log(`[probe 7] stream: status ${s.status}, ${s.body.length} bytes, last event ${last.slice(0, 160)}`);
    assert.match(last, /"code":"upstream_too_large"/);
    assert.ok(s.body.length < 40 * MB);
    assert.equal(s.status, 200, "the headers went out with the first delta");
    assert.equal((await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "again" }] })).status, 200, "still serving");
    assert.ok(serve.alive());
  } finally {
    await serve.kill();
    await upstream.close();
  }
});

test("--max-upstream-bytes lowers the upstream size limit: a 200 KB answer over a 64 KiB limit gives 502", async () => {
  const upstream = await startScriptedServer((messages): ScriptedReply => (messages[0]?.content === "long" ? "z".repeat(200_000) : "short"));
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in", "--max-upstream-bytes", String(64 * 1024)]);
  try {
    const short = await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "hi" }] }, {}, 15_000);
    assert.equal(short.status, 200, short.body);
    const long = await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "long" }] }, {}, 15_000);
    assert.equal(long.status, 502, long.body);
    assert.equal(JSON.parse(long.body).error?.code, "upstream_too_large");
  } finally {
    await serve.kill();
    await upstream.close();
  }
});
