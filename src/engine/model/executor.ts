import type { Kernels } from "../kernels/types.js";
import type { ResolvedConfig } from "./config.js";
import type { ResolvedAdam } from "./config.js";
import { forwardPass } from "./forward.js";
import { backwardPass } from "./backward.js";
import type { HeapPlan } from "./layout.js";

/**
 * Runs forward / backward / Adam over a heap laid out by a HeapPlan. The caller (Model) writes the
 * input and dOutput into the heap and reads the output, parameters and gradients from it directly.
 */
export interface Executor {
  readonly threads: number;
  readonly plan: HeapPlan;
  /** The heap as seen from the calling thread. */
  heap(): Float32Array | Float64Array;
  forward(B: number, T: number): Promise<void>;
  /** Overwrites the gradient buffer with dLoss/dParams of the last forward. */
  backward(B: number, T: number): Promise<void>;
  adam(opt: ResolvedAdam, t: number): Promise<void>;
  dispose(): Promise<void>;
}

/** One shard's forward, on any thread: rows [lo, hi) of the batch. */
export function runForwardShard(k: Kernels, c: ResolvedConfig, plan: HeapPlan, w: number, lo: number, hi: number, T: number): void {
  if (hi <= lo) return;
  const wp = plan.workers[w]!;
  forwardPass(
    k, c, plan.params.ptrsAt(plan.paramsPtr), wp.acts,
    plan.inputPtr + lo * T * c.inputDim, plan.outputPtr + lo * T * c.outputDim, hi - lo, T,
  );
}

/** One shard's backward into the worker's own (zeroed) gradient buffer. */
export function runBackwardShard(k: Kernels, c: ResolvedConfig, plan: HeapPlan, w: number, lo: number, hi: number, T: number): void {
  const wp = plan.workers[w]!;
  k.fill(wp.gradsPtr, 0, plan.params.count);
  if (hi <= lo) return;
  backwardPass(
    k, c, plan.params.ptrsAt(plan.paramsPtr), plan.params.ptrsAt(wp.gradsPtr), wp.acts, wp.scratch,
    plan.inputPtr + lo * T * c.inputDim, plan.doutPtr + lo * T * c.outputDim, hi - lo, T,
  );
}

/** Everything on the calling thread (threads = 1, and the float64 path). */
export class LocalExecutor implements Executor {
  readonly threads = 1;
  constructor(
    private k: Kernels,
    private readonly c: ResolvedConfig,
    readonly plan: HeapPlan,
    private readonly release: () => void = () => {},
  ) {}

  heap(): Float32Array | Float64Array {
    return this.k.heap();
  }

  /** Replaces the kernels by a wrapper around them (profiling). */
  wrapKernels(wrap: (k: Kernels) => Kernels): void {
    this.k = wrap(this.k);
  }

  async forward(B: number, T: number): Promise<void> {
    runForwardShard(this.k, this.c, this.plan, 0, 0, B, T);
  }

  async backward(B: number, T: number): Promise<void> {
    runBackwardShard(this.k, this.c, this.plan, 0, 0, B, T);
  }

  async adam(o: ResolvedAdam, t: number): Promise<void> {
    const p = this.plan;
    this.k.adamUpdate(p.paramsPtr, p.gradsPtr, p.mPtr, p.vPtr, p.params.count, o.lr, o.beta1, o.beta2, o.eps, t);
  }

  async dispose(): Promise<void> {
    this.release();
  }
}
