/**
 * The offline default: with no --base-url/--model/--gguf, `chat` and `serve` run the built-in GGUF (here a
 * tiny LM trained in the test and exported, named by $SELFCORRECT_DEFAULT_MODEL), on the engine or on
 * llama.cpp (--backend), as real child processes; `serve` is driven by the openai npm client. Also the
 * engine ChatModel itself: streaming, stop strings, prefill, usage, abort, the context limit.
 */
import { spawnSync } from "node:child_process";
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import OpenAI from "openai";
import { createEngineModel, type EngineChatModel } from "../src/cac/adapters/engine-lm.js";
import { createLlamaCppModel } from "../src/cac/adapters/llama-cpp.js";
import { DEFAULT_MODEL_FILE, resolveDefaultModel } from "../src/cac/default-model.js";
import { createModelFromSpec } from "../src/cac/model-spec.js";
import { exportLanguageModelGguf } from "../src/engine/gguf/gpt2.js";
import { writeTinyLlamaGguf } from "../src/engine/gguf/fixtures/tiny-llama.js";
import { ENDOFTEXT, decode, encodeChat } from "../src/engine/lm/index.js";
import { UserError } from "../src/util/errors.js";
import { exampleRequests } from "../src/world/index.js";
import { CLI as CLI_MAIN, runCliChild } from "./support/eval-cli.js";
import { startServe } from "./support/serve-process.js";
import { trainTinyLm } from "./support/tiny-lm.js";

const runCli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCliChild(args, 60_000, env);

const dir = mkdtempSync(join(tmpdir(), "selfcorrect-default-"));
const ggufPath = join(dir, "world.gguf");
const env = { SELFCORRECT_DEFAULT_MODEL: ggufPath };
const ask = ["chat", "--prompt", "what is two plus two?", "--rounds", "0", "--temperature", "0", "--json"];
let model: EngineChatModel;

before(async () => {
  const { lm } = await trainTinyLm({ steps: 300, nEmbd: 32, nLayer: 2, nPositions: 256 });
  await exportLanguageModelGguf(lm, ggufPath);
  model = await createEngineModel({ gguf: ggufPath });
});

after(() => rmSync(dir, { recursive: true, force: true }));

function answer(stdout: string): { model: string; text: string } {
  const { model: id, trace } = JSON.parse(stdout.trim().split("\n").at(-1)!);
  return { model: id, text: trace.finalAnswer };
}

test("chat with no model: the built-in model, the same text on --backend engine and --backend llama-cpp", async () => {
  const engine = await runCli([...ask, "--backend", "engine"], env);
  assert.equal(engine.code, 0, engine.stderr);
  assert.match(engine.stderr, new RegExp(`^using the built-in model ${ggufPath.replace(/[.]/g, "\\.")} \\(from \\$SELFCORRECT_DEFAULT_MODEL\\)\n`));
  const llama = await runCli([...ask, "--backend", "llama-cpp"], env);
  assert.equal(llama.code, 0, llama.stderr);
  const a = answer(engine.stdout);
  const b = answer(llama.stdout);
  assert.equal(a.model, `engine:${ggufPath}`);
  assert.equal(b.model, `gguf:${ggufPath}`);
  assert.ok(a.text.length > 0, "a non-empty answer");
  assert.equal(b.text, a.text, "both backends give the same text");
  console.log(`# default model answers ${JSON.stringify(a.text)} on both backends`);

  const byDefault = await runCli(ask, env);
  assert.equal(byDefault.code, 0, byDefault.stderr);
  assert.deepEqual(answer(byDefault.stdout), a, "the engine is the default backend");
  // --gguf on a file the engine wrote also runs on the engine unless told otherwise.
  const explicit = await runCli([...ask, "--gguf", ggufPath], { SELFCORRECT_DEFAULT_MODEL: "none" });
  assert.equal(explicit.code, 0, explicit.stderr);
  assert.doesNotMatch(explicit.stderr, /built-in/);
  assert.deepEqual(answer(explicit.stdout), a);
});

test("no model and no default: the usual error, saying why there is no default; flag errors exit 2", async () => {
  const missing = await runCli(["chat", "--prompt", "x"], { SELFCORRECT_DEFAULT_MODEL: join(dir, "absent.gguf") });
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /^error: no model given, and \$SELFCORRECT_DEFAULT_MODEL names .*absent\.gguf, which is not a file: add --base-url URL --model NAME .* or --gguf PATH/);
  const off = await runCli(["chat", "--prompt", "x"], { SELFCORRECT_DEFAULT_MODEL: "none" });
  assert.equal(off.code, 2);
  assert.match(off.stderr, /no model given, and the built-in model is switched off \(\$SELFCORRECT_DEFAULT_MODEL=none\)/);

  // The package's own file: named as models/... whether or not this checkout has it yet.
  const pkg = resolveDefaultModel({});
  assert.ok(pkg);
  assert.equal(pkg.path, resolve(fileURLToPath(new URL("../..", import.meta.url)), DEFAULT_MODEL_FILE));
  assert.equal(pkg.present, existsSync(pkg.path));
  if (!pkg.present) {
    await assert.rejects(createModelFromSpec({}), /the built-in model models\/selfcorrect-world\.gguf is not in this install/);
  }

  const badBackend = await runCli([...ask, "--backend", "vllm"], env);
  assert.equal(badBackend.code, 2);
  assert.match(badBackend.stderr, /--backend/);
  const endpoint = await runCli([...ask, "--base-url", "http://127.0.0.1:9/v1", "--model", "m", "--backend", "engine"], env);
  assert.equal(endpoint.code, 2);
  assert.match(endpoint.stderr, /--backend picks how a GGUF file runs/);
  const ctx = await runCli([...ask, "--context-size", "64"], env);
  assert.equal(ctx.code, 2);
  assert.match(ctx.stderr, /--context-size is for --backend llama-cpp/);
  // A GGUF the engine cannot run: llama.cpp by default, a clear refusal when the engine is asked for.
  const llamaFile = join(dir, "llama.gguf");
  writeTinyLlamaGguf(llamaFile, { seed: 2 });
  const forced = await runCli([...ask, "--gguf", llamaFile, "--backend", "engine"]);
  assert.equal(forced.code, 2);
  assert.match(forced.stderr, /architecture "llama"; the engine runs only the byte-level gpt2 files/);
  const auto = await createModelFromSpec({ gguf: llamaFile, maxTokens: 4 });
  try {
    assert.equal(auto.id, `gguf:${llamaFile}`);
  } finally {
    await auto.dispose?.();
  }
});

test("serve with no upstream serves the built-in model to the openai client, non-stream and stream", async () => {
  const chat = await runCli(ask, env);
  assert.equal(chat.code, 0, chat.stderr);
  const expected = answer(chat.stdout).text;
  const srv = await startServe(["--rounds", "0", "--temperature", "0"], { env, startTimeoutMs: 30_000 });
  try {
    assert.match(srv.stderr(), /using the built-in model .*world\.gguf/);
    const client = new OpenAI({ baseURL: `${srv.url}/v1`, apiKey: "unused", maxRetries: 0, timeout: 30_000 });
    const models = await client.models.list();
    assert.deepEqual(models.data.map((m) => m.id), ["world.gguf"]);
    const messages = [{ role: "user" as const, content: "what is two plus two?" }];
    const r = await client.chat.completions.create({ model: "world.gguf", messages });
    assert.equal(r.choices[0]!.message.content, expected);
    assert.ok(r.usage!.prompt_tokens > 0 && r.usage!.completion_tokens > 0);
    const stream = await client.chat.completions.create({ model: "world.gguf", messages, stream: true });
    let streamed = "";
    for await (const chunk of stream) streamed += chunk.choices[0]?.delta?.content ?? "";
    assert.equal(streamed, expected);
  } finally {
    srv.child.kill("SIGTERM");
    const { code } = await srv.exited;
    assert.equal(code, 0, srv.stderr());
  }
});

test("engine ChatModel: deltas add up to the text, usage, stop strings, prefill, seeds, abort, context limit", async () => {
  const messages = [{ role: "user" as const, content: "where did the cat sit?" }];
  assert.deepEqual(model.promptIds(messages), [ENDOFTEXT, ...encodeChat(messages, { addGenerationPrompt: true }).ids]);
  let deltas = "";
  const r = await model.generate(messages, { maxTokens: 40, onDelta: (t) => (deltas += t) });
  assert.equal(deltas, r.text);
  assert.equal(r.usage.promptTokens, model.promptIds(messages).length);
  assert.ok(r.usage.completionTokens > 0 && r.usage.completionTokens <= 40);
  assert.ok(r.finishReason === "stop" || r.finishReason === "length");
  const again = await model.generate(messages, { maxTokens: 40 });
  assert.deepEqual([again.text, again.usage, again.finishReason], [r.text, r.usage, r.finishReason], "greedy is deterministic");

  const cut = r.text.slice(2, 4);
  if (cut.length === 2) {
    let streamed = "";
    const s = await model.generate(messages, { maxTokens: 40, stop: [cut], onDelta: (t) => (streamed += t) });
    assert.equal(s.text, r.text.slice(0, r.text.indexOf(cut)));
    assert.equal(streamed, s.text, "a stop string never reaches onDelta");
    assert.equal(s.finishReason, "stop");
  }
  const budget = await model.generate(messages, { maxTokens: 3 });
  assert.equal(budget.usage.completionTokens, 3);
  assert.equal(budget.finishReason, "length");

  // A trailing assistant message is continued, not closed.
  const prefill = await model.generate([...messages, { role: "assistant", content: "on the" }], { maxTokens: 8 });
  assert.equal(prefill.usage.promptTokens, model.promptIds(messages).length + "on the".length);

  const hot = { maxTokens: 30, temperature: 1.5 };
  const x = await model.generate(messages, { ...hot, seed: 1 });
  assert.equal((await model.generate(messages, { ...hot, seed: 1 })).text, x.text, "same seed, same text");

  // Greedy gives r again, which has more than one token: the abort lands before the second.
  assert.ok(r.usage.completionTokens > 1);
  const ac = new AbortController();
  const pending = model.generate(messages, { maxTokens: 40, signal: ac.signal, onDelta: () => ac.abort(new Error("stop now")) });
  await assert.rejects(pending, /stop now/);
  await assert.rejects(model.generate(messages, { signal: AbortSignal.abort(new Error("before")) }), /before/);

  await assert.rejects(model.generate([{ role: "user", content: "x".repeat(300) }]), (e) => e instanceof UserError && /context holds 256/.test(e.message));
  await assert.rejects(model.generate([]), /non-empty/);
  // Calls queue on the one KV cache and each gets its own answer.
  const [p, q] = await Promise.all([model.generate(messages, { maxTokens: 40 }), model.generate([{ role: "user", content: "is the sun warm?" }], { maxTokens: 40 })]);
  assert.equal(p.text, r.text);
  const alone = await model.generate([{ role: "user", content: "is the sun warm?" }], { maxTokens: 40 });
  assert.equal(q.text, alone.text);
});

test("the engine and llama.cpp ChatModels feed the model the same ids and give the same replies in-process", async () => {
  const llama = await createLlamaCppModel({ modelPath: ggufPath, maxTokens: 40 });
  try {
    // The empty prompt included: node-llama-cpp's ChatML wrapper leaves empty turns out, and so must the engine.
    const prompts = ["what is two plus two?", "where did the cat sit?", "check your answer.", "is the sun warm?", "héllo ☀️", "", "日本語 \t\n 👩‍💻", "<|im_end|> as text"];
    for (const content of prompts) {
      const messages = [{ role: "user" as const, content }];
      assert.equal(llama.renderPrompt(messages), decode(model.promptIds(messages)), JSON.stringify(content));
      assert.equal(llama.countPromptTokens(messages), model.promptIds(messages).length, content);
      const a = await model.generate(messages, { maxTokens: 40 });
      const b = await llama.generate(messages, { maxTokens: 40 });
      assert.equal(b.text, a.text, content);
      assert.equal(b.usage.completionTokens, a.usage.completionTokens, content);
    }
  } finally {
    await llama.dispose();
  }
});

test("interactive chat on the built-in model first shows example requests of the world", () => {
  const r = spawnSync(process.execPath, [CLI_MAIN, "chat", "--rounds", "0"], { input: "/exit\n", env: { ...process.env, ...env }, encoding: "utf8", timeout: 60_000 });
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /The built-in model speaks the synthetic world's language/);
  for (const e of exampleRequests()) assert.ok(r.stdout.includes(`  ${e.text}    (${e.note})`), `example ${e.text} shown`);
  // Naming a model shows no world examples: they would mean nothing to it.
  const named = spawnSync(process.execPath, [CLI_MAIN, "chat", "--rounds", "0", "--gguf", ggufPath], { input: "/exit\n", env: { ...process.env, SELFCORRECT_DEFAULT_MODEL: "none" }, encoding: "utf8", timeout: 60_000 });
  assert.equal(named.status, 0, named.stderr);
  assert.doesNotMatch(named.stdout, /synthetic world/);
});
