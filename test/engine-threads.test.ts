/**
 * Training results do not depend on the thread count: every batch is cut into the same micro-shards
 * whatever the threads, and their gradients are summed in micro-shard order (layout.ts, MICRO_SHARDS),
 * so 1, 2, 3 and 4 threads give bit-identical weights, Adam moments, gradients and losses.
 * (It fails if the reduce adds the micro-shards in another order.)
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { createModel, type EngineModel } from "../src/engine/model/index.js";
import type { ModelConfig } from "../src/engine/api.js";
import { microRows, microShards, workerMicroShards } from "../src/engine/model/layout.js";
import { trainIca } from "./support/ica-train.js";

// T odd: a forward call over an odd number of rows ends in the GEMM's 1-row tile, which must give the
// same per-row bits as the 2-row tile for one worker's forward over several micro-shards to match.
const d = 5, n = 7, T = 3 * n;
const config: ModelConfig = {
  inputDim: d, outputDim: d, nEmbd: 24, nHead: 2, nLayer: 2, nPositions: T,
  blocks: [{ attention: "softmax", ffn: true }, { attention: "linear", ffn: false }],
};
const maxBatch = 24;
// Mostly full batches; also 17 (micro-shards of 1 and 2 rows) and 5 (fewer rows than MICRO_SHARDS).
const batchAt = (s: number) => (s % 10 === 4 ? 17 : s % 10 === 8 ? 5 : maxBatch);

interface Run {
  threads: number;
  losses: number[];
  tensors: Map<string, Uint8Array>;
  init: Map<string, Uint8Array>;
}

const bytes = (a: Float32Array) => new Uint8Array(a.buffer.slice(a.byteOffset, a.byteOffset + a.byteLength));

function snapshot(model: EngineModel): Map<string, Uint8Array> {
  const out = new Map<string, Uint8Array>();
  const { m, v } = model.getOptimizerState();
  for (const [kind, tensors] of [["param", model.getParams()], ["grad", model.getGrads()], ["adam.m", m], ["adam.v", v]] as const) {
    for (const [name, t] of tensors) out.set(`${kind} ${name}`, bytes(t.data));
  }
  return out;
}

async function train(threads: number): Promise<Run> {
  const model = await createModel(config, { seed: 11, maxBatch, threads });
  try {
    assert.equal(model.threads, threads);
    const init = snapshot(model);
    const losses = await trainIca(model, new Rng(12), { steps: 30, batch: batchAt, n, d, lr: 3e-3 });
    return { threads, losses, tensors: snapshot(model), init };
  } finally {
    await model.dispose();
  }
}

test("micro-shards depend on the batch size only and cover it; workers split them without overlap", () => {
  for (const B of [1, 5, 12, 17, 24, 256]) {
    const M = microShards(B);
    let next = 0;
    for (let m = 0; m < M; m++) {
      const [lo, hi] = microRows(B, m);
      assert.equal(lo, next, `B ${B}: micro-shard ${m} starts where the previous one ended`);
      assert.ok(hi > lo, `B ${B}: micro-shard ${m} is not empty`);
      next = hi;
    }
    assert.equal(next, B);
    for (const W of [1, 2, 3, 4, 5]) {
      let at = 0;
      for (let w = 0; w < W; w++) {
        const [lo, hi] = workerMicroShards(B, W, w);
        assert.equal(lo, at);
        at = hi;
      }
      assert.equal(at, M, `B ${B}, ${W} workers: every micro-shard is run once`);
    }
  }
});

test("30 training steps give bit-identical weights, gradients, Adam state and losses at 1, 2, 3 and 4 threads", async () => {
  const runs: Run[] = [];
  for (const threads of [1, 2, 3, 4]) runs.push(await train(threads));
  const [one, ...others] = runs as [Run, ...Run[]];
  assert.equal(one.losses.length, 30);
  assert.ok(one.losses.every(Number.isFinite));
  assert.ok(one.tensors.size > 0);
  for (const r of others) {
    assert.deepEqual(r.losses, one.losses, `${r.threads} threads: loss history differs from 1 thread`);
    assert.equal(r.tensors.size, one.tensors.size);
    for (const [name, b] of one.tensors) {
      assert.ok(Buffer.from(b).equals(Buffer.from(r.tensors.get(name)!)), `${r.threads} threads: ${name} differs from 1 thread`);
    }
  }
  // The runs must actually have trained: every weight, gradient and moment moved from its initial value.
  for (const [name, b] of one.tensors) {
    assert.ok(!Buffer.from(b).equals(Buffer.from(one.init.get(name)!)), `${name} did not change in training`);
  }
});
