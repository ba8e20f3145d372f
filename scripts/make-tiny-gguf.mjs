#!/usr/bin/env node
// Writes a tiny llama-architecture GGUF with random weights (for testing the local runtime; its output
// is gibberish). With --smoke, also loads it through the node-llama-cpp adapter and prints load time
// and generation speed. Needs a build first (`npx tsc -p .`).
//
//   node scripts/make-tiny-gguf.mjs OUT.gguf [--seed 1] [--vocab N] [--n-embd 64] [--n-layer 2]
//        [--n-head 4] [--n-head-kv 2] [--n-ff 128] [--context 2048] [--f32] [--smoke]
import { parseArgs } from "node:util";

const { values, positionals } = parseArgs({
  allowPositionals: true,
  options: {
    seed: { type: "string", default: "1" },
    vocab: { type: "string" },
    "n-embd": { type: "string" },
    "n-layer": { type: "string" },
    "n-head": { type: "string" },
    "n-head-kv": { type: "string" },
    "n-ff": { type: "string" },
    context: { type: "string" },
    f32: { type: "boolean", default: false },
    smoke: { type: "boolean", default: false },
    help: { type: "boolean", short: "h", default: false },
  },
});
if (values.help || positionals.length !== 1) {
  console.error("usage: node scripts/make-tiny-gguf.mjs OUT.gguf [--seed N] [--vocab N] [--n-embd N] [--n-layer N] [--n-head N] [--n-head-kv N] [--n-ff N] [--context N] [--f32] [--smoke]");
  process.exit(values.help ? 0 : 2);
}
const int = (name) => {
  const v = values[name];
  if (v === undefined) return undefined;
  const n = Number(v);
  if (!Number.isInteger(n) || n <= 0) {
    console.error(`--${name} must be a positive integer, got ${v}`);
    process.exit(2);
  }
  return n;
};

const { writeTinyLlamaGguf } = await import("../dist/src/engine/gguf/fixtures/tiny-llama.js");
const t0 = performance.now();
const info = writeTinyLlamaGguf(positionals[0], {
  seed: Number(values.seed),
  vocab: int("vocab"),
  nEmbd: int("n-embd"),
  nLayer: int("n-layer"),
  nHead: int("n-head"),
  nHeadKv: int("n-head-kv"),
  nFf: int("n-ff"),
  contextLength: int("context"),
  weightType: values.f32 ? "F32" : "F16",
});
console.log(`wrote ${info.path}: ${info.bytes} bytes, ${info.parameters} parameters, vocab ${info.vocab}, in ${(performance.now() - t0).toFixed(0)} ms`);

if (values.smoke) {
  const { createLlamaCppModel } = await import("../dist/src/cac/adapters/llama-cpp.js");
  const model = await createLlamaCppModel({ modelPath: info.path });
  console.log(`loaded in ${model.info.loadMs.toFixed(0)} ms (chat wrapper ${model.info.chatWrapper}, context ${model.info.contextSize}, ${model.info.threads} thread(s))`);
  const messages = [{ role: "user", content: "Hello, is this request safe?" }];
  await model.generate(messages, { maxTokens: 8 }); // warm-up
  const r = await model.generate(messages, { maxTokens: 256 });
  console.log(`${r.usage.promptTokens} prompt + ${r.usage.completionTokens} completion tokens in ${r.latencyMs.toFixed(0)} ms: ${((r.usage.completionTokens / r.latencyMs) * 1000).toFixed(0)} tokens/s`);
  console.log(`sample: ${JSON.stringify(r.text.slice(0, 80))}`);
  await model.dispose();
}
