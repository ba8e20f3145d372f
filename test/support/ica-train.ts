/** Training steps on the ICA task for the engine tests: sample, forward, Plackett-Luce loss, backward, Adam. */
import type { Rng } from "../../src/util/rng.js";
import type { EngineModel } from "../../src/engine/model/index.js";
import { buildTokens, extractPredictions, sampleIcaBatch, scatterPredictionGrad } from "../../src/lab/task.js";
import { plLossICA } from "../../src/lab/losses.js";

export interface IcaSteps {
  steps: number;
  /** Batch size, fixed or per step (0-based). */
  batch: number | ((step: number) => number);
  /** Points per task; the model's sequence is 3n tokens. */
  n: number;
  d: number;
  lr: number;
  /** Train on one batch sampled once instead of fresh batches. */
  fixed?: boolean;
}

/** Runs `o.steps` Adam steps on batches from `rng`; returns the loss of each step. */
export async function trainIca(model: EngineModel, rng: Rng, o: IcaSteps): Promise<number[]> {
  const { n, d } = o;
  const batchAt = typeof o.batch === "number" ? () => o.batch as number : o.batch;
  const losses: number[] = [];
  const one = o.fixed ? sampleIcaBatch(rng, batchAt(0), n, d) : null;
  for (let s = 0; s < o.steps; s++) {
    const B = batchAt(s);
    const batch = one ?? sampleIcaBatch(rng, B, n, d);
    const out = await model.forward(buildTokens(batch), B, 3 * n);
    const { loss, grad } = plLossICA(extractPredictions(out, B, n, d), batch.ys, batch.rs, B, n, d);
    await model.backward(scatterPredictionGrad(grad, B, n, d));
    await model.adamStep({ lr: o.lr });
    losses.push(loss);
  }
  return losses;
}
