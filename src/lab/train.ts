/**
 * Training a transformer on the ICA task with the engine: sample a batch, build tokens, forward,
 * PL loss and its gradient at the x tokens, backward, Adam. Checkpoints carry the data RNG state
 * and the loss history, so a run killed at any point and started again continues the exact same
 * stream and ends with the same weights as an uninterrupted run (given the same thread count:
 * the engine is deterministic per thread count).
 */
import { existsSync, readFileSync } from "node:fs";
import type { AttentionKind, ModelConfig, TrainableModel } from "../engine/api.js";
import { UserError } from "../util/errors.js";
import { canonicalJson, contentHash } from "../util/json.js";
import { Rng, type RngState } from "../util/rng.js";
import { checkLoss, interruptOnSigint, learningRate, runTrainLoop, withCheckpointLock, type LossLog, type StepInfo } from "./train-loop.js";
import { defaultEngine, type Engine } from "./engine-link.js";
import { plLossICA, type ScoreKind } from "./losses.js";
import { buildTokens, extractPredictions, sampleIcaBatch, scatterPredictionGrad, type NoiseKind } from "./task.js";

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

/** A short id naming a training run by everything that determines its result. */
export function runId(spec: TrainSpec): string {
  const m = spec.model;
  const tag = `L${m.nLayer}-C${m.nEmbd}-H${m.nHead}${m.attention === "linear" ? "-linear" : ""}${m.ffn ? "" : "-noffn"}`;
  return `${tag}-${contentHash(spec)}`;
}

export { learningRate };

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

export interface TrainOptions {
  /** Checkpoint base path (`<path>` + `<path>.json`). Resumes from it when it exists. */
  checkpointPath?: string;
  threads?: number;
  /** Write a checkpoint every this many steps (and at the end). Default 100. */
  checkpointEvery?: number;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  label?: string;
  /** Stop cleanly on SIGINT: write a checkpoint and throw a UserError with exit code 130. Default true. */
  handleSigint?: boolean;
  /** Stops after this step count even if spec.steps is larger (tests, benchmarks). */
  stopAtStep?: number;
  engine?: Engine;
  /** Largest batch the model will see (training batch and evaluation chunks). */
  maxBatch?: number;
  /** Called after every step (a cluster worker reports progress with it). */
  onStep?: (info: StepInfo) => void;
}

export interface TrainResult {
  model: TrainableModel;
  spec: TrainSpec;
  /** Mean training loss per 10-step window, from step 0 (restored across resumes). */
  lossHistory: number[];
  /** Step the run started from (0 when fresh). */
  resumedFrom: number;
  trainSeconds: number;
}

interface CheckpointExtra {
  kind: "selfcorrect-lab-train";
  spec: TrainSpec;
  rng: { s: RngState; spare: number | null };
  lossHistory: number[];
  /** Sum and count of the current, unfinished 10-step loss window. */
  window: [number, number];
  trainSeconds: number;
}

/** Reads `<path>.json`'s lab state without loading the weights; null when there is no checkpoint. */
export function readCheckpointMeta(path: string): { spec?: TrainSpec; step?: number; extra?: CheckpointExtra } | null {
  if (!existsSync(path) || !existsSync(`${path}.json`)) return null;
  try {
    const meta = JSON.parse(readFileSync(`${path}.json`, "utf8")) as Record<string, unknown>;
    const extra = meta.extra as CheckpointExtra | undefined;
    const step = typeof meta.step === "number" ? meta.step : undefined;
    return { spec: extra?.spec, step, extra };
  } catch {
    return null;
  }
}

function sameSpecForResume(a: TrainSpec, b: TrainSpec): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export async function train(spec: TrainSpec, opts: TrainOptions = {}): Promise<TrainResult> {
  if (!opts.checkpointPath) return trainLocked(spec, opts);
  return withCheckpointLock(opts.checkpointPath, () => trainLocked(spec, opts));
}

async function trainLocked(spec: TrainSpec, opts: TrainOptions): Promise<TrainResult> {
  const engine = opts.engine ?? (await defaultEngine());
  const config = modelConfigFor(spec);
  const maxBatch = Math.max(spec.batch, opts.maxBatch ?? spec.batch);
  const every = opts.checkpointEvery ?? 100;
  const stopAt = Math.min(spec.steps, opts.stopAtStep ?? spec.steps);

  let model: TrainableModel;
  let rng: Rng;
  const log: LossLog = { lossHistory: [], window: [0, 0] };
  let priorSeconds = 0;
  const ckpt = opts.checkpointPath;
  const existing = ckpt ? readCheckpointMeta(ckpt) : null;
  if (ckpt && existing) {
    const loaded = await engine.loadModel(ckpt, { threads: opts.threads, maxBatch, expectConfig: config });
    const extra = loaded.extra as unknown as CheckpointExtra;
    if (extra?.kind !== "selfcorrect-lab-train" || !sameSpecForResume(extra.spec, spec)) {
      await loaded.model.dispose();
      throw new UserError(
        `checkpoint ${ckpt} was trained with a different configuration; use another output directory or delete it to retrain`,
      );
    }
    model = loaded.model;
    rng = Rng.fromState(extra.rng);
    log.lossHistory = extra.lossHistory.slice();
    log.window = [extra.window[0], extra.window[1]];
    priorSeconds = extra.trainSeconds;
  } else {
    model = await engine.createModel(config, { seed: spec.seed, threads: opts.threads, maxBatch });
    applyInit(model, spec.init, spec.seed);
    // Data stream seeded apart from the init seed so the two never share draws.
    rng = new Rng((spec.seed * 2654435761 + 0x5bd1e995) >>> 0);
  }
  const resumedFrom = model.step;

  const started = Date.now();
  const seconds = () => priorSeconds + (Date.now() - started) / 1000;
  const save = async () => {
    if (!ckpt) return;
    const extra: CheckpointExtra = {
      kind: "selfcorrect-lab-train",
      spec,
      rng: rng.getState(),
      lossHistory: log.lossHistory,
      window: log.window,
      trainSeconds: seconds(),
    };
    await model.save(ckpt, extra as unknown as Record<string, unknown>);
  };

  const sigint = (opts.handleSigint ?? true) ? interruptOnSigint() : null;
  const { d, n } = spec;
  try {
    await runTrainLoop({
      startStep: resumedFrom,
      stopAt,
      totalSteps: spec.steps,
      log,
      checkpointEvery: every,
      checkpointPath: ckpt,
      label: opts.label ?? `train ${runId(spec)}`,
      progress: opts.progress ?? true,
      signal: sigint?.signal,
      onStep: opts.onStep,
      save,
      step: async (step) => {
        const batch = sampleIcaBatch(rng, spec.batch, n, d, { noise: spec.noise });
        const tokens = buildTokens(batch);
        const out = await model.forward(tokens, spec.batch, 3 * n);
        const pred = extractPredictions(out, spec.batch, n, d);
        const { loss, grad } = plLossICA(pred, batch.ys, batch.rs, spec.batch, n, d, { score: spec.score });
        checkLoss(loss, step);
        await model.backward(scatterPredictionGrad(grad, spec.batch, n, d));
        await model.adamStep({ lr: learningRate(spec, step) });
        return loss;
      },
    });
  } catch (e) {
    await model.dispose().catch(() => {});
    throw e;
  } finally {
    sigint?.dispose();
  }
  return { model, spec, lossHistory: log.lossHistory, resumedFrom, trainSeconds: seconds() };
}
