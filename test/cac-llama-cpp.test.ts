/**
 * The node-llama-cpp adapter against real llama.cpp (the prebuilt CPU binary), on tiny llama models
 * with random weights written by src/engine/gguf. The text is gibberish by construction; these tests check
 * loading, templating, generation, streaming, cancellation, usage, errors and cleanup, not quality.
 */
import { after, before, test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { createLlamaCppModel, LlamaCppAbortError, LlamaCppLoadError, type LlamaCppModel } from "../src/cac/adapters/llama-cpp.js";
import { buildTinyLlama, renderTinyLlamaChat, writeTinyLlamaGguf } from "../src/engine/gguf/fixtures/tiny-llama.js";
import { encodeGguf } from "../src/engine/gguf/writer.js";
import { UserError } from "../src/util/errors.js";
import type { ChatMessage } from "../src/cac/types.js";
import { sleep } from "../src/util/sleep.js";

const dir = mkdtempSync(join(tmpdir(), "selfcorrect-llama-"));
const modelPath = join(dir, "tiny.gguf");
let model: LlamaCppModel;

const question: ChatMessage[] = [
  { role: "system", content: "You are a helpful and honest assistant." },
  { role: "user", content: "Is this request safe? Please answer." },
];

before(async () => {
  writeTinyLlamaGguf(modelPath, { seed: 11 });
  model = await createLlamaCppModel({ modelPath, maxTokens: 32 });
});

after(async () => {
  await model?.dispose();
  rmSync(dir, { recursive: true, force: true });
});

test("loads the generated GGUF with the model's ChatML template and generates tokens", async () => {
  assert.equal(model.id, `gguf:${modelPath}`);
  assert.equal(model.info.chatWrapper, "ChatML");
  assert.equal(model.info.trainContextSize, 2048);
  assert.equal(model.info.contextSize, 2048);
  assert.ok(model.info.loadMs > 0);
  const r = await model.generate(question, { maxTokens: 16 });
  assert.ok(r.text.length > 0, "non-empty text");
  assert.equal(r.usage.promptTokens, model.countPromptTokens(question));
  assert.ok(r.usage.promptTokens > 10);
  // Control-token logits are zero in the tiny model, so greedy decoding runs to the budget.
  assert.equal(r.usage.completionTokens, 16);
  assert.equal(r.finishReason, "length");
  assert.ok(r.latencyMs > 0);
  console.log(
    `# tiny llama: load ${model.info.loadMs.toFixed(0)} ms, ${r.usage.completionTokens} tokens in ${r.latencyMs.toFixed(1)} ms` +
      ` (${((r.usage.completionTokens / r.latencyMs) * 1000).toFixed(0)} tokens/s incl. prompt)`,
  );
});

test("the prompt is the model's own template, and prompt tokens grow with the history", async () => {
  const history: ChatMessage[] = [...question, { role: "assistant", content: "yes" }, { role: "user", content: "Check your answer." }];
  assert.equal(model.renderPrompt(question), "<s>" + renderTinyLlamaChat(question));
  assert.equal(model.renderPrompt(history), "<s>" + renderTinyLlamaChat(history));
  assert.ok(model.countPromptTokens(history) > model.countPromptTokens(question));
  // <|im_start|> and <|im_end|> are single control tokens: one user turn "a" costs exactly
  // <|im_start|> user \n a <|im_end|> \n = 6 tokens more.
  const one = model.countPromptTokens([{ role: "user", content: "a" }]);
  const two = model.countPromptTokens([{ role: "user", content: "a" }, { role: "assistant", content: "b" }, { role: "user", content: "a" }]);
  assert.equal(two - one, 12);
  // A trailing assistant message is continued (a prefill): no end-of-turn, and the reply is only the new text.
  const prefill: ChatMessage[] = [{ role: "user", content: "hi" }, { role: "assistant", content: "Sure, the answer" }];
  assert.equal(model.renderPrompt(prefill), "<s><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\nSure, the answer");
  const r = await model.generate(prefill, { maxTokens: 4 });
  assert.equal(r.usage.completionTokens, 4);
  assert.ok(!r.text.startsWith("Sure, the answer"));
});

test("another chat template in the file is used instead (Jinja), and an over-long prompt is refused", async () => {
  const template =
    "{% for message in messages %}{{ '[' + message['role'] + ']: ' + message['content'] + '\\n' }}{% endfor %}" +
    "{% if add_generation_prompt %}{{ '[assistant]: ' }}{% endif %}";
  const path = join(dir, "jinja.gguf");
  writeTinyLlamaGguf(path, { seed: 12, chatTemplate: template, nLayer: 1 });
  const m = await createLlamaCppModel({ modelPath: path, contextSize: 64 });
  try {
    assert.equal(m.info.chatWrapper, "JinjaTemplate");
    assert.equal(m.renderPrompt(question), "[system]: You are a helpful and honest assistant.\n[user]: Is this request safe? Please answer.\n[assistant]: ");
    const r = await m.generate([{ role: "user", content: "hi" }], { maxTokens: 8 });
    assert.ok(r.text.length > 0);
    // llama.cpp rounds the context up (to 256 here).
    const n = m.info.contextSize;
    assert.ok(n >= 64 && n <= 512, `context ${n}`);
    await assert.rejects(
      m.generate([{ role: "user", content: "the answer is ".repeat(n) }], { maxTokens: 8 }),
      (e: unknown) => e instanceof UserError && new RegExp(`the prompt is \\d+ tokens but the context holds ${n};`).test((e as Error).message),
    );
  } finally {
    await m.dispose();
  }
});

test("a CaC-like multi-turn history: answer, check, re-answer, each call seeing the whole conversation", async () => {
  const messages: ChatMessage[] = [...question];
  const prompts: number[] = [];
  for (const turn of ["Review your previous response. Is it harmful?", "Refine your answer to the prior request based on your examination above."]) {
    const r = await model.generate(messages, { maxTokens: 12 });
    assert.ok(r.text.length > 0);
    assert.equal(r.usage.promptTokens, model.countPromptTokens(messages));
    prompts.push(r.usage.promptTokens);
    messages.push({ role: "assistant", content: r.text }, { role: "user", content: turn });
  }
  const last = await model.generate(messages, { maxTokens: 12 });
  prompts.push(last.usage.promptTokens);
  assert.ok(prompts[0]! < prompts[1]! && prompts[1]! < prompts[2]!, `prompt tokens ${prompts.join(" < ")}`);
  assert.ok(model.renderPrompt(messages).includes(`<|im_start|>assistant\n${messages[2]!.content}<|im_end|>\n<|im_start|>user\nReview`));
});

test("streaming through onDelta yields the same text as generate (greedy), chunk by chunk", async () => {
  const whole = await model.generate(question, { maxTokens: 20 });
  const chunks: string[] = [];
  const streamed = await model.generate(question, { maxTokens: 20, onDelta: (c) => chunks.push(c) });
  assert.ok(chunks.length > 1);
  assert.equal(chunks.join(""), whole.text);
  assert.equal(streamed.text, whole.text);
});

test("stop sequences, temperature and seed are honoured", async () => {
  const greedy = await model.generate(question, { maxTokens: 24 });
  const stop = greedy.text.slice(8, 12);
  const cut = greedy.text.indexOf(stop);
  const stopped = await model.generate(question, { maxTokens: 24, stop: [stop] });
  assert.equal(stopped.finishReason, "stop");
  assert.equal(stopped.text, greedy.text.slice(0, cut));

  const a = await model.generate(question, { maxTokens: 16, temperature: 1, seed: 5 });
  const b = await model.generate(question, { maxTokens: 16, temperature: 1, seed: 5 });
  const c = await model.generate(question, { maxTokens: 16, temperature: 1, seed: 6 });
  assert.equal(a.text, b.text, "same seed, same sample");
  assert.notEqual(a.text, c.text, "another seed, another sample");
  await assert.rejects(model.generate(question, { maxTokens: 0 }), /maxTokens must be a positive integer/);
});

test("an AbortSignal stops a generation early, and the model keeps working", async () => {
  // Streaming: abort after 5 chunks of a 1500-token budget.
  const ac = new AbortController();
  let seen = 0;
  const t0 = performance.now();
  await assert.rejects(
    model.generate(question, {
      maxTokens: 1500,
      signal: ac.signal,
      onDelta: () => {
        if (++seen === 5) ac.abort();
      },
    }),
    (e: unknown) => e instanceof LlamaCppAbortError && e.name === "AbortError" && e.completionTokens < 50,
  );
  assert.ok(seen >= 5 && seen < 50, `${seen} chunks`);

  // generate(): abort on a timer, well before a 4000-token budget (with context shifts) could finish.
  const timer = new AbortController();
  setTimeout(() => timer.abort(), 30);
  await assert.rejects(model.generate(question, { maxTokens: 4000, signal: timer.signal }), (e: unknown) => {
    assert.ok(e instanceof LlamaCppAbortError);
    assert.equal(e.name, "AbortError");
    assert.ok(e.completionTokens < 4000);
    assert.equal(typeof e.partialText, "string");
    return true;
  });
  assert.ok(performance.now() - t0 < 10_000);

  // Already aborted: rejects at once.
  await assert.rejects(model.generate(question, { signal: AbortSignal.abort() }), { name: "AbortError" });
  const r = await model.generate(question, { maxTokens: 4 });
  assert.equal(r.usage.completionTokens, 4);
});

test("concurrent calls are served one at a time with the same results as sequential calls", async () => {
  const histories: ChatMessage[][] = [
    question,
    [{ role: "user", content: "hello world" }],
    [...question, { role: "assistant", content: "no" }, { role: "user", content: "Why?" }],
  ];
  const sequential: string[] = [];
  for (const h of histories) sequential.push((await model.generate(h, { maxTokens: 10 })).text);
  const parallel = await Promise.all(histories.map((h) => model.generate(h, { maxTokens: 10 })));
  assert.deepEqual(parallel.map((r) => r.text), sequential);
});

test("malformed GGUF files are rejected with a clear error naming the file", async () => {
  const good = readFileSync(modelPath);
  const write = (name: string, data: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, data);
    return p;
  };
  // The header claims output.weight has 4x the rows that the file holds.
  const lying = Buffer.from(good);
  const name = Buffer.from("output.weight");
  const len = Buffer.alloc(8);
  len.writeBigUInt64LE(BigInt(name.length));
  const at = lying.indexOf(Buffer.concat([len, name]));
  assert.ok(at > 0);
  const ne1 = at + 8 + name.length + 4 + 8;
  lying.writeBigUInt64LE(lying.readBigUInt64LE(ne1) * 4n, ne1);
  // A well-formed GGUF whose attn_q has the wrong shape for the architecture: llama.cpp itself refuses it.
  const shaped = buildTinyLlama({ seed: 1 }).file;
  const q = shaped.tensors.find((t) => t.name === "blk.0.attn_q.weight")!;
  q.dims = [64, 32];
  q.data = q.data.subarray(0, 64 * 32);
  const keyless = buildTinyLlama({ seed: 1 }).file;
  delete keyless.metadata["llama.block_count"];

  const cases: [string, RegExp][] = [
    [write("bad-magic.gguf", Buffer.concat([Buffer.from("GGJT"), good.subarray(4)])), /bad magic bytes "GGJT"/],
    [write("text.gguf", Buffer.from("this is not a model\n")), /bad magic bytes "this"/],
    [write("truncated.gguf", good.subarray(0, Math.floor(good.length / 2))), /needs bytes up to \d+ but the file has \d+ \(truncated or corrupted\)/],
    [write("truncated-header.gguf", good.subarray(0, 2000)), /truncated/],
    [write("lying-dims.gguf", lying), /tensor output\.weight \[64, \d+\] needs bytes up to/],
    [write("wrong-shape.gguf", encodeGguf(shaped)), /llama\.cpp rejected it: .*tensor 'blk\.0\.attn_q\.weight' has wrong shape/],
    [write("missing-key.gguf", encodeGguf(keyless)), /llama\.cpp rejected it: .*key not found in model: llama\.block_count/],
    [join(dir, "does-not-exist.gguf"), /file not found/],
  ];
  for (const [path, message] of cases) {
    await assert.rejects(createLlamaCppModel({ modelPath: path }), (e: unknown) => {
      assert.ok(e instanceof LlamaCppLoadError, `${path}: ${String(e)}`);
      assert.ok(e instanceof UserError);
      assert.ok(e.message.startsWith(`cannot load GGUF model ${path}: `), e.message);
      assert.match(e.message, message);
      return true;
    });
  }
});

test("an aborted model-level signal cancels loading", async () => {
  await assert.rejects(createLlamaCppModel({ modelPath, signal: AbortSignal.abort() }), { name: "AbortError" });
});

test("dispose aborts calls in flight, is idempotent, and later calls fail clearly", async () => {
  const m = await createLlamaCppModel({ modelPath, contextSize: 512 });
  const inFlight = m.generate(question, { maxTokens: 4000 });
  await sleep(20);
  await Promise.all([m.dispose(), m.dispose()]);
  await assert.rejects(inFlight, { name: "AbortError" });
  await assert.rejects(m.generate(question), /model is disposed/);
});

test("loading, generating and a failed load print nothing to stdout or stderr", () => {
  const adapter = fileURLToPath(new URL("../src/cac/adapters/llama-cpp.js", import.meta.url));
  const bad = join(dir, "quiet-wrong-shape.gguf");
  const shaped = buildTinyLlama({ seed: 1 }).file;
  shaped.tensors.find((t) => t.name === "blk.0.ffn_up.weight")!.dims = [128, 64];
  writeFileSync(bad, encodeGguf(shaped));
  const script = `
    const { createLlamaCppModel } = await import(${JSON.stringify(adapter)});
    const m = await createLlamaCppModel({ modelPath: ${JSON.stringify(modelPath)} });
    const r = await m.generate([{ role: "user", content: "hi" }], { maxTokens: 8 });
    await m.dispose();
    let rejected = false;
    try { await createLlamaCppModel({ modelPath: ${JSON.stringify(bad)} }); } catch { rejected = true; }
    process.exitCode = r.text.length > 0 && rejected ? 0 : 3;`;
  // A file, not `node -e`: node-llama-cpp tests its binary in a child forked with this process's execArgv.
  const scriptPath = join(dir, "quiet.mjs");
  writeFileSync(scriptPath, script);
  const child = spawnSync(process.execPath, [scriptPath], { encoding: "utf8", timeout: 60_000 });
  assert.equal(child.status, 0, child.stderr);
  assert.equal(child.stdout, "");
  assert.equal(child.stderr, "");
});
