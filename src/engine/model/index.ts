/**
 * The GPT-2-style transformer of the lab (see ../api.ts for the contract).
 *
 * - layout.ts: offset tables. Parameters, gradients and Adam moments are parameter-shaped ranges of
 *   one heap; then the activations of the batch (no pre-softmax scores, no projection outputs:
 *   matmuls write straight into the residual buffers) and, per worker, one set of
 *   gradient-of-activation buffers reused by every layer. 20 layers x batch 256 x 60 tokens x 96 dims is ~2.1 GiB.
 * - forward.ts / backward.ts: llm.c-style passes over the kernels (../kernels/types.ts).
 * - executor.ts: threads = 1 runs on the calling thread; pool.ts + worker.ts: data parallel over the
 *   batch, one shared WebAssembly.Memory. The batch is cut into micro-shards that depend only on its
 *   size, each with its own gradient buffer, summed in micro-shard order (each worker over a fixed
 *   parameter slice, on which it also runs Adam): the same bits at any thread count.
 * - model.ts: the TrainableModel, GPT-2 init, safetensors checkpoints with Adam state.
 * - float64.ts: the same model in float64 with the plain-JS kernels, for finite-difference checks.
 */
export { createModel, loadModel, type EngineModel, type EngineOptions } from "./model.js";
export { createFloat64Model, type Float64Model } from "./float64.js";
export { blockSchema, resolveConfig, resolveAdam, type ResolvedConfig } from "./config.js";
export type { KernelKind } from "./backend.js";
