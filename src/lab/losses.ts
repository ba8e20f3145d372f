/**
 * Alignment losses of the ICA task, in float64, with hand-written gradients.
 *
 * Plackett-Luce (PL): for the prediction p at position m and the m preceding responses ranked by
 * reward (descending) as y_(1) .. y_(m), with scores s_k = score(p, y_(k)):
 *   L_m = sum_k [ log sum_{j >= k} exp(s_j) - s_k ]
 * The training loss is the mean over positions m = 2..n-1 (positions 0 and 1 are not trained, as in
 * the released code), then over the batch. Score "cosine" is the released code (tasks.pl_loss_single,
 * shared/bench/torch_reference.py); "neg-sq" is the paper's -||p - y||^2.
 *
 * Ranking: responses are sorted by reward descending with a stable sort (ties keep index order).
 * torch.argsort is not stable, but with U(0, 1) rewards ties have probability zero, so the two
 * orders agree on every batch the task sampler can produce.
 */
export type ScoreKind = "cosine" | "neg-sq";

type Vec = Float32Array | Float64Array;

/** torch.nn.functional.cosine_similarity's eps: each norm is clamped below at 1e-8. */
const COS_EPS = 1e-8;

const dotSquares = new Float64Array(3);

/** [p·y, p·p, y·y] over p[po..po+d), y[yo..yo+d), in one pass (a shared scratch: read it before the next call). */
function dotAndSquares(p: Vec, po: number, y: Vec, yo: number, d: number): Float64Array {
  let dot = 0, pp = 0, yy = 0;
  for (let k = 0; k < d; k++) {
    const a = p[po + k]!, b = y[yo + k]!;
    dot += a * b;
    pp += a * a;
    yy += b * b;
  }
  dotSquares[0] = dot;
  dotSquares[1] = pp;
  dotSquares[2] = yy;
  return dotSquares;
}

/** s = score(p, y) for p = p[po..po+d), y = y[yo..yo+d). */
function score(kind: ScoreKind, p: Vec, po: number, y: Vec, yo: number, d: number): number {
  if (kind === "neg-sq") {
    let acc = 0;
    for (let k = 0; k < d; k++) {
      const diff = p[po + k]! - y[yo + k]!;
      acc += diff * diff;
    }
    return -acc;
  }
  return cosine(p, po, y, yo, d);
}

/** cos(p, y) over p[po..po+d), y[yo..yo+d), with torch's norm clamp (COS_EPS). */
export function cosine(p: Vec, po: number, y: Vec, yo: number, d: number): number {
  const sq = dotAndSquares(p, po, y, yo, d);
  const dot = sq[0]!, pp = sq[1]!, yy = sq[2]!;
  return dot / (Math.max(Math.sqrt(pp), COS_EPS) * Math.max(Math.sqrt(yy), COS_EPS));
}

/** Adds g * d score(p, y) / dp to grad[go..go+d). */
function addScoreGrad(kind: ScoreKind, g: number, p: Vec, po: number, y: Vec, yo: number, d: number, grad: Float64Array, go: number): void {
  if (kind === "neg-sq") {
    for (let k = 0; k < d; k++) grad[go + k]! += g * -2 * (p[po + k]! - y[yo + k]!);
    return;
  }
  const sq = dotAndSquares(p, po, y, yo, d);
  const dot = sq[0]!, pp = sq[1]!, yy = sq[2]!;
  const pn = Math.max(Math.sqrt(pp), COS_EPS);
  const yn = Math.max(Math.sqrt(yy), COS_EPS);
  const cos = dot / (pn * yn);
  // d cos / dp = y / (|p||y|) - cos p / |p|^2 (the clamped-norm branch has no p-dependence in |p|).
  const pClamped = Math.sqrt(pp) < COS_EPS;
  for (let k = 0; k < d; k++) {
    const dp = y[yo + k]! / (pn * yn) - (pClamped ? 0 : (cos * p[po + k]!) / (pn * pn));
    grad[go + k]! += g * dp;
  }
}

/** Indices 0..m-1 sorted by r[ro + i] descending, stable. */
export function rankByReward(r: Vec, ro: number, m: number): number[] {
  const idx = Array.from({ length: m }, (_, i) => i);
  idx.sort((a, b) => r[ro + b]! - r[ro + a]! || a - b);
  return idx;
}

/**
 * PL loss of one prediction against `m` candidates already in preference order, and dL/ds.
 * `s` holds the scores; returns the loss and writes dL/ds_k into `ds`.
 */
function plFromScores(s: Float64Array, m: number, ds: Float64Array): number {
  // tail_k = log sum_{j >= k} exp(s_j), computed from the back with a running max.
  const tail = new Float64Array(m);
  let mx = -Infinity, acc = 0;
  for (let k = m - 1; k >= 0; k--) {
    const v = s[k]!;
    if (v > mx) {
      acc = acc * Math.exp(mx - v) + 1;
      mx = v;
    } else {
      acc += Math.exp(v - mx);
    }
    tail[k] = mx + Math.log(acc);
  }
  let loss = 0;
  for (let k = 0; k < m; k++) loss += tail[k]! - s[k]!;
  // dL/ds_k = -1 + sum_{i <= k} exp(s_k - tail_i); tail_i >= s_k for i <= k, so every term is <= 1.
  for (let k = 0; k < m; k++) {
    let g = 0;
    for (let i = 0; i <= k; i++) g += Math.exp(s[k]! - tail[i]!);
    ds[k] = -1 + g;
  }
  return loss;
}

/**
 * Mean over the batch of the mean over positions m = 2..n-1 of the PL loss of pred[m] against
 * ys[:m] ranked by rs[:m] descending; exactly torch_reference.py's pl_loss for score "cosine".
 */
export function plLossICA(
  pred: Float32Array | Float64Array,
  ys: Float32Array | Float64Array,
  rs: Float32Array | Float64Array,
  B: number,
  n: number,
  d: number,
  opts: { score?: ScoreKind } = {},
): { loss: number; grad: Float64Array } {
  const kind = opts.score ?? "cosine";
  if (n < 3) throw new RangeError(`plLossICA: need at least 3 positions (trained positions are 2..n-1), got ${n}`);
  if (pred.length !== B * n * d || ys.length !== B * n * d || rs.length !== B * n) {
    throw new RangeError(`plLossICA: shapes do not match B=${B} n=${n} d=${d}`);
  }
  const grad = new Float64Array(B * n * d);
  const s = new Float64Array(n);
  const ds = new Float64Array(n);
  const scale = 1 / ((n - 2) * B);
  let total = 0;
  for (let b = 0; b < B; b++) {
    for (let m = 2; m < n; m++) {
      const order = rankByReward(rs, b * n, m);
      const po = (b * n + m) * d;
      for (let k = 0; k < m; k++) s[k] = score(kind, pred, po, ys, (b * n + order[k]!) * d, d);
      total += plFromScores(s, m, ds);
      for (let k = 0; k < m; k++) {
        if (ds[k] !== 0) addScoreGrad(kind, ds[k]! * scale, pred, po, ys, (b * n + order[k]!) * d, d, grad, po);
      }
    }
  }
  return { loss: total * scale, grad };
}

/**
 * PL loss of one prediction p [d] against m candidate responses ys [m, d] ranked by rewards rs [m]
 * (the per-(task, position) loss the GD baseline minimises). Returns the loss and dL/dp.
 */
export function plLossSingle(
  p: Vec, po: number, ys: Vec, yo: number, rs: Vec, ro: number, m: number, d: number, kind: ScoreKind, gradOut?: Float64Array,
): number {
  const order = rankByReward(rs, ro, m);
  const s = new Float64Array(m);
  const ds = new Float64Array(m);
  for (let k = 0; k < m; k++) s[k] = score(kind, p, po, ys, yo + order[k]! * d, d);
  const loss = plFromScores(s, m, ds);
  if (gradOut) {
    gradOut.fill(0, 0, d);
    for (let k = 0; k < m; k++) addScoreGrad(kind, ds[k]!, p, po, ys, yo + order[k]! * d, d, gradOut, 0);
  }
  return loss;
}

/**
 * Bradley-Terry loss, the 2-item PL case: for each of `count` pairs, -log P(yWin > yLose) with
 * P = exp(s_w) / (exp(s_w) + exp(s_l)). Returns the mean loss and dLoss/dPred [count, d].
 */
export function btLoss(
  pred: Vec,
  yWin: Vec,
  yLose: Vec,
  count: number,
  d: number,
  opts: { score?: ScoreKind } = {},
): { loss: number; grad: Float64Array } {
  const kind = opts.score ?? "cosine";
  if (pred.length !== count * d || yWin.length !== count * d || yLose.length !== count * d) {
    throw new RangeError(`btLoss: shapes do not match count=${count} d=${d}`);
  }
  const grad = new Float64Array(count * d);
  const s = new Float64Array(2);
  const ds = new Float64Array(2);
  let total = 0;
  for (let c = 0; c < count; c++) {
    const o = c * d;
    s[0] = score(kind, pred, o, yWin, o, d);
    s[1] = score(kind, pred, o, yLose, o, d);
    total += plFromScores(s, 2, ds);
    addScoreGrad(kind, ds[0]! / count, pred, o, yWin, o, d, grad, o);
    addScoreGrad(kind, ds[1]! / count, pred, o, yLose, o, d, grad, o);
  }
  return { loss: total / count, grad };
}

/** The paper's metric per position: mean over the batch of 1 - cos(pred[m], y*[m]); index = position = examples seen. */
export function cosineErrorCurve(pred: Vec, ystar: Vec, B: number, n: number, d: number): number[] {
  const curve = new Array<number>(n).fill(0);
  for (let b = 0; b < B; b++) {
    for (let m = 0; m < n; m++) {
      const o = (b * n + m) * d;
      curve[m]! += 1 - score("cosine", pred, o, ystar, o, d);
    }
  }
  return curve.map((v) => v / B);
}
