// The WebAssembly SIMD kernels (src/engine/kernels/wasm.ts) against naive float64 implementations
// written here (independent of reference.ts), on odd shapes that exercise every vector tail.
import { test } from "node:test";
import assert from "node:assert/strict";
import { Worker } from "node:worker_threads";
import {
  KERNEL_HEAP_BASE,
  compileKernelModule,
  createKernelMemory,
  createWasmKernels,
  instantiateKernels,
  kernelScratchFloats,
} from "../src/engine/kernels/wasm.js";
import type { Kernels } from "../src/engine/kernels/types.js";
import { Rng } from "../src/util/rng.js";

// ------------------------------------------------------------------------------------------------
// A bump allocator over the kernel heap; every buffer gets guard floats on both sides so a kernel
// that writes past its output is caught.

const GUARD = 8;
const GUARD_VALUE = 12345.5;

class Heap {
  next: number;
  guards: Array<[number, number]> = [];
  constructor(readonly k: Kernels, start: number) {
    this.next = start;
  }
  alloc(n: number): number {
    const h = this.k.heap();
    const p = this.next + GUARD;
    h.fill(GUARD_VALUE, this.next, p);
    h.fill(GUARD_VALUE, p + n, p + n + GUARD);
    this.guards.push([this.next, GUARD], [p + n, GUARD]);
    this.next = p + n + GUARD;
    this.next = (this.next + 3) & ~3;
    if (this.next * 4 > h.byteLength) throw new Error("test heap exhausted");
    return p;
  }
  /** Allocates and fills from `data`; returns the pointer and the float32-rounded values as float64. */
  put(data: ArrayLike<number>): [number, Float64Array] {
    const p = this.alloc(data.length);
    const h = this.k.heap();
    for (let i = 0; i < data.length; i++) h[p + i] = data[i]!;
    return [p, this.get(p, data.length)];
  }
  get(p: number, n: number): Float64Array {
    return Float64Array.from(this.k.heap().subarray(p, p + n));
  }
  checkGuards(what: string): void {
    const h = this.k.heap();
    for (const [p, n] of this.guards) {
      for (let i = p; i < p + n; i++) assert.equal(h[i], GUARD_VALUE, `${what}: write outside a buffer at float ${i}`);
    }
  }
}

function randn(rng: Rng, n: number, scale = 1): Float64Array {
  const a = new Float64Array(n);
  for (let i = 0; i < n; i++) a[i] = rng.normal() * scale;
  return a;
}

/** max |a - e| / (max |e| + tiny) must be <= tol. */
function assertClose(actual: ArrayLike<number>, expected: ArrayLike<number>, tol: number, what: string): void {
  assert.equal(actual.length, expected.length, `${what}: length`);
  let maxErr = 0;
  let maxRef = 0;
  let worst = -1;
  for (let i = 0; i < expected.length; i++) {
    const e = Math.abs(actual[i]! - expected[i]!);
    if (!(e <= maxErr)) {
      maxErr = e;
      worst = i;
    }
    maxRef = Math.max(maxRef, Math.abs(expected[i]!));
  }
  const rel = maxErr / (maxRef + 1e-30);
  assert.ok(rel <= tol, `${what}: relative error ${rel.toExponential(2)} > ${tol} (at ${worst}: got ${actual[worst]}, want ${expected[worst]})`);
}

// ------------------------------------------------------------------------------------------------
// Naive float64 implementations.

function naiveMatmulForward(inp: Float64Array, w: Float64Array, bias: Float64Array | null, BT: number, C: number, OC: number): Float64Array {
  const out = new Float64Array(BT * OC);
  for (let t = 0; t < BT; t++) {
    for (let o = 0; o < OC; o++) {
      let s = bias ? bias[o]! : 0;
      for (let c = 0; c < C; c++) s += inp[t * C + c]! * w[o * C + c]!;
      out[t * OC + o] = s;
    }
  }
  return out;
}

function naiveMatmulBackward(dout: Float64Array, inp: Float64Array, w: Float64Array, BT: number, C: number, OC: number) {
  const dinp = new Float64Array(BT * C);
  const dw = new Float64Array(OC * C);
  const db = new Float64Array(OC);
  for (let t = 0; t < BT; t++) {
    for (let o = 0; o < OC; o++) {
      const g = dout[t * OC + o]!;
      db[o]! += g;
      for (let c = 0; c < C; c++) {
        dinp[t * C + c]! += g * w[o * C + c]!;
        dw[o * C + c]! += g * inp[t * C + c]!;
      }
    }
  }
  return { dinp, dw, db };
}

function naiveLayernorm(inp: Float64Array, w: Float64Array, b: Float64Array, BT: number, C: number) {
  const out = new Float64Array(BT * C);
  const mean = new Float64Array(BT);
  const rstd = new Float64Array(BT);
  for (let t = 0; t < BT; t++) {
    let m = 0;
    for (let c = 0; c < C; c++) m += inp[t * C + c]!;
    m /= C;
    let v = 0;
    for (let c = 0; c < C; c++) v += (inp[t * C + c]! - m) ** 2;
    v /= C;
    const r = 1 / Math.sqrt(v + 1e-5);
    for (let c = 0; c < C; c++) out[t * C + c] = (inp[t * C + c]! - m) * r * w[c]! + b[c]!;
    mean[t] = m;
    rstd[t] = r;
  }
  return { out, mean, rstd };
}

/** Layernorm backward by the chain rule written out directly (float64). */
function naiveLayernormBackward(dout: Float64Array, inp: Float64Array, w: Float64Array, BT: number, C: number) {
  const dinp = new Float64Array(BT * C);
  const dw = new Float64Array(C);
  const db = new Float64Array(C);
  const { mean, rstd } = naiveLayernorm(inp, w, new Float64Array(C), BT, C);
  for (let t = 0; t < BT; t++) {
    const r = rstd[t]!;
    const xhat = new Float64Array(C);
    for (let c = 0; c < C; c++) xhat[c] = (inp[t * C + c]! - mean[t]!) * r;
    // y_c = xhat_c w_c + b_c;  dxhat_c = dout_c w_c;  dx_i = r (dxhat_i - mean(dxhat) - xhat_i mean(dxhat xhat))
    let s1 = 0;
    let s2 = 0;
    for (let c = 0; c < C; c++) {
      const g = dout[t * C + c]!;
      db[c]! += g;
      dw[c]! += g * xhat[c]!;
      s1 += g * w[c]!;
      s2 += g * w[c]! * xhat[c]!;
    }
    for (let c = 0; c < C; c++) dinp[t * C + c] = r * (dout[t * C + c]! * w[c]! - s1 / C - xhat[c]! * s2 / C);
  }
  return { dinp, dw, db };
}

function naiveAttention(qkv: Float64Array, B: number, T: number, C: number, NH: number, softmax: boolean) {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const out = new Float64Array(B * T * C);
  const att = new Float64Array(B * NH * T * T);
  const q = (b: number, t: number, h: number, i: number) => qkv[(b * T + t) * 3 * C + h * hs + i]!;
  const k = (b: number, t: number, h: number, i: number) => qkv[(b * T + t) * 3 * C + C + h * hs + i]!;
  const v = (b: number, t: number, h: number, i: number) => qkv[(b * T + t) * 3 * C + 2 * C + h * hs + i]!;
  for (let b = 0; b < B; b++) {
    for (let h = 0; h < NH; h++) {
      for (let t = 0; t < T; t++) {
        const row = ((b * NH + h) * T + t) * T;
        const s = new Float64Array(t + 1);
        for (let t2 = 0; t2 <= t; t2++) {
          let d = 0;
          for (let i = 0; i < hs; i++) d += q(b, t, h, i) * k(b, t2, h, i);
          s[t2] = d * scale;
        }
        if (softmax) {
          const mx = Math.max(...s);
          let z = 0;
          for (let t2 = 0; t2 <= t; t2++) z += Math.exp(s[t2]! - mx);
          for (let t2 = 0; t2 <= t; t2++) s[t2] = Math.exp(s[t2]! - mx) / z;
        }
        for (let t2 = 0; t2 <= t; t2++) att[row + t2] = s[t2]!;
        for (let i = 0; i < hs; i++) {
          let o = 0;
          for (let t2 = 0; t2 <= t; t2++) o += s[t2]! * v(b, t2, h, i);
          out[(b * T + t) * C + h * hs + i] = o;
        }
      }
    }
  }
  return { out, att };
}

/** d(Σ out·dout)/d(qkv) by central finite differences of naiveAttention in float64. */
function attentionGradFD(qkv: Float64Array, dout: Float64Array, B: number, T: number, C: number, NH: number, softmax: boolean): Float64Array {
  const f = (x: Float64Array) => {
    const { out } = naiveAttention(x, B, T, C, NH, softmax);
    let s = 0;
    for (let i = 0; i < out.length; i++) s += out[i]! * dout[i]!;
    return s;
  };
  const g = new Float64Array(qkv.length);
  const x = Float64Array.from(qkv);
  const eps = 1e-6;
  for (let i = 0; i < x.length; i++) {
    const x0 = x[i]!;
    x[i] = x0 + eps;
    const fp = f(x);
    x[i] = x0 - eps;
    const fm = f(x);
    x[i] = x0;
    g[i] = (fp - fm) / (2 * eps);
  }
  return g;
}

const GELU_K = Math.sqrt(2 / Math.PI);
const gelu = (x: number) => 0.5 * x * (1 + Math.tanh(GELU_K * (x + 0.044715 * x ** 3)));
function geluGrad(x: number): number {
  const u = GELU_K * (x + 0.044715 * x ** 3);
  const th = Math.tanh(u);
  return 0.5 * (1 + th) + 0.5 * x * (1 - th * th) * GELU_K * (1 + 3 * 0.044715 * x * x);
}

// ------------------------------------------------------------------------------------------------

async function setup(fma: boolean, memBytes = 64 << 20) {
  const memory = createKernelMemory(memBytes, false);
  const scratchFloats = kernelScratchFloats(384, 384, 60);
  const k = await createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats, fma });
  return { k, heap: new Heap(k, KERNEL_HEAP_BASE + scratchFloats), memory };
}

/**
 * Random dout[BT, OC], inp[BT, C] and weight[OC, C] (scaled by wScale) on the heap, their float64
 * gradients, and zeroed dinp, dweight and dbias buffers.
 */
function matmulBackwardCase(k: Kernels, heap: Heap, rng: Rng, BT: number, C: number, OC: number, wScale: number) {
  const [pdo, dout] = heap.put(randn(rng, BT * OC));
  const [pi, inp] = heap.put(randn(rng, BT * C));
  const [pw, w] = heap.put(randn(rng, OC * C, wScale));
  const g = naiveMatmulBackward(dout, inp, w, BT, C, OC);
  const pdi = heap.alloc(BT * C);
  const pdw = heap.alloc(OC * C);
  const pdb = heap.alloc(OC);
  k.fill(pdi, 0, BT * C);
  k.fill(pdw, 0, OC * C);
  k.fill(pdb, 0, OC);
  return { pdo, pi, pw, pdi, pdw, pdb, g };
}

const MATMUL_SHAPES: Array<[number, number, number]> = [
  [1, 1, 1],
  [1, 5, 96],
  [7, 5, 3],
  [13, 17, 19],
  [9, 5, 96], // read-in
  [22, 96, 5], // read-out
  [61, 96, 288], // qkv
  [30, 384, 96], // fc proj
  [6, 33, 37],
  [5, 64, 31],
  [301, 13, 37], // more than one 128-row chunk in dweight, ragged
  [260, 96, 96],
];

// Both builds: plain mul+add and relaxed-SIMD FMA.
for (const fma of [false, true]) {
  const V = fma ? "[fma]" : "[mul-add]";

  test(`${V} matmulForward matches float64, with and without bias`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(1);
    for (const [BT, C, OC] of MATMUL_SHAPES) {
      for (const withBias of [true, false]) {
        const [pi, inp] = heap.put(randn(rng, BT * C));
        const [pw, w] = heap.put(randn(rng, OC * C, 0.1));
        const [pb, b] = heap.put(randn(rng, OC));
        const [po] = heap.put(randn(rng, BT * OC)); // garbage that must be overwritten
        k.matmulForward(po, pi, pw, withBias ? pb : 0, BT, C, OC);
        const want = naiveMatmulForward(inp, w, withBias ? b : null, BT, C, OC);
        assertClose(heap.get(po, BT * OC), want, 1e-5, `matmulForward BT=${BT} C=${C} OC=${OC} bias=${withBias}`);
      }
    }
    heap.checkGuards("matmulForward");
  });

  test(`${V} matmulForward and attention reject shapes larger than the instance's scratch`, async () => {
    const memory = createKernelMemory(1 << 20, false);
    const k = await createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats: 100, fma });
    assert.throws(() => k.matmulForward(KERNEL_HEAP_BASE + 200, KERNEL_HEAP_BASE + 400, KERNEL_HEAP_BASE + 600, 0, 1, 11, 10), /scratch/);
    // attention transposes a head to [hs, T rounded up to 8]: 16 x 16 > 100
    assert.throws(() => k.attentionForward(KERNEL_HEAP_BASE + 200, KERNEL_HEAP_BASE + 400, KERNEL_HEAP_BASE + 600, 1, 9, 32, 2, 1), /scratch/);
    assert.throws(() => k.attentionBackward(KERNEL_HEAP_BASE + 200, KERNEL_HEAP_BASE + 400, KERNEL_HEAP_BASE + 600, KERNEL_HEAP_BASE + 800, KERNEL_HEAP_BASE + 1000, 1, 9, 32, 2, 1), /scratch/);
    assert.throws(() => k.attentionForward(KERNEL_HEAP_BASE + 200, KERNEL_HEAP_BASE + 400, KERNEL_HEAP_BASE + 600, 1, 2, 10, 3, 1), /divide/);
  });

  test(`${V} matmulBackward accumulates dinp, dweight, dbias; dinp and dbias may be 0`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(2);
    const twice = (a: Float64Array) => a.map((x) => 2 * x);
    for (const [BT, C, OC] of MATMUL_SHAPES) {
      const { pdo, pi, pw, pdi, pdw, pdb, g } = matmulBackwardCase(k, heap, rng, BT, C, OC, 0.1);
      const what = `matmulBackward BT=${BT} C=${C} OC=${OC}`;
      // from zeroed gradients, then once more: the second call must add the same again (+=)
      k.matmulBackward(pdi, pdw, pdb, pdo, pi, pw, BT, C, OC);
      assertClose(heap.get(pdi, BT * C), g.dinp, 1e-5, `${what} dinp`);
      assertClose(heap.get(pdw, OC * C), g.dw, 1e-5, `${what} dweight`);
      assertClose(heap.get(pdb, OC), g.db, 1e-5, `${what} dbias`);
      k.matmulBackward(pdi, pdw, pdb, pdo, pi, pw, BT, C, OC);
      assertClose(heap.get(pdi, BT * C), twice(g.dinp), 1e-5, `${what} dinp +=`);
      assertClose(heap.get(pdw, OC * C), twice(g.dw), 1e-5, `${what} dweight +=`);
      assertClose(heap.get(pdb, OC), twice(g.db), 1e-5, `${what} dbias +=`);
      // dinp = 0 and dbias = 0 skip those products; dweight still accumulates onto what is there
      const [pdi2, dinp0] = heap.put(randn(rng, BT * C));
      const [pdb2, db0] = heap.put(randn(rng, OC));
      k.matmulBackward(0, pdw, 0, pdo, pi, pw, BT, C, OC);
      assertClose(heap.get(pdw, OC * C), g.dw.map((x) => 3 * x), 1e-5, `${what} dweight (skip others)`);
      assert.deepEqual(heap.get(pdi2, BT * C), dinp0, `${what}: dinp untouched`);
      assert.deepEqual(heap.get(pdb2, OC), db0, `${what}: dbias untouched`);
    }
    heap.checkGuards("matmulBackward");
  });

  test(`${V} matmulBackward without room in scratch to pack dout still matches`, async () => {
    const memory = createKernelMemory(16 << 20, false);
    const k = await createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats: 64, fma });
    const heap = new Heap(k, KERNEL_HEAP_BASE + 64);
    const rng = new Rng(12);
    const [BT, C, OC] = [150, 9, 21];
    const { pdo, pi, pw, pdi, pdw, pdb, g } = matmulBackwardCase(k, heap, rng, BT, C, OC, 1);
    k.matmulBackward(pdi, pdw, pdb, pdo, pi, pw, BT, C, OC);
    assertClose(heap.get(pdi, BT * C), g.dinp, 1e-5, "dinp");
    assertClose(heap.get(pdw, OC * C), g.dw, 1e-5, "dweight");
    assertClose(heap.get(pdb, OC), g.db, 1e-5, "dbias");
    heap.checkGuards("matmulBackward (small scratch)");
  });

  test(`${V} layernorm forward and backward match float64`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(3);
    for (const [BT, C] of [[1, 1], [3, 5], [7, 32], [5, 97], [11, 96], [2, 384]] as const) {
      const [pi, inp] = heap.put(randn(rng, BT * C, 2).map((x, i) => x + (i % C === 0 ? 3 : 0)));
      const [pw, w] = heap.put(randn(rng, C).map((x) => 1 + 0.3 * x));
      const [pb, b] = heap.put(randn(rng, C, 0.3));
      const po = heap.alloc(BT * C);
      const pm = heap.alloc(BT);
      const pr = heap.alloc(BT);
      k.layernormForward(po, pm, pr, pi, pw, pb, BT, C);
      const want = naiveLayernorm(inp, w, b, BT, C);
      const what = `layernorm BT=${BT} C=${C}`;
      assertClose(heap.get(po, BT * C), want.out, 1e-5, `${what} out`);
      assertClose(heap.get(pm, BT), want.mean, 1e-5, `${what} mean`);
      assertClose(heap.get(pr, BT), want.rstd, 1e-5, `${what} rstd`);

      const [pdo, dout] = heap.put(randn(rng, BT * C));
      const pdi = heap.alloc(BT * C);
      const pdw = heap.alloc(C);
      const pdb = heap.alloc(C);
      k.fill(pdi, 0, BT * C);
      k.fill(pdw, 0, C);
      k.fill(pdb, 0, C);
      const g = naiveLayernormBackward(dout, inp, w, BT, C);
      for (const times of [1, 2]) {
        // the second call must add the same again (+=)
        k.layernormBackward(pdi, pdw, pdb, pdo, pi, pw, pm, pr, BT, C);
        const x = (a: Float64Array) => a.map((v) => times * v);
        // C = 1 normalises to exactly 0: dinp and dweight are 0 up to rounding, so compare absolutely there
        if (C > 1) assertClose(heap.get(pdi, BT * C), x(g.dinp), 1e-5, `${what} dinp x${times}`);
        else assert.ok(heap.get(pdi, BT * C).every((v) => Math.abs(v) < 1e-3), `${what} dinp ~ 0`);
        if (C > 1) assertClose(heap.get(pdw, C), x(g.dw), 1e-5, `${what} dweight x${times}`);
        assertClose(heap.get(pdb, C), x(g.db), 1e-5, `${what} dbias x${times}`);
      }
    }
    heap.checkGuards("layernorm");
  });

  const ATTN_SHAPES: Array<[number, number, number, number]> = [
    // B, T, C, NH
    [1, 1, 4, 1],
    [2, 7, 12, 3], // hs = 4
    [2, 5, 10, 2], // hs = 5 (scalar tail)
    [1, 9, 36, 2], // hs = 18 (16 + tail)
    [2, 60, 96, 3], // the default model, hs = 32
    [1, 13, 32, 1], // NH = 1
  ];

  test(`${V} attentionForward matches float64 (softmax and linear)`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(4);
    for (const [B, T, C, NH] of ATTN_SHAPES) {
      for (const softmax of [1, 0]) {
        const [pq, qkv] = heap.put(randn(rng, B * T * 3 * C));
        const [po] = heap.put(randn(rng, B * T * C));
        const [pa] = heap.put(randn(rng, B * NH * T * T)); // garbage; the upper triangle must become 0
        k.attentionForward(po, pa, pq, B, T, C, NH, softmax);
        const want = naiveAttention(qkv, B, T, C, NH, softmax === 1);
        const what = `attentionForward B=${B} T=${T} C=${C} NH=${NH} softmax=${softmax}`;
        assertClose(heap.get(po, B * T * C), want.out, 1e-5, `${what} out`);
        assertClose(heap.get(pa, B * NH * T * T), want.att, 1e-5, `${what} att`);
      }
    }
    heap.checkGuards("attentionForward");
  });

  test(`${V} attentionBackward accumulates the gradient of Σ out·dout (finite differences, float64)`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(5);
    const shapes = ATTN_SHAPES.filter(([B, T, C]) => B * T * C <= 1000);
    for (const [B, T, C, NH] of [...shapes, [1, 16, 64, 2] as [number, number, number, number]]) {
      for (const softmax of [1, 0]) {
        const [pq, qkv] = heap.put(randn(rng, B * T * 3 * C));
        const po = heap.alloc(B * T * C);
        const pa = heap.alloc(B * NH * T * T);
        k.attentionForward(po, pa, pq, B, T, C, NH, softmax);
        const [pdo, dout] = heap.put(randn(rng, B * T * C));
        const pdq = heap.alloc(B * T * 3 * C);
        k.fill(pdq, 0, B * T * 3 * C);
        const pdatt = heap.alloc(B * NH * T * T);
        const want = attentionGradFD(qkv, dout, B, T, C, NH, softmax === 1);
        for (const times of [1, 2]) {
          // the second call must add the same again (+=)
          k.attentionBackward(pdq, pdatt, pdo, pq, pa, B, T, C, NH, softmax);
          const what = `attentionBackward B=${B} T=${T} C=${C} NH=${NH} softmax=${softmax} x${times}`;
          assertClose(heap.get(pdq, B * T * 3 * C), want.map((v) => times * v), 1e-5, what);
        }
      }
    }
    heap.checkGuards("attentionBackward");
  });

  test(`${V} GELU forward and backward match float64, including large |x|`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(6);
    for (const N of [1, 3, 4, 7, 1001]) {
      const x = randn(rng, N, 3);
      const extremes = [0, -0.5, 1e-4, -30, 30, -9, 9, 88, -88, 200, -200];
      for (let i = 0; i < Math.min(N, extremes.length); i++) x[(i * 7) % N] = extremes[i]!;
      const [pi, inp] = heap.put(x);
      const po = heap.alloc(N);
      k.geluForward(po, pi, N);
      const got = heap.get(po, N);
      for (let i = 0; i < N; i++) {
        const want = gelu(inp[i]!);
        assert.ok(Math.abs(got[i]! - want) <= 1e-6 * Math.max(1, Math.abs(want)), `gelu(${inp[i]}) = ${got[i]}, want ${want}`);
      }
      const [pdo, dout] = heap.put(randn(rng, N));
      const [pdi, dinp0] = heap.put(randn(rng, N));
      k.geluBackward(pdi, pi, pdo, N);
      const gotD = heap.get(pdi, N);
      for (let i = 0; i < N; i++) {
        const want = dinp0[i]! + geluGrad(inp[i]!) * dout[i]!;
        assert.ok(Math.abs(gotD[i]! - want) <= 2e-6 * Math.max(1, Math.abs(want)), `gelu'(${inp[i]}): got ${gotD[i]}, want ${want}`);
      }
    }
    heap.checkGuards("gelu");
  });

  test(`${V} overwrite = 1 gives the bits of accumulating into zeros, without reading the buffer`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(13);
    /** `run(dst, overwrite)` into a zeroed buffer (accumulate) and into a garbage one (overwrite): same bits. */
    const same = (n: number, what: string, run: (dst: number, overwrite: number) => void): void => {
      const zeroed = heap.alloc(n);
      k.fill(zeroed, 0, n);
      run(zeroed, 0);
      const [garbage] = heap.put(randn(rng, n, 1e3));
      run(garbage, 1);
      const want = heap.get(zeroed, n);
      assert.ok(want.some((x) => x !== 0), `${what}: a non-trivial case`);
      assert.deepEqual(heap.get(garbage, n), want, what);
    };
    for (const [BT, C, OC] of MATMUL_SHAPES) {
      const { pdo, pi, pw } = matmulBackwardCase(k, heap, rng, BT, C, OC, 0.1);
      same(BT * C, `matmulBackward dinp BT=${BT} C=${C} OC=${OC}`, (dst, o) => k.matmulBackward(dst, 0, 0, pdo, pi, pw, BT, C, OC, o));
    }
    for (const [B, T, C, NH] of ATTN_SHAPES) {
      for (const softmax of [1, 0]) {
        const [pq] = heap.put(randn(rng, B * T * 3 * C));
        const pa = heap.alloc(B * NH * T * T);
        k.attentionForward(heap.alloc(B * T * C), pa, pq, B, T, C, NH, softmax);
        const [pdo] = heap.put(randn(rng, B * T * C));
        const pdatt = heap.alloc(B * NH * T * T);
        const what = `attentionBackward B=${B} T=${T} C=${C} NH=${NH} softmax=${softmax}`;
        same(B * T * 3 * C, what, (dst, o) => k.attentionBackward(dst, pdatt, pdo, pq, pa, B, T, C, NH, softmax, o));
      }
    }
    for (const N of [1, 7, 16, 1001]) {
      const [pi] = heap.put(randn(rng, N, 3));
      const [pdo] = heap.put(randn(rng, N));
      same(N, `geluBackward N=${N}`, (dst, o) => k.geluBackward(dst, pi, pdo, N, o));
    }
    heap.checkGuards("overwrite");
  });

  test(`${V} add (aliasing out = a), accumulate (+=) and fill`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(7);
    for (const N of [1, 3, 4, 17, 1000]) {
      const [pa, a] = heap.put(randn(rng, N));
      const [pb, b] = heap.put(randn(rng, N));
      const po = heap.alloc(N);
      k.add(po, pa, pb, N);
      assert.deepEqual(heap.get(po, N), Float64Array.from(new Float32Array(a.map((x, i) => x + b[i]!))));
      k.add(pa, pa, pb, N);
      assert.deepEqual(heap.get(pa, N), heap.get(po, N));
      k.accumulate(pa, pb, N);
      k.accumulate(pa, pb, N);
      const want = Float32Array.from(heap.get(po, N));
      for (let r = 0; r < 2; r++) for (let i = 0; i < N; i++) want[i] = Math.fround(want[i]! + Math.fround(b[i]!));
      assert.deepEqual(heap.get(pa, N), Float64Array.from(want));
      k.fill(po, -2.5, N);
      assert.ok(heap.get(po, N).every((x) => x === -2.5));
      k.fill(po, 0, N);
      assert.ok(heap.get(po, N).every((x) => x === 0));
    }
    heap.checkGuards("elementwise");
  });

  test(`${V} flushTiny zeroes magnitudes below 2^-60 and keeps everything else bit-exact`, async () => {
    const { k, heap } = await setup(fma);
    const T = 2 ** -60;
    const values = [0, -0, 1e-45, -1e-40, 1.1e-38, T * 0.999, -T * 0.5, T, -T, T * 1.001, 1e-10, -3.5, 7e30, Infinity, -Infinity];
    for (const N of [values.length, 4, 3]) {
      const [p, v] = heap.put(values.slice(0, N));
      k.flushTiny(p, N);
      const got = heap.get(p, N);
      for (let i = 0; i < N; i++) {
        const want = Math.abs(v[i]!) < T ? 0 : v[i]!;
        assert.ok(Object.is(Math.abs(got[i]!), Math.abs(want)) && (want === 0 || got[i] === want), `flushTiny(${v[i]}) = ${got[i]}, want ${want}`);
      }
    }
    const [pn] = heap.put([NaN, 1e-39, NaN, 2]);
    k.flushTiny(pn, 4);
    assert.deepEqual(Array.from(heap.get(pn, 4)).map((x) => (Number.isNaN(x) ? "NaN" : x)), ["NaN", 0, "NaN", 2]);
    heap.checkGuards("flushTiny");
  });

  test(`${V} sharp softmax attention leaves no subnormal floats in att or dqkv`, async () => {
    // A trained model's attention is nearly one-hot; its backward once filled buffers with
    // subnormals (20-40x slower on x86). Scores of order 100 reproduce that regime.
    const { k, heap } = await setup(fma);
    const rng = new Rng(11);
    const [B, T, C, NH] = [2, 24, 16, 2];
    const [pq] = heap.put(randn(rng, B * T * 3 * C, 6));
    const po = heap.alloc(B * T * C);
    const pa = heap.alloc(B * NH * T * T);
    k.attentionForward(po, pa, pq, B, T, C, NH, 1);
    const [pdo] = heap.put(randn(rng, B * T * C, 1e-6));
    const pdq = heap.alloc(B * T * 3 * C);
    k.fill(pdq, 0, B * T * 3 * C);
    const pdatt = heap.alloc(B * NH * T * T);
    k.attentionBackward(pdq, pdatt, pdo, pq, pa, B, T, C, NH, 1);
    const isSub = (x: number) => x !== 0 && Math.abs(x) < 2 ** -126;
    const att = heap.get(pa, B * NH * T * T);
    let flushed = 0; // causal entries (t2 <= t) that came out exactly 0: weights that underflowed
    for (let bh = 0; bh < B * NH; bh++) for (let t = 0; t < T; t++) for (let t2 = 0; t2 <= t; t2++) if (att[(bh * T + t) * T + t2] === 0) flushed++;
    assert.ok(flushed > 0, "the test needs underflowing attention weights");
    assert.equal(att.filter(isSub).length, 0, "subnormal attention weights");
    k.flushTiny(pdq, B * T * 3 * C);
    assert.equal(heap.get(pdq, B * T * 3 * C).filter(isSub).length, 0, "subnormal dqkv");
    assert.ok(heap.get(pdq, B * T * 3 * C).some((x) => x !== 0), "dqkv must not be all zero");
    heap.checkGuards("sharp attention");
  });

  test(`${V} GELU and LayerNorm backward never write subnormal gradients`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(12);
    const isSub = (x: number) => x !== 0 && Math.abs(x) < 2 ** -126;
    const [BT, C] = [7, 13];
    // gradients spanning normal, tiny-normal and subnormal magnitudes
    const tinyGrads = Array.from({ length: BT * C }, (_, i) => (i % 3 === 0 ? 1e-3 : i % 3 === 1 ? 1e-25 : 1e-40) * (i % 2 ? 1 : -1));
    const [px] = heap.put(randn(rng, BT * C));
    const [pdy] = heap.put(tinyGrads);
    const pdx = heap.alloc(BT * C);
    k.fill(pdx, 0, BT * C);
    k.geluBackward(pdx, px, pdy, BT * C);
    const dGelu = heap.get(pdx, BT * C);
    assert.equal(dGelu.filter(isSub).length, 0, "subnormal GELU gradients");
    assert.ok(dGelu.some((x) => Math.abs(x) > 1e-5), "the normal gradients must pass through");
    const [pw] = heap.put(randn(rng, C, 1e-3));
    const [pb] = heap.put(randn(rng, C));
    const po = heap.alloc(BT * C);
    const pm = heap.alloc(BT);
    const pr = heap.alloc(BT);
    k.layernormForward(po, pm, pr, px, pw, pb, BT, C);
    const [pdw, pdb] = [heap.alloc(C), heap.alloc(C)];
    k.fill(pdw, 0, C);
    k.fill(pdb, 0, C);
    k.fill(pdx, 0, BT * C);
    k.layernormBackward(pdx, pdw, pdb, pdy, px, pw, pm, pr, BT, C);
    for (const [name, p, n] of [["dinp", pdx, BT * C], ["dweight", pdw, C], ["dbias", pdb, C]] as const) {
      assert.equal(heap.get(p, n).filter(isSub).length, 0, `subnormal LayerNorm ${name}`);
    }
    heap.checkGuards("gelu/layernorm flush");
  });

  test(`${V} adamUpdate matches PyTorch Adam semantics over several steps`, async () => {
    const { k, heap } = await setup(fma);
    const rng = new Rng(8);
    const N = 103;
    const lr = 3e-3;
    const b1 = 0.9;
    const b2 = 0.999;
    const eps = 1e-8;
    const [pp, p0] = heap.put(randn(rng, N));
    const pg = heap.alloc(N);
    const pm = heap.alloc(N);
    const pv = heap.alloc(N);
    k.fill(pm, 0, N);
    k.fill(pv, 0, N);
    const p = Float64Array.from(p0);
    const m = new Float64Array(N);
    const v = new Float64Array(N);
    for (let t = 1; t <= 5; t++) {
      k.heap().set(randn(rng, N, t === 3 ? 1e-6 : 1), pg);
      const g = heap.get(pg, N); // the float32-rounded gradient
      k.adamUpdate(pp, pg, pm, pv, N, lr, b1, b2, eps, t);
      for (let i = 0; i < N; i++) {
        m[i] = b1 * m[i]! + (1 - b1) * g[i]!;
        v[i] = b2 * v[i]! + (1 - b2) * g[i]! * g[i]!;
        p[i]! -= (lr * (m[i]! / (1 - b1 ** t))) / (Math.sqrt(v[i]! / (1 - b2 ** t)) + eps);
      }
      assertClose(heap.get(pm, N), m, 1e-6, `adam m step ${t}`);
      assertClose(heap.get(pv, N), v, 1e-6, `adam v step ${t}`);
      // compare the parameter change (|step| ~ lr), relative to lr
      const dp = heap.get(pp, N).map((x, i) => x - p0[i]!);
      const dpWant = p.map((x, i) => x - p0[i]!);
      assertClose(dp, dpWant, 1e-4, `adam params step ${t}`);
    }
    heap.checkGuards("adam");
  });
}

// ------------------------------------------------------------------------------------------------
// Several instances over ONE shared memory: a second instance in a worker thread computes the same
// kernels on its own copy of the buffers, concurrently with the main thread's instance.

const WORKER_SOURCE = `
const { parentPort, workerData } = require("node:worker_threads");
(async () => {
  const { instantiateKernels } = await import(workerData.loaderUrl);
  const k = instantiateKernels(workerData.module, { memory: workerData.memory, scratchPtr: workerData.scratchPtr, scratchFloats: workerData.scratchFloats });
  parentPort.on("message", (job) => {
    for (let r = 0; r < job.repeats; r++) runJob(k, job.p, job.dims);
    parentPort.postMessage("done");
  });
  parentPort.postMessage("ready");
})();
` ;

interface JobPtrs {
  inp: number; w: number; bias: number; out: number; dout: number; dinp: number; dw: number; db: number;
  qkv: number; att: number; aout: number; adout: number; dqkv: number; datt: number;
}
interface JobDims { BT: number; C: number; OC: number; B: number; T: number; NH: number }

/** The same function runs in the worker (serialised into its source) and in the main thread. */
function runJob(k: Kernels, p: JobPtrs, d: JobDims): void {
  k.matmulForward(p.out, p.inp, p.w, p.bias, d.BT, d.C, d.OC);
  k.matmulBackward(p.dinp, p.dw, p.db, p.dout, p.inp, p.w, d.BT, d.C, d.OC);
  k.attentionForward(p.aout, p.att, p.qkv, d.B, d.T, d.C, d.NH, 1);
  k.attentionBackward(p.dqkv, p.datt, p.adout, p.qkv, p.att, d.B, d.T, d.C, d.NH, 1);
}

for (const fma of [false, true]) test(`[${fma ? "fma" : "mul-add"}] two instances on one shared memory, running concurrently on two threads, match one instance`, async () => {
  const dims: JobDims = { BT: 240, C: 96, OC: 288, B: 4, T: 60, NH: 3 };
  const sizes: Record<keyof JobPtrs, number> = {
    inp: dims.BT * dims.C, w: dims.OC * dims.C, bias: dims.OC, out: dims.BT * dims.OC, dout: dims.BT * dims.OC,
    dinp: dims.BT * dims.C, dw: dims.OC * dims.C, db: dims.OC,
    qkv: dims.B * dims.T * 3 * dims.C, att: dims.B * dims.NH * dims.T * dims.T, aout: dims.B * dims.T * dims.C,
    adout: dims.B * dims.T * dims.C, dqkv: dims.B * dims.T * 3 * dims.C, datt: dims.B * dims.NH * dims.T * dims.T,
  };
  const total = Object.values(sizes).reduce((a, b) => a + b, 0);
  const scratchFloats = kernelScratchFloats(dims.C, dims.OC, dims.T);
  const memory = createKernelMemory((KERNEL_HEAP_BASE + 2 * scratchFloats + 3 * (total + 64)) * 4, true);
  assert.ok(memory.buffer instanceof SharedArrayBuffer);
  const module = await compileKernelModule(true, { fma });
  const scratch1 = KERNEL_HEAP_BASE;
  const scratch2 = scratch1 + scratchFloats;
  const k1 = instantiateKernels(module, { memory, scratchPtr: scratch1, scratchFloats });
  let next = scratch2 + scratchFloats;
  const region = (): JobPtrs => {
    const p = {} as JobPtrs;
    for (const key of Object.keys(sizes) as Array<keyof JobPtrs>) {
      p[key] = next;
      next += (sizes[key] + 3) & ~3;
    }
    return p;
  };
  const r0 = region(); // computed by k1 alone, the reference
  const r1 = region(); // k1 in the main thread, concurrently with ...
  const r2 = region(); // ... the worker's instance
  const rng = new Rng(9);
  const heap = k1.heap();
  const inputs: Array<keyof JobPtrs> = ["inp", "w", "bias", "dout", "qkv", "adout", "dinp", "dw", "db", "dqkv"];
  for (const key of inputs) {
    const data = randn(rng, sizes[key]);
    for (const r of [r0, r1, r2]) heap.set(data, r[key]);
  }
  const repeats = 3;
  for (let i = 0; i < repeats; i++) runJob(k1, r0, dims);

  const loaderUrl = new URL("../src/engine/kernels/wasm.js", import.meta.url).href;
  const worker = new Worker(`${WORKER_SOURCE}\n${runJob.toString()}`, {
    eval: true,
    workerData: { loaderUrl, module, memory, scratchPtr: scratch2, scratchFloats },
  });
  try {
    const messages: string[] = [];
    let wake: (() => void) | null = null;
    worker.on("message", (m: string) => {
      messages.push(m);
      wake?.();
    });
    const errored = new Promise<never>((_, reject) => worker.once("error", reject));
    const nextMessage = (): Promise<string> =>
      messages.length > 0
        ? Promise.resolve(messages.shift()!)
        : Promise.race([new Promise<string>((res) => (wake = () => { wake = null; res(messages.shift()!); })), errored]);
    assert.equal(await nextMessage(), "ready");
    worker.postMessage({ p: r2, dims, repeats });
    for (let i = 0; i < repeats; i++) runJob(k1, r1, dims);
    assert.equal(await nextMessage(), "done");
  } finally {
    await worker.terminate();
  }
  const h = k1.heap();
  for (const key of Object.keys(sizes) as Array<keyof JobPtrs>) {
    if (key === "datt") continue; // scratch
    const a = h.subarray(r0[key], r0[key] + sizes[key]);
    assert.deepEqual(h.subarray(r1[key], r1[key] + sizes[key]), a, `${key}: main-thread instance differs`);
    assert.deepEqual(h.subarray(r2[key], r2[key] + sizes[key]), a, `${key}: worker instance differs`);
  }
});

test("createKernelMemory and the loader validate their arguments", async () => {
  assert.throws(() => createKernelMemory(-1, false), /bytes/);
  assert.throws(() => createKernelMemory(5 * 2 ** 30, false), /4 GiB/);
  const memory = createKernelMemory(1 << 20, false);
  await assert.rejects(createWasmKernels({ memory, scratchPtr: 0, scratchFloats: 10 }), /KERNEL_HEAP_BASE/);
  await assert.rejects(createWasmKernels({ memory, scratchPtr: KERNEL_HEAP_BASE, scratchFloats: 1 << 20 }), /beyond the memory/);
});
