/**
 * The analytic side: the linear alignment model's losses and one explicit gradient step
 * (Proposition 3.1 and the corrected Eq. 9 of the digest), in float64.
 *
 * Model reward r(x, y) = -||W x - y||^2. With tau the ranking by observed reward
 * (r_tau(1) > ... > r_tau(N)):
 *
 *   PL:  L(W) = sum_{k=1}^{N-1} [ ||Wx - y_tau(k)||^2 + log sum_{j>=k} exp(-||Wx - y_tau(j)||^2) ]
 *   BT:  one top sample (Thm 3.2's general-N case; N = 2 is Bradley-Terry, N > 2 is InfoNCE):
 *        L(W) = ||Wx - y_top||^2 + log sum_{j=1}^{N} exp(-||Wx - y_j||^2)
 *
 * The gradient term by term is 2(Wx - y_tau(k))x^T - 2 sum_j beta^k_j (Wx - y_tau(j))x^T; the Wx
 * parts cancel because the beta's sum to 1, leaving
 *
 *   Delta W = -eta grad L = 2 eta sum_k ( y_tau(k) - sum_{j>=k} beta^k_j y_tau(j) ) x^T      (Eq. 9)
 *
 * and the equivalent response update y_i' = y_i - Delta W x (Prop. 3.1: L(W + Delta W; y) =
 * L(W; y')). With ||x|| = 1 that is y_i - 2 eta sum_k (y_tau(k) - sum_j beta^k_j y_tau(j)).
 */
import { UserError } from "../../util/errors.js";
import { logSumExp, matVec, softmax, sqNorm } from "./matrix.js";

export type AlignmentLoss = "bt" | "pl";

/**
 * The ranking tau: token indices by decreasing reward. PL needs every reward distinct (a tie
 * makes the ranking, hence the loss, undefined); BT needs only a unique top reward.
 */
export function rankByReward(r: number[], loss: AlignmentLoss): number[] {
  for (const [i, v] of r.entries()) {
    if (!Number.isFinite(v)) throw new UserError(`reward r[${i}] = ${v} is not a finite number`);
  }
  const tau = r.map((_, i) => i).sort((a, b) => r[b]! - r[a]!);
  if (loss === "pl") {
    for (let k = 1; k < tau.length; k++) {
      if (r[tau[k]!] === r[tau[k - 1]!]) {
        throw new UserError(
          `rewards r[${tau[k - 1]}] and r[${tau[k]}] are equal (${r[tau[k]!]}): the Plackett-Luce ranking is undefined; make the rewards distinct`,
        );
      }
    }
  } else if (tau.length > 1 && r[tau[0]!] === r[tau[1]!]) {
    throw new UserError(
      `rewards r[${tau[0]}] and r[${tau[1]}] tie for the top (${r[tau[0]!]}): the preferred response is undefined; make the top reward unique`,
    );
  }
  return tau;
}

/** -||W x - y_j||^2 for every response: the model's reward, the softmax logits of Eq. (5). */
export function modelRewards(W: number[][], x: number[], ys: number[][]): number[] {
  const wx = matVec(W, x);
  return ys.map((y) => -sqNorm(wx.map((v, c) => v - y[c]!)));
}

/** The ranked groups of the loss: group k = (numerator index, indices in the denominator). */
function lossTerms(r: number[], loss: AlignmentLoss): { top: number; pool: number[] }[] {
  const tau = rankByReward(r, loss);
  if (loss === "bt") return [{ top: tau[0]!, pool: tau }];
  return tau.slice(0, -1).map((top, k) => ({ top, pool: tau.slice(k) }));
}

/** The alignment loss L(W; x, y, r) of the linear model. */
export function alignmentLoss(loss: AlignmentLoss, W: number[][], x: number[], ys: number[][], r: number[]): number {
  const s = modelRewards(W, x, ys);
  let total = 0;
  for (const { top, pool } of lossTerms(r, loss)) total += -s[top]! + logSumExp(pool.map((j) => s[j]!));
  return total;
}

export interface GradientStep {
  /** Delta W = -eta grad_W L (n_y x n_x). */
  dW: number[][];
  /** W + Delta W */
  W: number[][];
  /** y_i' = y_i - Delta W x for every token (Prop. 3.1). */
  ys: number[][];
  /** The per-term softmax weights beta^k over the pool (for tests of the weighted-average head). */
  betas: { top: number; pool: number[]; beta: number[] }[];
}

/** One explicit gradient step of the linear model on the BT or PL loss (Eq. 9). */
export function gradientStep(
  loss: AlignmentLoss,
  W: number[][],
  x: number[],
  ys: number[][],
  r: number[],
  eta: number,
): GradientStep {
  const ny = W.length;
  const s = modelRewards(W, x, ys);
  // g = sum_k ( y_tau(k) - sum_j beta^k_j y_tau(j) ), so that Delta W = 2 eta g x^T.
  const g = new Array<number>(ny).fill(0);
  const betas: GradientStep["betas"] = [];
  for (const { top, pool } of lossTerms(r, loss)) {
    const beta = Array.from(softmax(pool.map((j) => s[j]!)));
    betas.push({ top, pool, beta });
    for (let c = 0; c < ny; c++) {
      let avg = 0;
      pool.forEach((j, t) => {
        avg += beta[t]! * ys[j]![c]!;
      });
      g[c] = g[c]! + ys[top]![c]! - avg;
    }
  }
  const dW = g.map((gc) => x.map((xm) => 2 * eta * gc * xm));
  const dWx = matVec(dW, x);
  return {
    dW,
    W: W.map((row, c) => row.map((v, m) => v + dW[c]![m]!)),
    ys: ys.map((y) => y.map((v, c) => v - dWx[c]!)),
    betas,
  };
}

export interface GdTrajectory {
  /** W_0 .. W_K */
  W: number[][][];
  /** y - (W_k - W_0) x for k = 0..K: what K stacked constructions (all built with W_0) must output. */
  ys: number[][][];
  /** L(W_k; x, y, r) for k = 0..K */
  loss: number[];
}

/**
 * K explicit gradient steps W_{k+1} = W_k - eta grad L(W_k). Because L(W; y) depends on W only
 * through W x - y_j, step k+1 at W_k on the original responses equals a step at W_0 on the moved
 * responses y - (W_k - W_0) x. So K copies of the construction built once with W_0 compose into
 * K gradient steps; this is the trajectory they must reproduce.
 */
export function gradientDescent(
  loss: AlignmentLoss,
  W0: number[][],
  x: number[],
  ys: number[][],
  r: number[],
  eta: number,
  steps: number,
): GdTrajectory {
  const Ws = [W0];
  for (let k = 0; k < steps; k++) Ws.push(gradientStep(loss, Ws[k]!, x, ys, r, eta).W);
  const w0x = matVec(W0, x);
  return {
    W: Ws,
    ys: Ws.map((Wk) => {
      const wkx = matVec(Wk, x);
      return ys.map((y) => y.map((v, c) => v - (wkx[c]! - w0x[c]!)));
    }),
    loss: Ws.map((Wk) => alignmentLoss(loss, Wk, x, ys, r)),
  };
}

/**
 * App. F.2's online PL update: token i moves by the gradient step of the PL loss of the first i
 * tokens only, y_i' = y_i - Delta W_{onlinePL(i)} x (token 1 has nothing to compare with and stays).
 * This is what a causal transformer can compute, since token i sees only tokens j <= i.
 */
export function onlinePlUpdate(W: number[][], x: number[], ys: number[][], r: number[], eta: number): number[][] {
  rankByReward(r, "pl");
  return ys.map((y, i) => (i === 0 ? [...y] : gradientStep("pl", W, x, ys.slice(0, i + 1), r.slice(0, i + 1), eta).ys[i]!));
}
