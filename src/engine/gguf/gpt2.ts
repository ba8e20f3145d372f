/**
 * The engine's token LM as a GGUF file of llama.cpp's `gpt2` architecture, and back.
 *
 * One file serves both inference paths: node-llama-cpp loads it as any GPT-2, and the engine reads the
 * same tensors back into a LanguageModel (loadLanguageModelGguf), so a shipped model needs no second copy
 * as a checkpoint. The layout is the one checked against llama.cpp in shared/design/gguf-gpt2.md.
 *
 * Orientation: the engine stores Linear weights [out, in] row-major, which is what ggml's dims [in, out]
 * describe (out rows of `in` contiguous values), so matrices are written as they are, never transposed.
 * test/lm-parity.test.ts checks this by comparing logits with llama.cpp, not by reading.
 */
import { closeSync, openSync, readSync } from "node:fs";
import { UserError } from "../../util/errors.js";
import { createLanguageModel, loadLanguageModel, type LanguageModel } from "../lm/model.js";
import type { LmConfig } from "../lm/layout.js";
import { BYTE_TOKENS, ENDOFTEXT, IM_END, SPECIAL_TOKENS, VOCAB_SIZE } from "../lm/tokenizer.js";
import { GgufFormatError, validateGgufFile, type GgufHeader, type GgufReadValue, type GgufTensorInfo } from "./reader.js";
import { GgmlType, float16BitsToFloat32, gguf, writeGguf, type GgmlTypeName, type GgufTensor, type GgufValue } from "./writer.js";

/** The engine's LayerNorm epsilon (kernels: LN_EPS); llama.cpp reads it from the file. */
const LAYER_NORM_EPS = 1e-5;

/** llama.cpp token types (llama_token_type). */
const TOKEN_NORMAL = 1;
const TOKEN_CONTROL = 3;

/**
 * ChatML, exactly what encodeChat renders, so llama.cpp feeds the ids the model was trained on.
 * node-llama-cpp recognises this template and uses its built-in ChatML wrapper.
 */
export const CHATML_TEMPLATE =
  "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\\n' + message['content'] + '<|im_end|>' + '\\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\\n' }}{% endif %}";

/**
 * GPT-2's byte-to-unicode table: byte b is written as this character in the vocabulary. Printable bytes
 * map to themselves; the other 68 map to U+0100 onward in byte order, so no token is whitespace or a
 * control character (llama.cpp's gpt2 tokenizer maps them back to bytes the same way).
 */
export function gpt2ByteToUnicode(): string[] {
  const out: string[] = new Array(256);
  let n = 0;
  for (let b = 0; b < 256; b++) {
    const printable = (b >= 33 && b <= 126) || (b >= 161 && b <= 172) || (b >= 174 && b <= 255);
    out[b] = String.fromCodePoint(printable ? b : 256 + n++);
  }
  return out;
}

/** The vocabulary in id order: the bytes (id = byte value), then the ChatML specials. */
export function byteVocabularyTokens(): string[] {
  const tokens = gpt2ByteToUnicode();
  for (let id = BYTE_TOKENS; id < VOCAB_SIZE; id++) tokens.push(SPECIAL_TOKENS[id]!);
  return tokens;
}

export interface ExportGgufOptions {
  /** Storage of the matrices and embeddings: "f32" (exact) or "f16" (half the size). Norms and biases stay f32. Default "f32". */
  dtype?: "f32" | "f16";
  /** general.name. Default "selfcorrect-lm". */
  name?: string;
}

export interface ExportGgufResult {
  path: string;
  bytes: number;
  dtype: "f32" | "f16";
  tensors: number;
  parameters: number;
  config: { vocabSize: number; nEmbd: number; nHead: number; nLayer: number; nPositions: number };
  /** The checkpoint's training step (0 for a fresh model). */
  step: number;
}

/** llama.cpp's gpt2 graph has softmax attention and an MLP in every block and the byte vocabulary here. */
function checkExportable(lm: LanguageModel, what: string): void {
  const c = lm.config;
  if (c.vocabSize !== VOCAB_SIZE) {
    throw new UserError(`${what}: vocabSize is ${c.vocabSize}; expected ${VOCAB_SIZE} (the byte tokenizer with ChatML specials), the only vocabulary the GGUF export writes`);
  }
  c.blocks.forEach((b, l) => {
    if (b.attention !== "softmax" || !b.ffn) {
      throw new UserError(
        `${what}: block ${l} has ${b.attention} attention${b.ffn ? "" : " and no MLP"}; llama.cpp's gpt2 architecture needs softmax attention and an MLP in every block`,
      );
    }
  });
}

/** Engine parameter name -> GGUF tensor name, and whether it is a matrix (stored at `dtype`). */
function tensorMap(nLayer: number): { engine: string; gguf: string; matrix: boolean }[] {
  const rows = [
    { engine: "wte", gguf: "token_embd.weight", matrix: true },
    { engine: "wpe", gguf: "position_embd.weight", matrix: true },
  ];
  const perBlock: [string, string, boolean][] = [
    ["ln_1.weight", "attn_norm.weight", false], ["ln_1.bias", "attn_norm.bias", false],
    ["attn.c_attn.weight", "attn_qkv.weight", true], ["attn.c_attn.bias", "attn_qkv.bias", false],
    ["attn.c_proj.weight", "attn_output.weight", true], ["attn.c_proj.bias", "attn_output.bias", false],
    ["ln_2.weight", "ffn_norm.weight", false], ["ln_2.bias", "ffn_norm.bias", false],
    ["mlp.c_fc.weight", "ffn_up.weight", true], ["mlp.c_fc.bias", "ffn_up.bias", false],
    ["mlp.c_proj.weight", "ffn_down.weight", true], ["mlp.c_proj.bias", "ffn_down.bias", false],
  ];
  for (let l = 0; l < nLayer; l++) {
    for (const [e, g, matrix] of perBlock) rows.push({ engine: `h.${l}.${e}`, gguf: `blk.${l}.${g}`, matrix });
  }
  rows.push({ engine: "ln_f.weight", gguf: "output_norm.weight", matrix: false }, { engine: "ln_f.bias", gguf: "output_norm.bias", matrix: false });
  return rows;
}

/**
 * Writes `source` (a LanguageModel, or the path of a checkpoint written by lm.save) as a llama.cpp `gpt2`
 * GGUF file. The head is left out: llama.cpp ties it to token_embd, as the engine does. A checkpoint that
 * is not an LM checkpoint, is corrupt, or has blocks llama.cpp's gpt2 cannot run is refused (UserError).
 */
export async function exportLanguageModelGguf(source: LanguageModel | string, outPath: string, opts: ExportGgufOptions = {}): Promise<ExportGgufResult> {
  const dtype = opts.dtype ?? "f32";
  if (dtype !== "f32" && dtype !== "f16") throw new UserError(`dtype = ${JSON.stringify(dtype)}; expected "f32" or "f16"`);
  const what = typeof source === "string" ? `checkpoint ${source}` : "model";
  const lm = typeof source === "string" ? (await loadLanguageModel(source, { maxBatch: 1 })).model : source;
  checkExportable(lm, what);
  const c = lm.config;
  const params = lm.getParams();
  const tensors: GgufTensor[] = tensorMap(c.nLayer).map(({ engine, gguf: name, matrix }) => {
    const t = params.get(engine);
    if (!t) throw new Error(`export: the model has no parameter ${engine}`);
    // ggml lists dims fastest-varying first: the reverse of the engine's row-major shape.
    return { name, dims: [...t.shape].reverse(), type: (matrix && dtype === "f16" ? "F16" : "F32") as GgmlTypeName, data: t.data };
  });
  const tokens = byteVocabularyTokens();
  const metadata: Record<string, GgufValue> = {
    "general.architecture": gguf.str("gpt2"),
    "general.name": gguf.str(opts.name ?? "selfcorrect-lm"),
    // llama_ftype: 0 = all F32, 1 = mostly F16.
    "general.file_type": gguf.u32(dtype === "f16" ? 1 : 0),
    "gpt2.context_length": gguf.u32(c.nPositions),
    "gpt2.embedding_length": gguf.u32(c.nEmbd),
    "gpt2.feed_forward_length": gguf.u32(4 * c.nEmbd),
    "gpt2.block_count": gguf.u32(c.nLayer),
    "gpt2.attention.head_count": gguf.u32(c.nHead),
    "gpt2.attention.layer_norm_epsilon": gguf.f32(LAYER_NORM_EPS),
    "tokenizer.ggml.model": gguf.str("gpt2"),
    "tokenizer.ggml.pre": gguf.str("gpt-2"),
    "tokenizer.ggml.tokens": gguf.strings(tokens),
    "tokenizer.ggml.token_type": gguf.i32s(tokens.map((_, id) => (id < BYTE_TOKENS ? TOKEN_NORMAL : TOKEN_CONTROL))),
    // Bytes only: every byte is its own token, exactly the engine's encode().
    "tokenizer.ggml.merges": gguf.strings([]),
    "tokenizer.ggml.bos_token_id": gguf.u32(ENDOFTEXT),
    "tokenizer.ggml.eos_token_id": gguf.u32(ENDOFTEXT),
    // The end of an assistant turn: llama.cpp stops generating there, as the engine's chat model does.
    "tokenizer.ggml.eot_token_id": gguf.u32(IM_END),
    "tokenizer.ggml.padding_token_id": gguf.u32(ENDOFTEXT),
    // The model was trained without a leading BOS; adding one would shift every prompt.
    "tokenizer.ggml.add_bos_token": gguf.bool(false),
    "tokenizer.ggml.add_eos_token": gguf.bool(false),
    "tokenizer.chat_template": gguf.str(CHATML_TEMPLATE),
  };
  const { bytes } = writeGguf(outPath, { metadata, tensors });
  return {
    path: outPath, bytes, dtype, tensors: tensors.length, parameters: lm.paramCount,
    config: { vocabSize: c.vocabSize, nEmbd: c.nEmbd, nHead: c.nHead, nLayer: c.nLayer, nPositions: c.nPositions },
    step: lm.step,
  };
}

/** Why a GGUF file is not one the engine can run, or null when it is. Reads only the header. */
export function engineGgufProblem(path: string): string | null {
  try {
    ggufConfig(validateGgufFile(path), path);
    return null;
  } catch (e) {
    if (e instanceof UserError || e instanceof GgufFormatError) return e.message;
    throw e;
  }
}

function meta(h: GgufHeader, key: string, path: string): GgufReadValue {
  const v = h.metadata[key];
  if (v === undefined) throw new UserError(`${path}: metadata ${key} is missing; expected a gpt2 GGUF written by \`selfcorrect lm export\``);
  return v;
}

function metaInt(h: GgufHeader, key: string, path: string): number {
  const v = meta(h, key, path);
  const n = typeof v === "bigint" ? Number(v) : v;
  if (typeof n !== "number" || !Number.isSafeInteger(n) || n < 1) throw new UserError(`${path}: metadata ${key} = ${String(v)}; expected a positive integer`);
  return n;
}

/** The LM config a gpt2 GGUF header describes, after checking it is the engine's byte-level layout. */
function ggufConfig(h: GgufHeader, path: string): LmConfig {
  const arch = h.metadata["general.architecture"];
  if (arch !== "gpt2") {
    throw new UserError(`${path}: architecture ${JSON.stringify(arch)}; the engine runs only the byte-level gpt2 files \`selfcorrect lm export\` writes (use --backend llama-cpp for others)`);
  }
  const tokens = meta(h, "tokenizer.ggml.tokens", path);
  const expected = byteVocabularyTokens();
  if (!Array.isArray(tokens) || tokens.length !== expected.length || tokens.some((t, i) => t !== expected[i])) {
    throw new UserError(`${path}: its vocabulary is not the engine's byte tokenizer (256 bytes + ${VOCAB_SIZE - BYTE_TOKENS} ChatML specials); use --backend llama-cpp`);
  }
  const merges = h.metadata["tokenizer.ggml.merges"];
  if (Array.isArray(merges) && merges.length > 0) throw new UserError(`${path}: it has ${merges.length} BPE merges; the engine's tokenizer is bytes only (use --backend llama-cpp)`);
  const eps = meta(h, "gpt2.attention.layer_norm_epsilon", path);
  if (typeof eps !== "number" || Math.abs(eps - LAYER_NORM_EPS) > 1e-9) {
    throw new UserError(`${path}: layer_norm_epsilon = ${String(eps)}; the engine's LayerNorm uses ${LAYER_NORM_EPS}`);
  }
  const c = {
    vocabSize: VOCAB_SIZE,
    nEmbd: metaInt(h, "gpt2.embedding_length", path),
    nHead: metaInt(h, "gpt2.attention.head_count", path),
    nLayer: metaInt(h, "gpt2.block_count", path),
    nPositions: metaInt(h, "gpt2.context_length", path),
    // A gpt2 GGUF means what llama.cpp computes from it, and llama.cpp's GELU is its float16 table.
    gelu: "ggml-f16" as const,
  };
  const ff = metaInt(h, "gpt2.feed_forward_length", path);
  if (ff !== 4 * c.nEmbd) throw new UserError(`${path}: feed_forward_length = ${ff}; the engine's MLP is 4 x embedding_length = ${4 * c.nEmbd}`);
  const byName = new Map(h.tensors.map((t) => [t.name, t] as const));
  const want = new Set(tensorMap(c.nLayer).map((r) => r.gguf));
  for (const t of h.tensors) {
    if (!want.has(t.name) && t.name !== "output.weight") throw new UserError(`${path}: unexpected tensor ${t.name} for a gpt2 of ${c.nLayer} blocks`);
    if (t.type !== GgmlType.F32 && t.type !== GgmlType.F16) throw new UserError(`${path}: tensor ${t.name} has ggml type ${t.type}; the engine reads F32 and F16 only`);
  }
  for (const name of want) if (!byName.has(name)) throw new UserError(`${path}: tensor ${name} is missing`);
  return c;
}

function readTensor(fd: number, h: GgufHeader, t: GgufTensorInfo): Float32Array {
  const n = t.dims.reduce((a, b) => a * b, 1);
  const width = t.type === GgmlType.F16 ? 2 : 4;
  const buf = Buffer.alloc(n * width);
  let got = 0;
  while (got < buf.length) {
    const k = readSync(fd, buf, got, buf.length - got, h.dataOffset + t.offset + got);
    if (k === 0) throw new UserError(`tensor ${t.name}: the file ends inside its data (truncated)`);
    got += k;
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = width === 2 ? float16BitsToFloat32(buf.readUInt16LE(2 * i)) : buf.readFloatLE(4 * i);
  return out;
}

/**
 * Reads a gpt2 GGUF written by exportLanguageModelGguf into a LanguageModel (float32, WebAssembly
 * kernels by default). Refuses, with a message naming the file, any other architecture, vocabulary or
 * layout; an untied output.weight is refused too, since the engine's head is wte.
 */
export async function loadLanguageModelGguf(path: string, opts: { maxBatch?: number; kernels?: "wasm" | "reference" } = {}): Promise<LanguageModel> {
  let h: GgufHeader;
  try {
    h = validateGgufFile(path);
  } catch (e) {
    if (e instanceof GgufFormatError) throw new UserError(e.message);
    throw e;
  }
  const config = ggufConfig(h, path);
  const lm = await createLanguageModel(config, { seed: 0, maxBatch: opts.maxBatch ?? 1, ...(opts.kernels ? { kernels: opts.kernels } : {}) });
  const byName = new Map(h.tensors.map((t) => [t.name, t] as const));
  const shapes = new Map(lm.plan.params.specs.map((s) => [s.name, s.shape] as const));
  const params = new Map<string, { shape: number[]; data: Float32Array }>();
  const fd = openSync(path, "r");
  try {
    for (const { engine, gguf: name } of tensorMap(config.nLayer)) {
      const t = byName.get(name)!;
      const shape = shapes.get(engine)!;
      if (t.dims.join(",") !== [...shape].reverse().join(",")) {
        throw new UserError(`${path}: tensor ${name} has dims [${t.dims.join(", ")}]; expected [${[...shape].reverse().join(", ")}] for this config`);
      }
      params.set(engine, { shape: [...shape], data: readTensor(fd, h, t) });
    }
    const head = byName.get("output.weight");
    if (head) {
      const w = readTensor(fd, h, head);
      const wte = params.get("wte")!.data;
      if (w.length !== wte.length || w.some((x, i) => x !== wte[i])) {
        throw new UserError(`${path}: output.weight differs from token_embd.weight; the engine's LM head is tied to the embedding`);
      }
    }
  } finally {
    closeSync(fd);
  }
  lm.setParams(params);
  return lm;
}
