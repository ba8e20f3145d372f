// Theorems 3.2 and 3.3 end to end: constructed transformer vs explicit gradient steps.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { UserError } from "../src/util/errors.js";
import {
  GAMMA_MAX,
  alignmentLoss,
  buildGradientStepTransformer,
  checkErrorVsGamma,
  gradientDescent,
  gradientStep,
  maxAbsDiff,
  runConstruction,
  runOnlinePl,
  onlinePlUpdate,
  sampleTask,
  validateTask,
  type AlignmentLoss,
} from "../src/lab/theory/index.js";

const ETA = 0.1;

test("reference: Eq. 9's Delta W is -eta times the finite-difference gradient, and Prop. 3.1's identity holds", () => {
  for (const loss of ["bt", "pl"] as const) {
    const task = sampleTask(new Rng(20), 6);
    const step = gradientStep(loss, task.W0, task.x, task.ys, task.r, ETA);
    const h = 1e-6;
    task.W0.forEach((row, c) => {
      row.forEach((_, m) => {
        const plus = task.W0.map((rr) => [...rr]);
        const minus = task.W0.map((rr) => [...rr]);
        plus[c]![m]! += h;
        minus[c]![m]! -= h;
        const grad = (alignmentLoss(loss, plus, task.x, task.ys, task.r) - alignmentLoss(loss, minus, task.x, task.ys, task.r)) / (2 * h);
        assert.ok(Math.abs(step.dW[c]![m]! + ETA * grad) <= 1e-7, `${loss} dW[${c}][${m}]`);
      });
    });
    // L(W + Delta W; y) = L(W; y - Delta W x)
    const after = alignmentLoss(loss, step.W, task.x, task.ys, task.r);
    const moved = alignmentLoss(loss, task.W0, task.x, step.ys, task.r);
    assert.ok(Math.abs(after - moved) <= 1e-12 * (1 + after), `${loss}: ${after} vs ${moved}`);
    assert.ok(after < alignmentLoss(loss, task.W0, task.x, task.ys, task.r), "one step lowers the loss");
  }
});

// N in {3, 5, 8}, 100 random tasks each, both losses.
const GAMMAS = [1, 10, 100, 1e3, 1e4, 1e5, 1e6, 1e8, GAMMA_MAX];
for (const loss of ["bt", "pl"] as const) {
  test(`Thm ${loss === "bt" ? "3.2 (BT)" : "3.3 (PL)"}: error falls with gamma to float64 rounding, N in {3, 5, 8}, 100 tasks`, () => {
    for (const n of [3, 5, 8]) {
      const res = checkErrorVsGamma({ loss, n, gammas: GAMMAS, steps: 1, tasks: 100, seed: 1, eta: ETA });
      const err = res.rows.map((r) => r.max_abs_err);
      const mean = res.rows.map((r) => r.mean_abs_err);
      const at = (g: number) => err[GAMMAS.indexOf(g)]!;
      assert.ok(at(1e8) <= 1e-6, `${loss} N=${n}: ${at(1e8)} at gamma 1e8`);
      assert.ok(at(GAMMA_MAX) <= 5e-15, `${loss} N=${n}: ${at(GAMMA_MAX)} at the largest gamma`);
      assert.ok(err[0]! > 1e-2, "at gamma = 1 the construction is far from exact (the test can fail)");
      // Monotone once gamma * gap leaves the O(1) regime (gamma >= 100 here), up to the rounding floor.
      for (let k = GAMMAS.indexOf(100); k + 1 < GAMMAS.length; k++) {
        assert.ok(err[k + 1]! <= err[k]! * 1.05 + 1e-14, `${loss} N=${n}: max error rose from gamma ${GAMMAS[k]} to ${GAMMAS[k + 1]}: ${err}`);
      }
      for (let k = GAMMAS.indexOf(10); k + 1 < GAMMAS.length; k++) {
        assert.ok(mean[k + 1]! <= mean[k]! * 1.05 + 1e-14, `${loss} N=${n}: mean error rose at gamma ${GAMMAS[k + 1]}: ${mean}`);
      }
    }
  });
}

test("Thm 3.2, exact variant: error <= 2 eta sum_{j != top} exp(-gamma (r_top - r_j)) |y_j - y_top|_inf for every task", () => {
  const rng = new Rng(21);
  for (let t = 0; t < 40; t++) {
    const task = sampleTask(rng, 5);
    const ref = gradientStep("bt", task.W0, task.x, task.ys, task.r, ETA).ys;
    const top = task.r.indexOf(Math.max(...task.r));
    for (const gamma of [1, 10, 100, 1e3]) {
      const got = runConstruction(task, { loss: "bt", eta: ETA, gamma })[0]!;
      let bound = 0;
      task.ys.forEach((y, j) => {
        if (j !== top) bound += Math.exp(-gamma * (task.r[top]! - task.r[j]!)) * Math.max(...y.map((v, c) => Math.abs(v - task.ys[top]![c]!)));
      });
      const err = maxAbsDiff(got, ref);
      assert.ok(err <= 2 * ETA * bound + 1e-14, `task ${t} gamma ${gamma}: ${err} > ${2 * ETA * bound}`);
    }
  }
});

// K = 1..5 stacked constructions track K gradient steps; the linear model's loss decreases.
for (const loss of ["bt", "pl"] as const) {
  test(`${loss.toUpperCase()}: K = 5 stacked constructions (all built with W_0) track 5 explicit GD steps`, () => {
    const rng = new Rng(22);
    const K = 5;
    for (let t = 0; t < 15; t++) {
      const task = sampleTask(rng, 5);
      const traj = gradientDescent(loss, task.W0, task.x, task.ys, task.r, ETA, K);
      for (let k = 0; k < K; k++) assert.ok(traj.loss[k + 1]! < traj.loss[k]!, `task ${t}: loss did not decrease at step ${k + 1}: ${traj.loss}`);
      for (const gamma of [1e8, GAMMA_MAX]) {
        const got = runConstruction(task, { loss, eta: ETA, gamma, steps: K });
        assert.equal(got.length, K);
        got.forEach((ys, k) => {
          const err = maxAbsDiff(ys, traj.ys[k + 1]!);
          assert.ok(err <= 1e-6, `task ${t} gamma ${gamma} step ${k + 1}: ${err}`);
          // Prop. 3.1 read on the transformer's output: L(W_0; y^(k)) = L(W_k; y).
          const lossTf = alignmentLoss(loss, task.W0, task.x, ys, task.r);
          assert.ok(Math.abs(lossTf - traj.loss[k + 1]!) <= 1e-9 * (1 + traj.loss[k + 1]!));
        });
      }
    }
  });
}

test("approximate head 2 (FFN square feature): error floor set by the knot spacing h, shrinking like h^2", () => {
  const errs = [1 / 8, 1 / 16, 1 / 32].map(
    (h) =>
      checkErrorVsGamma({ loss: "bt", n: 5, gammas: [1e8], steps: 1, tasks: 20, seed: 3, eta: ETA, head2: "approx", bound: 16, squareStep: h })
        .rows[0]!.max_abs_err,
  );
  assert.ok(errs[2]! <= 1e-4, `${errs}`);
  assert.ok(errs[0]! / errs[1]! > 2.5 && errs[1]! / errs[2]! > 2.5, `halving h should cut the error ~4x: ${errs}`);
  const pl = checkErrorVsGamma({ loss: "pl", n: 4, gammas: [1e8], steps: 2, tasks: 10, seed: 3, eta: ETA, head2: "approx", bound: 16, squareStep: 1 / 32 });
  assert.ok(pl.rows[0]!.max_abs_err <= 1e-3, `PL approx ${pl.rows[0]!.max_abs_err}`);
});

test("App. F.2: the causal construction performs the online PL step (token i vs tokens j <= i), N in {3, 5, 8}", () => {
  const gammas = [100, 1e4, 1e6, GAMMA_MAX];
  for (const n of [3, 5, 8]) {
    const res = checkErrorVsGamma({ loss: "pl", n, gammas, steps: 1, tasks: 100, seed: 1, eta: ETA, causal: true });
    const err = res.rows.map((r) => r.max_abs_err);
    assert.ok(err[0]! > 1e-3, `N=${n}: ${err}`);
    assert.ok(err[2]! <= 1e-6 && err[3]! <= 5e-15, `N=${n}: ${err}`);
    for (let k = 0; k + 1 < err.length; k++) assert.ok(err[k + 1]! <= err[k]! + 1e-14, `N=${n}: ${err}`);
  }
  // Causality: changing the last token's response or reward leaves every earlier token's output unchanged,
  // and the online update differs from the full PL step for all but the last token.
  const task = sampleTask(new Rng(25), 6);
  const before = runOnlinePl(task, { eta: ETA, gamma: 1e8 });
  const edited = { ...task, ys: task.ys.map((y, i) => (i === 5 ? y.map((v) => v + 1) : y)), r: [...task.r.slice(0, 5), -3] };
  const after = runOnlinePl(edited, { eta: ETA, gamma: 1e8 });
  for (let i = 0; i < 5; i++) assert.deepEqual(after[i], before[i], `token ${i}`);
  assert.deepEqual(before[0], task.ys[0], "token 1 has nothing to compare with");
  const full = gradientStep("pl", task.W0, task.x, task.ys, task.r, ETA).ys;
  assert.ok(maxAbsDiff(before.slice(5), full.slice(5)) <= 1e-13, "the last token sees everything: online = full PL step");
  assert.ok(maxAbsDiff(before.slice(1, 5), full.slice(1, 5)) > 1e-3);
  assert.ok(maxAbsDiff(before, onlinePlUpdate(task.W0, task.x, task.ys, task.r, ETA)) <= 1e-13);
});

// Invalid parameters are rejected with a UserError, never a silent NaN.
test("invalid parameters are rejected with a UserError naming the problem", () => {
  const task = sampleTask(new Rng(23), 4);
  const base = { loss: "pl" as AlignmentLoss, W: task.W0, eta: ETA, gamma: 100, n: 4 };
  const rejects = (fn: () => unknown, re: RegExp) => assert.throws(fn, (e: unknown) => e instanceof UserError && re.test(e.message));
  rejects(() => buildGradientStepTransformer({ ...base, n: 1 }), /N = 1.*at least 2/);
  for (const gamma of [0, -1, NaN, Infinity]) rejects(() => buildGradientStepTransformer({ ...base, gamma }), /gamma/);
  rejects(() => buildGradientStepTransformer({ ...base, gamma: GAMMA_MAX * 10 }), /largest usable/);
  rejects(() => buildGradientStepTransformer({ ...base, eta: 0 }), /eta/);
  rejects(() => buildGradientStepTransformer({ ...base, steps: 0 }), /steps/);
  rejects(() => validateTask({ ...task, x: task.x.map((v) => 2 * v) }, "pl", 4), /\|\|x\|\| = 2.*unit/);
  const tied = { ...task, r: [0.5, 0.5, 0.2, -1] };
  rejects(() => validateTask(tied, "pl", 4), /equal.*ranking is undefined/);
  rejects(() => runConstruction(tied, { loss: "pl", eta: ETA, gamma: 100 }), /ranking is undefined/);
  rejects(() => validateTask({ ...task, r: [0.9, 0.9, 0.2, -1] }, "bt", 4), /tie for the top/);
  validateTask({ ...task, r: [0.9, 0.3, 0.3, -1] }, "bt", 4); // BT only needs a unique top: allowed
  rejects(() => validateTask({ ...task, r: [0.9, NaN, 0.3, -1] }, "bt", 4), /not a finite number/);
  rejects(() => checkErrorVsGamma({ loss: "pl", n: 4, gammas: [10], steps: 1, tasks: 2, seed: 1, eta: ETA, bound: 0.5 }), /outside the bound/);
  rejects(() => runConstruction({ ...task, r: [1e200, 0.3, 0.2, -1] }, { loss: "pl", eta: ETA, gamma: 1e120 }), /overflow/);
});

test("no silent NaN: extreme but valid settings give finite outputs", () => {
  const task = sampleTask(new Rng(24), 6);
  task.r = [0.5, 0.5 + 1e-15, 0.2, 0.7, 0.1, -1]; // nearly tied rewards
  for (const loss of ["bt", "pl"] as const) {
    for (const gamma of [1e-9, 1e-3, 1, 1e20, GAMMA_MAX]) {
      const out = runConstruction(task, { loss, eta: ETA, gamma, steps: 2 });
      for (const ys of out) for (const y of ys) for (const v of y) assert.ok(Number.isFinite(v), `${loss} gamma ${gamma}: ${v}`);
    }
  }
});
