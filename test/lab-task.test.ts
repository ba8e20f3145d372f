import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import { sampleIcaBatch, buildTokens, extractPredictions, scatterPredictionGrad, noisyRewards } from "../src/lab/task.js";

test("sampleIcaBatch: shared noise puts every response on the segment between y* and one distractor", () => {
  const B = 4, n = 6, d = 5;
  const a = sampleIcaBatch(new Rng(1), B, n, d, { noise: "shared" });
  const again = sampleIcaBatch(new Rng(1), B, n, d, { noise: "shared" });
  assert.deepEqual(a.ys, again.ys, "seeded");
  for (let b = 0; b < B; b++) {
    // Distractor e = (y_i - r_i y*) / (1 - r_i) must be the same for all i.
    const e = (i: number, k: number) => {
      const o = (b * n + i) * d;
      return (a.ys[o + k]! - a.rs[b * n + i]! * a.ystar[o + k]!) / (1 - a.rs[b * n + i]!);
    };
    for (let i = 1; i < n; i++) for (let k = 0; k < d; k++) assert.ok(Math.abs(e(i, k) - e(0, k)) < 1e-3 * (1 + Math.abs(e(0, k))));
    for (let i = 0; i < n; i++) {
      const r = a.rs[b * n + i]!;
      assert.ok(r >= 0 && r < 1);
      for (let k = 0; k < d; k++) assert.equal(a.xs[(b * n + i) * d + k], a.xs[b * n * d + k], "one query per task");
    }
  }
  const ind = sampleIcaBatch(new Rng(1), B, n, d, { noise: "independent" });
  const o = 0;
  const e0 = (ind.ys[o]! - ind.rs[0]! * ind.ystar[o]!) / (1 - ind.rs[0]!);
  const e1 = (ind.ys[d]! - ind.rs[1]! * ind.ystar[d]!) / (1 - ind.rs[1]!);
  assert.ok(Math.abs(e0 - e1) > 1e-3, "independent noise draws a fresh distractor per response");
});

test("buildTokens interleaves (x, y, [r, 0..]) and the prediction helpers read/write the x tokens", () => {
  const B = 2, n = 3, d = 4;
  const batch = sampleIcaBatch(new Rng(2), B, n, d);
  const tok = buildTokens(batch);
  assert.equal(tok.length, B * 3 * n * d);
  for (let b = 0; b < B; b++) {
    for (let i = 0; i < n; i++) {
      const t = (b * 3 * n + 3 * i) * d, s = (b * n + i) * d;
      assert.deepEqual(Array.from(tok.subarray(t, t + d)), Array.from(batch.xs.subarray(s, s + d)));
      assert.deepEqual(Array.from(tok.subarray(t + d, t + 2 * d)), Array.from(batch.ys.subarray(s, s + d)));
      assert.deepEqual(Array.from(tok.subarray(t + 2 * d, t + 3 * d)), [batch.rs[b * n + i]!, 0, 0, 0]);
    }
  }
  const obs = new Float32Array(B * n).fill(0.5);
  assert.equal(buildTokens(batch, obs)[2 * d], 0.5);
  const pred = extractPredictions(tok, B, n, d);
  assert.deepEqual(pred, batch.xs);
  const g = scatterPredictionGrad(Float64Array.from(batch.xs), B, n, d);
  const roundTrip = extractPredictions(g, B, n, d);
  assert.deepEqual(roundTrip, batch.xs);
  assert.equal(g.reduce((a, v) => a + Math.abs(v), 0), batch.xs.reduce((a, v) => a + Math.abs(v), 0), "zeros elsewhere");
});

test("noisyRewards replaces a fraction p of the rewards with fresh uniforms", () => {
  const count = 200_000;
  const rs = new Float32Array(count).fill(2); // outside [0, 1) so a replaced value is recognisable
  for (const p of [0, 0.25, 0.5, 0.75, 1]) {
    const out = noisyRewards(new Rng(9), rs, p);
    let replaced = 0, sum = 0;
    for (let i = 0; i < count; i++) if (out[i] !== 2) { replaced++; sum += out[i]!; }
    const frac = replaced / count;
    const sd = Math.sqrt((p * (1 - p)) / count);
    assert.ok(Math.abs(frac - p) <= 5 * sd + 1e-12, `p=${p}: replaced ${frac}`);
    if (replaced > 1000) assert.ok(Math.abs(sum / replaced - 0.5) < 0.01, "replacements are U(0, 1)");
  }
  assert.throws(() => noisyRewards(new Rng(1), rs, 1.5), /\[0, 1\]/);
  assert.throws(() => noisyRewards(new Rng(1), rs, -0.1), /\[0, 1\]/);
});
