// The OpenAI-compatible adapter against the scripted stand-in upstream: mapping, streaming, and
// every fault (500, 429 + Retry-After, reset, hang past the timeout, malformed JSON) with bounded retries.
import { test } from "node:test";
import assert from "node:assert/strict";
import { startScriptedServer, type ScriptedReply } from "./support/scripted-openai-server.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { createOpenAIModel } from "../src/cac/adapters/openai.js";
import { UpstreamError } from "../src/cac/errors.js";
import { sleep } from "../src/util/sleep.js";

failOnUnhandledRejections();

/** Script: a queue of replies per test, by the last user message. */
function scripted(queues: Record<string, ScriptedReply[]>) {
  return startScriptedServer((messages) => {
    const key = messages[messages.length - 1]?.content ?? "";
    const q = queues[key];
    const next = q && q.length > 1 ? q.shift() : q?.[0];
    return next ?? `default reply to ${key}`;
  });
}

const user = (content: string) => [{ role: "user" as const, content }];

test("maps text, usage and settings; streams deltas with usage", async () => {
  const srv = await scripted({ hi: [{ text: "hello back", promptTokens: 7, completionTokens: 2 }] });
  try {
    const m = createOpenAIModel({ baseURL: srv.url, model: "m1", defaults: { maxTokens: 64 } });
    const r = await m.generate(user("hi"), { temperature: 0.5, seed: 3 });
    assert.equal(r.text, "hello back");
    assert.deepEqual(r.usage, { promptTokens: 7, completionTokens: 2 });
    assert.ok(r.latencyMs > 0);
    assert.equal(srv.calls[0]!.body.max_tokens, 64);
    assert.equal(srv.calls[0]!.body.temperature, 0.5);
    assert.equal(srv.calls[0]!.body.seed, 3);
    assert.equal(srv.calls[0]!.body.model, "m1");

    const deltas: string[] = [];
    const s = await m.generate(user("hi"), { onDelta: (t) => deltas.push(t) });
    assert.ok(deltas.length >= 2);
    assert.equal(deltas.join(""), "hello back");
    assert.equal(s.text, "hello back");
    assert.deepEqual(s.usage, { promptTokens: 7, completionTokens: 2 });
    assert.equal(srv.calls[1]!.body.stream, true);
  } finally {
    await srv.close();
  }
});

for (const transport of ["node-http", "fetch"] as const)
test(`faults (${transport} transport): bounded retries, then a clear UpstreamError`, async () => {
  const srv = await scripted({
    flaky: [{ status: 500 }, { reset: true }, "recovered"],
    down: [{ status: 503 }],
    limited: [{ status: 429, headers: { "retry-after": "1" } }, "after the wait"],
    reset: [{ reset: true }],
    hang: [{ hang: true }],
    broken: [{ malformed: true }],
    bad: [{ status: 400, body: JSON.stringify({ error: { message: "bad request", type: "invalid_request_error" } }) }],
  });
  try {
    const m = createOpenAIModel({ baseURL: srv.url, model: "m", maxRetries: 2, retryBaseMs: 10, timeoutMs: 300, transport });
    const count = (k: string) => srv.calls.filter((c) => c.messages.at(-1)?.content === k).length;

    assert.equal((await m.generate(user("flaky"))).text, "recovered");
    assert.equal(count("flaky"), 3);

    const expectFail = async (k: string, kind: string, re: RegExp) => {
      await assert.rejects(m.generate(user(k)), (e: unknown) => {
        assert.ok(e instanceof UpstreamError, `${k}: ${String(e)}`);
        assert.equal(e.kind, kind);
        assert.match(e.message, re);
        return true;
      });
    };
    await expectFail("down", "http", /HTTP 503.*after 3 attempts/);
    assert.equal(count("down"), 3);
    await expectFail("reset", "connection", /connection failed.*after 3 attempts/);
    assert.equal(count("reset"), 3);
    const t0 = Date.now();
    await expectFail("hang", "timeout", /timed out after 300 ms \(gave up after 3 attempts\)/);
    assert.ok(Date.now() - t0 >= 900, "three attempts of 300 ms");
    assert.equal(count("hang"), 3);
    await sleep(30);
    assert.ok(srv.calls.filter((c) => c.messages.at(-1)?.content === "hang").every((c) => c.aborted), "hung requests were abandoned");
    await expectFail("broken", "malformed", /malformed response.*after 3 attempts/);
    assert.equal(count("broken"), 3);
    await expectFail("bad", "http", /HTTP 400: bad request$/);
    assert.equal(count("bad"), 1, "4xx is not retried");

    // Retry-After: 1 is honoured (the second attempt comes about a second later).
    const t1 = Date.now();
    assert.equal((await m.generate(user("limited"))).text, "after the wait");
    assert.ok(Date.now() - t1 >= 950, `waited ${Date.now() - t1} ms`);
  } finally {
    await srv.close();
  }
});

test("the caller's signal cancels the request upstream and is not retried", async () => {
  const srv = await scripted({ hang: [{ hang: true }] });
  try {
    const m = createOpenAIModel({ baseURL: srv.url, model: "m", timeoutMs: 10_000 });
    const ac = new AbortController();
    const p = m.generate(user("hang"), { signal: ac.signal });
    await sleep(100);
    ac.abort();
    await assert.rejects(p, (e: Error) => !(e instanceof UpstreamError));
    await sleep(50);
    assert.equal(srv.calls.length, 1);
    assert.equal(srv.calls[0]!.aborted, true);
  } finally {
    await srv.close();
  }
});

for (const transport of ["node-http", "fetch"] as const)
test(`a response over maxResponseBytes (${transport}) fails at once as too_large, streamed or not`, async () => {
  const big = "x".repeat(300_000);
  const srv = await scripted({ big: [{ text: big, chunkChars: 10_000 }], small: ["fine"] });
  try {
    const m = createOpenAIModel({ baseURL: srv.url, model: "m", maxRetries: 2, retryBaseMs: 10, maxResponseBytes: 100_000, transport });
    for (const stream of [false, true]) {
      const before = srv.calls.length;
      let seen = 0;
      const gen = stream
        ? {
            onDelta: (t: string) => {
              seen += t.length;
            },
          }
        : {};
      await assert.rejects(m.generate(user("big"), gen), (e: unknown) => {
        assert.ok(e instanceof UpstreamError, String(e));
        assert.equal(e.kind, "too_large");
        assert.equal(e.attempts, 1, "not retried");
        assert.match(e.publicMessage, /response over the limit of 100000 bytes/);
        return true;
      });
      assert.equal(srv.calls.length - before, 1);
      assert.ok(seen < 100_000, `streamed ${seen} characters before the cut`);
    }
    assert.equal((await m.generate(user("small"))).text, "fine");
  } finally {
    await srv.close();
  }
});

test("an onDelta that returns a promise paces the stream, and the wait does not count as upstream silence", async () => {
  const text = "a ".repeat(8);
  const srv = await scripted({ paced: [{ text }] });
  try {
    const m = createOpenAIModel({ baseURL: srv.url, model: "m", maxRetries: 0, timeoutMs: 300 });
    let pending = 0;
    let maxPending = 0;
    const t0 = Date.now();
    const r = await m.generate(user("paced"), {
      onDelta: () => {
        pending++;
        maxPending = Math.max(maxPending, pending);
        return new Promise<void>((resolve) =>
          setTimeout(() => {
            pending--;
            resolve();
          }, 80),
        );
      },
    });
    assert.equal(r.text, text);
    assert.equal(maxPending, 1, "no delta while the previous one is still being taken");
    assert.ok(Date.now() - t0 >= 8 * 80 - 20, "took as long as the consumer needed");
  } finally {
    await srv.close();
  }
});

test("credentials in the base URL and the upstream's error text stay out of ids and public messages", async () => {
  const secret = "sk-upstream-SECRET-42424242";
  const srv = await scripted({
    echo: [{ status: 401, body: JSON.stringify({ error: { message: `Incorrect API key provided: ${secret} at 10.1.2.3`, type: "invalid_request_error" } }) }],
  });
  try {
    const u = new URL(srv.url);
    const m = createOpenAIModel({ baseURL: `http://user:${secret}@${u.host}${u.pathname}`, model: "m", apiKey: secret, maxRetries: 0 });
    assert.ok(!m.id.includes(secret), m.id);
    // A key in the query string (which the SDK cannot even use as a base URL) is not repeated either.
    const q = createOpenAIModel({ baseURL: `${srv.url}?api-key=${secret}`, model: "m", maxRetries: 0 });
    assert.ok(!q.id.includes(secret), q.id);
    await assert.rejects(q.generate(user("echo")), (e: unknown) => e instanceof UpstreamError && !e.message.includes(secret));
    await assert.rejects(m.generate(user("echo")), (e: unknown) => {
      assert.ok(e instanceof UpstreamError);
      assert.equal(e.status, 401);
      assert.ok(!e.publicMessage.includes(secret) && !e.publicMessage.includes("10.1.2.3"), e.publicMessage);
      assert.ok(!e.publicMessage.includes(u.host), "no upstream address in the public message");
      assert.match(e.upstreamMessage ?? "", /Incorrect API key/);
      assert.ok(!e.message.includes(`user:${secret}`) && !e.message.includes(`api-key=${secret}`), e.message);
      return true;
    });
  } finally {
    await srv.close();
  }
});

test("ready() resolves while the upstream serves and rejects with an UpstreamError when it is down", async () => {
  const srv = await scripted({});
  const m = createOpenAIModel({ baseURL: srv.url, model: "m", maxRetries: 3, retryBaseMs: 10 });
  await m.ready();
  await srv.close();
  await assert.rejects(m.ready(), (e: unknown) => e instanceof UpstreamError && e.kind === "connection" && e.attempts === 1);
});
