import { Rng } from "../../util/rng.js";
import type { ParamLayout } from "./layout.js";

/**
 * GPT-2 init, in the parameter order of the layout: weights (and wpe) ~ normal(0, 0.02), biases 0,
 * LayerNorm weights 1. Draws come from one Rng(seed) stream, so a seed fixes every weight.
 */
export function initParams(heap: Float32Array | Float64Array, base: number, layout: Pick<ParamLayout, "specs">, seed: number): void {
  const rng = new Rng(seed);
  for (const s of layout.specs) {
    const at = base + s.offset;
    if (s.init === "normal") for (let i = 0; i < s.size; i++) heap[at + i] = 0.02 * rng.normal();
    else heap.fill(s.init === "one" ? 1 : 0, at, at + s.size);
  }
}
