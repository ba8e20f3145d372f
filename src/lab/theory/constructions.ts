/**
 * Hand-built weights of the paper's constructions (Theorems 3.2 and 3.3, Appendix E).
 *
 * Every function returns one layer or one head for a given layout, current linear model W (n_y x n_x),
 * learning rate eta and temperature gamma. Row indices come only from `Layout`. The weights never
 * depend on the responses or rewards; W, eta, gamma, N and the response bound B are baked in.
 *
 * Where this departs from the text of App. E (all marked "differs:"), it is to make a step the paper
 * leaves informal exact or data-independent:
 * - Lemma E.7 uses W_2 = -gamma/eps, where eps = r_top - r+ depends on the input. Here the masking
 *   FFN uses a ReLU pair (a clamp of slope gamma) whose weights depend only on gamma.
 * - Lemma E.7 pushes the working copy of y by -gamma in every coordinate. Here it is pushed by
 *   -gamma along one extra coordinate of the working copy, so head 2's exact score stays exact.
 * - Lemma E.3 assumes the input already arrives as X_p (y_j in slot j). Here an FFN builds it from
 *   the one-hot PE with exact ReLU gates, given a bound |y| <= B.
 * - The paper's H3 subtracts r+ from the reward row itself; here from a working reward row, so the
 *   rewards survive and the same weights can run K gradient steps in a row.
 */
import { UserError } from "../../util/errors.js";
import { Layout } from "./layout.js";
import { Mat } from "./matrix.js";
import type { AlignmentLoss } from "./reference.js";
import { emptyFfn, type AttentionLayer, type FfnLayer, type Head, type Layer } from "./transformer.js";

/**
 * The largest usable temperature. The softmax subtracts its max, so gamma * r never overflows by
 * itself; the limit comes from the PL masking push: a selected token's far coordinate becomes -gamma
 * and head 2 adds -gamma^2 to its score, which must stay finite (gamma^2 <= 1e300 < 1.8e308).
 */
export const GAMMA_MAX = 1e150;

export type Head2Variant = "exact" | "approx";

export interface ConstructionOptions {
  loss: AlignmentLoss;
  /** The current linear model W_0 (n_y x n_x), baked into head 2. */
  W: number[][];
  eta: number;
  gamma: number;
  /** Number of tokens N (context responses plus the test token). */
  n: number;
  /** Gradient steps K: the construction is stacked K times, every copy built with the same W. */
  steps?: number;
  /** Head 2's score: "exact" (one-hot PE + broadcast, Lemmas E.3-E.4) or "approx" (FFN feature, Lemma E.5). */
  head2?: Head2Variant;
  /** B: the positional gate needs |y_c| <= B, the approximate square needs |(Wx - y)_c| <= B. */
  bound?: number;
  /** Knot spacing h of the approximate square (error at most h^2/4 per coordinate). */
  squareStep?: number;
}

export const DEFAULT_BOUND = 64;
export const DEFAULT_SQUARE_STEP = 1 / 64;

export function validateConstructionOptions(o: ConstructionOptions): Required<ConstructionOptions> {
  const { W, eta, gamma, n } = o;
  if (o.loss !== "bt" && o.loss !== "pl") throw new UserError(`loss must be "bt" or "pl", got ${String(o.loss)}`);
  if (!Number.isInteger(n) || n < 2) {
    throw new UserError(`N = ${n}: the alignment losses need at least 2 responses to compare; use N >= 2`);
  }
  if (!(gamma > 0) || !Number.isFinite(gamma)) {
    throw new UserError(`gamma = ${gamma}: the attention temperature must be a positive finite number`);
  }
  if (gamma > GAMMA_MAX) {
    throw new UserError(
      `gamma = ${gamma} is above ${GAMMA_MAX}, the largest usable in float64 (the PL masking push gamma^2 would overflow); use a smaller gamma`,
    );
  }
  if (!(eta > 0) || !Number.isFinite(eta)) throw new UserError(`eta = ${eta}: the learning rate must be a positive finite number`);
  const steps = o.steps ?? 1;
  if (!Number.isInteger(steps) || steps < 1) throw new UserError(`steps = ${steps}: use a whole number >= 1`);
  if (!Array.isArray(W) || W.length === 0 || !Array.isArray(W[0]) || W[0].length === 0) {
    throw new UserError("W must be a non-empty n_y x n_x matrix");
  }
  const nx = W[0].length;
  for (const [c, row] of W.entries()) {
    if (row.length !== nx) throw new UserError(`W row ${c} has ${row.length} columns, expected ${nx}`);
    for (const v of row) if (!Number.isFinite(v)) throw new UserError(`W row ${c} holds ${v}, not a finite number`);
  }
  const bound = o.bound ?? DEFAULT_BOUND;
  if (!(bound > 0) || !Number.isFinite(bound)) throw new UserError(`bound = ${bound}: use a positive finite number`);
  const squareStep = o.squareStep ?? DEFAULT_SQUARE_STEP;
  if (!(squareStep > 0) || squareStep > bound) throw new UserError(`squareStep = ${squareStep}: use 0 < h <= bound`);
  return { ...o, steps, head2: o.head2 ?? "exact", bound, squareStep };
}

/** Lemma E.2 (pre-processing): an FFN with W_1 = W_2 = 0 whose bias b_2 appends the constant-1 feature. */
export function constantFeatureFfn(L: Layout): FfnLayer {
  const f = emptyFfn("constant-1 feature FFN (Lemma E.2 pre-processing)", L.dim, 1);
  f.b2[L.one] = 1;
  return f;
}

/**
 * Thm 3.3's working copy and Lemma E.3's X_p: copies y into yw[s], r into rw[s], and y_j into slot j
 * of spread[s] (needs |y_c| <= B). Each copy is a ReLU pair, z = ReLU(z) - ReLU(-z), exact in float64;
 * the gate of slot l is ReLU(B p_l - B + y_c) - ReLU(B p_l - B - y_c), which is y_c when p_l = 1 and
 * 0 when p_l = 0. The B p_l - B part is summed first (insertion order), so it cancels exactly.
 */
export function copyResponsesFfn(L: Layout, s: number, bound: number): FfnLayer {
  const S = L.step[s]!;
  const hidden = 2 * L.ny + 2 + 2 * L.n * L.ny;
  const f = emptyFfn(`step ${s + 1}: copy y into the working rows and X_p (Thm 3.3 working copy, Lemma E.3)`, L.dim, hidden);
  let u = 0;
  const pair = (read: (unit: number, sign: number) => void, target: number): void => {
    read(u, +1);
    read(u + 1, -1);
    f.w2.set(target, u, 1).set(target, u + 1, -1);
    u += 2;
  };
  for (let c = 0; c < L.ny; c++) pair((unit, sign) => f.w1.set(unit, L.y.start + c, sign), S.yw.start + c);
  pair((unit, sign) => f.w1.set(unit, L.r, sign), S.rw);
  for (let l = 0; l < L.n; l++) {
    for (let c = 0; c < L.ny; c++) {
      pair((unit, sign) => {
        f.w1.set(unit, L.pe.start + l, bound).set(unit, L.one, -bound); // gate first: cancels exactly
        f.w1.set(unit, L.y.start + c, sign);
      }, L.slot(S.spread, l, c));
    }
  }
  return f;
}

/** A uniform-attention head's value and output maps: W_V = scale I on X_p (spread[s]), written into bcast[s]. */
function broadcastMaps(L: Layout, s: number, scale: number): { wv: Mat; proj: Mat } {
  const S = L.step[s]!;
  const d = L.n * L.ny;
  const wv = new Mat(d, L.dim);
  const proj = new Mat(L.dim, d);
  for (let t = 0; t < d; t++) {
    wv.set(t, S.spread.start + t, scale);
    proj.set(S.bcast.start + t, t, 1);
  }
  return { wv, proj };
}

/**
 * Lemma E.4: a uniform-attention layer (W_Q = W_K = 0, every weight 1/N) with W_V = N I on X_p, so
 * every token receives all responses: slot l of bcast[s] becomes y_l.
 */
export function broadcastLayer(L: Layout, s: number): AttentionLayer {
  const { wv, proj } = broadcastMaps(L, s, L.n);
  return {
    kind: "attention",
    name: `step ${s + 1}: broadcast all responses to every token (Lemma E.4)`,
    heads: [{ name: "uniform attention (Lemma E.4)", wq: new Mat(1, L.dim), wk: new Mat(1, L.dim), wv, proj }],
  };
}

/**
 * Lemma E.5, first way ("an FFN can approach the mean square error"): writes
 * sc[s] = -sum_c f(z_c), z = W x - yw, where f is the piecewise-linear interpolant of z^2 on knots
 * -B, -B + h, ..., B: f(z) = t_0^2 + (2 t_0 + h)(z - t_0) + sum_{k>=1} 2h ReLU(z - t_k).
 * Exactly representable by a ReLU FFN; 0 <= f(z) - z^2 <= h^2/4 for |z| <= B.
 */
export function squareFeatureFfn(L: Layout, s: number, W: number[][], bound: number, h: number): FfnLayer {
  const S = L.step[s]!;
  const knots = Math.ceil((2 * bound) / h);
  const f = emptyFfn(`step ${s + 1}: FFN feature -||Wx - y||^2, piecewise-linear (Lemma E.5, approximate)`, L.dim, L.ny * knots);
  const t0 = -bound;
  for (let c = 0; c < L.ny; c++) {
    for (let k = 0; k < knots; k++) {
      const unit = c * knots + k;
      for (let m = 0; m < L.nx; m++) if (W[c]![m] !== 0) f.w1.set(unit, L.x.start + m, W[c]![m]!);
      f.w1.set(unit, S.yw.start + c, -1);
      f.b1[unit] = -(t0 + k * h);
      f.w2.set(S.sc, unit, -(k === 0 ? 2 * t0 + h : 2 * h));
    }
    f.b2[S.sc] = f.b2[S.sc]! - t0 * t0;
  }
  return f;
}

/**
 * Lemma E.2 (head 1, "numerator"): Q = gamma * 1, K = working reward, so the softmax tends to the
 * indicator of the top reward; V = working copy of y, P_1 = -2 eta I into the y row.
 */
export function topResponseHead(L: Layout, s: number, gamma: number, eta: number): Head {
  const S = L.step[s]!;
  const wq = new Mat(1, L.dim).set(0, L.one, gamma);
  const wk = new Mat(1, L.dim).set(0, S.rw, 1);
  const wv = new Mat(L.ny, L.dim);
  const proj = new Mat(L.dim, L.ny);
  for (let c = 0; c < L.ny; c++) {
    wv.set(c, S.yw.start + c, 1);
    proj.set(L.y.start + c, c, -2 * eta);
  }
  return { name: "H1 top response y+ (Lemma E.2), P1 = -2 eta I", wq, wk, wv, proj };
}

/** Lemma E.6's H3: the same soft arg-max as Lemma E.2 but V = working reward, giving r+; P_3 = -1. */
export function maxRewardHead(L: Layout, s: number, gamma: number): Head {
  const S = L.step[s]!;
  const wq = new Mat(1, L.dim).set(0, L.one, gamma);
  const wk = new Mat(1, L.dim).set(0, S.rw, 1);
  const wv = new Mat(1, L.dim).set(0, S.rw, 1);
  const proj = new Mat(L.dim, 1).set(S.rw, 0, -1);
  return { name: "H3 current max reward r+ (Lemma E.6), P3 = -1", wq, wk, wv, proj };
}

/**
 * Lemmas E.5 with E.3 (head 2, "denominator"): scores -||W x - yw_j||^2, V = working copy, P_2 = +2 eta I.
 * Exact variant: the score is the bilinear form
 *   k_j . q_i = <yw_j, 2 W x_i> + <spread_j, -bcast_i> + far_j * push = 2<Wx, yw_j> - ||yw_j||^2 - far_j^2
 * which is -||Wx - yw_j||^2 + ||Wx||^2; the per-query constant ||Wx||^2 cancels in the softmax
 * (-far_j^2 = push * far_j because far_j is 0 or -push). Approximate variant: K = sc, Q = 1.
 * `push` is Lemma E.7's push size (PL only; pass 0 for BT, whose far rows stay 0).
 */
export function weightedAverageHead(
  L: Layout,
  s: number,
  W: number[][],
  eta: number,
  variant: Head2Variant,
  push: number,
): Head {
  const S = L.step[s]!;
  const wv = new Mat(L.ny, L.dim);
  const proj = new Mat(L.dim, L.ny);
  for (let c = 0; c < L.ny; c++) {
    wv.set(c, S.yw.start + c, 1);
    proj.set(L.y.start + c, c, 2 * eta);
  }
  let wq: Mat;
  let wk: Mat;
  if (variant === "approx") {
    wq = new Mat(1, L.dim).set(0, L.one, 1);
    wk = new Mat(1, L.dim).set(0, S.sc, 1);
  } else {
    const dk = L.ny + L.n * L.ny + 1;
    wq = new Mat(dk, L.dim);
    wk = new Mat(dk, L.dim);
    for (let c = 0; c < L.ny; c++) {
      for (let m = 0; m < L.nx; m++) if (W[c]![m] !== 0) wq.set(c, L.x.start + m, 2 * W[c]![m]!);
      wk.set(c, S.yw.start + c, 1);
    }
    for (let t = 0; t < L.n * L.ny; t++) {
      wq.set(L.ny + t, S.bcast.start + t, -1);
      wk.set(L.ny + t, S.spread.start + t, 1);
    }
    if (push !== 0) {
      wq.set(dk - 1, L.one, push);
      wk.set(dk - 1, S.far, 1);
    }
  }
  return { name: `H2 weighted average sum_j beta_j y_j (Lemma E.5, ${variant}), P2 = +2 eta I`, wq, wk, wv, proj };
}

/**
 * Lemma E.7 (mask out the selected token): after H3 the working reward holds r_i - r+, which is
 * >= 0 only for the current top token. A ReLU pair clamps gamma (r_i - r+) into a 0/1 step,
 *   s_i = ReLU(gamma (r_i - r+) + 2) - ReLU(gamma (r_i - r+) + 1)   (1 if r_i - r+ >= -1/gamma, 0 if <= -2/gamma),
 * and W_2 pushes the selected token's working reward and the far coordinate of its working copy
 * by -push (and the approximate score feature by -push^2), so it ranks last from now on and its
 * exp(-||Wx - yw||^2) vanishes. differs: the paper's W_2 = -gamma/eps depends on the input.
 */
export function maskingFfn(L: Layout, s: number, gamma: number, push: number): FfnLayer {
  const S = L.step[s]!;
  const f = emptyFfn(`step ${s + 1}: mask out the selected token (Lemma E.7)`, L.dim, 2);
  f.w1.set(0, S.rw, gamma).set(1, S.rw, gamma);
  f.b1[0] = 2;
  f.b1[1] = 1;
  for (const [row, size] of [
    [S.rw, push],
    [S.far, push],
    [S.sc, push * push],
  ] as const) {
    f.w2.set(row, 0, -size).set(row, 1, size);
  }
  return f;
}

/** Thm 3.2: the two-head softmax attention layer whose forward pass is one BT (one-top-sample) step. */
export function btLayer(L: Layout, s: number, o: Required<ConstructionOptions>): AttentionLayer {
  return {
    kind: "attention",
    name: `step ${s + 1}: two-head layer, one BT gradient step (Thm 3.2)`,
    heads: [topResponseHead(L, s, o.gamma, o.eta), weightedAverageHead(L, s, o.W, o.eta, o.head2, 0)],
  };
}

/** Thm 3.3, block k: three-head MHSA (Lemma E.6) then the masking FFN (Lemma E.7); adds g^k to y. */
export function plBlock(L: Layout, s: number, k: number, o: Required<ConstructionOptions>): Layer[] {
  const push = o.gamma;
  return [
    {
      kind: "attention",
      name: `step ${s + 1} block ${k}: three-head MHSA adding g^${k} (Lemma E.6)`,
      heads: [
        topResponseHead(L, s, o.gamma, o.eta),
        weightedAverageHead(L, s, o.W, o.eta, o.head2, push),
        maxRewardHead(L, s, o.gamma),
      ],
    },
    maskingFfn(L, s, o.gamma, push),
  ];
}

/** The layers of gradient step s: fill the working rows, then Thm 3.2's layer or Thm 3.3's N-1 blocks. */
export function gradientStepLayers(L: Layout, s: number, o: Required<ConstructionOptions>): Layer[] {
  const layers: Layer[] = [copyResponsesFfn(L, s, o.bound)];
  if (o.head2 === "exact") layers.push(broadcastLayer(L, s));
  else layers.push(squareFeatureFfn(L, s, o.W, o.bound, o.squareStep));
  if (o.loss === "bt") layers.push(btLayer(L, s, o));
  else for (let k = 1; k < L.n; k++) layers.push(...plBlock(L, s, k, o));
  return layers;
}

export interface GradientStepTransformer {
  layout: Layout;
  layers: Layer[];
  /** Index into `layers` of the last layer of each gradient step (to read intermediate states). */
  stepEnds: number[];
  options: Required<ConstructionOptions>;
}

/**
 * Thm 3.2 (loss "bt") or Thm 3.3 (loss "pl"), stacked K times: the constant-feature pre-processing,
 * then per step the working-row FFN, the broadcast (or square-feature FFN) and the step itself.
 */
export function buildGradientStepTransformer(options: ConstructionOptions): GradientStepTransformer {
  const o = validateConstructionOptions(options);
  const L = new Layout(o.W[0]!.length, o.W.length, o.n, o.steps);
  const layers: Layer[] = [constantFeatureFfn(L)];
  const stepEnds: number[] = [];
  for (let s = 0; s < o.steps; s++) {
    layers.push(...gradientStepLayers(L, s, o));
    stepEnds.push(layers.length - 1);
  }
  return { layout: L, layers, stepEnds, options: o };
}

// ---------------------------------------------------------------------------------------------
// App. F.2: causal attention implements an online PL step (token i compares only with j <= i).
// Instead of pushing selected tokens away (which would hide them from later queries too), each
// query keeps its own masked PE m_i and subtracts gamma^2 <m_i, p_j> from its scores (Lemma F.1).

/** Lemma E.4 under a causal mask: uniform attention over j <= i, so slot l of token i gets y_l / i for l <= i. */
export function causalBroadcastLayer(L: Layout, s: number): AttentionLayer {
  const { wv, proj } = broadcastMaps(L, s, 1);
  return {
    kind: "attention",
    name: `step ${s + 1}: causal uniform attention, prefix mean of X_p (Lemma E.4, App. F.2)`,
    causal: true,
    heads: [{ name: "causal uniform attention", wq: new Mat(1, L.dim), wk: new Mat(1, L.dim), wv, proj }],
  };
}

/**
 * App. F.2 assumes the causal model knows its one-hot position p_i; with it an FFN turns the prefix
 * mean into the prefix itself, bsum_i = i * bcast_i, through exact gates on p_i (as in copyResponsesFfn):
 * ReLU(a b + B_a p_a - B_a) - ReLU(-a b + B_a p_a - B_a) is a b at position a and 0 elsewhere.
 */
export function prefixRescaleFfn(L: Layout, s: number, bound: number): FfnLayer {
  const S = L.step[s]!;
  const d = L.n * L.ny;
  const f = emptyFfn(`step ${s + 1}: prefix mean -> prefix (x position, App. F.2)`, L.dim, 2 * L.n * d);
  let u = 0;
  for (let a = 0; a < L.n; a++) {
    const scale = a + 1;
    const gate = scale * bound;
    for (let t = 0; t < d; t++) {
      for (const sign of [1, -1]) {
        f.w1.set(u, L.pe.start + a, gate).set(u, L.one, -gate); // gate first: cancels exactly
        f.w1.set(u, S.bcast.start + t, sign * scale);
        f.w2.set(S.bsum.start + t, u, sign);
        u++;
      }
    }
  }
  return f;
}

/**
 * Lemma F.1: the causal top-1 head with the masked PE. Scores gamma (r_j - gamma <m_i, p_j>), so
 * query i picks the best reward among its prefix that it has not ranked yet; V = [y_j ; p_j], and
 * P writes -2 eta y+ into the y row and p+ into the scratch rows pplus.
 */
export function causalTopResponseHead(L: Layout, s: number, gamma: number, eta: number): Head {
  const S = L.step[s]!;
  const wq = new Mat(1 + L.n, L.dim).set(0, L.one, gamma);
  const wk = new Mat(1 + L.n, L.dim).set(0, S.rw, 1);
  const wv = new Mat(L.ny + L.n, L.dim);
  const proj = new Mat(L.dim, L.ny + L.n);
  for (let a = 0; a < L.n; a++) {
    wq.set(1 + a, S.m.start + a, -gamma * gamma);
    wk.set(1 + a, L.pe.start + a, 1);
    wv.set(L.ny + a, L.pe.start + a, 1);
    proj.set(S.pplus.start + a, L.ny + a, 1);
  }
  for (let c = 0; c < L.ny; c++) {
    wv.set(c, S.yw.start + c, 1);
    proj.set(L.y.start + c, c, -2 * eta);
  }
  return { name: "H1 causal top response y+_i and its position p+_i (Lemma F.1), P1 = -2 eta I", wq, wk, wv, proj };
}

/**
 * Lemmas E.3 + E.5 under a causal mask: scores 2<W x, y_j> - ||y_j||^2 - gamma^2 <m_i, p_j> over j <= i,
 * i.e. -||W x - y_j||^2 (plus a per-query constant) on the items query i has not ranked yet.
 */
export function causalWeightedAverageHead(L: Layout, s: number, W: number[][], eta: number, gamma: number): Head {
  const S = L.step[s]!;
  const d = L.n * L.ny;
  const wq = new Mat(L.ny + d + L.n, L.dim);
  const wk = new Mat(L.ny + d + L.n, L.dim);
  const wv = new Mat(L.ny, L.dim);
  const proj = new Mat(L.dim, L.ny);
  for (let c = 0; c < L.ny; c++) {
    for (let m = 0; m < L.nx; m++) if (W[c]![m] !== 0) wq.set(c, L.x.start + m, 2 * W[c]![m]!);
    wk.set(c, S.yw.start + c, 1);
    wv.set(c, S.yw.start + c, 1);
    proj.set(L.y.start + c, c, 2 * eta);
  }
  for (let t = 0; t < d; t++) {
    wq.set(L.ny + t, S.bsum.start + t, -1);
    wk.set(L.ny + t, S.spread.start + t, 1);
  }
  for (let a = 0; a < L.n; a++) {
    wq.set(L.ny + d + a, S.m.start + a, -gamma * gamma);
    wk.set(L.ny + d + a, L.pe.start + a, 1);
  }
  return { name: "H2 causal weighted average over the unranked prefix (Lemmas E.3, E.5, F.2), P2 = +2 eta I", wq, wk, wv, proj };
}

/**
 * App. F.2 ("p+ can be updated to m_i through residual"): after block k, token i adds p+ to its
 * masked PE while it still has more than one item left to rank (position i > k), then clears the
 * scratch. m += ReLU(p+ + [i > k] - 1) is exact because p+ lies in [0, 1] and [i > k] in {0, 1}.
 */
export function maskUpdateFfn(L: Layout, s: number, k: number): FfnLayer {
  const S = L.step[s]!;
  const f = emptyFfn(`step ${s + 1} block ${k}: add p+ to the masked PE m_i (App. F.2)`, L.dim, 2 * L.n);
  for (let l = 0; l < L.n; l++) {
    for (let a = k; a < L.n; a++) f.w1.set(l, L.pe.start + a, 1); // [1-based position > k], summed first
    f.w1.set(l, L.one, -1).set(l, S.pplus.start + l, 1);
    f.w2.set(S.m.start + l, l, 1);
    f.w1.set(L.n + l, S.pplus.start + l, 1);
    f.w2.set(S.pplus.start + l, L.n + l, -1);
  }
  return f;
}

/**
 * App. F.2: a causal transformer whose forward pass gives token i the online PL step
 * y_i - Delta W_{onlinePL(i)} x. Pre-processing as in Thm 3.3 (with a causal broadcast and the
 * prefix rescale), then N-1 causal blocks: Lemma F.1's head and head 2, and the mask-update FFN.
 */
export function buildOnlinePlTransformer(options: Omit<ConstructionOptions, "loss" | "steps" | "head2">): GradientStepTransformer {
  const o = validateConstructionOptions({ ...options, loss: "pl", steps: 1, head2: "exact" });
  const L = new Layout(o.W[0]!.length, o.W.length, o.n, 1, true);
  const layers: Layer[] = [constantFeatureFfn(L), copyResponsesFfn(L, 0, o.bound), causalBroadcastLayer(L, 0), prefixRescaleFfn(L, 0, o.bound)];
  for (let k = 1; k < L.n; k++) {
    layers.push({
      kind: "attention",
      name: `causal block ${k}: online PL term ${k} (Lemma F.1 + head 2)`,
      causal: true,
      heads: [causalTopResponseHead(L, 0, o.gamma, o.eta), causalWeightedAverageHead(L, 0, o.W, o.eta, o.gamma)],
    });
    layers.push(maskUpdateFfn(L, 0, k));
  }
  return { layout: L, layers, stepEnds: [layers.length - 1], options: o };
}
