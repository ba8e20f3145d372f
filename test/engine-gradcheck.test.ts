/**
 * Backward against finite differences, in the float64 path (plain-JS reference kernels over a
 * Float64Array heap), for every block variant: softmax/linear attention x FFN on/off. Then the
 * float32 WASM engine against the float64 path on the same weights, for the same variants.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { createFloat64Model, createModel } from "../src/engine/model/index.js";
import type { BlockConfig, ModelConfig, NamedTensor } from "../src/engine/api.js";

const variants: BlockConfig[] = [
  { attention: "softmax", ffn: true },
  { attention: "softmax", ffn: false },
  { attention: "linear", ffn: true },
  { attention: "linear", ffn: false },
];

function tinyConfig(blocks: BlockConfig | BlockConfig[]): ModelConfig {
  return { inputDim: 3, outputDim: 2, nEmbd: 8, nHead: 2, nLayer: 2, nPositions: 7, blocks };
}

/** Random weights of scale ~0.3 (GPT-2 init's unit LayerNorms and zero biases would hide bugs). */
function randomize(m: ReturnType<typeof createFloat64Model>, seed: number): void {
  const rng = new Rng(seed);
  for (const name of m.names) {
    const p = m.param(name);
    const isLnWeight = /ln_[12f]\.weight$|ln_f\.weight$/.test(name);
    for (let i = 0; i < p.length; i++) p[i] = isLnWeight ? 1 + 0.2 * rng.normal() : 0.3 * rng.normal();
  }
}

/** Loss = Σ w·out + ½ Σ out² over a seqLen shorter than nPositions (exercises T < nPositions). */
function lossAndGrad(out: Float64Array, w: Float64Array): { loss: number; dout: Float64Array } {
  let loss = 0;
  const dout = new Float64Array(out.length);
  for (let i = 0; i < out.length; i++) {
    loss += w[i]! * out[i]! + 0.5 * out[i]! * out[i]!;
    dout[i] = w[i]! + out[i]!;
  }
  return { loss, dout };
}

for (const v of variants) {
  test(`float64 backward matches finite differences: ${v.attention} attention, ffn ${v.ffn}`, () => {
    const B = 2, T = 6;
    const m = createFloat64Model(tinyConfig(v), { seed: 1, maxBatch: B });
    randomize(m, 7);
    const rng = new Rng(3);
    const input = Float64Array.from({ length: B * T * 3 }, () => rng.normal());
    const w = Float64Array.from({ length: B * T * 2 }, () => rng.normal());
    const { dout } = lossAndGrad(m.forward(input, B, T), w);
    m.backward(dout, B, T);
    const h = 1e-5;
    let checked = 0;
    for (const name of m.names) {
      const p = m.param(name);
      const g = Float64Array.from(m.grad(name));
      let maxG = 0;
      for (const x of g) maxG = Math.max(maxG, Math.abs(x));
      let maxDiff = 0;
      for (let i = 0; i < p.length; i++) {
        const x0 = p[i]!;
        p[i] = x0 + h;
        const lp = lossAndGrad(m.forward(input, B, T), w).loss;
        p[i] = x0 - h;
        const lm = lossAndGrad(m.forward(input, B, T), w).loss;
        p[i] = x0;
        maxDiff = Math.max(maxDiff, Math.abs((lp - lm) / (2 * h) - g[i]!));
        checked++;
      }
      // wpe rows >= T get no gradient; every other tensor must have a non-trivial one.
      assert.ok(maxDiff <= 1e-6 * Math.max(maxG, 1), `${name}: max |fd - grad| = ${maxDiff}, max |grad| = ${maxG}`);
      if (name !== "wpe") assert.ok(maxG > 1e-8, `${name}: gradient is identically zero`);
    }
    if (!v.ffn) assert.ok(!m.names.some((n) => n.includes("mlp") || n.includes("ln_2")), "no FFN parameters when ffn = false");
    assert.equal(checked, m.plan.params.count, "every parameter entry was checked");
  });
}

test("float32 WASM engine matches the float64 path for every variant (mixed blocks, 2 threads)", async () => {
  const mixed: BlockConfig[] = [variants[0]!, variants[3]!, variants[2]!, variants[1]!];
  // B = 1 on 2 threads: one micro-shard, so worker 0 has nothing to run and no reduce is needed.
  const cases = [...variants.map((blocks) => ({ blocks, B: 3 })), { blocks: mixed, B: 3 }, { blocks: mixed, B: 1 }];
  for (const { blocks, B } of cases) {
    const config = { ...tinyConfig(blocks), nLayer: Array.isArray(blocks) ? blocks.length : 2 };
    const T = 7;
    const ref = createFloat64Model(config, { seed: 1, maxBatch: B });
    randomize(ref, 11);
    const model = await createModel(config, { seed: 1, maxBatch: 3, threads: 2 });
    assert.equal(model.threads, 2);
    try {
      const params = new Map<string, NamedTensor>();
      for (const name of ref.names) {
        const p = Float32Array.from(ref.param(name));
        ref.param(name).set(p); // both sides use the same float32-representable weights
        params.set(name, { shape: model.getParams().get(name)!.shape, data: p });
      }
      model.setParams(params);
      const rng = new Rng(5);
      const input = Float32Array.from({ length: B * T * 3 }, () => rng.normal());
      const w = Float64Array.from({ length: B * T * 2 }, () => rng.normal());
      const out64 = ref.forward(input, B, T);
      const out32 = await model.forward(input, B, T);
      let outErr = 0;
      for (let i = 0; i < out64.length; i++) outErr = Math.max(outErr, Math.abs(out64[i]! - out32[i]!));
      assert.ok(outErr < 1e-5, `${JSON.stringify(blocks)}: output error ${outErr}`);
      const { dout } = lossAndGrad(out64, w);
      ref.backward(dout, B, T);
      await model.backward(Float32Array.from(dout));
      for (const [name, g] of model.getGrads()) {
        const r = ref.grad(name);
        let maxDiff = 0, maxR = 0;
        for (let i = 0; i < r.length; i++) {
          maxDiff = Math.max(maxDiff, Math.abs(g.data[i]! - r[i]!));
          maxR = Math.max(maxR, Math.abs(r[i]!));
        }
        assert.ok(maxDiff <= 1e-4 * (maxR + 1e-12), `${JSON.stringify(blocks)} ${name}: rel err ${maxDiff / maxR}`);
      }
    } finally {
      await model.dispose();
    }
  }
});
