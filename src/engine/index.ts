export type {
  AttentionKind, BlockConfig, ModelConfig, AdamConfig, NamedTensor, CreateModelOptions, TrainableModel,
} from "./api.js";
export {
  blockSchema, createModel, loadModel, createFloat64Model, resolveConfig, type EngineModel, type Float64Model, type KernelKind,
} from "./model/index.js";
export { readSafetensors, writeSafetensors, encodeSafetensors, decodeSafetensors } from "./safetensors.js";
export {
  LanguageModel, createLanguageModel, createFloat64LanguageModel, loadLanguageModel, generate, sampleToken,
  type CreateLanguageModelOptions, type LmConfig, type ResolvedLmConfig, type GenerateOptions, type GenerateResult,
} from "./lm/index.js";
export * as byteTokenizer from "./lm/tokenizer.js";
export {
  exportLanguageModelGguf, loadLanguageModelGguf, engineGgufProblem, CHATML_TEMPLATE, type ExportGgufOptions, type ExportGgufResult,
} from "./gguf/gpt2.js";
