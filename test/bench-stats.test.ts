/**
 * The statistics that compare two implementations' seeds (bench/support/stats.ts), against values worked out
 * by hand: Welch's t and the exact permutation test, whose p-value is a count of splits.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mean, permutationP, sd, welchT } from "../bench/support/stats.js";

test("mean and sample sd", () => {
  assert.equal(mean([1, 2, 3, 4]), 2.5);
  assert.ok(Math.abs(sd([1, 2, 3, 4]) - Math.sqrt(5 / 3)) < 1e-15);
  assert.equal(sd([7]), 0);
});

test("Welch's t: difference over its unequal-variance standard error", () => {
  // sd 1 in both groups of 3: se = sqrt(1/3 + 1/3)
  assert.ok(Math.abs(welchT([1, 2, 3], [4, 5, 6]) + 3 / Math.sqrt(2 / 3)) < 1e-12);
  // unequal sizes and spreads: a = {0, 2} (var 2), b = {1, 1, 4} (var 3), diff -1, se = sqrt(2/2 + 3/3)
  assert.ok(Math.abs(welchT([0, 2], [1, 1, 4]) + 1 / Math.sqrt(2)) < 1e-12);
  assert.equal(welchT([1, 1], [1, 1]), 0);
});

test("permutation p: the share of splits at least as far apart as the observed one", () => {
  // of the 20 ways to pick 3 of 6, only {1,2,3} and {4,5,6} are as far apart as the observed split
  assert.equal(permutationP([1, 2, 3], [4, 5, 6]), 2 / 20);
  assert.equal(permutationP([4, 5, 6], [1, 2, 3]), 2 / 20);
  // identical groups: every split is at least as extreme as a difference of 0
  assert.equal(permutationP([1, 2, 3], [1, 2, 3]), 1);
  // {1, 4} vs {2, 3}: |2.5 - 2.5| = 0 observed; all 6 splits count
  assert.equal(permutationP([1, 4], [2, 3]), 1);
  // {1, 2} vs {3, 4, 5}: diff 2.5; of the 10 pairs only {1, 2} (2.5) and {4, 5} (|4.5 - 2| = 2.5) reach it
  assert.equal(permutationP([1, 2], [3, 4, 5]), 2 / 10);
});

test("permutation p refuses a split count it cannot enumerate", () => {
  const many = Array.from({ length: 20 }, (_, i) => i);
  assert.throws(() => permutationP(many.slice(0, 15), many.slice(0, 15)), /too many to enumerate/);
});
