import { availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { AdamConfig, CreateModelOptions, ModelConfig, NamedTensor, TrainableModel } from "../api.js";
import type { Kernels } from "../kernels/types.js";
import { UserError, formatZodError } from "../../util/errors.js";
import { writeJsonAtomic } from "../../util/fs.js";
import { readSafetensors, writeSafetensors, type TensorData } from "../safetensors.js";
import { blockSchema, resolveAdam, resolveConfig, sameConfig, type ResolvedConfig } from "./config.js";
import { LocalExecutor, type Executor } from "./executor.js";
import { initParams } from "./init.js";
import { microShards, planHeap, type HeapPlan } from "./layout.js";
import { MAX_HEAP_BYTES, heapOf, makeKernels, prepareBackend, type KernelKind } from "./backend.js";
import { PoolExecutor } from "./pool.js";

export interface EngineOptions {
  threads?: number;
  maxBatch: number;
  /** Kernel implementation; "wasm" (default) or the plain-JS "reference" (slow; for tests). */
  kernels?: KernelKind;
}

const CHECKPOINT_FORMAT = "selfcorrect-engine-checkpoint-v1";

function checkInt(value: unknown, field: string, min: number, hint: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min) {
    throw new UserError(`invalid engine option: ${field} = ${String(value)}; expected an integer >= ${min}${hint}`);
  }
  return value;
}

class Model implements TrainableModel {
  private last: { B: number; T: number } | null = null;
  private busy = false;

  constructor(
    readonly config: ResolvedConfig,
    private readonly exec: Executor,
    private readonly maxBatch: number,
    private stepCount: number,
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

  async save(path: string, extra: Record<string, unknown> = {}): Promise<void> {
    if (this.busy) throw new Error("save: an engine command is still running (await each call)");
    const tensors = new Map<string, TensorData>();
    const p = this.getParams();
    const { m, v } = this.getOptimizerState();
    for (const [name, t] of p) tensors.set(name, t);
    for (const [name, t] of m) tensors.set(`optimizer.m.${name}`, t);
    for (const [name, t] of v) tensors.set(`optimizer.v.${name}`, t);
    const { blocks, ...dims } = this.config;
    writeSafetensors(path, tensors, { format: CHECKPOINT_FORMAT, step: String(this.step), config: JSON.stringify(this.config) });
    writeJsonAtomic(`${path}.json`, { format: CHECKPOINT_FORMAT, step: this.step, config: { ...dims, blocks }, extra });
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
    if (!(this.exec instanceof PoolExecutor)) throw new Error("injectWorkerFailure needs threads > 1");
    return this.exclusive(() => (this.exec as PoolExecutor).injectFailure());
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

export type EngineModel = Model;

async function buildModel(c: ResolvedConfig, opts: EngineOptions, step: number): Promise<Model> {
  const maxBatch = checkInt(opts.maxBatch, "maxBatch", 1, " (the largest batch passed to forward)");
  const threads = checkInt(opts.threads ?? availableParallelism(), "threads", 1, " (worker threads; default = available cores)");
  const kind = opts.kernels ?? "wasm";
  // More workers than micro-shards would have nothing to compute.
  const workers = Math.min(threads, microShards(maxBatch));
  const backend = await prepareBackend(kind, workers > 1, { C: c.nEmbd, T: c.nPositions, d: Math.max(c.inputDim, c.outputDim) });
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
    exec = await PoolExecutor.create(c, plan, planOpts, source, heap, workers);
  } else {
    const me = plan.workers[0]!;
    exec = new LocalExecutor(makeKernels(source, me.kernelScratchPtr, me.kernelScratchFloats), c, plan);
  }
  return new Model(c, exec, maxBatch, step);
}

/** Builds a model with GPT-2 init from `seed`. */
export async function createModel(config: ModelConfig, opts: CreateModelOptions & { kernels?: KernelKind }): Promise<EngineModel> {
  const c = resolveConfig(config);
  if (typeof opts.seed !== "number" || !Number.isFinite(opts.seed)) {
    throw new UserError(`invalid engine option: seed = ${String(opts.seed)}; expected a finite integer`);
  }
  const model = await buildModel(c, opts, 0);
  model.initParams(opts.seed);
  return model;
}

const checkpointJsonSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  step: z.number().int().nonnegative(),
  config: z.object({
    inputDim: z.number(), outputDim: z.number(), nEmbd: z.number(), nHead: z.number(),
    nLayer: z.number(), nPositions: z.number(), blocks: z.array(blockSchema),
  }),
  extra: z.record(z.string(), z.unknown()).default({}),
});

/** Reads `<path>` and `<path>.json` written by save(); resumes bit-exactly (parameters, Adam moments, step). */
export async function loadModel(
  path: string,
  opts: { threads?: number; maxBatch: number; expectConfig?: ModelConfig; kernels?: KernelKind },
): Promise<{ model: EngineModel; extra: Record<string, unknown> }> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(`${path}.json`, "utf8"));
  } catch (e) {
    throw new UserError(`checkpoint ${path}.json: cannot read the checkpoint config (${(e as Error).message}); expected the JSON file written next to the checkpoint`);
  }
  const r = checkpointJsonSchema.safeParse(raw);
  if (!r.success) throw new UserError(formatZodError(r.error, `checkpoint config ${path}.json`));
  const meta = r.data;
  const c = resolveConfig(meta.config);
  if (opts.expectConfig) {
    const want = resolveConfig(opts.expectConfig);
    const diff = sameConfig(c, want);
    if (diff) throw new UserError(`checkpoint ${path} was written for a different model config: ${diff}`);
  }
  const file = readSafetensors(path);
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new UserError(`checkpoint ${path}: __metadata__.format is ${JSON.stringify(file.metadata.format)}; expected "${CHECKPOINT_FORMAT}"`);
  }
  if (file.metadata.step !== String(meta.step)) {
    throw new UserError(`checkpoint ${path}: step ${file.metadata.step} in the tensors file does not match step ${meta.step} in ${path}.json; expected both from the same save`);
  }
  const model = await buildModel(c, opts, meta.step);
  try {
    const params = new Map<string, TensorData>();
    const m = new Map<string, TensorData>();
    const v = new Map<string, TensorData>();
    const expected = new Set<string>();
    for (const s of model.plan.params.specs) {
      for (const [prefix, into] of [["", params], ["optimizer.m.", m], ["optimizer.v.", v]] as const) {
        const name = prefix + s.name;
        expected.add(name);
        const t = file.tensors.get(name);
        if (!t) throw new UserError(`checkpoint ${path}: tensor ${name} is missing; expected every parameter and its Adam moments`);
        if (t.dtype !== "F32") throw new UserError(`checkpoint ${path}: tensor ${name} has dtype ${t.dtype}; expected F32`);
        if (t.shape.join(",") !== s.shape.join(",")) {
          throw new UserError(`checkpoint ${path}: tensor ${name} has shape [${t.shape.join(", ")}]; expected [${s.shape.join(", ")}] for this config`);
        }
        for (let i = 0; i < t.data.length; i++) {
          if (!Number.isFinite(t.data[i]!)) throw new UserError(`checkpoint ${path}: tensor ${name} holds a non-finite value at index ${i}; expected finite numbers`);
        }
        into.set(s.name, t);
      }
    }
    for (const name of file.tensors.keys()) {
      if (!expected.has(name)) throw new UserError(`checkpoint ${path}: unexpected tensor ${name}; expected only this config's parameters and Adam moments`);
    }
    model.restoreState(params, m, v, meta.step);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  return { model, extra: meta.extra };
}
