// Tests of the scripted stand-in upstream itself (test/support/scripted-openai-server.ts).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { sleep } from "../src/util/sleep.js";

const post = (url: string, body: unknown, signal?: AbortSignal) =>
  fetch(`${url}/chat/completions`, {
    method: "POST",
    headers: { "content-type": "application/json" },
    body: JSON.stringify(body),
    signal,
  });

test("scripted server: non-stream, stream with usage, models, faults, close ends hangs", async () => {
  const srv = await startScriptedServer((messages, _body, i) => {
    const last = messages[messages.length - 1]?.content ?? "";
    if (last === "fail") return { status: 429, headers: { "retry-after": "1" } };
    if (last === "broken") return { malformed: true };
    if (last === "hang") return { hang: true };
    if (last === "reset") return { reset: true };
    return `echo ${i}: ${last}`;
  });
  try {
    const r1 = await post(srv.url, { model: "m", messages: [{ role: "user", content: "hello there" }] });
    assert.equal(r1.status, 200);
    const j1: any = await r1.json();
    assert.equal(j1.choices[0].message.content, "echo 0: hello there");
    assert.equal(j1.usage.prompt_tokens, 2);
    assert.equal(j1.usage.completion_tokens, 4);

    const r2 = await post(srv.url, {
      model: "m",
      stream: true,
      stream_options: { include_usage: true },
      messages: [{ role: "user", content: "a b c" }],
    });
    const sse = await r2.text();
    const events = sse.split("\n\n").filter(Boolean).map((e) => e.replace(/^data: /, ""));
    assert.equal(events[events.length - 1], "[DONE]");
    const chunks = events.slice(0, -1).map((e) => JSON.parse(e));
    const text = chunks.map((c) => c.choices[0]?.delta?.content ?? "").join("");
    assert.equal(text, "echo 1: a b c");
    assert.equal(chunks[chunks.length - 1].usage.completion_tokens, 5);

    const models: any = await (await fetch(`${srv.url}/models`)).json();
    assert.equal(models.data[0].id, "scripted");

    const r3 = await post(srv.url, { messages: [{ role: "user", content: "fail" }] });
    assert.equal(r3.status, 429);
    assert.equal(r3.headers.get("retry-after"), "1");
    await r3.text();

    const r4 = await post(srv.url, { messages: [{ role: "user", content: "broken" }] });
    await assert.rejects(r4.json());

    await assert.rejects(post(srv.url, { messages: [{ role: "user", content: "reset" }] }));

    // A client that gives up on a hang is recorded as aborted.
    const ac = new AbortController();
    const hung = post(srv.url, { messages: [{ role: "user", content: "hang" }] }, ac.signal);
    await sleep(50);
    ac.abort();
    await assert.rejects(hung);
    await sleep(50);
    assert.equal(srv.calls.at(-1)?.aborted, true);

    // close() must end a hang that the client does not give up on.
    const hung2 = post(srv.url, { messages: [{ role: "user", content: "hang" }] }).then(
      () => "answered",
      () => "ended",
    );
    await sleep(50);
    const t0 = Date.now();
    await srv.close();
    assert.equal(await hung2, "ended");
    assert.ok(Date.now() - t0 < 2000);
  } finally {
    await srv.close();
  }
});
