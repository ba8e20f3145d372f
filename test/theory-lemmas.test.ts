// One test per lemma of App. E, so a failure names the part of the construction that broke.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import {
  Layout,
  broadcastLayer,
  constantFeatureFfn,
  copyResponsesFfn,
  ffnHidden,
  forward,
  gradientStep,
  headOutput,
  attentionWeights,
  maskingFfn,
  matVec,
  maxRewardHead,
  modelRewards,
  plBlock,
  sampleTask,
  softmax,
  sqNorm,
  squareFeatureFfn,
  topResponseHead,
  validateConstructionOptions,
  weightedAverageHead,
  applyLayer,
  causalBroadcastLayer,
  causalTopResponseHead,
  maskUpdateFfn,
  prefixRescaleFfn,
  type TheoryTask,
  type Tokens,
} from "../src/lab/theory/index.js";

const ETA = 0.1;
const B = 64;

/** The state right before a gradient step's heads: input, constant 1, working rows, X_p, broadcast. */
function prepared(task: TheoryTask, withSquare = false): { L: Layout; X: Tokens } {
  const L = new Layout(task.x.length, task.ys[0]!.length, task.ys.length, 1);
  const layers = [constantFeatureFfn(L), copyResponsesFfn(L, 0, B), broadcastLayer(L, 0)];
  if (withSquare) layers.push(squareFeatureFfn(L, 0, task.W0, 16, 1 / 64));
  return { L, X: forward(layers, L.embed(task.x, task.ys, task.r)) };
}

function argmax(a: number[]): number {
  return a.reduce((best, v, i) => (v > a[best]! ? i : best), 0);
}

function maxAbs(a: ArrayLike<number>, b: ArrayLike<number>): number {
  let m = 0;
  for (let i = 0; i < a.length; i++) m = Math.max(m, Math.abs(a[i]! - b[i]!));
  return m;
}

test("Lemma E.2 pre-processing: the bias-only FFN appends the constant 1 and changes nothing else", () => {
  const task = sampleTask(new Rng(1), 4);
  const L = new Layout(5, 5, 4, 1);
  const X0 = L.embed(task.x, task.ys, task.r);
  const f = constantFeatureFfn(L);
  assert.equal(f.w1.nnz() + f.w2.nnz(), 0, "W_1 = W_2 = 0");
  const X1 = applyLayer(f, X0);
  X1.forEach((e, i) => {
    assert.equal(e[L.one], 1);
    for (let d = 0; d < L.dim; d++) if (d !== L.one) assert.equal(e[d], X0[i]![d]);
  });
});

test("working-copy FFN (Thm 3.3) and positional gate (Lemma E.3's X_p) copy y exactly, bit for bit", () => {
  const rng = new Rng(2);
  const n = 5;
  const task = sampleTask(rng, n);
  // Include values the gate must not round: tiny, huge-but-bounded, negative zero-adjacent.
  task.ys[0] = [1e-300, -1e-20, B, -B, 0.1 + 0.2];
  const L = new Layout(5, 5, n, 1);
  const X = forward([constantFeatureFfn(L), copyResponsesFfn(L, 0, B)], L.embed(task.x, task.ys, task.r));
  const S = L.step[0]!;
  X.forEach((e, j) => {
    assert.deepEqual(Array.from(e.subarray(S.yw.start, S.yw.start + 5)), task.ys[j], "yw = y");
    assert.equal(e[S.rw], task.r[j], "rw = r");
    for (let l = 0; l < n; l++) {
      for (let c = 0; c < 5; c++) assert.equal(e[L.slot(S.spread, l, c)], l === j ? task.ys[j]![c] : 0, `slot ${l} of token ${j}`);
    }
  });
});

test("Lemma E.4: uniform attention broadcasts every response into every token (exact up to rounding)", () => {
  const task = sampleTask(new Rng(3), 6);
  const { L, X } = prepared(task);
  const layer = broadcastLayer(L, 0);
  const a = attentionWeights(layer.heads[0]!, X);
  for (const row of a) for (const w of row) assert.equal(w, 1 / 6, "W_Q = W_K = 0 gives attention 1/N");
  const S = L.step[0]!;
  for (const e of X) {
    for (let l = 0; l < 6; l++) {
      for (let c = 0; c < 5; c++) {
        const want = task.ys[l]![c]!;
        assert.ok(Math.abs(e[L.slot(S.bcast, l, c)]! - want) <= 4e-16 * Math.abs(want), `slot ${l}`);
      }
    }
  }
});

test("Lemma E.2: the top-1 selection head returns y of the top reward, error <= sum_j exp(-gamma (r+ - r_j)) |y_j - y+|", () => {
  const task = sampleTask(new Rng(4), 5);
  const { L, X } = prepared(task);
  const top = argmax(task.r);
  let previous = Infinity;
  for (const gamma of [1, 10, 100, 1e3, 1e4, 1e8, 1e150]) {
    const head = topResponseHead(L, 0, gamma, ETA);
    const out = headOutput(head, X);
    // The soft arg-max is the same for every query token (K^T Q is constant along queries).
    for (const o of out) assert.deepEqual(Array.from(o), Array.from(out[0]!));
    const err = maxAbs(out[0]!, task.ys[top]!);
    let bound = 0;
    task.r.forEach((rj, j) => {
      if (j !== top) bound += Math.exp(-gamma * (task.r[top]! - rj)) * maxAbs(task.ys[j]!, task.ys[top]!);
    });
    assert.ok(err <= bound + 1e-15, `gamma ${gamma}: err ${err} > bound ${bound}`);
    assert.ok(err <= previous + 1e-15, "error shrinks as gamma grows");
    previous = err;
  }
  assert.ok(previous <= 1e-15, "hard max at large gamma: exact");
  // P_1 = -2 eta I writes into the y row only.
  const head = topResponseHead(L, 0, 1e8, ETA);
  const dense = head.proj.toDense();
  dense.forEach((row, d) => {
    row.forEach((v, c) => {
      assert.equal(v, d === L.y.start + c ? -2 * ETA : 0);
    });
  });
});

test("Lemma E.6 H3: the max-reward head returns r+ <= max r, converging to it as gamma grows", () => {
  const task = sampleTask(new Rng(5), 6);
  const { L, X } = prepared(task);
  const rmax = Math.max(...task.r);
  let previous = Infinity;
  for (const gamma of [1, 10, 100, 1e4, 1e8]) {
    const rPlus = headOutput(maxRewardHead(L, 0, gamma), X)[0]![0]!;
    assert.ok(rPlus <= rmax + 1e-16, "a softmax average never exceeds the max");
    assert.ok(rmax - rPlus <= previous);
    previous = rmax - rPlus;
  }
  assert.equal(previous, 0);
});

test("Lemmas E.3 + E.5 (exact): head 2's weights are softmax(-||Wx - y_j||^2) to rounding, its output sum_j beta_j y_j", () => {
  for (const seed of [6, 7, 8]) {
    const task = sampleTask(new Rng(seed), 7);
    const { L, X } = prepared(task);
    const head = weightedAverageHead(L, 0, task.W0, ETA, "exact", 0);
    const beta = softmax(modelRewards(task.W0, task.x, task.ys));
    const a = attentionWeights(head, X);
    for (const row of a) assert.ok(maxAbs(row, beta) <= 1e-15, `weights ${maxAbs(row, beta)}`);
    // The score itself is -||Wx - y_j||^2 up to the per-query constant ||Wx||^2 (cancels in the softmax).
    const q = head.wq.mulVec(X[0]!);
    const wx2 = sqNorm(matVec(task.W0, task.x));
    X.forEach((e, j) => {
      const k = head.wk.mulVec(e);
      let score = 0;
      k.forEach((v, t) => {
        score += v * q[t]!;
      });
      const want = modelRewards(task.W0, task.x, [task.ys[j]!])[0]! + wx2;
      assert.ok(Math.abs(score - want) <= 1e-12 * (1 + Math.abs(want)));
    });
    const out = headOutput(head, X)[0]!;
    const avg = task.ys[0]!.map((_, c) => task.ys.reduce((s, y, j) => s + beta[j]! * y[c]!, 0));
    assert.ok(maxAbs(out, avg) <= 1e-14);
  }
});

test("Lemma E.5 (approximate): the piecewise-linear square FFN is within [0, h^2/4] of z^2, and head 2's weights follow", () => {
  const task = sampleTask(new Rng(9), 5);
  const h = 1 / 64;
  const { L, X } = prepared(task, true);
  const S = L.step[0]!;
  const exact = modelRewards(task.W0, task.x, task.ys);
  X.forEach((e, j) => {
    const gap = exact[j]! - e[S.sc]!; // feature = -sum f(z) <= -||z||^2
    assert.ok(gap >= -1e-12 && gap <= (5 * h * h) / 4 + 1e-12, `feature error ${gap}`);
  });
  // The FFN on its own, on a grid of z (one coordinate), against the h^2/4 bound.
  const one = new Layout(1, 1, 1, 1);
  const sq = squareFeatureFfn(one, 0, [[0]], 2, 0.25);
  for (let z = -2; z <= 2; z += 0.01) {
    const e = new Float64Array(one.dim);
    e[one.step[0]!.yw.start] = -z; // W x - yw = z with W = 0
    const f = -applyLayer(sq, [e])[0]![one.step[0]!.sc]!;
    assert.ok(f - z * z >= -1e-12 && f - z * z <= 0.25 ** 2 / 4 + 1e-12, `z = ${z}: f = ${f}`);
  }
  const head = weightedAverageHead(L, 0, task.W0, ETA, "approx", 0);
  const a = attentionWeights(head, X)[0]!;
  const beta = softmax(exact);
  assert.ok(maxAbs(a, beta) <= 5 * ((5 * h * h) / 4), "weights off by at most ~ the score error");
});

test("Lemma E.7: the masking FFN pushes exactly the current top token, by -gamma, and leaves the rest untouched", () => {
  const gamma = 1e4;
  const L = new Layout(5, 5, 4, 1);
  const S = L.step[0]!;
  const ffn = maskingFfn(L, 0, gamma, gamma);
  // After H3 the working reward holds r_i - r+: eps >= 0 for the top, below -2/gamma for the others.
  const rw = [3e-9, -0.2, -2.5 / gamma, -1];
  const X = rw.map((v, i) => {
    const e = new Float64Array(L.dim);
    e[L.one] = 1;
    e[S.rw] = v;
    e[S.yw.start] = i + 0.5;
    return e;
  });
  const Y = applyLayer(ffn, X);
  assert.deepEqual(Array.from(ffnHidden(ffn, X[0]!)), [2 + gamma * 3e-9, 1 + gamma * 3e-9]);
  // The step (2 + t) - (1 + t) is 1 up to one rounding of t = gamma * eps.
  assert.ok(Math.abs(Y[0]![S.rw]! - (3e-9 - gamma)) <= 1e-15 * gamma, "top token's reward pushed down by gamma");
  assert.ok(Math.abs(Y[0]![S.far]! + gamma) <= 1e-15 * gamma, "top token's working copy pushed away by gamma");
  for (let i = 1; i < 4; i++) assert.deepEqual(Array.from(Y[i]!), Array.from(X[i]!), `token ${i} unchanged`);
  assert.equal(Y[0]![S.yw.start], 0.5, "the working copy's y part is never edited");
  // Rounding can leave the top token a hair below r+: the step still fires fully.
  assert.ok(Math.abs(applyLayer(ffn, [Float64Array.from(X[0]!).fill(-1e-17, S.rw, S.rw + 1)])[0]![S.far]! + gamma) <= 1e-15 * gamma);
  // With an exact hard max (large gamma) eps is 0 and the push is exact.
  assert.equal(applyLayer(ffn, [Float64Array.from(X[0]!).fill(0, S.rw, S.rw + 1)])[0]![S.far], -gamma);
});

test("Lemma E.6 + E.7: one PL block adds g^1 = -2 eta y_tau(1) + 2 eta sum_j beta^1_j y_j and masks tau(1)", () => {
  const task = sampleTask(new Rng(10), 5);
  const o = validateConstructionOptions({ loss: "pl", W: task.W0, eta: ETA, gamma: 1e8, n: 5 });
  const { L, X } = prepared(task);
  const after = forward(plBlock(L, 0, 1, o), X);
  const ref = gradientStep("pl", task.W0, task.x, task.ys, task.r, ETA).betas[0]!;
  const g1 = task.ys[0]!.map(
    (_, c) => -2 * ETA * task.ys[ref.top]![c]! + 2 * ETA * ref.pool.reduce((s, j, t) => s + ref.beta[t]! * task.ys[j]![c]!, 0),
  );
  after.forEach((e, i) => {
    const got = Array.from(e.subarray(L.y.start, L.y.start + 5)).map((v, c) => v - task.ys[i]![c]!);
    assert.ok(maxAbs(got, g1) <= 1e-14, `token ${i}`);
    assert.equal(e[L.step[0]!.far], i === ref.top ? -1e8 : 0, "only tau(1) is masked");
  });
  // The next block's H1 now selects tau(2).
  const next = headOutput(topResponseHead(L, 0, 1e8, ETA), after)[0]!;
  const tau2 = ref.pool.filter((j) => j !== ref.top).reduce((b, j) => (task.r[j]! > task.r[b]! ? j : b));
  assert.deepEqual(Array.from(next), task.ys[tau2]);
});

test("App. F.2 pre-processing: causal broadcast gives the prefix mean, the rescale FFN the prefix itself", () => {
  const task = sampleTask(new Rng(11), 5);
  const L = new Layout(5, 5, 5, 1, true);
  const S = L.step[0]!;
  const X = forward(
    [constantFeatureFfn(L), copyResponsesFfn(L, 0, B), causalBroadcastLayer(L, 0), prefixRescaleFfn(L, 0, B)],
    L.embed(task.x, task.ys, task.r),
  );
  X.forEach((e, i) => {
    for (let l = 0; l < 5; l++) {
      for (let c = 0; c < 5; c++) {
        const want = l <= i ? task.ys[l]![c]! : 0;
        assert.ok(Math.abs(e[L.slot(S.bcast, l, c)]! - want / (i + 1)) <= 1e-15 * Math.abs(want), "causal mean");
        assert.ok(Math.abs(e[L.slot(S.bsum, l, c)]! - want) <= 4e-16 * Math.abs(want), `token ${i} slot ${l}: prefix`);
      }
    }
  });
});

test("Lemma F.1: the causal top-1 head picks, per query, the best reward in its prefix that it has not masked", () => {
  const task = sampleTask(new Rng(12), 5);
  task.r = [0.3, 0.9, 0.5, 0.7, -1];
  const L = new Layout(5, 5, 5, 1, true);
  const S = L.step[0]!;
  const X = forward([constantFeatureFfn(L), copyResponsesFfn(L, 0, B)], L.embed(task.x, task.ys, task.r));
  X[3]![S.m.start + 1] = 1; // token 3 has already ranked token 1 (r = 0.9)
  const head = causalTopResponseHead(L, 0, 1e6, ETA);
  const out = headOutput(head, X, true);
  const want = [0, 1, 1, 3, 1]; // argmax of r over j <= i, skipping token 1 for query 3
  out.forEach((o, i) => {
    assert.deepEqual(Array.from(o.subarray(0, 5)), task.ys[want[i]!], `query ${i}: y+`);
    assert.deepEqual(Array.from(o.subarray(5)), [0, 1, 2, 3, 4].map((a) => (a === want[i] ? 1 : 0)), `query ${i}: p+`);
  });
});

test("App. F.2 mask update: m_i += p+ while position i > k, and the scratch row is cleared exactly", () => {
  const L = new Layout(5, 5, 4, 1, true);
  const S = L.step[0]!;
  const X = [0, 1, 2, 3].map((i) => {
    const e = new Float64Array(L.dim);
    e[L.one] = 1;
    e[L.pe.start + i] = 1;
    e[S.pplus.start + 2] = 1 - 1e-17; // a soft p+ pointing at token 2
    e[S.pplus.start + 0] = 3e-20;
    return e;
  });
  const Y = applyLayer(maskUpdateFfn(L, 0, 2), X); // block k = 2: positions 3 and 4 (indices 2, 3) mask
  Y.forEach((e, i) => {
    assert.deepEqual(Array.from(e.subarray(S.pplus.start, S.pplus.start + 4)), [0, 0, 0, 0], "scratch cleared");
    const m = Array.from(e.subarray(S.m.start, S.m.start + 4));
    assert.deepEqual(m, i >= 2 ? [3e-20, 0, 1 - 1e-17, 0] : [0, 0, 0, 0], `token ${i}`);
  });
});
