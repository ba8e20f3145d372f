/**
 * The token language model of the engine (GPT-2 layout, byte tokenizer): see docs/engine.md, "LM".
 * - layout.ts: config and offset tables (parameters HF GPT-2-named; the ICA model's shard layout).
 * - passes.ts: forward / masked cross-entropy / backward / one-token decode over the kernels.
 * - model.ts: LanguageModel (float32 WebAssembly or float64 reference), safetensors checkpoints.
 * - generate.ts: greedy / temperature / top-p sampling with a KV cache and stop conditions.
 * - gelu.ts: llama.cpp's float16-table GELU, the activation of models meant to match llama.cpp exactly.
 * - tokenizer.ts: bytes + ChatML specials, chat template with an assistant-only loss mask.
 */
export { createLanguageModel, createFloat64LanguageModel, loadLanguageModel, LanguageModel, type CreateLanguageModelOptions } from "./model.js";
export { ggmlGeluForward, LM_GELU_KINDS, withGgmlGelu, type LmGelu } from "./gelu.js";
export { resolveLmConfig, type LmConfig, type ResolvedLmConfig } from "./layout.js";
export { generate, sampleToken, type GenerateOptions, type GenerateResult } from "./generate.js";
export {
  BYTE_TOKENS, ENDOFTEXT, IM_END, IM_START, SPECIAL_TOKENS, VOCAB_SIZE, decode, encode, encodeChat, nextTokenPair, tokenText,
  type ChatMessage, type ChatRole, type EncodedChat,
} from "./tokenizer.js";
