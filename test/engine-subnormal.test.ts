/**
 * WebAssembly has no flush-to-zero mode, and x86 runs every float operation that reads or writes a
 * subnormal through a microcode assist (~100x slower): a backward pass that hands subnormal
 * gradients to its matmuls runs many times slower with the same results. The kernel tests check
 * that each kernel flushes what it is responsible for; this checks the model's own part of the
 * contract (backward.ts flushes the attention gradients it passes on), on a model built to produce
 * them. Deterministic: it counts subnormals, it does not time anything.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { createModel } from "../src/engine/model/index.js";
import type { Kernels } from "../src/engine/kernels/types.js";

const isSubnormal = (x: number) => x !== 0 && Math.abs(x) < 2 ** -126;

function countSubnormals(heap: Float32Array | Float64Array, ptr: number, n: number): number {
  let c = 0;
  for (let i = ptr; i < ptr + n; i++) if (isSubnormal(heap[i]!)) c++;
  return c;
}

test("backward never hands a matmul or attention kernel a subnormal gradient, even where attention emits them", async () => {
  const d = 5, C = 32, NH = 2, T = 30, B = 4;
  const model = await createModel({ inputDim: d, outputDim: d, nEmbd: C, nHead: NH, nLayer: 2, nPositions: T }, { seed: 0, maxBatch: B, threads: 1, kernels: "wasm" });
  try {
    // Sharp attention, as in a trained model (queries and keys 3x the scale of random weights), with
    // every other key channel nearly dead (weights ~1e-30, no bias). The query gradient along a dead
    // channel is a near-zero key times the score gradient: subnormal straight out of the attention kernel.
    const rng = new Rng(1);
    const params = model.getParams();
    for (const [name, t] of params) {
      const lnWeight = /ln_[12f]\.weight$/.test(name);
      for (let i = 0; i < t.data.length; i++) t.data[i] = lnWeight ? 1 : 0.3 * rng.normal();
      const deadKey = (row: number) => row >= C && row < 2 * C && row % 2 === 1; // c_attn rows: [q | k | v]
      if (name.endsWith("attn.c_attn.weight")) {
        for (let r = 0; r < 2 * C; r++) for (let c = 0; c < C; c++) t.data[r * C + c]! *= deadKey(r) ? 1e-30 : 3;
      }
      if (name.endsWith("attn.c_attn.bias")) for (let r = 0; r < 2 * C; r++) if (deadKey(r)) t.data[r] = 0;
    }
    model.setParams(params);

    let emitted = 0; // subnormals in attentionBackward's own output, before the model flushes them
    const read = { matmulBackward: 0, attentionBackward: 0 };
    model.instrumentKernels((k): Kernels => ({
      ...k,
      attentionBackward(dqkv, datt, dout, qkv, att, b, t, c, nh, softmax) {
        read.attentionBackward += countSubnormals(k.heap(), dout, b * t * c);
        k.attentionBackward(dqkv, datt, dout, qkv, att, b, t, c, nh, softmax);
        emitted += countSubnormals(k.heap(), dqkv, b * t * 3 * c);
      },
      matmulBackward(dinp, dweight, dbias, dout, inp, weight, bt, c, oc) {
        read.matmulBackward += countSubnormals(k.heap(), dout, bt * oc);
        k.matmulBackward(dinp, dweight, dbias, dout, inp, weight, bt, c, oc);
      },
    }));
    await model.forward(Float32Array.from({ length: B * T * d }, () => rng.normal()), B, T);
    await model.backward(Float32Array.from({ length: B * T * d }, () => rng.normal()));

    assert.ok(emitted > 0, "the setup must make the attention kernel emit subnormal gradients, or this test checks nothing");
    assert.deepEqual(read, { matmulBackward: 0, attentionBackward: 0 }, "subnormal gradients read by the backward kernels");
    for (const [name, g] of model.getGrads()) assert.equal(countSubnormals(g.data, 0, g.data.length), 0, `subnormal gradient of ${name}`);
  } finally {
    await model.dispose();
  }
});
