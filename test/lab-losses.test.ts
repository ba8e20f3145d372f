import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { resolve } from "node:path";
import { Rng } from "../src/util/rng.js";
import { plLossICA, btLoss, cosineErrorCurve, plLossSingle, type ScoreKind } from "../src/lab/losses.js";
import { sampleIcaBatch } from "../src/lab/task.js";

const fixturePath = resolve(process.cwd(), "test/engine-fixtures/ica_gpt_tiny.json");

function randn(rng: Rng, len: number): Float64Array {
  const a = new Float64Array(len);
  for (let i = 0; i < len; i++) a[i] = rng.normal();
  return a;
}

/** Central finite differences of f at x, compared with the analytic gradient entry by entry. */
function checkGrad(f: (x: Float64Array) => number, x: Float64Array, grad: Float64Array, h = 1e-6, tol = 1e-6): void {
  for (let i = 0; i < x.length; i++) {
    const old = x[i]!;
    x[i] = old + h;
    const up = f(x);
    x[i] = old - h;
    const down = f(x);
    x[i] = old;
    const fd = (up - down) / (2 * h);
    const err = Math.abs(fd - grad[i]!);
    assert.ok(err <= tol * Math.max(1, Math.abs(fd)), `grad[${i}]: analytic ${grad[i]} vs finite difference ${fd}`);
  }
}

test("plLossICA reproduces the float64 PyTorch loss of the fixture (cosine score)", () => {
  const fx = JSON.parse(readFileSync(fixturePath, "utf8"));
  const { dims: d, points: n, batch: B } = fx.config;
  const f64 = (a: number[]) => Float64Array.from(a);
  const { loss } = plLossICA(f64(fx.pred), f64(fx.inputs.ys), f64(fx.inputs.rs), B, n, d, { score: "cosine" });
  assert.ok(Math.abs(loss - fx.loss) < 1e-12, `loss ${loss} vs PyTorch ${fx.loss}`);
});

for (const score of ["cosine", "neg-sq"] as ScoreKind[]) {
  test(`plLossICA gradient matches finite differences (${score})`, () => {
    const rng = new Rng(7);
    const B = 3, n = 6, d = 4;
    const batch = sampleIcaBatch(rng, B, n, d);
    const pred = randn(rng, B * n * d);
    const { loss, grad } = plLossICA(pred, batch.ys, batch.rs, B, n, d, { score });
    assert.ok(Number.isFinite(loss) && loss > 0);
    // Positions 0 and 1 are not trained.
    for (let b = 0; b < B; b++) for (let k = 0; k < 2 * d; k++) assert.equal(grad[b * n * d + k], 0);
    checkGrad((x) => plLossICA(x, batch.ys, batch.rs, B, n, d, { score }).loss, pred, grad);
  });

  test(`btLoss is the 2-item PL case and its gradient matches finite differences (${score})`, () => {
    const rng = new Rng(11);
    const count = 5, d = 3;
    const pred = randn(rng, count * d), yw = randn(rng, count * d), yl = randn(rng, count * d);
    const { loss, grad } = btLoss(pred, yw, yl, count, d, { score });
    checkGrad((x) => btLoss(x, yw, yl, count, d, { score }).loss, pred, grad);
    // Same value as the PL loss on two responses ranked winner first, and the closed form.
    let pl = 0, closed = 0;
    for (let c = 0; c < count; c++) {
      const ys = new Float64Array(2 * d);
      ys.set(yw.subarray(c * d, c * d + d), 0);
      ys.set(yl.subarray(c * d, c * d + d), d);
      pl += plLossSingle(pred, c * d, ys, 0, Float64Array.from([0.9, 0.1]), 0, 2, d, score);
      const sc = (y: Float64Array) => {
        const p = pred.subarray(c * d, c * d + d), v = y.subarray(c * d, c * d + d);
        if (score === "neg-sq") return -p.reduce((a, pi, i) => a + (pi - v[i]!) ** 2, 0);
        const dot = p.reduce((a, pi, i) => a + pi * v[i]!, 0);
        return dot / (Math.hypot(...p) * Math.hypot(...v));
      };
      const sw = sc(yw), sl = sc(yl);
      closed += -sw + Math.log(Math.exp(sw) + Math.exp(sl));
    }
    assert.ok(Math.abs(loss - pl / count) < 1e-12);
    assert.ok(Math.abs(loss - closed / count) < 1e-12);
  });
}

test("plLossSingle gradient matches finite differences and ranking follows rewards", () => {
  const rng = new Rng(3);
  const m = 7, d = 5;
  const ys = randn(rng, m * d), p = randn(rng, d);
  const rs = Float64Array.from({ length: m }, () => rng.uniform());
  const g = new Float64Array(d);
  plLossSingle(p, 0, ys, 0, rs, 0, m, d, "cosine", g);
  checkGrad((x) => plLossSingle(x, 0, ys, 0, rs, 0, m, d, "cosine"), p, g);
  // A prediction sitting on the best response: low loss when that response is ranked first, high when last.
  const top = rs.indexOf(Math.max(...rs));
  const spread = ys.map((v) => 3 * v);
  const reversed = rs.map((r) => 1 - r);
  const lFirst = plLossSingle(spread, top * d, spread, 0, rs, 0, m, d, "neg-sq");
  const lLast = plLossSingle(spread, top * d, spread, 0, reversed, 0, m, d, "neg-sq");
  assert.ok(lFirst < lLast, `${lFirst} < ${lLast}`);
});

test("cosineErrorCurve: 0 for the ground truth, 2 for its negation, about 1 for random guesses", () => {
  const rng = new Rng(5);
  const B = 400, n = 4, d = 5;
  const batch = sampleIcaBatch(rng, B, n, d);
  assert.ok(cosineErrorCurve(batch.ystar, batch.ystar, B, n, d).every((v) => Math.abs(v) < 1e-6));
  const neg = batch.ystar.map((v) => -v);
  assert.ok(cosineErrorCurve(neg, batch.ystar, B, n, d).every((v) => Math.abs(v - 2) < 1e-6));
  const rand = randn(rng, B * n * d);
  assert.ok(cosineErrorCurve(rand, batch.ystar, B, n, d).every((v) => Math.abs(v - 1) < 0.1));
});
