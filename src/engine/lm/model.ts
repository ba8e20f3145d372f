import { z } from "zod";
import type { AdamConfig, NamedTensor } from "../api.js";
import type { Kernels } from "../kernels/types.js";
import { createReferenceKernels } from "../kernels/reference.js";
import { UserError, formatZodError } from "../../util/errors.js";
import { readSafetensors, writeSafetensors, type TensorData } from "../safetensors.js";
import { blockSchema, resolveAdam, type ResolvedConfig } from "../model/config.js";
import { initParams } from "../model/init.js";
import { MAX_HEAP_BYTES, makeKernels, prepareBackend, type KernelKind } from "../model/backend.js";
import { planLmHeap, resolveLmConfig, type LmConfig, type LmHeapPlan, type ResolvedLmConfig } from "./layout.js";
import { LM_GELU_KINDS, withGgmlGelu, type LmGelu } from "./gelu.js";
import { lmBackward, lmDecodeStep, lmForward, lmLoss } from "./passes.js";

export interface CreateLanguageModelOptions {
  /** Seed for GPT-2 init: weights (wte, wpe included) ~ normal(0, 0.02), biases 0, LayerNorm weights 1. */
  seed: number;
  /** Only 1 is supported: the LM runs on the calling thread. */
  threads?: number;
  /** Largest batch passed to forward (sizes the activation memory). */
  maxBatch: number;
  /** "wasm" (default) or the plain-JS "reference" kernels. */
  kernels?: KernelKind;
}

const CHECKPOINT_FORMAT = "selfcorrect-lm-checkpoint-v1";

function checkInt(value: unknown, field: string, min: number, max: number, hint: string): number {
  if (typeof value !== "number" || !Number.isSafeInteger(value) || value < min || value > max) {
    const range = max === Number.MAX_SAFE_INTEGER ? `>= ${min}` : `in [${min}, ${max}]`;
    throw new UserError(`${field} = ${String(value)}; expected an integer ${range}${hint}`);
  }
  return value;
}

/**
 * A GPT-2 language model on the engine's kernels: token + position embedding, the ICA model's
 * blocks, final LayerNorm, head tied to wte, masked softmax cross-entropy. One heap (see planLmHeap);
 * float32 with the WebAssembly (or reference) kernels, or float64 with the reference kernels.
 */
export class LanguageModel {
  private last: { B: number; T: number; tokens: Int32Array; hasTargets: boolean } | null = null;
  /**
   * Tokens of sequence 0 whose keys and values sit in the KV cache (the qkv activations of row 0);
   * 0 unless the last call was prefill or decode, since anything else may overwrite or outdate them.
   */
  private cached = 0;
  private stepCount: number;
  private readonly attnScratch: Float64Array;
  readonly threads = 1;

  constructor(
    readonly config: ResolvedLmConfig,
    private readonly rc: ResolvedConfig,
    private k: Kernels,
    readonly plan: LmHeapPlan,
    readonly maxBatch: number,
    step = 0,
  ) {
    this.stepCount = step;
    this.attnScratch = new Float64Array(config.nPositions);
  }

  get step(): number {
    return this.stepCount;
  }

  get paramCount(): number {
    return this.plan.params.count;
  }

  get names(): string[] {
    return this.plan.params.specs.map((s) => s.name);
  }

  private heap(): Float32Array | Float64Array {
    return this.k.heap();
  }

  private checkTokens(tokens: ArrayLike<number>, what: string): void {
    const V = this.config.vocabSize;
    for (let i = 0; i < tokens.length; i++) {
      const t = tokens[i]!;
      if (!Number.isInteger(t) || t < 0 || t >= V) throw new UserError(`${what}[${i}] = ${t}; expected a token id in [0, ${V - 1}]`);
    }
  }

  /**
   * Runs tokens[B*T] (row-major) and keeps the activations. With targets[B*T] returns the mean
   * cross-entropy over the positions where mask != 0 (every position when mask is omitted; 0 when
   * the mask is all zeros) and prepares backward(); targets under a zero mask are ignored.
   * Without targets returns null (logits only).
   */
  forward(tokens: ArrayLike<number>, batch: number, seqLen: number, targets?: ArrayLike<number>, mask?: ArrayLike<number>): number | null {
    checkInt(batch, "forward: batch", 1, this.maxBatch, " (at most maxBatch)");
    checkInt(seqLen, "forward: seqLen", 1, this.config.nPositions, " (at most nPositions)");
    const n = batch * seqLen;
    if (tokens.length !== n) throw new UserError(`forward: tokens has ${tokens.length} ids; expected batch*seqLen = ${n}`);
    this.checkTokens(tokens, "forward: tokens");
    if (mask !== undefined && mask.length !== n) throw new UserError(`forward: mask has ${mask.length} entries; expected ${n}`);
    if (targets !== undefined) {
      if (targets.length !== n) throw new UserError(`forward: targets has ${targets.length} ids; expected ${n}`);
      const V = this.config.vocabSize;
      for (let i = 0; i < n; i++) {
        const t = targets[i]!;
        if ((mask === undefined || mask[i] !== 0) && !(Number.isInteger(t) && t >= 0 && t < V)) {
          throw new UserError(`forward: targets[${i}] = ${t} is unmasked; expected a token id in [0, ${V - 1}]`);
        }
      }
    }
    const ids = Int32Array.from(tokens);
    lmForward(this.k, this.rc, this.plan, this.config.vocabSize, ids, batch, seqLen);
    this.cached = 0;
    this.last = { B: batch, T: seqLen, tokens: ids, hasTargets: targets !== undefined };
    if (targets === undefined) return null;
    const m = mask ?? new Uint8Array(n).fill(1);
    return lmLoss(this.heap(), this.plan.logitsPtr, this.config.vocabSize, n, targets, m, this.plan.dlogitsPtr);
  }

  /** Copy of the last forward's logits [B, T, V] (Float64Array for the float64 model). */
  logits(): Float32Array | Float64Array {
    if (!this.last) throw new Error("logits() needs a forward() first");
    const p = this.plan.logitsPtr;
    return this.heap().slice(p, p + this.last.B * this.last.T * this.config.vocabSize);
  }

  /** Overwrites the gradients with those of the last forward's loss. */
  backward(): void {
    const last = this.last;
    if (!last?.hasTargets) throw new Error("backward() needs a forward() with targets first (generation in between discards it)");
    lmBackward(this.k, this.rc, this.plan, this.config.vocabSize, last.tokens, last.B, last.T);
  }

  adamStep(opt: AdamConfig): void {
    const o = resolveAdam(opt);
    const p = this.plan;
    this.k.adamUpdate(p.paramsPtr, p.gradsPtr, p.mPtr, p.vPtr, p.params.count, o.lr, o.beta1, o.beta2, o.eps, this.stepCount + 1);
    this.stepCount += 1;
    this.cached = 0;
  }

  /**
   * Starts sequence 0 of the KV cache with `prompt` (a full forward) and returns the next-token
   * logits. Discards the activations of any earlier forward.
   */
  prefill(prompt: ArrayLike<number>): Float32Array | Float64Array {
    this.forward(prompt, 1, prompt.length);
    this.last = null;
    this.cached = prompt.length;
    return this.logitsRow(prompt.length - 1);
  }

  /** Appends one token to the cached sequence and returns the next-token logits. */
  decode(token: number): Float32Array | Float64Array {
    if (this.cached === 0) throw new Error("decode() needs prefill() first");
    const t = this.cached;
    if (t >= this.config.nPositions) throw new UserError(`decode: the sequence already fills nPositions = ${this.config.nPositions}`);
    this.checkTokens([token], "decode: token");
    this.last = null;
    lmDecodeStep(this.k, this.rc, this.plan, this.config.vocabSize, token, t, this.attnScratch);
    this.cached = t + 1;
    return this.logitsRow(t);
  }

  /** Tokens in the KV cache (0 before prefill). */
  get cachedLength(): number {
    return this.cached;
  }

  private logitsRow(t: number): Float32Array | Float64Array {
    const V = this.config.vocabSize;
    const p = this.plan.logitsPtr + t * V;
    return this.heap().slice(p, p + V);
  }

  /** Live view of a parameter (`grads`: of its gradient) in the heap. */
  view(name: string, grads = false): Float32Array | Float64Array {
    const s = this.plan.params.specs.find((x) => x.name === name);
    if (!s) throw new UserError(`unknown parameter ${name}; expected one of ${this.names.slice(0, 4).join(", ")}, ...`);
    const base = (grads ? this.plan.gradsPtr : this.plan.paramsPtr) + s.offset;
    return this.heap().subarray(base, base + s.size);
  }

  private tensors(base: number): Map<string, NamedTensor> {
    const heap = this.heap();
    return new Map(this.plan.params.specs.map((s) => {
      const data = Float32Array.from(heap.subarray(base + s.offset, base + s.offset + s.size));
      return [s.name, { shape: [...s.shape], data }] as const;
    }));
  }

  getParams(): Map<string, NamedTensor> {
    return this.tensors(this.plan.paramsPtr);
  }

  getGrads(): Map<string, NamedTensor> {
    return this.tensors(this.plan.gradsPtr);
  }

  getOptimizerState(): { m: Map<string, NamedTensor>; v: Map<string, NamedTensor> } {
    return { m: this.tensors(this.plan.mPtr), v: this.tensors(this.plan.vPtr) };
  }

  /** Overwrites the named parameters (a subset is fine); shapes must match. Invalidates the KV cache. */
  setParams(params: Map<string, { shape: number[]; data: ArrayLike<number> }> | Record<string, { shape: number[]; data: ArrayLike<number> }>): void {
    this.write(this.plan.paramsPtr, params instanceof Map ? params : new Map(Object.entries(params)), "setParams");
  }

  private write(base: number, tensors: Map<string, { shape: number[]; data: ArrayLike<number> }>, what: string): void {
    const byName = new Map(this.plan.params.specs.map((s) => [s.name, s] as const));
    const checked = [...tensors].map(([name, t]) => {
      const s = byName.get(name);
      if (!s) throw new UserError(`${what}: unknown parameter ${name}; expected one of the model's ${byName.size} parameter names`);
      if (t.shape.join(",") !== s.shape.join(",") || t.data.length !== s.size) {
        throw new UserError(`${what}: ${name} has shape [${t.shape.join(", ")}]; expected [${s.shape.join(", ")}]`);
      }
      for (let i = 0; i < t.data.length; i++) {
        if (!Number.isFinite(t.data[i]!)) throw new UserError(`${what}: ${name} holds a non-finite value at index ${i}; expected finite numbers`);
      }
      return { at: base + s.offset, data: t.data };
    });
    const heap = this.heap();
    for (const { at, data } of checked) heap.set(data, at);
    this.cached = 0;
    this.last = null;
  }

  /**
   * One safetensors file: parameters (HF GPT-2 names), Adam moments (`optimizer.m.<name>`,
   * `optimizer.v.<name>`), and in its metadata the format, step, config and the caller's `extra`.
   */
  save(path: string, extra: Record<string, unknown> = {}): void {
    const tensors = new Map<string, TensorData>();
    const { m, v } = this.getOptimizerState();
    for (const [name, t] of this.getParams()) tensors.set(name, t);
    for (const [name, t] of m) tensors.set(`optimizer.m.${name}`, t);
    for (const [name, t] of v) tensors.set(`optimizer.v.${name}`, t);
    writeSafetensors(path, tensors, {
      format: CHECKPOINT_FORMAT, step: String(this.stepCount), config: JSON.stringify(this.config), extra: JSON.stringify(extra),
    });
  }

  /** Benchmark hook: wraps the kernels (to time them, or to perturb what they compute); empties the KV cache. */
  instrumentKernels(wrap: (k: Kernels) => Kernels): void {
    this.k = wrap(this.k);
    this.cached = 0;
  }

  /** GPT-2 init from `seed` (the same weights for either kernel kind). */
  initParams(seed: number): void {
    initParams(this.heap(), this.plan.paramsPtr, this.plan.params, seed);
    this.cached = 0;
    this.last = null;
  }

  restore(params: Map<string, TensorData>, m: Map<string, TensorData>, v: Map<string, TensorData>): void {
    this.write(this.plan.paramsPtr, params, "checkpoint");
    this.write(this.plan.mPtr, m, "checkpoint");
    this.write(this.plan.vPtr, v, "checkpoint");
  }

  /** Nothing to release on one thread; kept so callers can treat it like the pooled ICA model. */
  async dispose(): Promise<void> {}
}

function activation(c: ResolvedLmConfig, k: Kernels): Kernels {
  return c.gelu === "ggml-f16" ? withGgmlGelu(k) : k;
}

async function buildLanguageModel(config: LmConfig, opts: Omit<CreateLanguageModelOptions, "seed">, step: number): Promise<LanguageModel> {
  const { lm, blocks } = resolveLmConfig(config);
  const maxBatch = checkInt(opts.maxBatch, "invalid engine option: maxBatch", 1, Number.MAX_SAFE_INTEGER, " (the largest batch passed to forward)");
  if (opts.threads !== undefined && opts.threads !== 1) {
    throw new UserError(`invalid engine option: threads = ${String(opts.threads)}; the language model runs on one thread, expected 1 or nothing`);
  }
  const backend = await prepareBackend(opts.kernels ?? "wasm", false, { C: lm.nEmbd, T: lm.nPositions, d: lm.vocabSize });
  const plan = planLmHeap(lm, blocks, { maxBatch, baseFloats: backend.baseFloats, kernelScratchFloats: backend.scratchFloats });
  if (plan.totalFloats * 4 > MAX_HEAP_BYTES) {
    throw new UserError(`maxBatch = ${maxBatch} with this config needs ${((plan.totalFloats * 4) / 2 ** 30).toFixed(2)} GiB of engine memory; expected at most 4 GiB (the WebAssembly limit): lower maxBatch`);
  }
  const source = backend.allocate(plan.totalFloats);
  return new LanguageModel(lm, blocks, activation(lm, makeKernels(source, plan.kernelScratchPtr, plan.kernelScratchFloats)), plan, maxBatch, step);
}

/** A language model with GPT-2 init from `seed`. */
export async function createLanguageModel(config: LmConfig, opts: CreateLanguageModelOptions): Promise<LanguageModel> {
  if (typeof opts.seed !== "number" || !Number.isFinite(opts.seed)) {
    throw new UserError(`invalid engine option: seed = ${String(opts.seed)}; expected a finite integer`);
  }
  const model = await buildLanguageModel(config, opts, 0);
  model.initParams(opts.seed);
  return model;
}

/**
 * The same model in float64 over the plain-JS reference kernels: the finite-difference reference.
 * Parameters are GPT-2-initialised from `seed`; read and write them through view().
 */
export function createFloat64LanguageModel(config: LmConfig, opts: { seed: number; maxBatch: number }): LanguageModel {
  const { lm, blocks } = resolveLmConfig(config);
  const plan = planLmHeap(lm, blocks, { maxBatch: opts.maxBatch, baseFloats: 16, kernelScratchFloats: 0 });
  const model = new LanguageModel(lm, blocks, activation(lm, createReferenceKernels(new Float64Array(plan.totalFloats))), plan, opts.maxBatch);
  model.initParams(opts.seed);
  return model;
}

const lmConfigSchema = z.object({
  vocabSize: z.number(), nEmbd: z.number(), nHead: z.number(), nLayer: z.number(), nPositions: z.number(), blocks: z.array(blockSchema),
  gelu: z.enum(LM_GELU_KINDS as [LmGelu, ...LmGelu[]]).optional(),
});

/** Reads a checkpoint written by save(); resumes bit-exactly (parameters, Adam moments, step). */
export async function loadLanguageModel(
  path: string, opts: Omit<CreateLanguageModelOptions, "seed">,
): Promise<{ model: LanguageModel; extra: Record<string, unknown> }> {
  const file = readSafetensors(path);
  const meta = file.metadata;
  if (meta.format !== CHECKPOINT_FORMAT) {
    throw new UserError(`checkpoint ${path}: __metadata__.format is ${JSON.stringify(meta.format)}; expected "${CHECKPOINT_FORMAT}"`);
  }
  const step = Number(meta.step);
  if (!Number.isSafeInteger(step) || step < 0) throw new UserError(`checkpoint ${path}: step ${JSON.stringify(meta.step)}; expected an integer >= 0`);
  let config: unknown;
  let extra: unknown;
  try {
    config = JSON.parse(meta.config ?? "");
    extra = JSON.parse(meta.extra ?? "{}");
  } catch (e) {
    throw new UserError(`checkpoint ${path}: unreadable config or extra metadata (${(e as Error).message}); expected JSON written by save()`);
  }
  const r = lmConfigSchema.safeParse(config);
  if (!r.success) throw new UserError(formatZodError(r.error, `checkpoint ${path} config`));
  if (typeof extra !== "object" || extra === null || Array.isArray(extra)) throw new UserError(`checkpoint ${path}: extra metadata is not an object`);
  const model = await buildLanguageModel(r.data, opts, step);
  const groups = [new Map<string, TensorData>(), new Map<string, TensorData>(), new Map<string, TensorData>()] as const;
  const expected = new Set<string>();
  for (const s of model.plan.params.specs) {
    ["", "optimizer.m.", "optimizer.v."].forEach((prefix, g) => {
      const t = file.tensors.get(prefix + s.name);
      expected.add(prefix + s.name);
      if (!t) throw new UserError(`checkpoint ${path}: tensor ${prefix + s.name} is missing; expected every parameter and its Adam moments`);
      if (t.dtype !== "F32") throw new UserError(`checkpoint ${path}: tensor ${prefix + s.name} has dtype ${t.dtype}; expected F32`);
      groups[g as 0 | 1 | 2].set(s.name, t);
    });
  }
  for (const name of file.tensors.keys()) {
    if (!expected.has(name)) throw new UserError(`checkpoint ${path}: unexpected tensor ${name}; expected only this config's parameters and Adam moments`);
  }
  model.restore(groups[0], groups[1], groups[2]);
  return { model, extra: extra as Record<string, unknown> };
}
