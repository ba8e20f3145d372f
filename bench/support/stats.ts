/** Sample statistics for comparing two groups of training runs (seeds of two implementations). */

export const mean = (xs: number[]): number => xs.reduce((s, x) => s + x, 0) / xs.length;

/** Sample standard deviation (n - 1); 0 for fewer than two values. */
export function sd(xs: number[]): number {
  if (xs.length < 2) return 0;
  const m = mean(xs);
  return Math.sqrt(xs.reduce((s, x) => s + (x - m) ** 2, 0) / (xs.length - 1));
}

/** Welch's t of mean(a) - mean(b): the difference over its standard error, unequal variances. */
export function welchT(a: number[], b: number[]): number {
  const se = Math.sqrt(sd(a) ** 2 / a.length + sd(b) ** 2 / b.length);
  const diff = mean(a) - mean(b);
  return se > 0 ? diff / se : diff === 0 ? 0 : Math.sign(diff) * Infinity;
}

/**
 * Exact two-sided permutation test of a difference of means: the share of all ways of splitting the pooled
 * values into groups of a's and b's sizes whose |difference of means| is at least the observed one. It assumes
 * nothing about the spread's shape, which matters for a handful of seeds with a skewed spread.
 */
export function permutationP(a: number[], b: number[]): number {
  const pooled = [...a, ...b];
  const n = pooled.length;
  const k = a.length;
  if (binomial(n, k) > 2_000_000) throw new Error(`permutationP: ${n} choose ${k} splits is too many to enumerate`);
  const total = pooled.reduce((s, x) => s + x, 0);
  const observed = Math.abs(mean(a) - mean(b));
  // a small tolerance so that splits equal to the observed one up to rounding count as extreme
  const bar = observed - 1e-12 * Math.max(1, Math.abs(total));
  let extreme = 0;
  let splits = 0;
  // every k-subset of pooled, by the index of its next member and the sum of those picked so far
  const visit = (start: number, picked: number, sum: number): void => {
    if (picked === k) {
      splits++;
      if (Math.abs(sum / k - (total - sum) / (n - k)) >= bar) extreme++;
      return;
    }
    for (let i = start; i <= n - (k - picked); i++) visit(i + 1, picked + 1, sum + pooled[i]!);
  };
  visit(0, 0, 0);
  return extreme / splits;
}

function binomial(n: number, k: number): number {
  let r = 1;
  for (let i = 1; i <= k; i++) r = (r * (n - k + i)) / i;
  return r;
}
