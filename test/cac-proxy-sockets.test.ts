// `selfcorrect serve` as a child process under `ulimit -n 1024`, flooded with 2,000 idle sockets by a
// bounded client, in front of the SCRIPTED STAND-IN upstream: it must not crash, must close half-sent
// requests at its header deadline, and must serve again once the flood is gone.
import { test } from "node:test";
import assert from "node:assert/strict";
import net from "node:net";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { postChat, startServe } from "./support/serve-process.js";
import { sleep } from "../src/util/sleep.js";

failOnUnhandledRejections();

interface Idle {
  socket: net.Socket;
  closedAt?: number;
}

function openIdle(port: number, halfHeaders: boolean): Promise<Idle> {
  return new Promise((resolve) => {
    const socket = net.connect(port, "127.0.0.1");
    const idle: Idle = { socket };
    socket.on("error", () => {});
    socket.on("close", () => (idle.closedAt = Date.now()));
    socket.resume();
    socket.on("connect", () => {
      if (halfHeaders) socket.write(`POST /v1/chat/completions HTTP/1.1\r\nHost: 127.0.0.1:${port}\r\nContent-Type: application/json\r\n`);
      resolve(idle);
    });
    // A refused or reset connect still counts as one attempt.
    socket.on("close", () => resolve(idle));
  });
}

test("2,000 idle sockets against a proxy under ulimit -n 1024: no crash, half-sent headers closed at the deadline, served again afterwards", async () => {
  const upstream = await startScriptedServer((messages) => conversationReply(messages));
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in"], { ulimitFiles: 1024 });
  const flood: Idle[] = [];
  try {
    const hello = { model: "stand-in", messages: [{ role: "user", content: "hello" }] };
    assert.equal((await postChat(serve.url, hello)).status, 200);
    const t0 = Date.now();
    const probe = await openIdle(serve.port, true);
    // 2,000 sockets, at most 100 connecting at once; half send the start of a request, half nothing.
    for (let i = 0; i < 2000; i += 100) {
      flood.push(...(await Promise.all(Array.from({ length: 100 }, (_, j) => openIdle(serve.port, (i + j) % 2 === 0)))));
    }
    await sleep(500);
    const closedEarly = flood.filter((f) => f.closedAt !== undefined).length;
    const during = await postChat(serve.url, hello, {}, 3000).then(
      (r) => String(r.status),
      (e: Error) => `failed (${(e as NodeJS.ErrnoException).code ?? e.message})`,
    );
    console.log(`[probe 4] 2000 sockets opened; closed by the proxy within 0.5 s: ${closedEarly}; alive: ${serve.alive()}; a request during the flood: ${during}`);
    assert.ok(serve.alive(), `the proxy died: ${serve.stderr().slice(-1500)}`);

    for (const f of flood) f.socket.destroy();
    // The proxy sees the closes a moment later; a client may retry a refused connection meanwhile.
    let after: number | string = "no attempt";
    for (let i = 0; i < 10 && after !== 200; i++) {
      await sleep(300);
      after = await postChat(serve.url, hello, {}, 10_000).then(
        (r) => r.status,
        (e: Error) => e.message,
      );
    }
    // The half-sent request that came first: how long the proxy keeps it.
    const deadline = Date.now() + 20_000;
    while (probe.closedAt === undefined && Date.now() < deadline) await sleep(100);
    const kept = probe.closedAt === undefined ? "over 20 000 ms" : `${probe.closedAt - t0} ms`;
    console.log(`[probe 4] after the flood: ${after}; a half-sent request was kept ${kept}; alive: ${serve.alive()}`);
    assert.ok(serve.alive(), `the proxy died: ${serve.stderr().slice(-1500)}`);
    assert.equal(after, 200);
    assert.ok(probe.closedAt !== undefined && probe.closedAt - t0 < 15_000, `half-sent request kept ${kept}`);
  } finally {
    for (const f of flood) f.socket.destroy();
    await serve.kill();
    await upstream.close();
  }
});
