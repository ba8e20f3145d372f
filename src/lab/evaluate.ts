/**
 * Error curves on held-out tasks: the transformer (at each reward-noise level p), the GD baseline
 * and the running mean, all as 1 - cos(prediction, y*) per number of in-context examples k.
 * The evaluation tasks come from a fixed seed, so every model and baseline sees the same tasks, and
 * the reward-noise coin flips are shared across p (a reward noised at p = 0.25 is also noised at 0.5).
 */
import type { TrainableModel } from "../engine/api.js";
import { UserError } from "../util/errors.js";
import { Rng } from "../util/rng.js";
import { gdBaselineCurve, runningMeanCurve, type GdOptions } from "./baselines.js";
import { cosineErrorCurve } from "./losses.js";
import { buildTokens, extractPredictions, noisyRewards, sampleIcaBatch, type IcaBatch, type NoiseKind } from "./task.js";

export const DEFAULT_EVAL_SEED = 20240531;
export const DEFAULT_EVAL_TASKS = 256;

/** "0,0.25,1" -> [0, 0.25, 1]: reward-noise probabilities, each in [0, 1]. */
export function parseNoiseLevels(arg: string): number[] {
  const ps = arg.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (ps.length === 0) throw new UserError(`--p: expected a comma-separated list of probabilities in [0, 1], got "${arg}"`);
  for (const p of ps) {
    if (!Number.isFinite(p) || p < 0 || p > 1) {
      throw new UserError(`--p: reward-noise probability ${p} is outside [0, 1]; use values such as 0,0.25,0.5,0.75,1`);
    }
  }
  return ps;
}

export interface EvalTaskSpec {
  d: number;
  n: number;
  noise: NoiseKind;
  tasks: number;
  seed: number;
}

export function evalBatch(spec: EvalTaskSpec): IcaBatch {
  return sampleIcaBatch(new Rng(spec.seed), spec.tasks, spec.n, spec.d, { noise: spec.noise });
}

/** Observed rewards at noise level p for the evaluation batch (coins shared across p). */
export function observedRewards(batch: IcaBatch, evalSeed: number, p: number): Float32Array {
  return p === 0 ? batch.rs : noisyRewards(new Rng((evalSeed ^ 0x9e3779b9) >>> 0), batch.rs, p);
}

/** Example counts 2..maxExamples (the paper's x-axis). */
export function exampleCounts(maxExamples: number): number[] {
  const ks: number[] = [];
  for (let k = 2; k <= maxExamples; k++) ks.push(k);
  return ks;
}

/** Transformer error per position (index = examples seen) for the given observed rewards. */
export async function transformerCurve(
  model: TrainableModel,
  batch: IcaBatch,
  rsObserved: Float32Array,
  chunk: number,
): Promise<number[]> {
  const { B, n, d } = batch;
  const sum = new Array<number>(n).fill(0);
  for (let start = 0; start < B; start += chunk) {
    const b = Math.min(chunk, B - start);
    const part = {
      B: b,
      n,
      d,
      xs: batch.xs.subarray(start * n * d, (start + b) * n * d),
      ys: batch.ys.subarray(start * n * d, (start + b) * n * d),
      rs: batch.rs.subarray(start * n, (start + b) * n),
    };
    const tokens = buildTokens(part, rsObserved.subarray(start * n, (start + b) * n));
    const out = await model.forward(tokens, b, 3 * n);
    const pred = extractPredictions(out, b, n, d);
    const c = cosineErrorCurve(pred, batch.ystar.subarray(start * n * d, (start + b) * n * d), b, n, d);
    for (let m = 0; m < n; m++) sum[m]! += c[m]! * b;
  }
  return sum.map((v) => v / B);
}

export interface ModelEval {
  examples: number[];
  /** TF error at examples[i], per p (key: String(p)). */
  tf: Record<string, number[]>;
}

export async function evaluateModel(
  model: TrainableModel,
  task: EvalTaskSpec,
  ps: number[],
  maxExamples: number,
  chunk: number,
): Promise<ModelEval> {
  const batch = evalBatch(task);
  const examples = exampleCounts(maxExamples);
  const tf: Record<string, number[]> = {};
  for (const p of ps) {
    const curve = await transformerCurve(model, batch, observedRewards(batch, task.seed, p), chunk);
    tf[String(p)] = examples.map((k) => curve[k]!);
  }
  return { examples, tf };
}

export function baselineCurves(
  task: EvalTaskSpec,
  ps: number[],
  maxExamples: number,
  gd: GdOptions,
): { examples: number[]; gd: Record<string, number[]>; mean: number[] } {
  const batch = evalBatch(task);
  const examples = exampleCounts(maxExamples);
  const out: Record<string, number[]> = {};
  // The GD map at k examples only needs positions up to k: evaluate on a truncated batch.
  const nUsed = Math.min(task.n, maxExamples + 1);
  const cut = truncatePositions(batch, nUsed);
  for (const p of ps) {
    const obs = truncateRewards(observedRewards(batch, task.seed, p), batch.B, batch.n, nUsed);
    const { curve } = gdBaselineCurve(cut, obs, { ...gd, p });
    out[String(p)] = examples.map((k) => curve[k]!);
  }
  const mean = runningMeanCurve(batch);
  return { examples, gd: out, mean: examples.map((k) => mean[k]!) };
}

function truncatePositions(batch: IcaBatch, m: number): IcaBatch {
  const { B, n, d } = batch;
  if (m === n) return batch;
  const take = (a: Float32Array, w: number) => {
    const out = new Float32Array(B * m * w);
    for (let b = 0; b < B; b++) out.set(a.subarray(b * n * w, b * n * w + m * w), b * m * w);
    return out;
  };
  return { B, n: m, d, xs: take(batch.xs, d), ys: take(batch.ys, d), rs: take(batch.rs, 1), ystar: take(batch.ystar, d) };
}

function truncateRewards(rs: Float32Array, B: number, n: number, m: number): Float32Array {
  if (m === n) return rs;
  const out = new Float32Array(B * m);
  for (let b = 0; b < B; b++) out.set(rs.subarray(b * n, b * n + m), b * m);
  return out;
}
