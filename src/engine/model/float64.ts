import type { ModelConfig } from "../api.js";
import { createReferenceKernels } from "../kernels/reference.js";
import { resolveConfig, type ResolvedConfig } from "./config.js";
import { runBackwardLocal, runForwardLocal } from "./executor.js";
import { initParams } from "./init.js";
import { planHeap, type HeapPlan } from "./layout.js";

/**
 * The model in float64 with the plain-JS reference kernels, on the calling thread: the float64
 * path for finite-difference gradient checks. Parameters and gradients are live views into the heap.
 */
export interface Float64Model {
  readonly config: ResolvedConfig;
  readonly plan: HeapPlan;
  readonly names: string[];
  forward(input: ArrayLike<number>, B: number, T: number): Float64Array;
  /** Overwrites the gradients with those of dOutput for the last forward's input. */
  backward(dOutput: ArrayLike<number>, B: number, T: number): void;
  param(name: string): Float64Array;
  grad(name: string): Float64Array;
}

export function createFloat64Model(config: ModelConfig, opts: { seed: number; maxBatch: number }): Float64Model {
  const c = resolveConfig(config);
  const plan = planHeap(c, { maxBatch: opts.maxBatch, workers: 1, baseFloats: 16, kernelScratchFloats: 0 });
  const heap = new Float64Array(plan.totalFloats);
  const k = createReferenceKernels(heap);
  initParams(heap, plan.paramsPtr, plan.params, opts.seed);
  const specs = new Map(plan.params.specs.map((s) => [s.name, s]));
  const view = (base: number, name: string) => {
    const s = specs.get(name);
    if (!s) throw new Error(`no parameter named ${name}`);
    return heap.subarray(base + s.offset, base + s.offset + s.size);
  };
  return {
    config: c,
    plan,
    names: plan.params.specs.map((s) => s.name),
    forward(input, B, T) {
      heap.set(input, plan.inputPtr);
      runForwardLocal(k, c, plan, B, T);
      return heap.slice(plan.outputPtr, plan.outputPtr + B * T * c.outputDim);
    },
    backward(dOutput, B, T) {
      heap.set(dOutput, plan.doutPtr);
      runBackwardLocal(k, c, plan, B, T);
    },
    param: (name) => view(plan.paramsPtr, name),
    grad: (name) => view(plan.gradsPtr, name),
  };
}
