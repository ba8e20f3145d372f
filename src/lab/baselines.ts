/**
 * Baselines for the ICA error curves, indexed like the transformer curve by the number of
 * in-context examples k: the transformer's prediction at position k sees the triplets 0..k-1.
 *
 * - Gradient descent (paper §4, released evaluate.py): per task and per k, a fresh bias-free linear
 *   map W (d x d) is trained with Adam on the PL loss of x W against the k examples ys[:k] ranked by
 *   their observed rewards, and x W is scored with 1 - cos(x W, y*). The released code evaluates GD at
 *   index i with ys[:i+1] and plots TF eval_losses[2:16] against GD [1:15]; indexing both by k = the
 *   number of examples makes that alignment explicit (both over k = 2..15).
 * - Running mean (released train.py's baseline_loss): the mean of the k responses seen so far,
 *   scored with the same 1 - cos metric (train.py logs its MSE; 1 - cos keeps one metric per plot).
 */
import { Rng } from "../util/rng.js";
import { cosine, rankByReward, type ScoreKind } from "./losses.js";

export type GdInit = "torch-default" | "zero" | "normal";

export interface GdOptions {
  /** Adam steps, or "notebook" for the released reward-noise notebook's int(50 - 25 p). Default 50. */
  steps?: number | "notebook";
  /** Reward-noise probability, used only by steps = "notebook". */
  p?: number;
  lr?: number; // 0.1
  /** "torch-default" = nn.Linear's kaiming-uniform, U(-1/sqrt(d), 1/sqrt(d)) (released code); default. */
  init?: GdInit;
  score?: ScoreKind; // "cosine"
  /** Seeds the initial weights. */
  seed?: number;
}

export function gdSteps(opts: GdOptions): number {
  if (opts.steps === "notebook") return Math.trunc(50 - 25 * (opts.p ?? 0));
  return opts.steps ?? 50;
}

/**
 * The GD-baseline error curve: entry k (0 <= k < n) is the batch mean of 1 - cos(x W_k, y*) for W_k
 * trained on the first k examples; entries 0 and 1 are NaN (a ranking needs at least 2 examples).
 * Also returns the mean final training loss per k (diagnostics, and the test that GD decreases it).
 */
export function gdBaselineCurve(
  batch: { B: number; n: number; d: number; xs: Float32Array; ys: Float32Array; ystar: Float32Array },
  rsObserved: Float32Array,
  opts: GdOptions = {},
): { curve: number[]; initialLoss: number[]; finalLoss: number[] } {
  const { B, n, d, xs, ys, ystar } = batch;
  const steps = gdSteps(opts);
  const lr = opts.lr ?? 0.1;
  const kind = opts.score ?? "cosine";
  const init = opts.init ?? "torch-default";
  const seed = opts.seed ?? 0;
  const beta1 = 0.9, beta2 = 0.999, eps = 1e-8;

  const curve = new Array<number>(n).fill(0);
  const initialLoss = new Array<number>(n).fill(0);
  const finalLoss = new Array<number>(n).fill(0);
  for (let k = 0; k < Math.min(2, n); k++) curve[k] = initialLoss[k] = finalLoss[k] = NaN;

  const W = new Float64Array(d * d);
  const mW = new Float64Array(d * d);
  const vW = new Float64Array(d * d);
  const gW = new Float64Array(d * d);
  const p = new Float64Array(d);
  const gp = new Float64Array(d);
  const s = new Float64Array(n);
  const tail = new Float64Array(n);
  const ranked = new Float64Array(n * d);
  const yNorm = new Float64Array(n);
  const x = new Float64Array(d);

  /** Loss of p against ranked[0..m) and dLoss/dp into gp. */
  const lossAndGrad = (m: number): number => {
    let pp = 0;
    for (let c = 0; c < d; c++) pp += p[c]! * p[c]!;
    const pn = Math.max(Math.sqrt(pp), 1e-8);
    for (let j = 0; j < m; j++) {
      let v = 0;
      if (kind === "cosine") {
        for (let c = 0; c < d; c++) v += p[c]! * ranked[j * d + c]!;
        v /= pn * yNorm[j]!;
      } else {
        for (let c = 0; c < d; c++) v -= (p[c]! - ranked[j * d + c]!) ** 2;
      }
      s[j] = v;
    }
    let mx = -Infinity, acc = 0, loss = 0;
    for (let j = m - 1; j >= 0; j--) {
      const v = s[j]!;
      if (v > mx) {
        acc = acc * Math.exp(mx - v) + 1;
        mx = v;
      } else acc += Math.exp(v - mx);
      tail[j] = mx + Math.log(acc);
      loss += tail[j]! - v;
    }
    gp.fill(0);
    for (let j = 0; j < m; j++) {
      let g = -1;
      for (let i = 0; i <= j; i++) g += Math.exp(s[j]! - tail[i]!);
      if (kind === "cosine") {
        const cos = s[j]!;
        for (let c = 0; c < d; c++) gp[c]! += g * (ranked[j * d + c]! / (pn * yNorm[j]!) - (cos * p[c]!) / (pn * pn));
      } else {
        for (let c = 0; c < d; c++) gp[c]! += g * -2 * (p[c]! - ranked[j * d + c]!);
      }
    }
    return loss;
  };
  const predict = () => {
    for (let c = 0; c < d; c++) {
      let v = 0;
      for (let r = 0; r < d; r++) v += x[r]! * W[r * d + c]!;
      p[c] = v;
    }
  };

  const bound = 1 / Math.sqrt(d);
  for (let b = 0; b < B; b++) {
    // One stream per task, drawn in k order: the initial W of (task, k) does not depend on how many
    // example counts are evaluated.
    const rng = new Rng((Math.imul(seed, 0x9e3779b1) + b) >>> 0);
    for (let c = 0; c < d; c++) x[c] = xs[b * n * d + c]!;
    for (let k = 2; k < n; k++) {
      const order = rankByReward(rsObserved, b * n, k);
      for (let j = 0; j < k; j++) {
        let nn = 0;
        for (let c = 0; c < d; c++) {
          const v = ys[(b * n + order[j]!) * d + c]!;
          ranked[j * d + c] = v;
          nn += v * v;
        }
        yNorm[j] = Math.max(Math.sqrt(nn), 1e-8);
      }
      for (let i = 0; i < d * d; i++) {
        W[i] = init === "zero" ? 0 : init === "normal" ? rng.normal() * bound : (2 * rng.uniform() - 1) * bound;
      }
      mW.fill(0);
      vW.fill(0);
      for (let t = 1; t <= steps + 1; t++) {
        predict();
        const loss = lossAndGrad(k);
        if (t === 1) initialLoss[k]! += loss / B;
        if (t === steps + 1) {
          finalLoss[k]! += loss / B;
          break;
        }
        // dL/dW[r, c] = x[r] * dL/dp[c]
        for (let r = 0; r < d; r++) for (let c = 0; c < d; c++) gW[r * d + c] = x[r]! * gp[c]!;
        const bc1 = 1 - beta1 ** t, bc2 = 1 - beta2 ** t;
        for (let i = 0; i < d * d; i++) {
          const g = gW[i]!;
          mW[i] = beta1 * mW[i]! + (1 - beta1) * g;
          vW[i] = beta2 * vW[i]! + (1 - beta2) * g * g;
          W[i]! -= (lr * (mW[i]! / bc1)) / (Math.sqrt(vW[i]! / bc2) + eps);
        }
      }
      predict();
      curve[k]! += (1 - cosine(p, 0, ystar, (b * n + k) * d, d)) / B;
    }
  }
  return { curve, initialLoss, finalLoss };
}

/** Running-mean baseline: entry k is the batch mean of 1 - cos(mean(ys[:k]), y*); entry 0 is NaN. */
export function runningMeanCurve(batch: { B: number; n: number; d: number; ys: Float32Array; ystar: Float32Array }): number[] {
  const { B, n, d, ys, ystar } = batch;
  const curve = new Array<number>(n).fill(0);
  curve[0] = NaN;
  const sum = new Float64Array(d);
  for (let b = 0; b < B; b++) {
    sum.fill(0);
    for (let k = 1; k < n; k++) {
      for (let c = 0; c < d; c++) sum[c]! += ys[(b * n + k - 1) * d + c]!;
      curve[k]! += (1 - cosine(sum, 0, ystar, (b * n + k) * d, d)) / B;
    }
  }
  return curve;
}
