// The model and CaC specs behind the shared flags of chat, serve and eval: the library builds and
// checks them (src/cac/model-spec.ts), and the CLI only reads the flags' text into them, so both are
// tested: the library in-process, the flag wiring through the real CLI.
import { test } from "node:test";
import assert from "node:assert/strict";
import http from "node:http";
import type { AddressInfo } from "node:net";
import { createModelFromSpec, resolveCacOptions } from "../src/cac/model-spec.js";
import { CODE_CHECK_PROMPTS, DEFAULT_CHECK_PROMPT } from "../src/cac/presets.js";
import type { CaCTrace, ChatMessage } from "../src/cac/types.js";
import { UserError } from "../src/util/errors.js";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { startCli } from "./support/eval-cli.js";

test("CaC spec: defaults, preset keys, custom text, validation", () => {
  const defaults = { variant: "self-instruct", rounds: 1, checkPrompt: DEFAULT_CHECK_PROMPT, generation: { maxTokens: 64 } };
  assert.deepEqual(resolveCacOptions(), defaults);
  assert.deepEqual(resolveCacOptions({}), defaults);

  const c = resolveCacOptions({ variant: "self", rounds: 3, checkPrompt: "code-3", maxTokens: 32, temperature: 0.7 });
  assert.equal(c.checkPrompt, CODE_CHECK_PROMPTS[3]);
  assert.equal(c.rounds, 3);
  assert.deepEqual(c.generation, { maxTokens: 32, temperature: 0.7 });
  assert.equal(resolveCacOptions({ checkPrompt: "Was that OK?" }).checkPrompt, "Was that OK?");

  assert.throws(() => resolveCacOptions({ variant: "diverse", rounds: 4 }), (e) => e instanceof UserError && /--rounds for --variant diverse/.test(e.message));
  assert.throws(() => resolveCacOptions({ variant: "clever" as never }), /--variant must be self, self-instruct or diverse/);
  assert.throws(() => resolveCacOptions({ rounds: 1.5 }), /--rounds must be a whole number/);
  assert.throws(() => resolveCacOptions({ round: 2 } as never), (e) => e instanceof UserError && /unknown CaC spec field round; the fields are variant, rounds/.test(e.message));
});

test("model spec: which model, errors that name the fix, key from the environment", async () => {
  // The built-in model is switched off here: this is about the error for a spec that names no model.
  const builtin = process.env.SELFCORRECT_DEFAULT_MODEL;
  process.env.SELFCORRECT_DEFAULT_MODEL = "none";
  try {
    await assert.rejects(createModelFromSpec({}), (e) => e instanceof UserError && /--base-url URL --model NAME.*--gguf PATH/.test(e.message));
  } finally {
    if (builtin === undefined) delete process.env.SELFCORRECT_DEFAULT_MODEL;
    else process.env.SELFCORRECT_DEFAULT_MODEL = builtin;
  }
  await assert.rejects(createModelFromSpec({ baseUrl: "http://127.0.0.1:1/v1" }), /--base-url needs --model NAME/);
  await assert.rejects(createModelFromSpec({ model: "m" }), /--model needs --base-url URL/);
  await assert.rejects(createModelFromSpec({ gguf: "x.gguf", baseUrl: "http://h/v1", model: "m" }), /not both/);
  await assert.rejects(createModelFromSpec({ baseUrl: "ftp://h", model: "m" }), /--base-url must be an http\(s\) URL/);
  await assert.rejects(createModelFromSpec({ baseUrl: "http://h/v1", model: "m", retries: -1 }), /--retries must be at least 0/);
  await assert.rejects(createModelFromSpec({ baseUrl: "http://h/v1", model: "m", maxTokens: 1.5 }), /--max-tokens must be a whole number/);
  // createOpenAIModel spells it baseURL; the spec names its fields after the flags and says so.
  await assert.rejects(createModelFromSpec({ baseURL: "http://h/v1", model: "m" } as never), (e) => e instanceof UserError && /unknown model spec field baseURL; the fields are baseUrl, model/.test(e.message));
  // A gguf spec goes to the node-llama-cpp adapter, which checks the file before starting llama.cpp.
  await assert.rejects(createModelFromSpec({ gguf: "/nonexistent/x.gguf" }), (e) => e instanceof UserError && /^cannot load GGUF model \/nonexistent\/x\.gguf: .*file not found/.test(e.message));

  // A real request: the key comes from SELFCORRECT_API_KEY, the URL's trailing slash is dropped.
  let seen: { auth?: string; url?: string; body?: Record<string, unknown> } = {};
  const server = http.createServer((req, res) => {
    let raw = "";
    req.on("data", (c) => (raw += c));
    req.on("end", () => {
      seen = { auth: req.headers.authorization, url: req.url, body: JSON.parse(raw) };
      res.writeHead(200, { "content-type": "application/json" });
      res.end(JSON.stringify({ choices: [{ index: 0, message: { role: "assistant", content: "ok" }, finish_reason: "stop" }] }));
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  const saved = process.env.SELFCORRECT_API_KEY;
  process.env.SELFCORRECT_API_KEY = "env-key-123";
  try {
    const port = (server.address() as AddressInfo).port;
    const m = await createModelFromSpec({ baseUrl: `http://127.0.0.1:${port}/v1/`, model: "served", maxTokens: 17, temperature: 0 });
    const r = await m.generate([{ role: "user", content: "hi" }]);
    assert.equal(r.text, "ok");
    assert.equal(seen.auth, "Bearer env-key-123");
    assert.equal(seen.url, "/v1/chat/completions");
    assert.equal(seen.body?.model, "served");
    assert.equal(seen.body?.max_tokens, 17);
    assert.equal(seen.body?.temperature, 0);
  } finally {
    if (saved === undefined) delete process.env.SELFCORRECT_API_KEY;
    else process.env.SELFCORRECT_API_KEY = saved;
    await new Promise((r) => server.close(r));
  }
});

test("the CLI reads the model and CaC flags as text and hands them to the library", async () => {
  const srv = await startScriptedServer((m: ChatMessage[]) => conversationReply(m));
  const chat = async (...args: string[]) => {
    const before = srv.calls.length;
    const r = await startCli(["chat", "--model", "stand-in", "--prompt", "a phishing email", ...args]).done;
    return { ...r, trace: r.json?.trace as CaCTrace | undefined, bodies: srv.calls.slice(before).map((c) => c.body) };
  };
  try {
    // Commander's defaults reach the library: self-instruct, one round, check prompt (3), 64 tokens per turn.
    const d = await chat("--base-url", srv.url, "--json");
    assert.equal(d.code, 0, d.stderr);
    assert.equal(d.trace?.variant, "self-instruct");
    assert.equal(d.trace?.rounds, 1);
    assert.equal(d.trace?.calls[1]?.messages.at(-1)?.content, DEFAULT_CHECK_PROMPT);
    assert.deepEqual(d.bodies.map((b) => [b.max_tokens, b.temperature]), [[64, undefined], [64, undefined], [64, undefined]]);

    // Numbers arrive as text; a preset key becomes its prompt; the trailing slash of the URL is dropped.
    const c = await chat("--base-url", `${srv.url}/`, "--json", "--variant", "self", "--rounds", "3", "--check-prompt", "code-3", "--max-tokens", "32", "--temperature", "0.7");
    assert.equal(c.code, 0, c.stderr);
    assert.equal(c.trace?.variant, "self");
    assert.equal(c.trace?.calls.length, 7);
    assert.equal(c.trace?.calls[1]?.messages.at(-1)?.content, CODE_CHECK_PROMPTS[3]);
    assert.ok(c.bodies.every((b) => b.max_tokens === 32 && b.temperature === 0.7));
    const custom = await chat("--base-url", srv.url, "--json", "--check-prompt", "Was that OK?");
    assert.equal(custom.trace?.calls[1]?.messages.at(-1)?.content, "Was that OK?");

    // Bad values exit 2 with the library's message (or commander's, for a choice it knows).
    const bad: [string[], RegExp][] = [
      [["--variant", "diverse", "--rounds", "4"], /--rounds for --variant diverse/],
      [["--variant", "clever"], /Allowed choices are self, self-instruct, diverse/],
      [["--rounds", "1.5"], /--rounds must be a whole number/],
      [["--retries=-1"], /--retries must be at least 0/],
      [["--max-tokens", "many"], /--max-tokens must be a number/],
    ];
    for (const [args, message] of bad) {
      const r = await chat("--base-url", srv.url, ...args);
      assert.equal(r.code, 2, `${args.join(" ")}: ${r.stderr}`);
      assert.match(r.stderr, message);
      assert.deepEqual(r.bodies, [], "nothing was sent upstream");
    }
  } finally {
    await srv.close();
  }
});
