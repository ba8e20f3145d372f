/**
 * The engine's TrainableModel over an executor, without Node's modules: the file system, the thread
 * pool and the loading of the WebAssembly binaries come from the caller (./model.ts for Node; a web
 * page builds a one-thread model from a kernel module it compiled itself).
 */
import type { AdamConfig, ModelConfig, NamedTensor, TrainableModel } from "../api.js";
import type { Kernels } from "../kernels/types.js";
import { UserError } from "../../util/errors.js";
import type { TensorData } from "../safetensors-codec.js";
import { resolveAdam, resolveConfig, type ResolvedConfig } from "./config.js";
import { LocalExecutor, type Executor } from "./executor.js";
import { initParams } from "./init.js";
import { microShards, planHeap, type HeapPlan } from "./layout.js";
import type { WorkerInit } from "./protocol.js";
import { MAX_HEAP_BYTES, heapOf, makeKernels, type KernelSource, type PreparedBackend } from "./backend-core.js";

export const CHECKPOINT_FORMAT = "selfcorrect-engine-checkpoint-v1";

export function checkInt(value: unknown, field: string, min: number, hint: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new UserError(`invalid engine option: ${field} = ${String(value)}; expected an integer >= ${min}${hint}`);
  }
  return value;
}

/** A checkpoint in memory: what save() writes to `<path>` (safetensors) and `<path>.json`. */
export interface CheckpointFiles {
  tensors: Map<string, TensorData>;
  metadata: Record<string, string>;
  json: { format: string; step: number; config: Record<string, unknown>; extra: Record<string, unknown> };
}

/** Writes a checkpoint's files (Node: atomically, next to each other). */
export type CheckpointWriter = (path: string, files: CheckpointFiles) => void | Promise<void>;

/** Builds the executor for more than one thread (Node: worker_threads over a shared memory). */
export type PoolFactory = (
  c: ResolvedConfig, plan: HeapPlan, planOpts: WorkerInit["planOpts"], source: KernelSource, heap: Float32Array, workers: number,
) => Promise<Executor>;

export interface BuildOptions {
  maxBatch: number;
  threads: number;
  /** The kernels; `shared` when several threads will use the heap. */
  backend: (shared: boolean, dims: { C: number; T: number; d: number }) => Promise<PreparedBackend>;
  /** Needed for threads > 1. */
  pool?: PoolFactory;
  /** Without one, save() throws and checkpointFiles() is the way out. */
  writer?: CheckpointWriter;
}

export class Model implements TrainableModel {
  private last: { B: number; T: number } | null = null;
  private busy = false;

  constructor(
    readonly config: ResolvedConfig,
    private readonly exec: Executor,
    private readonly maxBatch: number,
    private stepCount: number,
    private readonly writer: CheckpointWriter | null,
    /** Which code runs the matmuls: "native" (AVX-512, the same bits as "wasm"), "wasm" or "reference". */
    readonly matmuls: "native" | "wasm" | "reference" = "wasm",
  ) {}

  get step(): number {
    return this.stepCount;
  }

  get paramCount(): number {
    return this.exec.plan.params.count;
  }

  get threads(): number {
    return this.exec.threads;
  }

  get plan(): HeapPlan {
    return this.exec.plan;
  }

  async forward(input: Float32Array, batch: number, seqLen: number): Promise<Float32Array> {
    const c = this.config;
    checkInt(batch, "batch", 1, "");
    if (batch > this.maxBatch) throw new UserError(`forward: batch = ${batch} exceeds maxBatch = ${this.maxBatch}; expected batch <= ${this.maxBatch} (create the model with a larger maxBatch)`);
    checkInt(seqLen, "seqLen", 1, "");
    if (seqLen > c.nPositions) throw new UserError(`forward: seqLen = ${seqLen} exceeds nPositions = ${c.nPositions}; expected seqLen <= ${c.nPositions}`);
    const n = batch * seqLen * c.inputDim;
    if (input.length !== n) throw new UserError(`forward: input has ${input.length} values; expected batch*seqLen*inputDim = ${n}`);
    return this.exclusive(async () => {
      const p = this.exec.plan;
      this.exec.heap().set(input, p.inputPtr);
      await this.exec.forward(batch, seqLen);
      this.last = { B: batch, T: seqLen };
      return Float32Array.from(this.exec.heap().subarray(p.outputPtr, p.outputPtr + batch * seqLen * c.outputDim));
    });
  }

  async backward(dOutput: Float32Array): Promise<void> {
    const last = this.last;
    if (!last) throw new Error("backward() needs a forward() first");
    const n = last.B * last.T * this.config.outputDim;
    if (dOutput.length !== n) throw new UserError(`backward: dOutput has ${dOutput.length} values; expected ${n} (the last forward's batch*seqLen*outputDim)`);
    return this.exclusive(async () => {
      this.exec.heap().set(dOutput, this.exec.plan.doutPtr);
      await this.exec.backward(last.B, last.T);
    });
  }

  async adamStep(opt: AdamConfig): Promise<void> {
    const o = resolveAdam(opt);
    return this.exclusive(async () => {
      await this.exec.adam(o, this.stepCount + 1);
      this.stepCount += 1;
    });
  }

  private tensors(base: number): Map<string, NamedTensor> {
    const heap = this.exec.heap();
    const out = new Map<string, NamedTensor>();
    for (const s of this.exec.plan.params.specs) {
      out.set(s.name, { shape: [...s.shape], data: Float32Array.from(heap.subarray(base + s.offset, base + s.offset + s.size)) });
    }
    return out;
  }

  getParams(): Map<string, NamedTensor> {
    return this.tensors(this.exec.plan.paramsPtr);
  }

  getGrads(): Map<string, NamedTensor> {
    return this.tensors(this.exec.plan.gradsPtr);
  }

  /** Adam moments by parameter name (copies). */
  getOptimizerState(): { m: Map<string, NamedTensor>; v: Map<string, NamedTensor> } {
    return { m: this.tensors(this.exec.plan.mPtr), v: this.tensors(this.exec.plan.vPtr) };
  }

  setParams(params: Map<string, NamedTensor> | Record<string, NamedTensor>): void {
    this.writeTensors(this.exec.plan.paramsPtr, params instanceof Map ? params : new Map(Object.entries(params)), "setParams");
  }

  private writeTensors(base: number, tensors: Map<string, { shape: number[]; data: ArrayLike<number> }>, what: string): void {
    if (this.busy) throw new Error(`${what}: an engine command is still running (await each call)`);
    const specs = new Map(this.exec.plan.params.specs.map((s) => [s.name, s]));
    for (const [name, t] of tensors) {
      const s = specs.get(name);
      if (!s) throw new UserError(`${what}: unknown parameter ${name}; expected one of the model's ${specs.size} parameter names (e.g. ${[...specs.keys()].slice(0, 3).join(", ")})`);
      if (t.shape.length !== s.shape.length || t.shape.some((d, i) => d !== s.shape[i]) || t.data.length !== s.size) {
        throw new UserError(`${what}: parameter ${name} has shape [${t.shape}] (${t.data.length} values); expected [${s.shape}]`);
      }
    }
    const heap = this.exec.heap();
    for (const [name, t] of tensors) {
      const s = specs.get(name)!;
      heap.set(t.data, base + s.offset);
    }
  }

  /** The checkpoint's two files in memory: the safetensors tensors + metadata, and the `<path>.json` object. */
  checkpointFiles(extra: Record<string, unknown> = {}): CheckpointFiles {
    if (this.busy) throw new Error("save: an engine command is still running (await each call)");
    const tensors = new Map<string, TensorData>();
    const p = this.getParams();
    const { m, v } = this.getOptimizerState();
    for (const [name, t] of p) tensors.set(name, t);
    for (const [name, t] of m) tensors.set(`optimizer.m.${name}`, t);
    for (const [name, t] of v) tensors.set(`optimizer.v.${name}`, t);
    const { blocks, ...dims } = this.config;
    return {
      tensors,
      metadata: { format: CHECKPOINT_FORMAT, step: String(this.step), config: JSON.stringify(this.config) },
      json: { format: CHECKPOINT_FORMAT, step: this.step, config: { ...dims, blocks }, extra },
    };
  }

  async save(path: string, extra: Record<string, unknown> = {}): Promise<void> {
    if (!this.writer) throw new Error("save: this model was built without a file system (a browser); use checkpointFiles()");
    await this.writer(path, this.checkpointFiles(extra));
  }

  async dispose(): Promise<void> {
    await this.exec.dispose();
  }

  /** Profiling hook (threads = 1 only): wraps the kernels, e.g. to time every call. */
  instrumentKernels(wrap: (k: Kernels) => Kernels): void {
    if (!(this.exec instanceof LocalExecutor)) throw new Error("instrumentKernels needs threads = 1");
    this.exec.wrapKernels(wrap);
  }

  /** Test hook (pool only): makes the workers throw. */
  async injectWorkerFailure(): Promise<void> {
    const exec = this.exec as Executor & { injectFailure?: () => Promise<void> };
    if (!exec.injectFailure) throw new Error("injectWorkerFailure needs threads > 1");
    return this.exclusive(() => exec.injectFailure!());
  }

  /** GPT-2 init from `seed` (the same weights whatever the thread count or kernels). */
  initParams(seed: number): void {
    initParams(this.exec.heap(), this.exec.plan.paramsPtr, this.exec.plan.params, seed);
  }

  restoreState(params: Map<string, TensorData>, m: Map<string, TensorData>, v: Map<string, TensorData>, step: number): void {
    this.writeTensors(this.exec.plan.paramsPtr, params, "checkpoint");
    this.writeTensors(this.exec.plan.mPtr, m, "checkpoint");
    this.writeTensors(this.exec.plan.vPtr, v, "checkpoint");
    this.stepCount = step;
  }

  private async exclusive<T>(f: () => Promise<T>): Promise<T> {
    if (this.busy) throw new Error("another engine command is still running (await each call)");
    this.busy = true;
    try {
      return await f();
    } finally {
      this.busy = false;
    }
  }
}

export async function buildModel(c: ResolvedConfig, o: BuildOptions, step: number): Promise<Model> {
  const maxBatch = checkInt(o.maxBatch, "maxBatch", 1, " (the largest batch passed to forward)");
  const threads = checkInt(o.threads, "threads", 1, " (worker threads; default = available cores)");
  // More workers than micro-shards would have nothing to compute.
  const workers = Math.min(threads, microShards(maxBatch));
  if (workers > 1 && !o.pool) throw new UserError(`threads = ${threads}: this build of the engine runs on one thread; expected threads = 1`);
  const backend = await o.backend(workers > 1, { C: c.nEmbd, T: c.nPositions, d: Math.max(c.inputDim, c.outputDim) });
  const planOpts = { maxBatch, workers, baseFloats: backend.baseFloats, kernelScratchFloats: backend.scratchFloats };
  const plan = planHeap(c, planOpts);
  if (plan.totalFloats * 4 > MAX_HEAP_BYTES) {
    const gib = ((plan.totalFloats * 4) / 2 ** 30).toFixed(2);
    throw new UserError(
      `maxBatch = ${maxBatch} with nLayer = ${c.nLayer}, nEmbd = ${c.nEmbd}, nPositions = ${c.nPositions} needs ${gib} GiB of engine memory; expected at most 4 GiB (the WebAssembly limit): lower maxBatch`,
    );
  }
  const source = backend.allocate(plan.totalFloats);
  const heap = heapOf(source, plan.totalFloats);
  let exec: Executor;
  if (workers > 1) {
    exec = await o.pool!(c, plan, planOpts, source, heap, workers);
  } else {
    const me = plan.workers[0]!;
    exec = new LocalExecutor((backend.makeKernels ?? makeKernels)(source, me.kernelScratchPtr, me.kernelScratchFloats), c, plan);
  }
  const matmuls = source.kind === "reference" ? "reference" : source.native ? "native" : "wasm";
  return new Model(c, exec, maxBatch, step, o.writer ?? null, matmuls);
}

/** Builds a model with GPT-2 init from `seed`. */
export async function createModelWith(config: ModelConfig, seed: number, o: BuildOptions): Promise<Model> {
  const c = resolveConfig(config);
  if (typeof seed !== "number" || !Number.isFinite(seed)) {
    throw new UserError(`invalid engine option: seed = ${String(seed)}; expected a finite integer`);
  }
  const model = await buildModel(c, o, 0);
  model.initParams(seed);
  return model;
}
