/**
 * Generation: the KV cache gives the same logits (to float32 rounding) and exactly the same tokens
 * as re-running the full forward at every step, for greedy, temperature and top-p sampling; stop
 * tokens, stop strings, the context limit and seeds behave as documented.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import {
  IM_END, VOCAB_SIZE, createFloat64LanguageModel, createLanguageModel, decode, encode, generate, sampleToken, type LanguageModel, type LmConfig,
} from "../src/engine/lm/index.js";

const config: LmConfig = { vocabSize: VOCAB_SIZE, nEmbd: 32, nHead: 4, nLayer: 3, nPositions: 40 };

/** Trained on one phrase, so that greedy decoding has a clear, non-trivial continuation. Shared by the tests. */
let trained: Promise<LanguageModel> | null = null;
function trainedModel(): Promise<LanguageModel> {
  trained ??= train();
  return trained;
}

async function train(): Promise<LanguageModel> {
  const lm = await createLanguageModel(config, { seed: 11, maxBatch: 2 });
  const text = encode("hello world, hello self-correction. ".repeat(4));
  const rng = new Rng(2);
  for (let s = 0; s < 400; s++) {
    const o = [rng.int(text.length - 33), rng.int(text.length - 33)];
    const inputs = o.flatMap((x) => text.slice(x, x + 32));
    const targets = o.flatMap((x) => text.slice(x + 1, x + 33));
    lm.forward(inputs, 2, 32, targets);
    lm.backward();
    lm.adamStep({ lr: 3e-3 });
  }
  return lm;
}

test("KV-cache decode logits equal a full forward's at every position (float32 and float64)", async () => {
  const f64 = createFloat64LanguageModel({ ...config, blocks: [{ attention: "softmax", ffn: true }, { attention: "linear", ffn: false }, { attention: "softmax", ffn: true }] }, { seed: 4, maxBatch: 1 });
  const rng = new Rng(12);
  for (const name of f64.names) {
    const v = f64.view(name);
    for (let i = 0; i < v.length; i++) v[i] = /ln_.\.weight$/.test(name) ? 1 + 0.2 * rng.normal() : 0.3 * rng.normal();
  }
  for (const lm of [await trainedModel(), f64]) {
    const seq = encode("hello world, hello self-correction!");
    const tol = lm === f64 ? 1e-12 : 2e-5;
    const cached = [lm.prefill(seq.slice(0, 3))];
    for (let t = 3; t < seq.length; t++) cached.push(lm.decode(seq[t]!));
    lm.forward(seq, 1, seq.length);
    const full = lm.logits();
    const V = lm.config.vocabSize;
    let worst = 0;
    for (let t = 2; t < seq.length; t++) {
      const row = cached[t - 2]!;
      for (let i = 0; i < V; i++) worst = Math.max(worst, Math.abs(row[i]! - full[t * V + i]!));
    }
    console.log(`KV cache vs full forward (${lm === f64 ? "float64" : "float32"}): max |logit diff| = ${worst.toExponential(2)}`);
    assert.ok(worst < tol, `max |cached - full| = ${worst}`);
  }
});

test("KV-cache generation produces exactly the tokens of full-forward generation (greedy, temperature, top-p)", async () => {
  const lm = await trainedModel();
  const prompt = encode("hello");
  const cases = [{ temperature: 0 }, { temperature: 1, seed: 3 }, { temperature: 0.7, topP: 0.9, seed: 9 }, { temperature: 1.5, topP: 0.5, seed: 1 }];
  for (const c of cases) {
    const a = generate(lm, prompt, { maxNewTokens: 30, ...c });
    const b = generate(lm, prompt, { maxNewTokens: 30, ...c, kvCache: false });
    assert.deepEqual(a.tokens, b.tokens, JSON.stringify(c));
    assert.equal(a.tokens.length, 30);
  }
  const greedy = generate(lm, prompt, { maxNewTokens: 30, temperature: 0 });
  assert.match(decode(greedy.tokens), /^ world, hello/, "the trained continuation");
  const s1 = generate(lm, prompt, { maxNewTokens: 30, temperature: 1.5, seed: 5 });
  assert.deepEqual(generate(lm, prompt, { maxNewTokens: 30, temperature: 1.5, seed: 5 }).tokens, s1.tokens, "same seed, same tokens");
  assert.notDeepEqual(generate(lm, prompt, { maxNewTokens: 30, temperature: 1.5, seed: 6 }).tokens, s1.tokens, "another seed");
});

test("stop strings, stop tokens and the context limit", async () => {
  const lm = await trainedModel();
  const prompt = encode("hello");
  const r = generate(lm, prompt, { maxNewTokens: 30, temperature: 0, stop: ["hello"] });
  assert.equal(decode(r.tokens), " world, ");
  assert.equal(r.finishReason, "stop");
  const greedy = generate(lm, prompt, { maxNewTokens: 5, temperature: 0 });
  const t = generate(lm, prompt, { maxNewTokens: 30, temperature: 0, stopTokens: [greedy.tokens[2]!, IM_END] });
  assert.deepEqual(t.tokens, greedy.tokens.slice(0, 2));
  assert.equal(t.finishReason, "stop");
  const full = generate(lm, prompt, { maxNewTokens: 1000, temperature: 0 });
  assert.equal(full.finishReason, "length");
  assert.equal(prompt.length + full.tokens.length, config.nPositions, "stops at the context length");
  assert.throws(() => generate(lm, [], { maxNewTokens: 1 }), /prompt is empty/);
  assert.throws(() => generate(lm, prompt, { maxNewTokens: 1, topP: 0 }), /topP = 0/);
  assert.throws(() => lm.decode(5), /fills nPositions/);
  lm.forward(prompt, 1, prompt.length);
  assert.throws(() => lm.decode(5), /needs prefill\(\) first/, "a training forward does not leave a usable cache");
});

test("sampleToken: greedy takes the argmax, top-p keeps only the nucleus, draws follow the probabilities", () => {
  const logits = [0, Math.log(6), Math.log(3), 0];
  assert.equal(sampleToken(logits, 0, 1, new Rng(1)), 1);
  const rng = new Rng(7);
  const counts = [0, 0, 0, 0];
  for (let i = 0; i < 20000; i++) counts[sampleToken(logits, 1, 1, rng)]!++;
  // p = [1, 6, 3, 1] / 11
  assert.ok(Math.abs(counts[1]! / 20000 - 6 / 11) < 0.02 && Math.abs(counts[0]! / 20000 - 1 / 11) < 0.01, JSON.stringify(counts));
  for (let i = 0; i < 2000; i++) {
    const x = sampleToken(logits, 1, 0.6, rng);
    assert.ok(x === 1 || x === 2, `top-p 0.6 keeps {1, 2} (mass 9/11), drew ${x}`);
  }
});
