/**
 * The token LM's backward pass: float64 against central finite differences for every parameter
 * entry (the tied wte gets gradient from both the embedding and the head), then the float32
 * WebAssembly model against the float64 one, then both against a PyTorch float64 fixture.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Rng } from "../src/util/rng.js";
import { createFloat64LanguageModel, createLanguageModel, type LanguageModel, type LmConfig } from "../src/engine/lm/index.js";

/** Scale-0.3 weights and LayerNorm gains near 1: GPT-2 init's tiny weights would hide errors. */
function scramble(m: LanguageModel, seed: number): void {
  const rng = new Rng(seed);
  for (const name of m.names) {
    const v = m.view(name);
    const gain = /ln_(1|2|f)\.weight$/.test(name);
    for (let i = 0; i < v.length; i++) v[i] = (gain ? 1 : 0) + (gain ? 0.2 : 0.3) * rng.normal();
  }
}

function batch(V: number, n: number, seed: number): { tokens: number[]; targets: number[]; mask: number[] } {
  const rng = new Rng(seed);
  const tokens = Array.from({ length: n }, () => rng.int(V));
  const targets = Array.from({ length: n }, () => rng.int(V));
  // Masked rows carry an out-of-vocabulary target: it must be ignored, not read.
  const mask = Array.from({ length: n }, (_, i) => (i % 3 === 1 ? 0 : 1));
  for (let i = 0; i < n; i++) if (mask[i] === 0) targets[i] = -1;
  return { tokens, targets, mask };
}

/** (f(x + eps) - f(x - eps)) / 2eps in entry i of p, which is restored afterwards. */
function centralDifference(p: Float32Array | Float64Array, i: number, eps: number, f: () => number): number {
  const x0 = p[i]!;
  p[i] = x0 + eps;
  const up = f();
  p[i] = x0 - eps;
  const down = f();
  p[i] = x0;
  return (up - down) / (2 * eps);
}

const configs: LmConfig[] = [
  { vocabSize: 13, nEmbd: 8, nHead: 2, nLayer: 2, nPositions: 7 },
  { vocabSize: 11, nEmbd: 8, nHead: 4, nLayer: 2, nPositions: 6, blocks: [{ attention: "linear", ffn: true }, { attention: "softmax", ffn: false }] },
];

for (const config of configs) {
  test(`float64 LM backward matches finite differences for every parameter (${JSON.stringify(config.blocks ?? "default blocks")})`, () => {
    const B = 2, T = config.nPositions - 1;
    const m = createFloat64LanguageModel(config, { seed: 1, maxBatch: B });
    scramble(m, 9);
    const { tokens, targets, mask } = batch(config.vocabSize, B * T, 4);
    const lossAt = () => m.forward(tokens, B, T, targets, mask)!;
    lossAt();
    m.backward();
    const eps = 1e-5;
    let checked = 0;
    let worst = 0;
    for (const name of m.names) {
      const p = m.view(name);
      const g = Float64Array.from(m.view(name, true));
      const maxG = g.reduce((acc, x) => Math.max(acc, Math.abs(x)), 0);
      const fd = Array.from(p, (_, i) => centralDifference(p, i, eps, lossAt));
      const maxDiff = fd.reduce((acc, d, i) => Math.max(acc, Math.abs(d - g[i]!)), 0);
      checked += fd.length;
      worst = Math.max(worst, maxDiff / Math.max(maxG, 1e-12));
      assert.ok(maxDiff <= 1e-6 * Math.max(maxG, 1), `${name}: max |fd - grad| = ${maxDiff}, max |grad| = ${maxG}`);
      // wpe's last row (position T) is unused; every other tensor must get a gradient.
      assert.ok(maxG > 1e-8, `${name}: gradient is identically zero`);
    }
    assert.equal(checked, m.paramCount, "every parameter entry was checked");
    console.log(`LM gradcheck ${config.blocks ? "mixed" : "default"}: ${checked} entries, max |fd - grad| / max |grad| = ${worst.toExponential(2)}`);
  });
}

/** Copies float64 weights (rounded to float32) into a float32 model and into the float64 one. */
function shareWeights(from: LanguageModel, to: LanguageModel): void {
  for (const name of from.names) {
    const v = from.view(name);
    const f = Float32Array.from(v);
    v.set(f);
    to.view(name).set(f);
  }
}

function maxRelErr(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let diff = 0, scale = 0;
  for (let i = 0; i < b.length; i++) {
    diff = Math.max(diff, Math.abs(a[i]! - b[i]!));
    scale = Math.max(scale, Math.abs(b[i]!));
  }
  return diff / Math.max(scale, 1e-12);
}

test("float32 WebAssembly LM matches the float64 LM: loss, logits, every gradient", async () => {
  for (const config of configs) {
    const B = 3, T = config.nPositions;
    const ref = createFloat64LanguageModel(config, { seed: 2, maxBatch: B });
    scramble(ref, 21);
    const lm = await createLanguageModel(config, { seed: 2, maxBatch: B });
    shareWeights(ref, lm);
    const { tokens, targets, mask } = batch(config.vocabSize, B * T, 8);
    const l64 = ref.forward(tokens, B, T, targets, mask)!;
    const l32 = lm.forward(tokens, B, T, targets, mask)!;
    assert.ok(Math.abs(l32 - l64) <= 1e-5 * Math.abs(l64), `loss ${l32} vs ${l64}`);
    assert.ok(maxRelErr(lm.logits(), ref.logits()) < 1e-5, "logits");
    ref.backward();
    lm.backward();
    for (const name of ref.names) {
      const e = maxRelErr(lm.view(name, true), ref.view(name, true));
      assert.ok(e < 1e-4, `${name}: rel err ${e}`);
    }
  }
});

interface LmFixture {
  config: LmConfig & { batch: number; seqLen: number };
  tokens: number[];
  targets: number[];
  mask: number[];
  params: Record<string, { shape: number[]; data: number[] }>;
  logits: number[];
  loss: number;
  grads: Record<string, number[]>;
}

test("PyTorch float64 fixture (test/engine-fixtures/lm_gpt_tiny.json): float64 and float32 LMs reproduce loss, logits and gradients", async () => {
  const f = JSON.parse(readFileSync(resolve(process.cwd(), "test/engine-fixtures/lm_gpt_tiny.json"), "utf8")) as LmFixture;
  const { batch: B, seqLen: T, ...config } = f.config;
  const models = [createFloat64LanguageModel(config, { seed: 0, maxBatch: B }), await createLanguageModel(config, { seed: 0, maxBatch: B })];
  for (const [i, m] of models.entries()) {
    const tol = i === 0 ? 1e-9 : 1e-4;
    assert.deepEqual([...m.names].sort(), Object.keys(f.params).sort(), "same parameter names");
    m.setParams(f.params);
    const loss = m.forward(f.tokens, B, T, f.targets, f.mask)!;
    assert.ok(Math.abs(loss - f.loss) <= tol * f.loss, `${i === 0 ? "float64" : "float32"} loss ${loss} vs ${f.loss}`);
    assert.ok(maxRelErr(m.logits(), f.logits) <= tol, "logits");
    m.backward();
    for (const name of m.names) {
      const e = maxRelErr(m.view(name, true), f.grads[name]!);
      assert.ok(e <= tol, `${i === 0 ? "float64" : "float32"} ${name}: grad rel err ${e}`);
    }
  }
});
