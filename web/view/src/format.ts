import type { Value } from "./api";

/** "0.667 [0.467, 0.820] (16/24)": a rate with its Wilson 95% interval, as the eval report writes it. */
export function fmtValue(v: Value | undefined): string {
  if (v === null || v === undefined) return "—";
  if (typeof v === "number") return v.toFixed(3);
  if (v.rate === null) return "—";
  return `${v.rate.toFixed(3)} [${(v.low ?? 0).toFixed(3)}, ${(v.high ?? 0).toFixed(3)}] (${v.k}/${v.n})`;
}

export const rateOf = (v: Value | undefined): number | null => (v === null || v === undefined ? null : typeof v === "number" ? v : v.rate);

export const roundLabel = (r: number, R: number) => (r === 0 ? (R === 0 ? "answer" : "initial") : `round ${r}`);

export const ms = (x: number) => (x >= 1000 ? `${(x / 1000).toFixed(2)} s` : `${Math.round(x)} ms`);
