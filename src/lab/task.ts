/**
 * The in-context alignment (ICA) task of the paper's synthetic experiments (Section 4, Figure 1).
 *
 * One task = one query x ~ N(0, I_d), a ground truth y* = x W (row-vector convention of the
 * released code; W ~ N(0, I_{d x d})), n responses y_i = r_i y* + (1 - r_i) e_i with rewards
 * r_i ~ U(0, 1). The distractor e_i is
 *   - "shared" (released code, samplers.py): one e = x W_e per task, so every response lies on the
 *     segment between y* and a single distractor;
 *   - "independent" (paper text, App. C.1): a fresh e_i = x W_i per response.
 *
 * Tokens are interleaved (x, y_i, [r_i, 0, ..., 0]) as in the released code and
 * shared/bench/torch_reference.py: 3n tokens of width d, and the prediction is read at every x
 * token, so position m sees the m triplets 0..m-1 before it.
 */
import type { Rng } from "../util/rng.js";

export type NoiseKind = "shared" | "independent";

export interface IcaBatch {
  B: number;
  n: number;
  d: number;
  /** [B, n, d]: the query, repeated at every position. */
  xs: Float32Array;
  /** [B, n, d]: the responses. */
  ys: Float32Array;
  /** [B, n]: the true rewards. */
  rs: Float32Array;
  /** [B, n, d]: the ground truth x W, repeated at every position. */
  ystar: Float32Array;
}

/**
 * Samples B independent tasks. The draw order is fixed (per task: x, W, then the distractor
 * weights, then the rewards) so a seed gives the same batch on every platform.
 */
export function sampleIcaBatch(rng: Rng, B: number, n: number, d: number, opts: { noise?: NoiseKind } = {}): IcaBatch {
  const noise = opts.noise ?? "shared";
  const xs = new Float32Array(B * n * d);
  const ys = new Float32Array(B * n * d);
  const rs = new Float32Array(B * n);
  const ystar = new Float32Array(B * n * d);
  const x = new Float64Array(d);
  const W = new Float64Array(d * d);
  const We = new Float64Array(d * d);
  const yStar = new Float64Array(d);
  const e = new Float64Array(d);
  const matvec = (M: Float64Array, out: Float64Array) => {
    for (let j = 0; j < d; j++) {
      let acc = 0;
      for (let i = 0; i < d; i++) acc += x[i]! * M[i * d + j]!;
      out[j] = acc;
    }
  };
  const fillNormal = (a: Float64Array) => {
    for (let i = 0; i < a.length; i++) a[i] = rng.normal();
  };
  for (let b = 0; b < B; b++) {
    fillNormal(x);
    fillNormal(W);
    matvec(W, yStar);
    if (noise === "shared") {
      fillNormal(We);
      matvec(We, e);
    }
    for (let i = 0; i < n; i++) {
      if (noise === "independent") {
        fillNormal(We);
        matvec(We, e);
      }
      const r = rng.uniform();
      rs[b * n + i] = r;
      const o = (b * n + i) * d;
      for (let k = 0; k < d; k++) {
        xs[o + k] = x[k]!;
        ystar[o + k] = yStar[k]!;
        ys[o + k] = r * yStar[k]! + (1 - r) * e[k]!;
      }
    }
  }
  return { B, n, d, xs, ys, rs, ystar };
}

/**
 * Visits example i of sequence b: `src` is its offset in a [B, n, d] array, `t` the offset of its x
 * token in [B, 3n, d] tokens (y at t + d, r at t + 2d), `bi` = b * n + i.
 */
function forEachExample(B: number, n: number, d: number, f: (src: number, t: number, bi: number) => void): void {
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < n; i++) f((b * n + i) * d, (b * 3 * n + 3 * i) * d, b * n + i);
  }
}

/**
 * Interleaves (x_i, y_i, [r_i, 0, ...]) into tokens [B, 3n, d]. `rsObserved` replaces the rewards
 * the model sees (reward noise at evaluation); the responses are unchanged.
 */
export function buildTokens(
  batch: { B: number; n: number; d: number; xs: Float32Array; ys: Float32Array; rs: Float32Array },
  rsObserved?: Float32Array,
): Float32Array {
  const { B, n, d, xs, ys } = batch;
  const rs = rsObserved ?? batch.rs;
  if (rs.length !== B * n) throw new Error(`buildTokens: rewards have ${rs.length} entries, expected ${B * n}`);
  const out = new Float32Array(B * 3 * n * d);
  forEachExample(B, n, d, (src, t, bi) => {
    out.set(xs.subarray(src, src + d), t);
    out.set(ys.subarray(src, src + d), t + d);
    out[t + 2 * d] = rs[bi]!;
  });
  return out;
}

/** The model output [B, 3n, d] read at the x tokens (every third token from 0): [B, n, d]. */
export function extractPredictions(out: Float32Array, B: number, n: number, d: number): Float32Array {
  if (out.length !== B * 3 * n * d) throw new Error(`extractPredictions: output has ${out.length} values, expected ${B * 3 * n * d}`);
  const pred = new Float32Array(B * n * d);
  forEachExample(B, n, d, (dst, t) => pred.set(out.subarray(t, t + d), dst));
  return pred;
}

/** Places dLoss/dPred [B, n, d] at the x tokens of a [B, 3n, d] gradient, zeros elsewhere. */
export function scatterPredictionGrad(dPred: Float64Array | Float32Array, B: number, n: number, d: number): Float32Array {
  if (dPred.length !== B * n * d) throw new Error(`scatterPredictionGrad: gradient has ${dPred.length} values, expected ${B * n * d}`);
  const out = new Float32Array(B * 3 * n * d);
  forEachExample(B, n, d, (src, t) => {
    for (let k = 0; k < d; k++) out[t + k] = dPred[src + k]!;
  });
  return out;
}

/**
 * Reward noise at evaluation (Figure 1b): each observed reward is replaced, with probability p, by
 * a fresh U(0, 1) value. The responses keep their true rewards (only what the model reads changes).
 * Two uniforms are drawn per reward whatever p is, so curves for different p share the coin flips.
 */
export function noisyRewards(rng: Rng, rs: Float32Array, p: number): Float32Array {
  if (!(p >= 0 && p <= 1)) throw new RangeError(`noise probability p must be in [0, 1], got ${p}`);
  const out = new Float32Array(rs.length);
  for (let i = 0; i < rs.length; i++) {
    const coin = rng.uniform();
    const fresh = rng.uniform();
    out[i] = coin < p ? fresh : rs[i]!;
  }
  return out;
}
