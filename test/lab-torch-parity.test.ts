/**
 * bench/torch-parity/dump.ts rebuilds the lab trainer's run from its parts (engine init + applyInit,
 * trainingDataRng, sampleIcaBatch, icaLossAndBackward, Adam) so that PyTorch can replay it. These
 * tests pin that those parts are the trainer: the same losses and bit-identical weights as train().
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createModel } from "../src/engine/index.js";
import { trainSpecFromOverrides } from "../src/lab/experiments.js";
import { sampleIcaBatch } from "../src/lab/task.js";
import { applyInit, icaLossAndBackward, modelConfigFor, train, trainingDataRng, type TrainSpec } from "../src/lab/train.js";

function constantLrSpec(steps: number, init: TrainSpec["init"]): TrainSpec {
  return trainSpecFromOverrides({ preset: "quick", layers: 2, embd: 12, heads: 3, batch: 6, lr: 3e-3, warmup: 0, decay: "none", steps, seed: 7, init });
}

for (const init of ["torch", "released"] as const) {
  test(`the parity dump's step-by-step rebuild reproduces train() exactly (init ${init})`, async () => {
    const spec = constantLrSpec(12, init);
    const trained = await train(spec, { threads: 1, progress: false, handleSigint: false });
    const model = await createModel(modelConfigFor(spec), { seed: spec.seed, threads: 1, maxBatch: spec.batch });
    try {
      applyInit(model, spec.init, spec.seed);
      const rng = trainingDataRng(spec.seed);
      const losses: number[] = [];
      for (let step = 0; step < spec.steps; step++) {
        const batch = sampleIcaBatch(rng, spec.batch, spec.n, spec.d, { noise: spec.noise });
        losses.push(await icaLossAndBackward(model, batch, spec.score, step));
        await model.adamStep({ lr: spec.lr });
      }
      // lossHistory holds 10-step means; the first window is complete after 12 steps.
      const window = losses.slice(0, 10).reduce((s, x) => s + x, 0) / 10;
      assert.equal(trained.lossHistory.length, 1);
      assert.ok(Math.abs(trained.lossHistory[0]! - window) <= 1e-12 * Math.abs(window), `${trained.lossHistory[0]} vs ${window}`);
      const want = trained.model.getParams();
      const got = model.getParams();
      assert.deepEqual([...got.keys()], [...want.keys()]);
      for (const [name, t] of want) assert.deepEqual(got.get(name)!.data, t.data, `${name} differs`);
    } finally {
      await model.dispose();
      await trained.model.dispose();
    }
  });
}

test("icaLossAndBackward refuses a non-finite loss before touching the gradients", async () => {
  const spec = constantLrSpec(1, "torch");
  const model = await createModel(modelConfigFor(spec), { seed: 1, threads: 1, maxBatch: spec.batch });
  try {
    const batch = sampleIcaBatch(trainingDataRng(1), spec.batch, spec.n, spec.d);
    batch.ys.fill(Number.NaN);
    await assert.rejects(icaLossAndBackward(model, batch, "cosine", 3), /training diverged at step 3/);
    for (const t of model.getGrads().values()) assert.ok(t.data.every((g) => g === 0));
  } finally {
    await model.dispose();
  }
});
