/**
 * The browser-safe core of ICA training (./train.ts adds checkpoints on disk, resume, Ctrl-C and the
 * progress bar): the training spec, the model config and init it implies, the data stream's seed,
 * one optimisation step, and the lab state a checkpoint carries. A web page runs the same steps.
 */
import type { AttentionKind, ModelConfig, TrainableModel } from "../engine/api.js";
import { Rng, type RngState } from "../util/rng.js";
import { plLossICA, type ScoreKind } from "./losses.js";
import { checkLoss, learningRate } from "./schedule.js";
import { buildTokens, extractPredictions, sampleIcaBatch, scatterPredictionGrad, type IcaBatch, type NoiseKind } from "./task.js";

export interface LabModelSpec {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  attention: AttentionKind;
  ffn: boolean;
}

export interface TrainSpec {
  model: LabModelSpec;
  /** d (query/response width) and n (examples per sequence; 3n tokens). Paper: d = 5, n = 20. */
  d: number;
  n: number;
  noise: NoiseKind;
  score: ScoreKind;
  batch: number;
  lr: number;
  steps: number;
  /** Linear learning-rate warm-up over this many steps (0 = none, as in the paper). */
  warmupSteps: number;
  /** After warm-up: constant (paper) or cosine decay to 10% of lr at the last step. */
  decay: "none" | "cosine";
  /** Seeds the model init and the training data stream. */
  seed: number;
  /**
   * "released": GPT-2 init in the blocks (normal(0, 0.02)) and PyTorch's default nn.Linear init for
   * read-in/read-out, as the released code (HF GPT2Model between two nn.Linear). "torch": PyTorch's
   * default init for every Linear, as shared/bench/torch_reference.py.
   */
  init: "released" | "torch";
}

/** The released code's configuration (alignment-n_layer-20.yaml, train_steps 3000). */
export const PAPER_TRAIN_SPEC: TrainSpec = {
  model: { nLayer: 20, nEmbd: 96, nHead: 3, attention: "softmax", ffn: true },
  d: 5,
  n: 20,
  noise: "shared",
  score: "cosine",
  batch: 256,
  lr: 1e-4,
  steps: 3000,
  warmupSteps: 0,
  decay: "none",
  seed: 0,
  init: "released",
};

export function modelConfigFor(spec: Pick<TrainSpec, "model" | "d" | "n">): ModelConfig {
  return {
    inputDim: spec.d,
    outputDim: spec.d,
    nEmbd: spec.model.nEmbd,
    nHead: spec.model.nHead,
    nLayer: spec.model.nLayer,
    nPositions: 3 * spec.n,
    blocks: { attention: spec.model.attention, ffn: spec.model.ffn },
  };
}

/**
 * Re-initialises Linear layers with PyTorch's default nn.Linear init, weight and bias
 * ~ U(-1/sqrt(fan_in), 1/sqrt(fan_in)): read-in/read-out only for "released" (the released code wraps
 * HF GPT2Model, GPT-2 init inside, between two plain nn.Linear), every Linear for "torch".
 * This matters: with the engine's GPT-2 normal(0, 0.02) read-in/out a small model barely moved off
 * chance in 2000 steps; with PyTorch's it learned the running mean and then to use the rewards.
 * "released" also applies HF GPT-2's scaled init of the residual projections.
 */
export function applyInit(model: TrainableModel, init: TrainSpec["init"], seed: number): void {
  const rng = new Rng((seed ^ 0x2545f491) >>> 0);
  const params = model.getParams();
  const fresh: Record<string, { shape: number[]; data: Float32Array }> = {};
  const names = [...params.keys()].filter((name) => {
    if (!name.endsWith(".weight") || name.includes("ln_") || params.get(name)!.shape.length !== 2) return false;
    return init === "torch" || name.startsWith("read_");
  });
  for (const wName of names) {
    const w = params.get(wName)!;
    const bName = wName.replace(/\.weight$/, ".bias");
    const b = params.get(bName);
    const bound = 1 / Math.sqrt(w.shape[1]!);
    const draw = (n: number) => Float32Array.from({ length: n }, () => (2 * rng.uniform() - 1) * bound);
    fresh[wName] = { shape: w.shape, data: draw(w.data.length) };
    if (b) fresh[bName] = { shape: b.shape, data: draw(b.data.length) };
  }
  if (init === "released") {
    // HF GPT2PreTrainedModel._init_weights: residual projections (attn.c_proj, mlp.c_proj) get
    // std 0.02 / sqrt(2 n_layer) instead of 0.02, so the residual stream does not grow with depth.
    const std = 0.02 / Math.sqrt(2 * model.config.nLayer);
    for (const [name, t] of params) {
      if (!/\.(attn|mlp)\.c_proj\.weight$/.test(name)) continue;
      fresh[name] = { shape: t.shape, data: Float32Array.from({ length: t.data.length }, () => std * rng.normal()) };
    }
  }
  model.setParams(fresh);
}

/** The training data stream of a fresh run, seeded apart from the init seed so the two never share draws. */
export function trainingDataRng(seed: number): Rng {
  return new Rng((seed * 2654435761 + 0x5bd1e995) >>> 0);
}

/**
 * One training step without the optimiser: forward on the batch's tokens, the PL loss at the x
 * tokens, backward (the model's gradients are overwritten). Returns the loss; throws before the
 * backward when it is not finite. bench/torch-parity replays exactly this against PyTorch.
 */
export async function icaLossAndBackward(model: TrainableModel, batch: IcaBatch, score: ScoreKind, step: number): Promise<number> {
  const { B, n, d } = batch;
  const out = await model.forward(buildTokens(batch), B, 3 * n);
  const pred = extractPredictions(out, B, n, d);
  const { loss, grad } = plLossICA(pred, batch.ys, batch.rs, B, n, d, { score });
  checkLoss(loss, step);
  await model.backward(scatterPredictionGrad(grad, B, n, d));
  return loss;
}

/** Optimisation step `step`: sample a batch, forward, PL loss at the x tokens, backward, Adam. Returns the loss. */
export async function icaTrainStep(model: TrainableModel, spec: TrainSpec, rng: Rng, step: number): Promise<number> {
  const batch = sampleIcaBatch(rng, spec.batch, spec.n, spec.d, { noise: spec.noise });
  const loss = await icaLossAndBackward(model, batch, spec.score, step);
  await model.adamStep({ lr: learningRate(spec, step) });
  return loss;
}

/** The lab's state in a checkpoint's `extra` (what `lab train` needs to resume the exact stream). */
export interface LabCheckpointExtra {
  kind: "selfcorrect-lab-train";
  spec: TrainSpec;
  rng: { s: RngState; spare: number | null };
  lossHistory: number[];
  /** Sum and count of the current, unfinished 10-step loss window. */
  window: [number, number];
  trainSeconds: number;
}

