/**
 * The GPT-2-style transformer of the lab (see ../api.ts for the contract).
 *
 * - layout.ts: offset tables. Parameters, gradients and Adam moments are parameter-shaped ranges of
 *   one heap; each batch shard has its activations (no pre-softmax scores, no projection outputs:
 *   matmuls write straight into the residual buffers) and one set of gradient-of-activation
 *   buffers reused by every layer. 20 layers x batch 256 x 60 tokens x 96 dims is ~2.1 GiB.
 * - forward.ts / backward.ts: llm.c-style passes over the kernels (../kernels/types.ts).
 * - executor.ts: threads = 1 runs on the calling thread; pool.ts + worker.ts: data parallel over the
 *   batch, one shared WebAssembly.Memory, each worker reducing a fixed parameter slice in worker
 *   order (deterministic for a given thread count) and running Adam on it.
 * - model.ts: the TrainableModel, GPT-2 init, safetensors checkpoints with Adam state.
 * - float64.ts: the same model in float64 with the plain-JS kernels, for finite-difference checks.
 */
export { createModel, loadModel, type EngineModel, type EngineOptions } from "./model.js";
export { createFloat64Model, type Float64Model } from "./float64.js";
export { blockSchema, resolveConfig, resolveAdam, type ResolvedConfig } from "./config.js";
export type { KernelKind } from "./backend.js";
