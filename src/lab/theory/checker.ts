/**
 * The checker: runs the constructed transformer against the analytic gradient steps over random
 * tasks and reports max |constructed - analytic| of the updated responses as a function of gamma.
 */
import { UserError } from "../../util/errors.js";
import { Rng } from "../../util/rng.js";
import { GAMMA_MAX, buildGradientStepTransformer, buildOnlinePlTransformer, type ConstructionOptions, type Head2Variant } from "./constructions.js";
import { matVec, sqNorm } from "./matrix.js";
import { alignmentLoss, gradientDescent, onlinePlUpdate, rankByReward, type AlignmentLoss, type GdTrajectory } from "./reference.js";
import { forward } from "./transformer.js";

/**
 * One in-context alignment task (§1.2): a common query x with ||x|| = 1, N tokens (N-1 context
 * responses with rewards, plus the test token y_N = W_0 x with the lowest reward) and the current
 * linear model W_0.
 */
export interface TheoryTask {
  x: number[];
  ys: number[][];
  r: number[];
  W0: number[][];
}

export interface TaskSpec {
  nx?: number;
  ny?: number;
  /** Entries of W_0 are N(0, w0Scale^2). */
  w0Scale?: number;
}

/**
 * x uniform on the unit sphere, W* ~ N(0, I), rewards r_i ~ U(0, 1) and responses
 * y_i = r_i W* x + (1 - r_i) W_i x with W_i ~ N(0, I) (higher reward, closer to the truth);
 * the test token is y_N = W_0 x with reward -1, below every context reward.
 */
export function sampleTask(rng: Rng, n: number, spec: TaskSpec = {}): TheoryTask {
  const nx = spec.nx ?? 5;
  const ny = spec.ny ?? 5;
  const w0Scale = spec.w0Scale ?? 0.5;
  const gauss = (rows: number, cols: number, scale = 1): number[][] =>
    Array.from({ length: rows }, () => Array.from({ length: cols }, () => scale * rng.normal()));
  let x = Array.from({ length: nx }, () => rng.normal());
  const norm = Math.sqrt(sqNorm(x));
  x = x.map((v) => v / norm);
  const Wstar = gauss(ny, nx);
  const W0 = gauss(ny, nx, w0Scale);
  const wsx = matVec(Wstar, x);
  const ys: number[][] = [];
  const r: number[] = [];
  for (let i = 0; i < n - 1; i++) {
    const ri = rng.uniform();
    const wix = matVec(gauss(ny, nx), x);
    ys.push(wsx.map((v, c) => ri * v + (1 - ri) * wix[c]!));
    r.push(ri);
  }
  ys.push(matVec(W0, x));
  r.push(-1);
  return { x, ys, r, W0 };
}

/** Rejects a task the construction cannot represent, with a message naming the problem. */
export function validateTask(task: TheoryTask, loss: AlignmentLoss, n: number): void {
  const { x, ys, r, W0 } = task;
  const nx = W0[0]?.length ?? 0;
  const ny = W0.length;
  if (ys.length !== n || r.length !== n) {
    throw new UserError(`task has ${ys.length} responses and ${r.length} rewards, expected N = ${n} of each`);
  }
  if (x.length !== nx) throw new UserError(`x has ${x.length} entries but W has ${nx} columns`);
  for (const [i, y] of ys.entries()) {
    if (y.length !== ny) throw new UserError(`response y[${i}] has ${y.length} entries, expected n_y = ${ny}`);
    for (const v of y) if (!Number.isFinite(v)) throw new UserError(`response y[${i}] holds ${v}, not a finite number`);
  }
  const nrm = Math.sqrt(sqNorm(x));
  if (!(Math.abs(nrm - 1) <= 1e-12)) {
    throw new UserError(
      `||x|| = ${nrm}: the construction needs a unit query (Prop. 3.1 folds ||x||^2 into eta only when it is 1); normalise x`,
    );
  }
  rankByReward(r, loss);
}

/** gamma * r must stay finite in head 1's scores (the softmax subtracts the max, but not before the product). */
export function validateRewardScale(task: TheoryTask, gamma: number): void {
  const m = Math.max(...task.r.map(Math.abs));
  if (gamma * m > 1e300) {
    throw new UserError(`gamma * max |r| = ${gamma * m} would overflow float64 in the attention scores; rescale the rewards or lower gamma`);
  }
}

/**
 * Checks that every response the K steps will produce stays inside the bound the weights assume
 * (|y_c| <= B for the positional gate; |(W_0 x - y)_c| <= B for the approximate square).
 */
export function validateBound(task: TheoryTask, trajectory: GdTrajectory, head2: Head2Variant, bound: number): void {
  const w0x = matVec(task.W0, task.x);
  trajectory.ys.forEach((ys, k) => {
    for (const [i, y] of ys.entries()) {
      for (const [c, v] of y.entries()) {
        const z = head2 === "exact" ? v : w0x[c]! - v;
        if (Math.abs(z) > bound) {
          const what = head2 === "exact" ? `y[${i}][${c}]` : `(W x - y[${i}])[${c}]`;
          throw new UserError(
            `${what} = ${z} after ${k} step(s) is outside the bound B = ${bound} the construction assumes; raise --bound`,
          );
        }
      }
    }
  });
}

/**
 * Runs the constructed transformer on a task; returns the y rows after each gradient step.
 * Validates the task first (unit x, a defined ranking, input responses inside the bound); that
 * later steps stay inside the bound is checked by `checkErrorVsGamma` against the GD trajectory.
 */
export function runConstruction(task: TheoryTask, options: Omit<ConstructionOptions, "W" | "n">): number[][][] {
  const n = task.ys.length;
  const tf = buildGradientStepTransformer({ ...options, W: task.W0, n });
  validateTask(task, tf.options.loss, n);
  validateRewardScale(task, tf.options.gamma);
  validateBound(task, { W: [task.W0], ys: [task.ys], loss: [] }, tf.options.head2, tf.options.bound);
  const X0 = tf.layout.embed(task.x, task.ys, task.r);
  const after: number[][][] = [];
  forward(tf.layers, X0, (index, _layer, X) => {
    if (tf.stepEnds.includes(index)) after.push(tf.layout.read(X, tf.layout.y));
  });
  return after;
}

/** Runs App. F.2's causal construction on a task; returns every token's y after the online PL step. */
export function runOnlinePl(task: TheoryTask, options: { eta: number; gamma: number; bound?: number }): number[][] {
  const n = task.ys.length;
  const tf = buildOnlinePlTransformer({ ...options, W: task.W0, n });
  validateTask(task, "pl", n);
  validateRewardScale(task, tf.options.gamma);
  validateBound(task, { W: [task.W0], ys: [task.ys], loss: [] }, "exact", tf.options.bound);
  return tf.layout.read(forward(tf.layers, tf.layout.embed(task.x, task.ys, task.r)), tf.layout.y);
}

export function maxAbsDiff(a: number[][], b: number[][]): number {
  let m = 0;
  a.forEach((row, i) => {
    row.forEach((v, c) => {
      const d = Math.abs(v - b[i]![c]!);
      m = Number.isNaN(d) ? Infinity : Math.max(m, d);
    });
  });
  return m;
}

export interface ErrorRow {
  gamma: number;
  /** max over tasks, tokens, coordinates and steps of |constructed - analytic| */
  max_abs_err: number;
  /** mean over tasks of each task's max error */
  mean_abs_err: number;
  /** max over tasks after step k (k = 1..K) */
  max_abs_err_per_step: number[];
}

export interface CheckOptions {
  loss: AlignmentLoss;
  n: number;
  gammas: number[];
  steps: number;
  tasks: number;
  seed: number;
  eta: number;
  head2?: Head2Variant;
  bound?: number;
  squareStep?: number;
  /** App. F.2: causal attention, online PL (loss "pl", steps 1, exact head 2 only). */
  causal?: boolean;
  spec?: TaskSpec;
  /** Called after each gamma (progress). */
  onGamma?: (row: ErrorRow, index: number) => void;
}

export interface CheckResult {
  rows: ErrorRow[];
  /** The smallest gap between two rewards over all tasks: head 1's error scales like exp(-gamma * gap). */
  min_reward_gap: number;
  /** Mean over tasks of the linear model's loss L(W_k) for k = 0..K (explicit gradient descent). */
  loss_reference: number[];
  /** Mean over tasks of L(W_0; y^(k)) for the transformer's responses y^(k) at the largest gamma (Prop. 3.1). */
  loss_transformer: number[];
}

/** The error-vs-gamma measurement behind `selfcorrect lab theory`. */
export function checkErrorVsGamma(o: CheckOptions): CheckResult {
  if (!Number.isInteger(o.tasks) || o.tasks < 1) throw new UserError(`tasks = ${o.tasks}: use a whole number >= 1`);
  if (o.gammas.length === 0) throw new UserError("give at least one gamma");
  const rng = new Rng(o.seed);
  const head2 = o.head2 ?? "exact";
  const causal = o.causal ?? false;
  if (causal && (o.loss !== "pl" || o.steps !== 1 || head2 !== "exact")) {
    throw new UserError("the causal (online PL, App. F.2) construction exists for --loss pl, --steps 1 and --head2 exact only");
  }
  const tasks: { task: TheoryTask; traj: GdTrajectory }[] = [];
  let minGap = Infinity;
  for (let t = 0; t < o.tasks; t++) {
    const task = sampleTask(rng, o.n, o.spec);
    validateTask(task, o.loss, o.n);
    const traj = gradientDescent(o.loss, task.W0, task.x, task.ys, task.r, o.eta, o.steps);
    if (causal) traj.ys[1] = onlinePlUpdate(task.W0, task.x, task.ys, task.r, o.eta);
    validateBound(task, traj, head2, o.bound ?? 64);
    const sorted = [...task.r].sort((a, b) => b - a);
    for (let k = 1; k < sorted.length; k++) minGap = Math.min(minGap, sorted[k - 1]! - sorted[k]!);
    tasks.push({ task, traj });
  }
  const rows: ErrorRow[] = [];
  const lossTf = new Array<number>(o.steps + 1).fill(0);
  const largest = Math.max(...o.gammas);
  o.gammas.forEach((gamma, gi) => {
    const perStep = new Array<number>(o.steps).fill(0);
    let sum = 0;
    for (const { task, traj } of tasks) {
      const bound = o.bound !== undefined ? { bound: o.bound } : {};
      const got = causal
        ? [runOnlinePl(task, { eta: o.eta, gamma, ...bound })]
        : runConstruction(task, {
            loss: o.loss,
            eta: o.eta,
            gamma,
            steps: o.steps,
            head2,
            ...bound,
            ...(o.squareStep !== undefined ? { squareStep: o.squareStep } : {}),
          });
      let taskMax = 0;
      got.forEach((ys, k) => {
        const e = maxAbsDiff(ys, traj.ys[k + 1]!);
        perStep[k] = Math.max(perStep[k]!, e);
        taskMax = Math.max(taskMax, e);
      });
      sum += taskMax;
      if (!causal && gamma === largest && gi === o.gammas.indexOf(largest)) {
        lossTf[0] = lossTf[0]! + alignmentLoss(o.loss, task.W0, task.x, task.ys, task.r) / tasks.length;
        got.forEach((ys, k) => {
          lossTf[k + 1] = lossTf[k + 1]! + alignmentLoss(o.loss, task.W0, task.x, ys, task.r) / tasks.length;
        });
      }
    }
    const row: ErrorRow = {
      gamma,
      max_abs_err: Math.max(...perStep),
      mean_abs_err: sum / tasks.length,
      max_abs_err_per_step: perStep,
    };
    rows.push(row);
    o.onGamma?.(row, gi);
  });
  const lossRef = new Array<number>(o.steps + 1).fill(0);
  for (const { traj } of tasks) {
    traj.loss.forEach((l, k) => {
      lossRef[k] = lossRef[k]! + l / tasks.length;
    });
  }
  // The online update is no gradient step of one loss, so there is no loss trajectory to report.
  if (causal) return { rows, min_reward_gap: minGap, loss_reference: [], loss_transformer: [] };
  return { rows, min_reward_gap: minGap, loss_reference: lossRef, loss_transformer: lossTf };
}

/** The gammas `lab theory` measures by default: 1 to 1e12, about three per decade up to 1e5. */
export const DEFAULT_GAMMAS = "1,3,10,30,100,300,1e3,3e3,1e4,3e4,1e5,1e6,1e8,1e10,1e12";

/** "1,10,1e3" -> [1, 10, 1000], sorted, deduplicated, each in (0, GAMMA_MAX]. */
export function parseGammas(arg: string): number[] {
  const parts = arg.split(",").map((s) => s.trim()).filter(Boolean);
  if (parts.length === 0) throw new UserError(`--gamma: expected a comma-separated list such as 1,10,100,1e6, got "${arg}"`);
  const gs = parts.map((p) => {
    const g = Number(p);
    if (!Number.isFinite(g) || g <= 0) throw new UserError(`--gamma: "${p}" is not a positive number; the temperature must be > 0`);
    if (g > GAMMA_MAX) {
      throw new UserError(`--gamma: ${p} is above ${GAMMA_MAX}, the largest usable in float64 (the PL masking push gamma^2 would overflow)`);
    }
    return g;
  });
  return [...new Set(gs)].sort((a, b) => a - b);
}
