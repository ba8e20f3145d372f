/**
 * Checkpoints: safetensors with HF names and [out, in] weights plus Adam moments and the step;
 * resuming continues bit-exactly; truncated, corrupted or mismatched checkpoints are rejected.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, readFileSync, writeFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Rng } from "../src/util/rng.js";
import { UserError } from "../src/util/errors.js";
import { createModel, loadModel, type EngineModel } from "../src/engine/model/index.js";
import { decodeSafetensors, encodeSafetensors, readSafetensors } from "../src/engine/safetensors.js";
import type { ModelConfig } from "../src/engine/api.js";
import { buildTokens, extractPredictions, sampleIcaBatch, scatterPredictionGrad } from "../src/lab/task.js";
import { plLossICA } from "../src/lab/losses.js";

const d = 4, n = 6, T = 3 * n, B = 8;
const config: ModelConfig = {
  inputDim: d, outputDim: d, nEmbd: 16, nHead: 2, nLayer: 2, nPositions: T,
  blocks: [{ attention: "softmax", ffn: true }, { attention: "linear", ffn: false }],
};

async function train(model: EngineModel, rng: Rng, steps: number): Promise<void> {
  for (let s = 0; s < steps; s++) {
    const batch = sampleIcaBatch(rng, B, n, d);
    const out = await model.forward(buildTokens(batch), B, T);
    const { grad } = plLossICA(extractPredictions(out, B, n, d), batch.ys, batch.rs, B, n, d);
    await model.backward(scatterPredictionGrad(grad, B, n, d));
    await model.adamStep({ lr: 1e-3 });
  }
}

function bits(m: Map<string, { data: Float32Array }>): Map<string, number[]> {
  return new Map([...m].map(([k, t]) => [k, Array.from(new Uint32Array(Float32Array.from(t.data).buffer))]));
}

function withDir(f: (dir: string) => Promise<void>): () => Promise<void> {
  return async () => {
    const dir = mkdtempSync(join(tmpdir(), "engine-ckpt-"));
    try {
      await f(dir);
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  };
}

test("save -> load resumes training bit-exactly (parameters, Adam moments, step, caller state)", withDir(async (dir) => {
  const path = join(dir, "ckpt.safetensors");
  const a = await createModel(config, { seed: 4, maxBatch: B, threads: 2 });
  let expected: Map<string, number[]>, expectedM: Map<string, number[]>;
  try {
    const rng = new Rng(9);
    await train(a, rng, 5);
    await a.save(path, { rng: rng.getState(), note: "five steps" });
    await train(a, rng, 5);
    expected = bits(a.getParams());
    expectedM = bits(a.getOptimizerState().m);
  } finally {
    await a.dispose();
  }
  assert.ok(existsSync(path) && existsSync(`${path}.json`));

  const { model: b, extra } = await loadModel(path, { maxBatch: B, threads: 2, expectConfig: config });
  try {
    assert.equal(b.step, 5);
    assert.equal(extra.note, "five steps");
    const rng = Rng.fromState(extra.rng as ReturnType<Rng["getState"]>);
    await train(b, rng, 5);
    assert.equal(b.step, 10);
    assert.deepEqual(bits(b.getParams()), expected);
    assert.deepEqual(bits(b.getOptimizerState().m), expectedM);
  } finally {
    await b.dispose();
  }

  // The file itself: HF names, [out, in] weights, Adam moments, step in __metadata__.
  const f = readSafetensors(path);
  assert.deepEqual(f.tensors.get("read_in.weight")!.shape, [16, d]);
  assert.deepEqual(f.tensors.get("h.0.attn.c_attn.weight")!.shape, [48, 16]);
  assert.deepEqual(f.tensors.get("h.0.mlp.c_proj.weight")!.shape, [16, 64]);
  assert.deepEqual(f.tensors.get("read_out.weight")!.shape, [d, 16]);
  assert.deepEqual(f.tensors.get("wpe")!.shape, [T, 16]);
  assert.ok(f.tensors.has("optimizer.m.wpe") && f.tensors.has("optimizer.v.h.1.ln_1.bias"));
  assert.ok(!f.tensors.has("h.1.ln_2.weight"), "block 1 has no FFN");
  assert.equal(f.metadata.step, "5");
  assert.equal(JSON.parse(readFileSync(`${path}.json`, "utf8")).config.blocks[1].attention, "linear");
}));

test("a checkpoint loads at another thread count with the same weights", withDir(async (dir) => {
  const path = join(dir, "c.safetensors");
  const a = await createModel(config, { seed: 1, maxBatch: B, threads: 2 });
  await train(a, new Rng(2), 2);
  await a.save(path);
  const want = bits(a.getParams());
  await a.dispose();
  const { model: b } = await loadModel(path, { maxBatch: 2, threads: 1 });
  assert.deepEqual(bits(b.getParams()), want);
  await b.dispose();
}));

test("truncated, corrupted or mismatched checkpoints are rejected with a clear error", withDir(async (dir) => {
  const path = join(dir, "c.safetensors");
  const a = await createModel(config, { seed: 1, maxBatch: B, threads: 1 });
  await a.save(path);
  await a.dispose();
  const good = readFileSync(path);
  const load = (p: string, expectConfig?: ModelConfig) => loadModel(p, { maxBatch: B, threads: 1, expectConfig });
  const copy = (name: string, bytes: Uint8Array) => {
    const p = join(dir, name);
    writeFileSync(p, bytes);
    writeFileSync(`${p}.json`, readFileSync(`${path}.json`));
    return p;
  };

  await assert.rejects(load(copy("trunc", good.subarray(0, good.length - 100))), (e: Error) =>
    e instanceof UserError && /truncated or corrupted/.test(e.message) && /header says the data is \d+ bytes but the file holds \d+/.test(e.message));
  await assert.rejects(load(copy("tiny", good.subarray(0, 5))), /at least an 8-byte header length/);
  const flipped = Uint8Array.from(good);
  flipped[flipped.length - 7]! ^= 0x40;
  await assert.rejects(load(copy("flip", flipped)), /checksum \(data_sha256\) does not match/);
  const badHeader = Uint8Array.from(good);
  badHeader[9] = 0x7b; // '{' inside the JSON header
  await assert.rejects(load(copy("hdr", badHeader)), /truncated or corrupted/);
  const hugeLen = Uint8Array.from(good);
  new DataView(hugeLen.buffer).setBigUint64(0, 1n << 40n, true);
  await assert.rejects(load(copy("len", hugeLen)), /header length/);

  await assert.rejects(load(path, { ...config, nLayer: 3, blocks: undefined }), (e: Error) =>
    e instanceof UserError && /different model config: nLayer: checkpoint has 2, expected 3/.test(e.message));
  await assert.rejects(load(path, { ...config, blocks: { attention: "softmax", ffn: true } }), /blocks\[1\]\.attention: checkpoint has "linear", expected "softmax"/);
  await assert.rejects(load(join(dir, "absent.safetensors")), /cannot read the checkpoint config/);

  // A tensors file from another config behind this config's JSON.
  const other = await createModel({ ...config, nEmbd: 8 }, { seed: 1, maxBatch: 1, threads: 1 });
  await other.save(join(dir, "other.safetensors"));
  await other.dispose();
  await assert.rejects(load(copy("mixed", readFileSync(join(dir, "other.safetensors")))), /tensor read_in\.weight has shape \[8, 4\]; expected \[16, 4\]/);
}));

test("safetensors codec: round trip, 8-byte aligned data, F64 read, unknown dtype rejected", () => {
  const t = new Map([
    ["a", { shape: [2, 3], data: Float32Array.from([1, 2, 3, 4, 5, 6]) }],
    ["b", { shape: [1], data: Float32Array.from([-0.5]) }],
  ]);
  const bytes = encodeSafetensors(t, { hello: "world" });
  const n = Number(new DataView(bytes.buffer).getBigUint64(0, true));
  assert.equal((8 + n) % 8, 0);
  const back = decodeSafetensors(bytes);
  assert.deepEqual(back.tensors.get("a")!.data, t.get("a")!.data);
  assert.deepEqual(back.tensors.get("b")!.shape, [1]);
  assert.equal(back.metadata.hello, "world");

  const mk = (header: object, data: Uint8Array) => {
    const h = new TextEncoder().encode(JSON.stringify(header));
    const out = new Uint8Array(8 + h.length + data.length);
    new DataView(out.buffer).setBigUint64(0, BigInt(h.length), true);
    out.set(h, 8);
    out.set(data, 8 + h.length);
    return out;
  };
  const f64 = new Float64Array([0.25, -3]);
  const d64 = decodeSafetensors(mk({ x: { dtype: "F64", shape: [2], data_offsets: [0, 16] } }, new Uint8Array(f64.buffer)));
  assert.deepEqual(Array.from(d64.tensors.get("x")!.data), [0.25, -3]);
  assert.throws(() => decodeSafetensors(mk({ x: { dtype: "I8", shape: [2], data_offsets: [0, 2] } }, new Uint8Array(2))), /dtype "I8"; expected "F32"/);
  assert.throws(() => decodeSafetensors(mk({ x: { dtype: "F32", shape: [3], data_offsets: [0, 8] } }, new Uint8Array(8))), /needs 12 bytes/);
  assert.throws(() => decodeSafetensors(mk({ x: { dtype: "F32", shape: [1], data_offsets: [4, 8] } }, new Uint8Array(8))), /gap or overlap/);
});
