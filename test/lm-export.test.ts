/**
 * `selfcorrect lm export` and the GGUF it writes: the metadata and tensor layout of llama.cpp's gpt2
 * (shared/design/gguf-gpt2.md), the read-back into the engine (f32 exact, f16 rounded), node-llama-cpp
 * loading an f16 file, and the refusals: corrupt or foreign checkpoints, blocks gpt2 cannot run, GGUFs
 * the engine cannot run, bad flags. Whether the tensors mean the same thing in llama.cpp is
 * test/lm-parity.test.ts.
 */
import { after, test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createLanguageModel, encodeChat, VOCAB_SIZE } from "../src/engine/lm/index.js";
import { createModel } from "../src/engine/model/index.js";
import { byteVocabularyTokens, engineGgufProblem, exportLanguageModelGguf, gpt2ByteToUnicode, loadLanguageModelGguf } from "../src/engine/gguf/gpt2.js";
import { readGgufHeader } from "../src/engine/gguf/reader.js";
import { gguf, writeGguf } from "../src/engine/gguf/writer.js";
import { writeTinyLlamaGguf } from "../src/engine/gguf/fixtures/tiny-llama.js";
import { createLlamaCppModel } from "../src/cac/adapters/llama-cpp.js";
import { UserError } from "../src/util/errors.js";
import { runCliChild } from "./support/eval-cli.js";

const cli = (args: string[], env: NodeJS.ProcessEnv = {}) => runCliChild(args, 60_000, env);

const dir = mkdtempSync(join(tmpdir(), "selfcorrect-export-"));
const config = { vocabSize: VOCAB_SIZE, nEmbd: 16, nHead: 2, nLayer: 2, nPositions: 64 };

after(() => rmSync(dir, { recursive: true, force: true }));

test("the byte vocabulary: GPT-2's byte-to-unicode characters, id = byte, then the ChatML specials", () => {
  const chars = gpt2ByteToUnicode();
  assert.equal(new Set(chars).size, 256);
  assert.equal(chars[0x21], "!");
  assert.equal(chars[0x20], "\u0120", "space is Ġ as in GPT-2");
  assert.equal(chars[0x0a], "\u010a", "newline is Ċ");
  assert.equal(chars[0xad], "\u0143", "soft hyphen, the last of the 68 remapped bytes");
  assert.deepEqual(byteVocabularyTokens().slice(256), ["<|endoftext|>", "<|im_start|>", "<|im_end|>"]);
});

test("lm export --json: a checkpoint becomes a gpt2 GGUF with the design's metadata and tensor dims", async () => {
  const lm = await createLanguageModel(config, { seed: 3, maxBatch: 1 });
  const ckpt = join(dir, "ckpt.safetensors");
  lm.save(ckpt, { note: "test" });
  const out = join(dir, "model.gguf");
  const r = await cli(["lm", "export", "--checkpoint", ckpt, "--out", out, "--json"]);
  assert.equal(r.code, 0, r.stderr);
  const result = JSON.parse(r.stdout.trim());
  assert.equal(result.dtype, "f32");
  assert.equal(result.parameters, lm.paramCount);
  assert.deepEqual(result.config, config);

  const h = readGgufHeader(out);
  const m = h.metadata;
  assert.equal(m["general.architecture"], "gpt2");
  assert.equal(m["gpt2.context_length"], 64);
  assert.equal(m["gpt2.embedding_length"], 16);
  assert.equal(m["gpt2.feed_forward_length"], 64);
  assert.equal(m["gpt2.block_count"], 2);
  assert.equal(m["gpt2.attention.head_count"], 2);
  assert.ok(Math.abs((m["gpt2.attention.layer_norm_epsilon"] as number) - 1e-5) < 1e-10);
  assert.equal(m["tokenizer.ggml.model"], "gpt2");
  assert.equal(m["tokenizer.ggml.pre"], "gpt-2");
  assert.deepEqual(m["tokenizer.ggml.tokens"], byteVocabularyTokens());
  assert.deepEqual(m["tokenizer.ggml.token_type"], [...Array(256).fill(1), 3, 3, 3]);
  assert.deepEqual(m["tokenizer.ggml.merges"], []);
  assert.equal(m["tokenizer.ggml.bos_token_id"], 256);
  assert.equal(m["tokenizer.ggml.eos_token_id"], 256);
  assert.equal(m["tokenizer.ggml.eot_token_id"], 258);
  assert.equal(m["tokenizer.ggml.add_bos_token"], false);
  assert.match(m["tokenizer.chat_template"] as string, /<\|im_start\|>/);
  const dims = Object.fromEntries(h.tensors.map((t) => [t.name, t.dims]));
  assert.deepEqual(dims["token_embd.weight"], [16, VOCAB_SIZE]);
  assert.deepEqual(dims["position_embd.weight"], [16, 64]);
  assert.deepEqual(dims["blk.1.attn_qkv.weight"], [16, 48]);
  assert.deepEqual(dims["blk.1.attn_output.weight"], [16, 16]);
  assert.deepEqual(dims["blk.0.ffn_up.weight"], [16, 64]);
  assert.deepEqual(dims["blk.0.ffn_down.weight"], [64, 16]);
  assert.equal(dims["output.weight"], undefined, "the head is tied: llama.cpp uses token_embd");
  assert.equal(h.tensors.length, 4 + 12 * 2);

  const back = await loadLanguageModelGguf(out);
  for (const [name, t] of lm.getParams()) assert.deepEqual(back.getParams().get(name)!.data, t.data, name);
  assert.equal(engineGgufProblem(out), null);

  const human = await cli(["lm", "export", "--checkpoint", ckpt, "--out", join(dir, "again.gguf")]);
  assert.equal(human.code, 0, human.stderr);
  assert.match(human.stdout, /^wrote .*again\.gguf: gpt2, 2 layers x 16 wide, 2 heads, context 64, \d+ parameters \(step 0\), f32, \d+ bytes\n$/);
});

test("f16 export: matrices rounded to half precision, norms exact, and node-llama-cpp loads and generates", async () => {
  const lm = await createLanguageModel({ ...config, nPositions: 128 }, { seed: 4, maxBatch: 1 });
  const out = join(dir, "half.gguf");
  const r = await exportLanguageModelGguf(lm, out, { dtype: "f16" });
  const f32 = join(dir, "full.gguf");
  const full = await exportLanguageModelGguf(lm, f32);
  assert.ok(r.bytes < 0.6 * full.bytes, `f16 ${r.bytes} bytes vs f32 ${full.bytes}`);
  const back = await loadLanguageModelGguf(out);
  const a = lm.getParams();
  const b = back.getParams();
  for (const [name, t] of a) {
    const u = b.get(name)!.data;
    const tol = name.includes("ln_") || name.endsWith(".bias") ? 0 : 1e-3;
    for (let i = 0; i < t.data.length; i++) assert.ok(Math.abs(u[i]! - t.data[i]!) <= tol * Math.max(1, Math.abs(t.data[i]!)), `${name}[${i}]`);
  }
  const model = await createLlamaCppModel({ modelPath: out, maxTokens: 8 });
  try {
    assert.equal(model.info.trainContextSize, 128);
    // node-llama-cpp's ChatML wrapper starts with the BOS token, which the export makes <|endoftext|>.
    assert.equal(model.renderPrompt([{ role: "user", content: "hi" }]), "<|endoftext|><|im_start|>user\nhi<|im_end|>\n<|im_start|>assistant\n");
    const res = await model.generate([{ role: "user", content: "hi" }], { maxTokens: 8 });
    assert.ok(res.usage.completionTokens > 0);
    assert.equal(res.usage.promptTokens, 1 + encodeChat([{ role: "user", content: "hi" }], { addGenerationPrompt: true }).ids.length);
  } finally {
    await model.dispose();
  }
});

test("refused: a corrupt checkpoint, an ICA-model checkpoint, blocks gpt2 cannot run, another vocabulary", async () => {
  const lm = await createLanguageModel(config, { seed: 5, maxBatch: 1 });
  const ckpt = join(dir, "good.safetensors");
  lm.save(ckpt);
  const truncated = join(dir, "truncated.safetensors");
  writeFileSync(truncated, readFileSync(ckpt).subarray(0, 2000));
  await assert.rejects(exportLanguageModelGguf(truncated, join(dir, "x.gguf")), (e) => e instanceof UserError && /truncated|corrupted/.test(e.message));

  const ica = await createModel({ inputDim: 4, outputDim: 2, nEmbd: 16, nHead: 2, nLayer: 1, nPositions: 8 }, { seed: 1, maxBatch: 1, threads: 1 });
  const icaPath = join(dir, "ica.safetensors");
  await ica.save(icaPath);
  await ica.dispose();
  await assert.rejects(exportLanguageModelGguf(icaPath, join(dir, "x.gguf")), (e) => e instanceof UserError && /selfcorrect-lm-checkpoint-v1/.test(e.message));

  const linear = await createLanguageModel({ ...config, blocks: [{ attention: "softmax", ffn: true }, { attention: "linear", ffn: true }] }, { seed: 1, maxBatch: 1 });
  await assert.rejects(exportLanguageModelGguf(linear, join(dir, "x.gguf")), /block 1 has linear attention; llama.cpp's gpt2 architecture needs softmax attention and an MLP/);
  const noMlp = await createLanguageModel({ ...config, blocks: { attention: "softmax", ffn: false } }, { seed: 1, maxBatch: 1 });
  await assert.rejects(exportLanguageModelGguf(noMlp, join(dir, "x.gguf")), /block 0 has softmax attention and no MLP/);
  const wide = await createLanguageModel({ ...config, vocabSize: 300 }, { seed: 1, maxBatch: 1 });
  await assert.rejects(exportLanguageModelGguf(wide, join(dir, "x.gguf")), /vocabSize is 300; expected 259/);

  const bad = await cli(["lm", "export", "--checkpoint", icaPath, "--out", join(dir, "x.gguf")]);
  assert.equal(bad.code, 2);
  assert.match(bad.stderr, /^error: checkpoint .*ica\.safetensors: __metadata__\.format is .*expected "selfcorrect-lm-checkpoint-v1"/);
});

test("lm export flag errors name the flag and exit 2", async () => {
  const none = await cli(["lm", "export"]);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /--checkpoint needs a value\n--out needs a value/);
  const dtype = await cli(["lm", "export", "--checkpoint", "a", "--out", "b", "--dtype", "q4"]);
  assert.equal(dtype.code, 2);
  assert.match(dtype.stderr, /--dtype must be one of f32, f16/);
  const folder = await cli(["lm", "export", "--checkpoint", "a", "--out", join(dir, "missing", "m.gguf")]);
  assert.equal(folder.code, 2);
  assert.match(folder.stderr, /--out .*: the folder .*missing does not exist/);
  const missing = await cli(["lm", "export", "--checkpoint", join(dir, "nope.safetensors"), "--out", join(dir, "m.gguf")]);
  assert.equal(missing.code, 2);
  assert.match(missing.stderr, /nope\.safetensors: cannot read \(ENOENT\)/);
});

test("the engine refuses GGUFs it cannot run, saying why", async () => {
  const llamaPath = join(dir, "llama.gguf");
  writeTinyLlamaGguf(llamaPath, { seed: 1 });
  assert.match(engineGgufProblem(llamaPath)!, /architecture "llama"; the engine runs only the byte-level gpt2 files/);
  await assert.rejects(loadLanguageModelGguf(llamaPath), (e) => e instanceof UserError && /--backend llama-cpp/.test(e.message));
  assert.match(engineGgufProblem(join(dir, "absent.gguf"))!, /file not found/);

  // A gpt2 file with another vocabulary (e.g. real GPT-2's) is not the engine's.
  const lm = await createLanguageModel(config, { seed: 6, maxBatch: 1 });
  const good = join(dir, "mine.gguf");
  await exportLanguageModelGguf(lm, good);
  const h = readGgufHeader(good);
  const raw = readFileSync(good);
  const tokens = byteVocabularyTokens();
  tokens[65] = "Z";
  const metadata = { "general.architecture": gguf.str("gpt2"), "tokenizer.ggml.tokens": gguf.strings(tokens) };
  const other = join(dir, "other-vocab.gguf");
  const tensor = h.tensors[0]!;
  const data = new Float32Array(raw.buffer.slice(raw.byteOffset + h.dataOffset + tensor.offset, raw.byteOffset + h.dataOffset + tensor.offset + 4 * VOCAB_SIZE * 16));
  writeGguf(other, { metadata, tensors: [{ name: tensor.name, dims: tensor.dims, type: "F32", data }] });
  assert.match(engineGgufProblem(other)!, /vocabulary is not the engine's byte tokenizer/);
});
