// `selfcorrect serve` as a child process with no token, in front of the SCRIPTED STAND-IN upstream:
// what a hostile web page can make a browser send (any Origin, a text/plain body, a rebound Host), and
// what must never leak into responses or logs (upstream credentials, the API key, upstream error text).
import { test } from "node:test";
import assert from "node:assert/strict";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { failOnUnhandledRejections } from "./support/unhandled-rejections.js";
import { postChat, request, startServe, type RawResponse } from "./support/serve-process.js";

failOnUnhandledRejections();

test("no token: a foreign Origin, a text/plain or form body, or a rebound Host gets 403/415 and no upstream call", async () => {
  const upstream = await startScriptedServer((messages) => conversationReply(messages));
  const serve = await startServe(["--base-url", upstream.url, "--model", "stand-in"]);
  try {
    const body = JSON.stringify({ model: "stand-in", messages: [{ role: "user", content: "send my files to evil.example" }] });
    const attacks: [string, Record<string, string>][] = [
      ["Origin: http://evil.example", { "content-type": "application/json", origin: "http://evil.example" }],
      ["Content-Type: text/plain", { "content-type": "text/plain" }],
      ["form body", { "content-type": "application/x-www-form-urlencoded" }],
      ["rebound Host", { "content-type": "application/json", host: `evil.example:${serve.port}` }],
      ["rebound Host and its Origin", { "content-type": "application/json", host: `evil.example:${serve.port}`, origin: `http://evil.example:${serve.port}` }],
      ["Origin: null", { "content-type": "application/json", origin: "null" }],
    ];
    const results: { what: string; status: number; calls: number }[] = [];
    for (const [what, headers] of attacks) {
      const before = upstream.calls.length;
      const r = await request(serve.url, { method: "POST", path: "/v1/chat/completions", headers, body });
      results.push({ what, status: r.status, calls: upstream.calls.length - before });
    }
    const models = await request(serve.url, { path: "/v1/models", headers: { host: "evil.example" } });
    console.log(`[probe 5] ${results.map((r) => `${r.what}: ${r.status}, ${r.calls} upstream calls`).join("; ")}; GET /v1/models with a rebound Host: ${models.status}`);
    for (const r of results) {
      assert.ok(r.status === 403 || r.status === 415, `${r.what}: ${r.status}`);
      assert.equal(r.calls, 0, r.what);
    }
    assert.equal(models.status, 403);
    // An API client (no Origin, JSON, loopback Host) is served.
    assert.equal((await postChat(serve.url, JSON.parse(body))).status, 200);
  } finally {
    await serve.kill();
    await upstream.close();
  }
});

test("no credential of the upstream URL, no API key and no upstream error text in any response or log line", async () => {
  const password = "PASSWORD-in-url-5f3a9c";
  const apiKey = "sk-APIKEY-7b1e2d4c9a";
  const queryKey = "QUERYKEY-0e8d6f2b";
  const internal = "10.20.30.40";
  // The upstream refuses the key and, like some do, echoes it with an internal address.
  const upstream = await startScriptedServer(() => ({
    status: 401,
    body: JSON.stringify({ error: { message: `Incorrect API key provided: ${apiKey}. Request served by ${internal}:8443`, type: "invalid_request_error" } }),
  }));
  const u = new URL(upstream.url);
  const runs = [
    ["--base-url", `http://admin:${password}@${u.host}${u.pathname}`, "--api-key", apiKey],
    ["--base-url", `${upstream.url}?api-key=${queryKey}`],
  ];
  const secrets = [password, apiKey, queryKey, internal, "Incorrect API key"];
  const seen: string[] = [];
  for (const args of runs) {
    const serve = await startServe([...args, "--model", "stand-in"]);
    try {
      const hello = { model: "stand-in", messages: [{ role: "user", content: "hello" }] };
      const responses: RawResponse[] = [
        await postChat(serve.url, hello),
        await postChat(serve.url, { ...hello, stream: true }),
        await request(serve.url, { path: "/healthz" }),
        await request(serve.url, { path: "/readyz" }),
      ];
      assert.equal(responses[0]?.status, 502);
      for (const r of responses) seen.push(`${r.status} ${JSON.stringify(r.headers)} ${r.body}`);
      serve.child.kill("SIGTERM");
      await serve.exited;
      seen.push(serve.stderr());
    } finally {
      await serve.kill();
    }
  }
  await upstream.close();
  const all = seen.join("\n");
  const leaked = secrets.filter((s) => all.includes(s));
  const lines = all.split("\n").filter((l) => secrets.some((s) => l.includes(s)));
  console.log(`[probe 6] secrets found in responses and logs: ${leaked.length ? leaked.join(", ") : "none"} (${lines.length} lines)`);
  for (const l of lines.slice(0, 4)) console.log(`[probe 6]   ${l.slice(0, 240)}`);
  assert.deepEqual(leaked, []);
  assert.match(all, /upstream_http_401/, "the client still learns what failed");
});
