// `selfcorrect serve` as a child process against amplification and stalled request bodies, in front of
// the SCRIPTED STAND-IN upstream: the operator's rounds and max_tokens hold whatever a request asks,
// a body that never ends neither holds a concurrency slot nor holds off shutdown.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { postChat, startServe, type RawResponse } from "./support/serve-process.js";
import { within } from "./support/wait.js";
import { sleep } from "../src/util/sleep.js";

failOnUnhandledRejections();

/** Sends the headers of a JSON POST and the first byte of its body, then nothing. */
function stalledBody(url: string): net.Socket {
  const u = new URL(url);
  const socket = net.connect(Number(u.port), u.hostname);
  socket.on("error", () => {});
  socket.on("connect", () =>
    socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: ${u.host}\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{`),
  );
  return socket;
}

test("default flags: a request for 10 rounds and max_tokens 1e15 costs at most the operator's rounds, at the operator's max_tokens", async () => {
  const upstream = await startScriptedServer((messages) => conversationReply(messages));
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in"]);
  try {
    const prompt = "q".repeat(1_000_000);
    const asks = [
      { model: "stand-in", max_tokens: 1e15, selfcorrect: { rounds: 10, variant: "self" }, messages: [{ role: "user", content: prompt }] },
      { model: "stand-in", max_tokens: 1e15, messages: [{ role: "user", content: "a small question" }] },
    ];
    for (const [i, ask] of asks.entries()) {
      const before = upstream.calls.length;
      const r = await postChat(serve.url, ask, {}, 60_000);
      const calls = upstream.calls.slice(before);
      const sentChars = calls.reduce((n, c) => n + JSON.stringify(c.body).length, 0);
      const maxTokens = Math.max(0, ...calls.map((c) => Number(c.body.max_tokens ?? 0)));
      console.log(
        `[probe 2] request ${i + 1}: status ${r.status}${r.status !== 200 ? ` (${JSON.parse(r.body).error?.code})` : ""}, upstream calls ${calls.length}, chars sent upstream ${sentChars}, response ${r.body.length} bytes, largest max_tokens upstream ${maxTokens}`,
      );
      // The operator's settings: rounds 1 (3 calls), max_tokens 64.
      assert.ok(calls.length <= 3, `${calls.length} upstream calls`);
      assert.ok(maxTokens <= 64, `the upstream saw max_tokens ${maxTokens}`);
    }
    // The plain request ran, with the operator's ceiling.
    assert.equal(upstream.calls.at(-1)?.body.max_tokens, 64);
  } finally {
    await serve.kill();
    await upstream.close();
  }
});

test("--max-concurrent 2 --request-timeout-ms 3000: two stalled bodies do not block a legitimate request; SIGTERM exits within grace + 1 s", async () => {
  const upstream = await startScriptedServer((messages) => conversationReply(messages));
  const graceMs = 1000;
  const serve = await startServe([
    "--base-url", upstream.url, "--model", "stand-in",
    "--max-concurrent", "2", "--request-timeout-ms", "3000", "--shutdown-grace-ms", String(graceMs),
  ]);
  const stalled = [stalledBody(serve.url), stalledBody(serve.url)];
  try {
    await sleep(300);
    // A legitimate client that retries on 429 for up to 6 s.
    const t0 = Date.now();
    let last: RawResponse | Error = new Error("no attempt");
    const statuses: number[] = [];
    while (Date.now() - t0 < 6000) {
      last = await postChat(serve.url, { model: "stand-in", messages: [{ role: "user", content: "hello" }] }, {}, Math.max(100, 6000 - (Date.now() - t0))).catch(
        (e: Error) => e,
      );
      if (last instanceof Error) break;
      statuses.push(last.status);
      if (last.status !== 429) break;
      await sleep(250);
    }
    const elapsed = Date.now() - t0;
    const legit = last instanceof Error ? last.message : last.status;
    console.log(`[probe 3] legitimate request: ${legit} after ${elapsed} ms (statuses ${statuses.join(",")})`);

    // Shutdown with a stalled body still open.
    const fresh = stalledBody(serve.url);
    stalled.push(fresh);
    await sleep(200);
    const t1 = Date.now();
    serve.child.kill("SIGTERM");
    const exit = await within(serve.exited, 10_000);
    const took = Date.now() - t1;
    console.log(`[probe 3] SIGTERM with a stalled body open: ${exit ? `exit ${exit.code} after ${took} ms` : "still running after 10 000 ms"}`);
    assert.equal(legit, 200);
    assert.ok(elapsed < 6000);
    assert.ok(exit, "the process did not exit");
    assert.equal(exit.code, 0);
    assert.ok(took <= graceMs + 1000, `exit took ${took} ms`);
  } finally {
    for (const s of stalled) s.destroy();
    await serve.kill();
    await upstream.close();
  }
});
