/**
 * A float64 transformer evaluator in the paper's conventions (§2.2.2), separate from the training
 * engine on purpose: exact, readable, no LayerNorm, no biases in attention, ReLU FFN, residuals.
 *
 *   MHSA:  e_i <- e_i + sum_h P_h sum_j softmax_j(k_{h,j} . q_{h,i}) v_{h,j},
 *          q_{h,i} = W_{h,Q} e_i, k_{h,j} = W_{h,K} e_j, v_{h,j} = W_{h,V} e_j
 *   FFN:   e_i <- e_i + W_2 max(0, W_1 e_i + b_1) + b_2
 *
 * Tokens are the columns e_1..e_N of the paper's matrix X; here X is an array of N token vectors.
 * Attention is non-causal unless the layer says `causal` (then token i attends to j <= i).
 * The softmax subtracts the max score, so a large temperature gamma never overflows exp.
 */
import { Mat, softmax } from "./matrix.js";

export interface Head {
  /** What the head computes, e.g. "H1 top response (Lemma E.2)". */
  name: string;
  wq: Mat;
  wk: Mat;
  wv: Mat;
  /** The projection P_h: maps the head's value space back into the embedding. */
  proj: Mat;
}

export interface AttentionLayer {
  kind: "attention";
  name: string;
  heads: Head[];
  causal?: boolean;
}

export interface FfnLayer {
  kind: "ffn";
  name: string;
  w1: Mat;
  b1: Float64Array;
  w2: Mat;
  b2: Float64Array;
}

export type Layer = AttentionLayer | FfnLayer;

export type Tokens = Float64Array[];

/** Attention weights a_{ij} = softmax_j(k_j . q_i) of one head (row i = query token). */
export function attentionWeights(head: Head, X: Tokens, causal = false): Float64Array[] {
  const q = X.map((e) => head.wq.mulVec(e));
  const k = X.map((e) => head.wk.mulVec(e));
  return q.map((qi, i) => {
    const last = causal ? i + 1 : X.length;
    const scores = new Float64Array(last);
    for (let j = 0; j < last; j++) scores[j] = dot(k[j]!, qi);
    return softmax(scores);
  });
}

/** The head output before projection, V softmax(K^T Q): one vector per query token. */
export function headOutput(head: Head, X: Tokens, causal = false): Float64Array[] {
  const a = attentionWeights(head, X, causal);
  const v = X.map((e) => head.wv.mulVec(e));
  return a.map((ai) => {
    const out = new Float64Array(head.wv.rows);
    for (let j = 0; j < ai.length; j++) {
      const w = ai[j]!;
      if (w === 0) continue; // an underflowed weight contributes exactly nothing (and avoids 0 * inf)
      const vj = v[j]!;
      for (let c = 0; c < out.length; c++) out[c] = out[c]! + w * vj[c]!;
    }
    return out;
  });
}

export function applyAttention(layer: AttentionLayer, X: Tokens): Tokens {
  const out = X.map((e) => Float64Array.from(e));
  for (const head of layer.heads) {
    const h = headOutput(head, X, layer.causal ?? false);
    for (let i = 0; i < X.length; i++) head.proj.addMulVecTo(h[i]!, out[i]!);
  }
  return out;
}

/** The FFN's hidden activations max(0, W_1 e + b_1) for one token. */
export function ffnHidden(layer: FfnLayer, e: Float64Array): Float64Array {
  const z = layer.w1.mulVec(e);
  for (let u = 0; u < z.length; u++) z[u] = Math.max(0, z[u]! + layer.b1[u]!);
  return z;
}

export function applyFfn(layer: FfnLayer, X: Tokens): Tokens {
  return X.map((e) => {
    const h = ffnHidden(layer, e);
    const out = Float64Array.from(e);
    layer.w2.addMulVecTo(h, out); // residual + W_2 h, then + b_2
    for (let d = 0; d < out.length; d++) out[d] = out[d]! + layer.b2[d]!;
    return out;
  });
}

export function applyLayer(layer: Layer, X: Tokens): Tokens {
  return layer.kind === "attention" ? applyAttention(layer, X) : applyFfn(layer, X);
}

/** Runs the layers in order; `onLayer` sees the state after each one (for tracing and tests). */
export function forward(layers: Layer[], X: Tokens, onLayer?: (index: number, layer: Layer, X: Tokens) => void): Tokens {
  let cur = X;
  layers.forEach((layer, index) => {
    cur = applyLayer(layer, cur);
    onLayer?.(index, layer, cur);
  });
  return cur;
}

/** A zero FFN of the given hidden width whose weights the caller fills in. */
export function emptyFfn(name: string, dim: number, hidden: number): FfnLayer {
  return {
    kind: "ffn",
    name,
    w1: new Mat(hidden, dim),
    b1: new Float64Array(hidden),
    w2: new Mat(dim, hidden),
    b2: new Float64Array(dim),
  };
}

function dot(a: Float64Array, b: Float64Array): number {
  let s = 0;
  for (let i = 0; i < a.length; i++) s += a[i]! * b[i]!;
  return s;
}
