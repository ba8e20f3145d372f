/**
 * A measured rate with its 95% interval, as metrics compute it and as the view sends it. Type-only and
 * import-free, so the browser build of the view can use it without pulling in eval code.
 */
export interface Proportion {
  k: number;
  n: number;
  /** k / n, null when n = 0. */
  rate: number | null;
  /** Wilson score interval, 95%. */
  low: number | null;
  high: number | null;
}
