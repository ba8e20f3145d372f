/**
 * The native AVX-512 matmuls (src/engine/kernels/native/matmul.c) give the same bits as the
 * WebAssembly FMA kernels: kernel by kernel on shapes that reach every tile edge, column tail, mask
 * and k block, and over whole training runs (the ICA model at 1 and 2 threads, the language model).
 * Where the addon is not built or the CPU lacks AVX-512 the tests skip, saying why; with
 * SELFCORRECT_REQUIRE_NATIVE=1 (CI) a missing or broken build fails them instead (a CPU without
 * AVX-512 still skips: there is nothing to test there).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createRequire } from "node:module";
import { KERNEL_HEAP_BASE, createKernelMemory, createWasmKernels, kernelScratchFloats } from "../src/engine/kernels/wasm.js";
import { nativeMatmulStatus, withNativeMatmul } from "../src/engine/kernels/native.js";
import type { Kernels } from "../src/engine/kernels/types.js";
import { Rng } from "../src/util/rng.js";
import { createModel, type EngineModel } from "../src/engine/model/index.js";
import type { ModelConfig } from "../src/engine/api.js";
import { trainIca } from "./support/ica-train.js";
import { trainTinyLm } from "./support/tiny-lm.js";

const status = nativeMatmulStatus();
const required = process.env.SELFCORRECT_REQUIRE_NATIVE === "1" && !(!status.available && status.hardware);
const skip = status.available || required ? false : `native matmuls unavailable here: ${status.reason}`;
const nativePath = (): string => {
  assert.ok(status.available, `native matmuls unavailable: ${status.available ? "" : status.reason}`);
  return status.path;
};

test("the native matmuls load here (required in CI)", { skip: required ? false : skip || "SELFCORRECT_REQUIRE_NATIVE is not 1" }, () => {
  nativePath();
});

const GUARD = 8;
const GUARD_VALUE = 12345.5;

/** Values over many binades, so that fused and separate rounding, or another summation order, show in the bits. */
function fillWide(heap: Float32Array, p: number, n: number, rng: Rng): void {
  for (let i = 0; i < n; i++) heap[p + i] = rng.normal() * 2 ** (rng.int(17) - 8);
}

interface Bench {
  heap: () => Float32Array;
  alloc(n: number): number;
  guardsIntact(): boolean;
}

function bump(k: Kernels, start: number): Bench {
  let next = start;
  const guards: number[] = [];
  const heap = () => k.heap() as Float32Array;
  return {
    heap,
    alloc(n) {
      const h = heap();
      const p = next + GUARD;
      h.fill(GUARD_VALUE, next, p);
      h.fill(GUARD_VALUE, p + n, p + n + GUARD);
      guards.push(next, p + n);
      next = (p + n + GUARD + 15) & ~15;
      if (next * 4 > h.byteLength) throw new Error("test heap exhausted");
      return p;
    },
    guardsIntact() {
      const h = heap();
      return guards.every((g) => h.subarray(g, g + GUARD).every((v) => v === GUARD_VALUE));
    },
  };
}

function firstDifference(heap: Float32Array, a: number, b: number, n: number): number {
  const bits = new Uint32Array(heap.buffer, heap.byteOffset, heap.length);
  for (let i = 0; i < n; i++) if (bits[a + i] !== bits[b + i]) return i;
  return -1;
}

// [BT, C, OC]: 1-row and 8-row tiles and the rows between; column panels of 48, masked vectors and
// N mod 4 tails (C or OC of 1, 5, 17, 33, 50, 259); k blocks of 128 (C, OC or BT above 128); the
// model's shapes (96 -> 288, 96 -> 384, 384 -> 96, the read-in of 5 dims, the LM head of 259).
const SHAPES: Array<[number, number, number]> = [
  [1, 1, 1], [3, 5, 7], [7, 5, 3], [9, 40, 33], [13, 17, 50], [63, 5, 96], [64, 96, 5],
  [37, 96, 288], [130, 96, 384], [131, 384, 96], [257, 17, 50], [20, 48, 259], [33, 259, 48],
];

async function kernelsPair(shared: boolean, scratchFloats: number) {
  const memory = createKernelMemory(96 << 20, shared);
  const wasm = await createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats, fma: true });
  const native = withNativeMatmul(wasm, nativePath(), scratchFloats);
  return { wasm, native, bench: bump(wasm, KERNEL_HEAP_BASE + scratchFloats + 64) };
}

/** Runs `run(k, outputs)` with both kernels on copies of the same outputs and asserts equal bits. */
function sameBits(
  pair: { wasm: Kernels; native: Kernels; bench: Bench }, rng: Rng, what: string,
  outputs: Array<[string, number]>, run: (k: Kernels, out: number[]) => void,
): void {
  const { bench } = pair;
  const heap = bench.heap();
  const a = outputs.map(([, n]) => bench.alloc(n));
  const b = outputs.map(([, n]) => bench.alloc(n));
  outputs.forEach(([, n], i) => {
    fillWide(heap, a[i]!, n, rng);
    heap.copyWithin(b[i]!, a[i]!, a[i]! + n);
  });
  run(pair.wasm, a);
  run(pair.native, b);
  outputs.forEach(([name, n], i) => {
    const at = firstDifference(bench.heap(), a[i]!, b[i]!, n);
    assert.equal(at, -1, `${what}: ${name}[${at}] wasm ${bench.heap()[a[i]! + at]} native ${bench.heap()[b[i]! + at]}`);
  });
  assert.ok(bench.guardsIntact(), `${what}: a kernel wrote outside its buffer`);
}

for (const shared of [false, true]) {
  test(`native matmuls equal the WebAssembly FMA kernels bit for bit (${shared ? "shared" : "plain"} memory)`, { skip }, async () => {
    const scratchFloats = kernelScratchFloats(384, 384, 64);
    const pair = await kernelsPair(shared, scratchFloats);
    const rng = new Rng(shared ? 2 : 1);
    for (const [BT, C, OC] of SHAPES) {
      const { bench } = pair;
      const heap = bench.heap();
      const inp = bench.alloc(BT * C), weight = bench.alloc(OC * C), bias = bench.alloc(OC), dout = bench.alloc(BT * OC);
      fillWide(heap, inp, BT * C, rng);
      fillWide(heap, weight, OC * C, rng);
      fillWide(heap, bias, OC, rng);
      fillWide(heap, dout, BT * OC, rng);
      const shape = `BT ${BT}, C ${C}, OC ${OC}`;
      for (const b of [0, bias]) {
        sameBits(pair, rng, `forward ${shape}${b ? " + bias" : ""}`, [["out", BT * OC]], (k, [out]) =>
          k.matmulForward(out!, inp, weight, b, BT, C, OC));
      }
      for (const overwrite of [0, 1]) {
        sameBits(pair, rng, `backward ${shape}, overwrite ${overwrite}`, [["dinp", BT * C], ["dweight", OC * C], ["dbias", OC]],
          (k, [dinp, dweight, dbias]) => k.matmulBackward(dinp!, dweight!, dbias!, dout, inp, weight, BT, C, OC, overwrite));
      }
      // dinp and dbias are optional (the read-in has no input gradient; some layers have no bias)
      sameBits(pair, rng, `backward ${shape}, weight only`, [["dweight", OC * C]], (k, [dweight]) =>
        k.matmulBackward(0, dweight!, 0, dout, inp, weight, BT, C, OC, 0));
    }
  });
}

test("the bias gradient follows the WebAssembly kernel's row blocks when its scratch is small", { skip }, async () => {
  const rng = new Rng(3);
  const [BT, C, OC] = [203, 24, 37];
  // 40 rows per block (not 128), and fewer than 4 rows (the unpacked path)
  for (const scratchFloats of [OC * 41, OC * 3 + 1]) {
    const pair = await kernelsPair(false, scratchFloats);
    const heap = pair.bench.heap();
    const inp = pair.bench.alloc(BT * C), weight = pair.bench.alloc(OC * C), dout = pair.bench.alloc(BT * OC);
    fillWide(heap, inp, BT * C, rng);
    fillWide(heap, weight, OC * C, rng);
    fillWide(heap, dout, BT * OC, rng);
    sameBits(pair, rng, `scratch ${scratchFloats}`, [["dinp", BT * C], ["dweight", OC * C], ["dbias", OC]],
      (k, [dinp, dweight, dbias]) => k.matmulBackward(dinp!, dweight!, dbias!, dout, inp, weight, BT, C, OC, 0));
  }
});

test("the comparison can fail: the mul + add build differs from the native FMA matmuls", { skip }, async () => {
  // Guards against a test that compares a kernel with itself: the same inputs through WebAssembly
  // without FMA round differently, so equal bits above mean the native code really fuses as the FMA build does.
  const scratchFloats = kernelScratchFloats(96, 96, 8);
  const memory = createKernelMemory(16 << 20, false);
  const mulAdd = await createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats, fma: false });
  const native = withNativeMatmul(mulAdd, nativePath(), scratchFloats);
  const bench = bump(mulAdd, KERNEL_HEAP_BASE + scratchFloats + 64);
  const [BT, C, OC] = [32, 96, 96];
  const heap = bench.heap();
  const rng = new Rng(4);
  const inp = bench.alloc(BT * C), weight = bench.alloc(OC * C), o1 = bench.alloc(BT * OC), o2 = bench.alloc(BT * OC);
  fillWide(heap, inp, BT * C, rng);
  fillWide(heap, weight, OC * C, rng);
  mulAdd.matmulForward(o1, inp, weight, 0, BT, C, OC);
  native.matmulForward(o2, inp, weight, 0, BT, C, OC);
  assert.notEqual(firstDifference(bench.heap(), o1, o2, BT * OC), -1, "fused and separate rounding gave the same bits everywhere");
});

test("the native addon rejects a heap that is not a Float32Array and buffers beyond the heap", { skip }, () => {
  const addon = createRequire(import.meta.url)(nativePath()) as {
    matmulForward(...args: unknown[]): void;
    matmulBackward(...args: unknown[]): void;
  };
  const heap = new Float32Array(1024);
  assert.throws(() => addon.matmulForward(new Float64Array(1024), 0, 100, 200, 0, 2, 4, 4), /Float32Array/);
  assert.throws(() => addon.matmulForward(heap, 1000, 100, 200, 0, 8, 4, 4), /out \[1000, 1032\) lies beyond the heap \(1024 floats\)/);
  assert.throws(() => addon.matmulForward(heap, 0, 100, 200, 0, 2.5, 4, 4), /integer/);
  assert.throws(() => addon.matmulForward(heap, 0, 100), /expected 8 arguments/);
  assert.throws(() => addon.matmulBackward(heap, 0, 900, 0, 0, 100, 200, 8, 4, 40, 0, 4096), /dweight .* beyond the heap/);
});

// ------------------------------------------------------------------------------------------------
// Whole training runs: SELFCORRECT_NATIVE=0 is the WebAssembly path.

async function withNative<T>(on: boolean, run: () => Promise<T>): Promise<T> {
  const before = process.env.SELFCORRECT_NATIVE;
  process.env.SELFCORRECT_NATIVE = on ? "1" : "0";
  try {
    return await run();
  } finally {
    if (before === undefined) delete process.env.SELFCORRECT_NATIVE;
    else process.env.SELFCORRECT_NATIVE = before;
  }
}

function modelBytes(model: { getParams(): Map<string, { data: Float32Array | Float64Array }>; getOptimizerState(): { m: Map<string, { data: Float32Array | Float64Array }>; v: Map<string, { data: Float32Array | Float64Array }> } }): Map<string, string> {
  const out = new Map<string, string>();
  const { m, v } = model.getOptimizerState();
  for (const [kind, tensors] of [["param", model.getParams()], ["adam.m", m], ["adam.v", v]] as const) {
    for (const [name, t] of tensors) out.set(`${kind} ${name}`, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength).toString("base64"));
  }
  return out;
}

// Widths that end in masked vectors (3C = 120, 4C = 160) and a 5-dim read-in and read-out (column tails).
const d = 5, n = 7;
const icaConfig: ModelConfig = {
  inputDim: d, outputDim: d, nEmbd: 40, nHead: 2, nLayer: 2, nPositions: 3 * n,
  blocks: [{ attention: "softmax", ffn: true }, { attention: "linear", ffn: false }],
};

for (const threads of [1, 2]) {
  test(`30 training steps at ${threads} thread(s): native and WebAssembly matmuls give the same weights, Adam moments and losses`, { skip }, async () => {
    const run = (native: boolean) => withNative(native, async () => {
      const model: EngineModel = await createModel(icaConfig, { seed: 5, maxBatch: 24, threads });
      try {
        assert.equal(model.matmuls, native ? "native" : "wasm");
        const losses = await trainIca(model, new Rng(6), { steps: 30, batch: (s) => (s % 7 === 3 ? 17 : 24), n, d, lr: 3e-3 });
        return { losses, bytes: modelBytes(model) };
      } finally {
        await model.dispose();
      }
    });
    const wasm = await run(false);
    const native = await run(true);
    assert.deepEqual(native.losses, wasm.losses);
    assert.ok(wasm.losses[29]! < wasm.losses[0]!, "the model trained");
    assert.equal(native.bytes.size, wasm.bytes.size);
    for (const [name, b] of wasm.bytes) assert.equal(native.bytes.get(name), b, `${name} differs`);
  });
}

test("the language model (head of 259 tokens) trains to the same bits with native and WebAssembly matmuls", { skip }, async () => {
  const run = (native: boolean) => withNative(native, async () => {
    const { lm, losses } = await trainTinyLm({ steps: 8, nEmbd: 40, nPositions: 32, batch: 3, seqLen: 24, seed: 9 });
    return { losses, bytes: modelBytes(lm) };
  });
  const wasm = await run(false);
  const native = await run(true);
  assert.deepEqual(native.losses, wasm.losses);
  for (const [name, b] of wasm.bytes) assert.equal(native.bytes.get(name), b, `${name} differs`);
});
