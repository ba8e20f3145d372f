/**
 * The GGUF writer, the header reader/validator and the tiny llama generator. The round trips use two
 * independent readers: the project's own and node-llama-cpp's `readGgufFileInfo`.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { readGgufFileInfo } from "node-llama-cpp";
import {
  encodeGguf,
  float16BitsToFloat32,
  float32ToFloat16Bits,
  ggufLayout,
  writeGguf,
  type GgufFile,
} from "../src/engine/gguf/writer.js";
import { GgufFormatError, readGgufHeader, validateGgufFile } from "../src/engine/gguf/reader.js";
import { buildTinyLlama, buildTinyVocab, TINY_LLAMA_CHAT_TEMPLATE, TokenType, writeTinyLlamaGguf } from "../src/engine/gguf/fixtures/tiny-llama.js";

const dir = mkdtempSync(join(tmpdir(), "selfcorrect-gguf-"));
test.after(() => rmSync(dir, { recursive: true, force: true }));

function allTypesFile(alignment?: number): GgufFile {
  return {
    metadata: {
      "general.architecture": { type: "string", value: "test" },
      ...(alignment ? { "general.alignment": { type: "uint32", value: alignment } } : {}),
      "t.u8": { type: "uint8", value: 255 },
      "t.i8": { type: "int8", value: -128 },
      "t.u16": { type: "uint16", value: 65535 },
      "t.i16": { type: "int16", value: -32768 },
      "t.u32": { type: "uint32", value: 4294967295 },
      "t.i32": { type: "int32", value: -2147483648 },
      "t.f32": { type: "float32", value: 1.5 },
      "t.f64": { type: "float64", value: Math.PI },
      "t.bool": { type: "bool", value: true },
      "t.str": { type: "string", value: "héllo ✓ <|im_end|>" },
      "t.u64": { type: "uint64", value: 2n ** 64n - 1n },
      "t.i64": { type: "int64", value: -(2n ** 63n) },
      "t.arr.f32": { type: "array", itemType: "float32", value: [0.25, -2] },
      "t.arr.str": { type: "array", itemType: "string", value: ["a", "", "ü"] },
      "t.arr.bool": { type: "array", itemType: "bool", value: [true, false] },
      "t.arr.u64": { type: "array", itemType: "uint64", value: [1n, 5] },
      "t.arr.nested": {
        type: "array",
        itemType: "array",
        value: [
          { type: "array", itemType: "int32", value: [1, -2] },
          { type: "array", itemType: "string", value: ["x"] },
        ],
      },
      "t.arr.empty": { type: "array", itemType: "int16", value: [] },
    },
    tensors: [
      { name: "a", dims: [3], type: "F32", data: new Float32Array([1, -2, 3.5]) },
      { name: "b", dims: [3, 2], type: "F16", data: new Float32Array([0.5, 1, 2, -3, 65504, 1e-6]) },
      { name: "c", dims: [2, 2, 2], type: "F32", data: new Float32Array([1, 2, 3, 4, 5, 6, 7, 8]) },
    ],
  };
}

test("float16 conversion rounds to nearest even and handles edge values", () => {
  const cases: [number, number][] = [
    [0, 0x0000],
    [-0, 0x8000],
    [1, 0x3c00],
    [-2, 0xc000],
    [0.5, 0x3800],
    [65504, 0x7bff], // largest finite half
    [65520, 0x7c00], // rounds up to infinity
    [1e9, 0x7c00],
    [-Infinity, 0xfc00],
    [2 ** -24, 0x0001], // smallest subnormal
    [2 ** -14, 0x0400], // smallest normal
    [2 ** -26, 0x0000], // below half the smallest subnormal: zero
    [1 + 2 ** -11, 0x3c00], // exact tie between 1 and 1+2^-10: to even (1)
    [1 + 3 * 2 ** -11, 0x3c02], // tie: to even (1 + 2^-9)
    [0.1, 0x2e66],
  ];
  for (const [v, bits] of cases) assert.equal(float32ToFloat16Bits(v), bits, `f16(${v})`);
  assert.ok(Number.isNaN(float16BitsToFloat32(float32ToFloat16Bits(NaN))));
  // Every finite half value survives half -> float -> half.
  for (let b = 0; b < 0x10000; b++) {
    if ((b & 0x7c00) === 0x7c00) continue;
    assert.equal(float32ToFloat16Bits(float16BitsToFloat32(b)), b);
  }
});

test("layout: header, padding to general.alignment, aligned tensor offsets", () => {
  for (const alignment of [undefined, 64]) {
    const file = allTypesFile(alignment);
    const a = alignment ?? 32;
    const layout = ggufLayout(file);
    const bytes = encodeGguf(file);
    assert.equal(bytes.length, layout.totalBytes);
    assert.equal(layout.dataOffset % a, 0);
    assert.ok(layout.dataOffset >= layout.headerBytes && layout.dataOffset - layout.headerBytes < a);
    for (const off of layout.tensorOffsets) assert.equal(off % a, 0);
    // Padding is zeros.
    for (let i = layout.headerBytes; i < layout.dataOffset; i++) assert.equal(bytes[i], 0);
    assert.equal(Buffer.from(bytes.subarray(0, 4)).toString("latin1"), "GGUF");
    assert.equal(Buffer.from(bytes.buffer, bytes.byteOffset).readUInt32LE(4), 3);
  }
});

test("every metadata value type and the tensor data round-trip through node-llama-cpp's reader and ours", async () => {
  const file = allTypesFile(64);
  const path = join(dir, "all-types.gguf");
  writeGguf(path, file);
  const info = await readGgufFileInfo(path, { logWarnings: false, sourceType: "filesystem" });
  assert.equal(info.version, 3);
  assert.equal(Number(info.tensorCount), 3);
  const m = info.metadata as unknown as Record<string, any>;
  assert.equal(m.general.architecture, "test");
  assert.equal(m.general.alignment, 64);
  assert.deepEqual(
    { ...m.t, arr: undefined },
    {
      u8: 255, i8: -128, u16: 65535, i16: -32768, u32: 4294967295, i32: -2147483648, f32: 1.5, f64: Math.PI,
      bool: true, str: "héllo ✓ <|im_end|>", u64: 2n ** 64n - 1n, i64: -(2n ** 63n), arr: undefined,
    },
  );
  assert.deepEqual(m.t.arr.f32, [0.25, -2]);
  assert.deepEqual(m.t.arr.str, ["a", "", "ü"]);
  assert.deepEqual(m.t.arr.bool, [true, false]);
  assert.deepEqual(m.t.arr.u64, [1n, 5n]);
  assert.deepEqual(m.t.arr.nested, [[1, -2], ["x"]]);
  assert.deepEqual(m.t.arr.empty, []);

  const raw = readFileSync(path);
  const tensors = info.tensorInfo!;
  assert.deepEqual(tensors.map((t) => [t.name, t.dimensions.map(Number), t.ggmlType]), [
    ["a", [3], 0],
    ["b", [3, 2], 1],
    ["c", [2, 2, 2], 0],
  ]);
  const at = (name: string) => Number(tensors.find((t) => t.name === name)!.fileOffset);
  assert.deepEqual([0, 1, 2].map((i) => raw.readFloatLE(at("a") + 4 * i)), [1, -2, 3.5]);
  const b = [0, 1, 2, 3, 4, 5].map((i) => float16BitsToFloat32(raw.readUInt16LE(at("b") + 2 * i)));
  assert.deepEqual(b.slice(0, 5), [0.5, 1, 2, -3, 65504]);
  assert.ok(Math.abs(b[5]! - 1e-6) < 1e-7); // a subnormal half
  assert.equal(raw.readFloatLE(at("c") + 28), 8);

  const ours = validateGgufFile(path);
  assert.equal(ours.version, 3);
  assert.equal(ours.alignment, 64);
  assert.equal(ours.metadata["t.u64"], 2n ** 64n - 1n);
  assert.deepEqual(ours.metadata["t.arr.nested"], [[1, -2], ["x"]]);
  assert.equal(ours.metadataTypes["t.f64"], "float64");
  assert.deepEqual(ours.tensors.map((t) => ours.dataOffset + t.offset), tensors.map((t) => Number(t.fileOffset)));
});

test("the writer refuses invalid files instead of writing them", () => {
  const base = () => allTypesFile();
  const bad: [string, (f: GgufFile) => void, RegExp][] = [
    ["data size", (f) => (f.tensors[0]!.dims = [4]), /need 4 values, got 3/],
    ["duplicate name", (f) => (f.tensors[1]!.name = "a"), /duplicate tensor name a/],
    ["zero dim", (f) => (f.tensors[0]!.dims = [0]), /invalid dims/],
    ["5 dims", (f) => (f.tensors[2]!.dims = [1, 1, 2, 2, 2]), /5 dims/],
    ["alignment", (f) => (f.metadata["general.alignment"] = { type: "uint32", value: 48 }), /power of two/],
    ["u8 range", (f) => (f.metadata["t.u8"] = { type: "uint8", value: 256 }), /t.u8 = 256 is not a valid uint8/],
    ["i32 integer", (f) => (f.metadata["t.i32"] = { type: "int32", value: 1.5 }), /not a valid int32/],
    ["u64 negative", (f) => (f.metadata["t.u64"] = { type: "uint64", value: -1n }), /out of range for uint64/],
    ["array item", (f) => (f.metadata["t.arr.bool"] = { type: "array", itemType: "uint8", value: [1, 300] }), /t.arr.bool\[1\]/],
  ];
  for (const [what, mutate, message] of bad) {
    const f = base();
    mutate(f);
    assert.throws(() => encodeGguf(f), message, what);
  }
});

test("tiny llama: deterministic, small, fast, with the llama keys, tokenizer and GGUF dims order", async () => {
  const t0 = performance.now();
  const a = writeTinyLlamaGguf(join(dir, "a.gguf"), { seed: 7 });
  const ms = performance.now() - t0;
  assert.ok(ms < 1000, `generated in ${ms.toFixed(0)} ms`);
  writeTinyLlamaGguf(join(dir, "b.gguf"), { seed: 7 });
  writeTinyLlamaGguf(join(dir, "c.gguf"), { seed: 8 });
  const [ba, bb, bc] = ["a", "b", "c"].map((n) => readFileSync(join(dir, `${n}.gguf`)));
  assert.ok(ba!.equals(bb!), "same seed, same bytes");
  assert.ok(!ba!.equals(bc!), "another seed, other weights");
  assert.equal(a.bytes, statSync(a.path).size);
  assert.ok(a.bytes < 4 * 1024 * 1024, `${a.bytes} bytes`);

  const info = await readGgufFileInfo(a.path, { logWarnings: false, sourceType: "filesystem" });
  const m = info.metadata as unknown as Record<string, any>;
  assert.equal(m.general.architecture, "llama");
  assert.deepEqual(
    {
      context_length: m.llama.context_length,
      embedding_length: m.llama.embedding_length,
      block_count: m.llama.block_count,
      feed_forward_length: m.llama.feed_forward_length,
      head_count: m.llama.attention.head_count,
      head_count_kv: m.llama.attention.head_count_kv,
      rope_dims: m.llama.rope.dimension_count,
      vocab_size: m.llama.vocab_size,
    },
    { context_length: 2048, embedding_length: 64, block_count: 2, feed_forward_length: 128, head_count: 4, head_count_kv: 2, rope_dims: 16, vocab_size: a.vocab },
  );
  assert.ok(Math.abs(m.llama.attention.layer_norm_rms_epsilon - 1e-5) < 1e-9);
  const tok = m.tokenizer.ggml;
  assert.equal(tok.model, "llama");
  assert.equal(tok.tokens.length, a.vocab);
  assert.equal(tok.scores.length, a.vocab);
  assert.equal(tok.token_type.length, a.vocab);
  assert.ok(a.vocab >= 300 && a.vocab <= 700, `vocab ${a.vocab}`);
  assert.equal(tok.tokens[tok.bos_token_id], "<s>");
  assert.equal(tok.tokens[tok.eos_token_id], "</s>");
  assert.equal(tok.tokens[tok.unknown_token_id], "<unk>");
  for (let b = 0; b < 256; b++) {
    const id = tok.tokens.indexOf(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`);
    assert.equal(tok.token_type[id], TokenType.byte, `byte token ${b}`);
  }
  for (const control of ["<|im_start|>", "<|im_end|>"]) assert.equal(tok.token_type[tok.tokens.indexOf(control)], TokenType.control);
  assert.equal(m.tokenizer.chat_template, TINY_LLAMA_CHAT_TEMPLATE);

  const dims = new Map(info.tensorInfo!.map((t) => [t.name, t.dimensions.map(Number)]));
  const expected: [string, number[]][] = [["token_embd.weight", [64, a.vocab]], ["output_norm.weight", [64]], ["output.weight", [64, a.vocab]]];
  for (let l = 0; l < 2; l++) {
    expected.push(
      [`blk.${l}.attn_norm.weight`, [64]],
      [`blk.${l}.attn_q.weight`, [64, 64]],
      [`blk.${l}.attn_k.weight`, [64, 32]],
      [`blk.${l}.attn_v.weight`, [64, 32]],
      [`blk.${l}.attn_output.weight`, [64, 64]],
      [`blk.${l}.ffn_norm.weight`, [64]],
      [`blk.${l}.ffn_gate.weight`, [64, 128]],
      [`blk.${l}.ffn_up.weight`, [64, 128]],
      [`blk.${l}.ffn_down.weight`, [128, 64]],
    );
  }
  assert.equal(dims.size, expected.length);
  for (const [name, d] of expected) assert.deepEqual(dims.get(name), d, name);
});

test("tiny vocabulary: every piece's prefixes exist (SentencePiece merges pairwise) and sizes are honoured", () => {
  const v = buildTinyVocab(600);
  assert.equal(v.tokens.length, 600);
  assert.equal(new Set(v.tokens).size, 600);
  v.tokens.forEach((t, i) => {
    if (v.types[i] !== TokenType.normal) return;
    const chars = [...t];
    for (let k = 1; k < chars.length; k++) assert.ok(v.tokens.includes(chars.slice(0, k).join("")), `prefix of ${t}`);
  });
  assert.throws(() => buildTinyVocab(100), /vocab must be at least/);
  assert.throws(() => buildTinyLlama({ seed: 1, nEmbd: 60, nHead: 8 }), /divisible/);
  assert.throws(() => buildTinyLlama({ seed: 1, nHead: 4, nHeadKv: 3 }), /divisible by nHeadKv/);
  const f32 = buildTinyLlama({ seed: 1, weightType: "F32", nLayer: 1 });
  assert.equal(f32.file.tensors.filter((t) => t.name.startsWith("blk.")).length, 9);
  assert.ok(f32.file.tensors.every((t) => t.type === "F32"));
});

test("the reader rejects malformed files with messages that name the file and the problem", () => {
  const good = join(dir, "good.gguf");
  writeTinyLlamaGguf(good, { seed: 3 });
  const bytes = readFileSync(good);
  const cases: [string, Buffer, RegExp][] = [
    ["bad-magic", Buffer.concat([Buffer.from("GGML"), bytes.subarray(4)]), /bad magic bytes "GGML" \(expected "GGUF"\)/],
    ["text", Buffer.from("root:x:0:0:root:/root:/bin/bash\n"), /bad magic bytes "root"/],
    ["tiny", bytes.subarray(0, 10), /only 10 bytes/],
    ["version", Buffer.concat([bytes.subarray(0, 4), Buffer.from([9, 0, 0, 0]), bytes.subarray(8)]), /unsupported GGUF version 9/],
    ["truncated-metadata", bytes.subarray(0, 3000), /truncated/],
    ["truncated-data", bytes.subarray(0, bytes.length - 100), /tensor output\.weight \[64, \d+\] needs bytes up to \d+ but the file has \d+/],
  ];
  for (const [name, data, message] of cases) {
    const path = join(dir, `${name}.gguf`);
    writeFileSync(path, data);
    assert.throws(
      () => validateGgufFile(path),
      (e: unknown) => e instanceof GgufFormatError && e.message.startsWith(`${path}: not a valid GGUF model file: `) && message.test(e.message),
      name,
    );
  }
  assert.throws(() => readGgufHeader(join(dir, "missing.gguf")), /missing\.gguf: not a valid GGUF model file: file not found/);
  assert.throws(() => readGgufHeader(dir), /is a directory/);
});
