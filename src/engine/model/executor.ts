import type { Kernels } from "../kernels/types.js";
import type { ResolvedConfig } from "./config.js";
import type { ResolvedAdam } from "./config.js";
import { forwardPass } from "./forward.js";
import { backwardPass } from "./backward.js";
import { actsAtRows, microRows, microShards, type HeapPlan } from "./layout.js";

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

/**
 * Forward of rows [lo, hi) of the batch, on any thread. Unlike backward, forward need not run
 * micro-shard by micro-shard: every forward kernel computes a row (token or sequence) with the same
 * arithmetic whatever the other rows (the GEMM's 2-row and 1-row tiles do the same per-row sums;
 * LayerNorm and attention work per row and per sequence; the rest is elementwise), so a worker runs
 * its micro-shards' rows in one call and gets the bits of any other split (test/engine-threads.test.ts).
 */
export function runForwardRows(k: Kernels, c: ResolvedConfig, plan: HeapPlan, lo: number, hi: number, T: number): void {
  if (hi <= lo) return;
  forwardPass(
    k, c, plan.params.ptrsAt(plan.paramsPtr), actsAtRows(plan.acts, c, lo, T),
    plan.inputPtr + lo * T * c.inputDim, plan.outputPtr + lo * T * c.outputDim, hi - lo, T,
  );
}

/** Backward of micro-shard m into the parameter-gradient buffer `grads` (zeroed first), with worker w's scratch. */
export function runMicroBackward(k: Kernels, c: ResolvedConfig, plan: HeapPlan, w: number, grads: number, B: number, m: number, T: number): void {
  const [lo, hi] = microRows(B, m);
  k.fill(grads, 0, plan.params.count);
  backwardPass(
    k, c, plan.params.ptrsAt(plan.paramsPtr), plan.params.ptrsAt(grads), actsAtRows(plan.acts, c, lo, T), plan.workers[w]!.scratch,
    plan.inputPtr + lo * T * c.inputDim, plan.doutPtr + lo * T * c.outputDim, hi - lo, T,
  );
}

/** Forward of a whole batch on the calling thread. */
export function runForwardLocal(k: Kernels, c: ResolvedConfig, plan: HeapPlan, B: number, T: number): void {
  runForwardRows(k, c, plan, 0, B, T);
}

/**
 * Backward of a whole batch on the calling thread. Micro-shard 0 writes gradsPtr; each later one is
 * computed into plan.microGrads[m] and added to gradsPtr at once: the same additions, in the same
 * order, as the pool's reduce (worker.ts), so one thread and many give the same bits.
 */
export function runBackwardLocal(k: Kernels, c: ResolvedConfig, plan: HeapPlan, B: number, T: number): void {
  for (let m = 0; m < microShards(B); m++) {
    const g = plan.microGrads[m]!;
    runMicroBackward(k, c, plan, 0, g, B, m, T);
    if (m > 0) k.accumulate(plan.gradsPtr, g, plan.params.count);
  }
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
    runForwardLocal(this.k, this.c, this.plan, B, T);
  }

  async backward(B: number, T: number): Promise<void> {
    runBackwardLocal(this.k, this.c, this.plan, B, T);
  }

  async adam(o: ResolvedAdam, t: number): Promise<void> {
    const p = this.plan;
    this.k.adamUpdate(p.paramsPtr, p.gradsPtr, p.mPtr, p.vPtr, p.params.count, o.lr, o.beta1, o.beta2, o.eps, t);
  }

  async dispose(): Promise<void> {
    this.release();
  }
}
