// WebAssembly SIMD kernels of the training engine (AssemblyScript).
//
// Contract: src/engine/kernels/types.ts. Every pointer argument is a FLOAT32 ELEMENT index into the
// (imported, possibly shared) linear memory; internally we work in byte addresses (index << 2).
// Backward kernels accumulate (+=). Nothing here writes memory outside the buffers it is given and
// the per-instance scratch region set by setScratch(), so instances on different threads sharing one
// memory can run concurrently on different buffers. Mutable wasm globals are per instance.

import { madd } from "./simd";
import { tile1x16, tile1x4, tile1x8, tile2x16, tile2x4, tile2x8 } from "./tiles.generated";

// ---------------------------------------------------------------------------------------------
// Per-instance scratch (float index + capacity in floats), set once by the loader.

let scratchBytePtr: usize = 0;
let scratchCapacity: i32 = 0;

// ---------------------------------------------------------------------------------------------
// Flush-to-zero. WebAssembly has no FTZ/DAZ mode, and x86 takes a microcode assist (~100x slower)
// on every float32 operation that reads or produces a subnormal. Once a model has learnt sharp
// attention, gradients flowing back through near-zero attention weights fall below 1.2e-38 in
// large numbers and a backward pass became 20-40x slower. Zeroing magnitudes below TINY = 2^-60
// keeps every product of two surviving values normal (2^-120 > 2^-126); such values are at least
// 10 orders of magnitude below anything that changes a float32 sum or an Adam step (eps 1e-8).

const TINY: f32 = 8.673617379884035e-19; // 2^-60

// @ts-ignore: decorator
@inline function flushs(x: f32): f32 {
  return Mathf.abs(x) < TINY ? 0 : x;
}

// @ts-ignore: decorator
@inline function flushv(v: v128, tiny: v128): v128 {
  return v128.andnot(v, f32x4.lt(f32x4.abs(v), tiny)); // NaN compares false and passes through
}

export function setScratch(ptr: u32, floats: i32): void {
  scratchBytePtr = (<usize>ptr) << 2;
  scratchCapacity = floats;
}

/** First byte address not used by the module's static data (the loader checks it against KERNEL_HEAP_BASE). */
export function heapBaseBytes(): usize {
  return __heap_base;
}

// @ts-ignore: decorator
@inline function minI(a: i32, b: i32): i32 {
  return a < b ? a : b;
}

// ---------------------------------------------------------------------------------------------
// Vectorised exp (Cephes expf polynomial, relative error ~1e-7 over the clamped range).

// @ts-ignore: decorator
@inline function expv(x: v128): v128 {
  // pmin/pmax are single instructions on x64 (min/max carry NaN fix-ups); NaN inputs stay NaN.
  x = f32x4.pmin(x, f32x4.splat(88.37626)); // keeps 2^n finite (n <= 127)
  x = f32x4.pmax(x, f32x4.splat(-86.0)); // keeps 2^n and the result normal (no slow denormals)
  // n = round(x / ln2) by the 1.5 * 2^23 trick: the sum's low mantissa bits hold n
  const magic = f32x4.splat(12582912.0);
  const tn = madd(x, f32x4.splat(1.44269504088896341), magic);
  const fx = f32x4.sub(tn, magic);
  // r = x - n ln2, in two steps for precision
  let r = madd(fx, f32x4.splat(-0.693359375), x);
  r = madd(fx, f32x4.splat(2.12194440e-4), r);
  let p = f32x4.splat(1.9875691500e-4);
  p = madd(p, r, f32x4.splat(1.3981999507e-3));
  p = madd(p, r, f32x4.splat(8.3334519073e-3));
  p = madd(p, r, f32x4.splat(4.1665795894e-2));
  p = madd(p, r, f32x4.splat(1.6666665459e-1));
  p = madd(p, r, f32x4.splat(5.0000001201e-1));
  p = madd(p, f32x4.mul(r, r), f32x4.add(r, f32x4.splat(1.0)));
  // 2^n: (n + 127) << 23, where bits(tn) = 0x4B400000 + n
  const pow2n = i32x4.shl(i32x4.add(tn, i32x4.splat(127 - 0x4B400000)), 23);
  return f32x4.mul(p, pow2n);
}

// @ts-ignore: decorator
@inline function exps(x: f32): f32 {
  return f32x4.extract_lane(expv(f32x4.splat(x)), 0);
}

// @ts-ignore: decorator
@inline function hsum(v: v128): f32 {
  return f32x4.extract_lane(v, 0) + f32x4.extract_lane(v, 1) + f32x4.extract_lane(v, 2) + f32x4.extract_lane(v, 3);
}

// ---------------------------------------------------------------------------------------------
// GEMM core: out[m, n] (= or +=) Σ_k A(m, k) · B[k, n]  (+ bias[n] when not accumulating)
// A(m, k) lives at a + m*sam + k*sak (byte strides), so A may be a transposed view.
// B is row-major with row stride ldb bytes; out is row-major with row stride ldo bytes.
// Register tile: 2 rows x 16 columns (8 f32x4 accumulators). V8's register allocator spills larger
// tiles on x64 (16 xmm registers): measured on the dev machine at K = 96..384, 2x16 and 3x12 reach
// ~35 GFLOP/s (mul+add) and ~54 (relaxed FMA) per core, 6x8 ~29 and 4x16 less. The 2x16 .. 1x4 tiles
// are generated (tiles.generated.ts, by gen-tiles.mjs next to this file); the scalar 1x1 edge is below.

// @ts-ignore: decorator
@inline function tile1x1(o: usize, a: usize, sak: usize, b: usize, ldb: usize, K: i32, bias: usize, acc: bool): void {
  let c: f32 = acc ? load<f32>(o) : bias != 0 ? load<f32>(bias) : 0;
  for (let k = 0; k < K; k++) {
    c += load<f32>(a) * load<f32>(b);
    a += sak;
    b += ldb;
  }
  store<f32>(o, c);
}

/**
 * out[M, N] (= or +=) A(M, K) · B[K, N] (+ bias). Blocked MC rows x KC depth so the B panel and the
 * A block stay in cache. All addresses in bytes; strides in bytes.
 */
function gemm(
  out: usize, ldo: usize, a: usize, sam: usize, sak: usize, b: usize, ldb: usize, bias: usize,
  M: i32, N: i32, K: i32, accumulate: bool, MC: i32, KC: i32,
): void {
  for (let m0 = 0; m0 < M; m0 += MC) {
    const mEnd = minI(M, m0 + MC);
    for (let k0 = 0; k0 < K; k0 += KC) {
      const kLen = minI(KC, K - k0);
      const acc = accumulate || k0 > 0;
      const ak = a + <usize>k0 * sak;
      const bk = b + <usize>k0 * ldb;
      let n = 0;
      for (; n + 16 <= N; n += 16) {
        const bn = bk + (<usize>n << 2);
        const biasn = bias != 0 ? bias + (<usize>n << 2) : 0;
        let m = m0;
        for (; m + 2 <= mEnd; m += 2) {
          tile2x16(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
        if (m < mEnd) {
          tile1x16(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
      }
      for (; n + 8 <= N; n += 8) {
        const bn = bk + (<usize>n << 2);
        const biasn = bias != 0 ? bias + (<usize>n << 2) : 0;
        let m = m0;
        for (; m + 2 <= mEnd; m += 2) {
          tile2x8(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
        if (m < mEnd) {
          tile1x8(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
      }
      for (; n + 4 <= N; n += 4) {
        const bn = bk + (<usize>n << 2);
        const biasn = bias != 0 ? bias + (<usize>n << 2) : 0;
        let m = m0;
        for (; m + 2 <= mEnd; m += 2) {
          tile2x4(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
        if (m < mEnd) {
          tile1x4(out + <usize>m * ldo + (<usize>n << 2), ldo, ak + <usize>m * sam, sam, sak, bn, ldb, kLen, biasn, acc);
        }
      }
      for (; n < N; n++) {
        const bn = bk + (<usize>n << 2);
        const biasn = bias != 0 ? bias + (<usize>n << 2) : 0;
        for (let m = m0; m < mEnd; m++) {
          tile1x1(out + <usize>m * ldo + (<usize>n << 2), ak + <usize>m * sam, sak, bn, ldb, kLen, biasn, acc);
        }
      }
    }
  }
}

// @ts-ignore: decorator
@inline function rowsForCache(K: i32): i32 {
  // ~16 KiB of A rows per block, a multiple of 2, at least 2.
  let mc = (4096 / (K > 0 ? K : 1)) & ~1;
  return mc < 2 ? 2 : mc;
}

// ---------------------------------------------------------------------------------------------
// Matmul

/** out[BT,OC] = inp[BT,C] · weight[OC,C]^T (+ bias). Uses scratch for weight^T [C, OC]. */
export function matmulForward(out: u32, inp: u32, weight: u32, bias: u32, BT: i32, C: i32, OC: i32): void {
  const wt = scratchBytePtr;
  const w = (<usize>weight) << 2;
  // transpose weight [OC, C] -> wt [C, OC]
  for (let o = 0; o < OC; o++) {
    const src = w + (<usize>o * <usize>C << 2);
    let dst = wt + (<usize>o << 2);
    for (let c = 0; c < C; c++) {
      store<f32>(dst, load<f32>(src + (<usize>c << 2)));
      dst += <usize>OC << 2;
    }
  }
  gemm(
    (<usize>out) << 2, <usize>OC << 2,
    (<usize>inp) << 2, <usize>C << 2, 4,
    wt, <usize>OC << 2,
    bias != 0 ? (<usize>bias) << 2 : 0,
    BT, OC, C, false, rowsForCache(C), C > 0 ? C : 1,
  );
}

/** dinp += dout · weight (if dinp); dweight += dout^T · inp; dbias += Σ_t dout (if dbias). */
function matmulBackwardWeightUnpacked(dweight: u32, db: usize, d: usize, ldd: usize, inp: u32, BT: i32, C: i32, OC: i32): void {
  if (db != 0) {
    for (let t = 0; t < BT; t++) {
      const row = d + <usize>t * ldd;
      let o = 0;
      for (; o + 4 <= OC; o += 4) {
        const q = db + (<usize>o << 2);
        v128.store(q, f32x4.add(v128.load(q), v128.load(row + (<usize>o << 2))));
      }
      for (; o < OC; o++) {
        const q = db + (<usize>o << 2);
        store<f32>(q, load<f32>(q) + load<f32>(row + (<usize>o << 2)));
      }
    }
  }
  if (dweight != 0) {
    // A(m=o, k=t) = dout[t, o]
    gemm((<usize>dweight) << 2, <usize>C << 2, d, 4, ldd, (<usize>inp) << 2, <usize>C << 2, 0, OC, C, BT, true, OC > 0 ? OC : 1, 128);
  }
}

export function matmulBackward(
  dinp: u32, dweight: u32, dbias: u32, dout: u32, inp: u32, weight: u32,
  BT: i32, C: i32, OC: i32, overwrite: i32,
): void {
  const d = (<usize>dout) << 2;
  const ldd = <usize>OC << 2; // dout row stride
  if (dinp != 0) {
    // dinp[BT, C] (+)= dout[BT, OC] · weight[OC, C]; one k block (KC = OC), so overwriting starts each
    // sum from the same +0 that accumulating into a zeroed buffer would load
    gemm(
      (<usize>dinp) << 2, <usize>C << 2,
      d, ldd, 4,
      (<usize>weight) << 2, <usize>C << 2,
      0, BT, C, OC, overwrite == 0, rowsForCache(OC), OC > 0 ? OC : 1,
    );
  }
  if (dweight == 0 && dbias == 0) return;
  // dweight[OC, C] += dout^T[OC, BT] · inp[BT, C] and dbias += Σ_t dout[t], in chunks of KC rows.
  // Each chunk of dout is first packed transposed ([OC, KC] in scratch, 4x4 blocks by shuffles) so
  // the GEMM reads A contiguously; the bias sum rides along with the packing pass.
  let KC = 128;
  if (OC * KC > scratchCapacity) KC = (scratchCapacity / (OC > 0 ? OC : 1)) & ~3;
  const db = (<usize>dbias) << 2;
  if (KC < 4) {
    // scratch too small to pack (kernelScratchFloats gives room for OC x 128): unpacked, slower
    matmulBackwardWeightUnpacked(dweight, db, d, ldd, inp, BT, C, OC);
    return;
  }
  const packed = scratchBytePtr;
  const ldp = <usize>KC << 2; // packed row stride
  for (let t0 = 0; t0 < BT; t0 += KC) {
    const kLen = minI(KC, BT - t0);
    const dChunk = d + <usize>t0 * ldd;
    let t = 0;
    for (; t + 4 <= kLen; t += 4) {
      const r = dChunk + <usize>t * ldd;
      let o = 0;
      for (; o + 4 <= OC; o += 4) {
        const off = <usize>o << 2;
        const r0 = v128.load(r + off);
        const r1 = v128.load(r + ldd + off);
        const r2 = v128.load(r + 2 * ldd + off);
        const r3 = v128.load(r + 3 * ldd + off);
        if (dbias != 0) v128.store(db + off, f32x4.add(v128.load(db + off), f32x4.add(f32x4.add(r0, r1), f32x4.add(r2, r3))));
        const t01lo = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
        const t01hi = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
        const t23lo = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
        const t23hi = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
        const dst = packed + <usize>o * ldp + (<usize>t << 2);
        v128.store(dst, v128.shuffle<i64>(t01lo, t23lo, 0, 2));
        v128.store(dst + ldp, v128.shuffle<i64>(t01lo, t23lo, 1, 3));
        v128.store(dst + 2 * ldp, v128.shuffle<i64>(t01hi, t23hi, 0, 2));
        v128.store(dst + 3 * ldp, v128.shuffle<i64>(t01hi, t23hi, 1, 3));
      }
      for (; o < OC; o++) {
        for (let j = 0; j < 4; j++) {
          const x = load<f32>(r + <usize>j * ldd + (<usize>o << 2));
          store<f32>(packed + <usize>o * ldp + (<usize>(t + j) << 2), x);
          if (dbias != 0) store<f32>(db + (<usize>o << 2), load<f32>(db + (<usize>o << 2)) + x);
        }
      }
    }
    for (; t < kLen; t++) {
      const r = dChunk + <usize>t * ldd;
      for (let o = 0; o < OC; o++) {
        const x = load<f32>(r + (<usize>o << 2));
        store<f32>(packed + <usize>o * ldp + (<usize>t << 2), x);
        if (dbias != 0) store<f32>(db + (<usize>o << 2), load<f32>(db + (<usize>o << 2)) + x);
      }
    }
    if (dweight != 0) {
      gemm(
        (<usize>dweight) << 2, <usize>C << 2,
        packed, ldp, 4,
        ((<usize>inp) << 2) + (<usize>t0 * <usize>C << 2), <usize>C << 2,
        0, OC, C, kLen, true, OC > 0 ? OC : 1, kLen,
      );
    }
  }
}

// ---------------------------------------------------------------------------------------------
// LayerNorm

export function layernormForward(out: u32, mean: u32, rstd: u32, inp: u32, weight: u32, bias: u32, BT: i32, C: i32): void {
  // Two rows at a time: a row's mean and variance are each one chain of dependent adds, and the
  // core waited on their latency; two chains side by side ran 1.4-1.6x faster. Same operations per row.
  let t = 0;
  for (; t + 2 <= BT; t += 2) layernormForwardRows(out, mean, rstd, inp, weight, bias, t, C, true);
  if (t < BT) layernormForwardRows(out, mean, rstd, inp, weight, bias, t, C, false);
}

/** Rows t and t + 1 (`two`) or row t alone. */
// @ts-ignore: decorator
@inline function layernormForwardRows(out: u32, mean: u32, rstd: u32, inp: u32, weight: u32, bias: u32, t: i32, C: i32, two: bool): void {
  const w = (<usize>weight) << 2;
  const bb = (<usize>bias) << 2;
  const invC: f32 = 1.0 / <f32>C;
  const rowBytes = <usize>C << 2;
  const x = ((<usize>inp) << 2) + <usize>t * rowBytes;
  const y = ((<usize>out) << 2) + <usize>t * rowBytes;
  const x1 = x + rowBytes;
  const y1 = y + rowBytes;
  // mean
  let sv = f32x4.splat(0);
  let sv1 = sv;
  let i = 0;
  for (; i + 4 <= C; i += 4) {
    sv = f32x4.add(sv, v128.load(x + (<usize>i << 2)));
    if (two) sv1 = f32x4.add(sv1, v128.load(x1 + (<usize>i << 2)));
  }
  let s = hsum(sv);
  let s1 = two ? hsum(sv1) : 0;
  for (; i < C; i++) {
    s += load<f32>(x + (<usize>i << 2));
    if (two) s1 += load<f32>(x1 + (<usize>i << 2));
  }
  const m = s * invC;
  const m1 = s1 * invC;
  // biased variance, two-pass
  const mv = f32x4.splat(m);
  const mv1 = f32x4.splat(m1);
  let vv = f32x4.splat(0);
  let vv1 = vv;
  i = 0;
  for (; i + 4 <= C; i += 4) {
    const dx = f32x4.sub(v128.load(x + (<usize>i << 2)), mv);
    vv = f32x4.add(vv, f32x4.mul(dx, dx));
    if (two) {
      const dx1 = f32x4.sub(v128.load(x1 + (<usize>i << 2)), mv1);
      vv1 = f32x4.add(vv1, f32x4.mul(dx1, dx1));
    }
  }
  let v = hsum(vv);
  let v1 = two ? hsum(vv1) : 0;
  for (; i < C; i++) {
    const dx = load<f32>(x + (<usize>i << 2)) - m;
    v += dx * dx;
    if (two) {
      const dx1 = load<f32>(x1 + (<usize>i << 2)) - m1;
      v1 += dx1 * dx1;
    }
  }
  v *= invC;
  v1 *= invC;
  const r: f32 = 1.0 / Mathf.sqrt(v + 1e-5);
  const r1: f32 = 1.0 / Mathf.sqrt(v1 + 1e-5);
  const rv = f32x4.splat(r);
  const rv1 = f32x4.splat(r1);
  i = 0;
  for (; i + 4 <= C; i += 4) {
    const off = <usize>i << 2;
    const wv = v128.load(w + off);
    const bv = v128.load(bb + off);
    v128.store(y + off, f32x4.add(f32x4.mul(f32x4.mul(f32x4.sub(v128.load(x + off), mv), rv), wv), bv));
    if (two) v128.store(y1 + off, f32x4.add(f32x4.mul(f32x4.mul(f32x4.sub(v128.load(x1 + off), mv1), rv1), wv), bv));
  }
  for (; i < C; i++) {
    const off = <usize>i << 2;
    store<f32>(y + off, (load<f32>(x + off) - m) * r * load<f32>(w + off) + load<f32>(bb + off));
    if (two) store<f32>(y1 + off, (load<f32>(x1 + off) - m1) * r1 * load<f32>(w + off) + load<f32>(bb + off));
  }
  if (mean != 0) {
    store<f32>(((<usize>mean) << 2) + (<usize>t << 2), m);
    if (two) store<f32>(((<usize>mean) << 2) + (<usize>t << 2), m1, 4);
  }
  if (rstd != 0) {
    store<f32>(((<usize>rstd) << 2) + (<usize>t << 2), r);
    if (two) store<f32>(((<usize>rstd) << 2) + (<usize>t << 2), r1, 4);
  }
}

export function layernormBackward(
  dinp: u32, dweight: u32, dbias: u32, dout: u32, inp: u32, weight: u32, mean: u32, rstd: u32,
  BT: i32, C: i32,
): void {
  const w = (<usize>weight) << 2;
  const dw = (<usize>dweight) << 2;
  const db = (<usize>dbias) << 2;
  const invC: f32 = 1.0 / <f32>C;
  const tiny = f32x4.splat(TINY); // dout is read and dinp written flushed (see flushTiny)
  for (let t = 0; t < BT; t++) {
    const x = ((<usize>inp) << 2) + (<usize>t * <usize>C << 2);
    const dy = ((<usize>dout) << 2) + (<usize>t * <usize>C << 2);
    const dx = ((<usize>dinp) << 2) + (<usize>t * <usize>C << 2);
    const m = load<f32>(((<usize>mean) << 2) + (<usize>t << 2));
    const r = load<f32>(((<usize>rstd) << 2) + (<usize>t << 2));
    const mv = f32x4.splat(m);
    const rv = f32x4.splat(r);
    // dnorm = w * dout; means of dnorm and dnorm * norm
    let s1v = f32x4.splat(0);
    let s2v = f32x4.splat(0);
    let i = 0;
    for (; i + 4 <= C; i += 4) {
      const off = <usize>i << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(x + off), mv), rv);
      const dn = f32x4.mul(v128.load(w + off), flushv(v128.load(dy + off), tiny));
      s1v = f32x4.add(s1v, dn);
      s2v = f32x4.add(s2v, f32x4.mul(dn, n));
    }
    let s1 = hsum(s1v);
    let s2 = hsum(s2v);
    for (; i < C; i++) {
      const off = <usize>i << 2;
      const n = (load<f32>(x + off) - m) * r;
      const dn = load<f32>(w + off) * flushs(load<f32>(dy + off));
      s1 += dn;
      s2 += dn * n;
    }
    const meanDn = f32x4.splat(s1 * invC);
    const meanDnN = f32x4.splat(s2 * invC);
    i = 0;
    for (; i + 4 <= C; i += 4) {
      const off = <usize>i << 2;
      const n = f32x4.mul(f32x4.sub(v128.load(x + off), mv), rv);
      const g = flushv(v128.load(dy + off), tiny);
      if (dbias != 0) v128.store(db + off, f32x4.add(v128.load(db + off), g));
      if (dweight != 0) v128.store(dw + off, f32x4.add(v128.load(dw + off), f32x4.mul(n, g)));
      if (dinp != 0) {
        const dn = f32x4.mul(v128.load(w + off), g);
        const val = f32x4.mul(f32x4.sub(f32x4.sub(dn, meanDn), f32x4.mul(n, meanDnN)), rv);
        v128.store(dx + off, flushv(f32x4.add(v128.load(dx + off), val), tiny));
      }
    }
    const mdn = s1 * invC;
    const mdnn = s2 * invC;
    for (; i < C; i++) {
      const off = <usize>i << 2;
      const n = (load<f32>(x + off) - m) * r;
      const g = flushs(load<f32>(dy + off));
      if (dbias != 0) store<f32>(db + off, load<f32>(db + off) + g);
      if (dweight != 0) store<f32>(dw + off, load<f32>(dw + off) + n * g);
      if (dinp != 0) {
        const dn = load<f32>(w + off) * g;
        store<f32>(dx + off, flushs(load<f32>(dx + off) + (dn - mdn - n * mdnn) * r));
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Attention (causal, multi-head), qkv[B, T, 3C] = [q | k | v], att[B, NH, T, T].
// Per (batch, head) the products are small matmuls run through the GEMM tiles, one block of 6 query
// rows at a time so each block only visits the keys it can see (t2 <= t). Entries above the diagonal
// of att are written as 0, which lets the att·V and backward products run over whole tiles.

/** dst[i, t] = s · src[t, i] for i < hs, t < T (src row stride srcStride bytes; dst row stride ldT bytes). */
// @ts-ignore: decorator
@inline function transposeHead(dst: usize, ldT: usize, src: usize, srcStride: usize, T: i32, hs: i32, s: f32): void {
  // 4 x 4 blocks by shuffles (as in matmulBackward's packing), the same product per element
  const sv = f32x4.splat(s);
  const i4 = hs & ~3;
  let t = 0;
  for (; t + 4 <= T; t += 4) {
    const r = src + <usize>t * srcStride;
    const col = dst + (<usize>t << 2);
    for (let i = 0; i < i4; i += 4) {
      const off = <usize>i << 2;
      const r0 = f32x4.mul(v128.load(r + off), sv);
      const r1 = f32x4.mul(v128.load(r + srcStride + off), sv);
      const r2 = f32x4.mul(v128.load(r + 2 * srcStride + off), sv);
      const r3 = f32x4.mul(v128.load(r + 3 * srcStride + off), sv);
      const t01lo = v128.shuffle<f32>(r0, r1, 0, 4, 1, 5);
      const t01hi = v128.shuffle<f32>(r0, r1, 2, 6, 3, 7);
      const t23lo = v128.shuffle<f32>(r2, r3, 0, 4, 1, 5);
      const t23hi = v128.shuffle<f32>(r2, r3, 2, 6, 3, 7);
      const d = col + <usize>i * ldT;
      v128.store(d, v128.shuffle<i64>(t01lo, t23lo, 0, 2));
      v128.store(d + ldT, v128.shuffle<i64>(t01lo, t23lo, 1, 3));
      v128.store(d + 2 * ldT, v128.shuffle<i64>(t01hi, t23hi, 0, 2));
      v128.store(d + 3 * ldT, v128.shuffle<i64>(t01hi, t23hi, 1, 3));
    }
    for (let i = i4; i < hs; i++) {
      for (let j = 0; j < 4; j++) store<f32>(col + <usize>i * ldT + (<usize>j << 2), load<f32>(r + <usize>j * srcStride + (<usize>i << 2)) * s);
    }
  }
  for (; t < T; t++) {
    const row = src + <usize>t * srcStride;
    const col = dst + (<usize>t << 2);
    for (let i = 0; i < hs; i++) store<f32>(col + <usize>i * ldT, load<f32>(row + (<usize>i << 2)) * s);
  }
}

/** p[i] = 0 for from <= i < to (p a byte address, i float indices). */
// @ts-ignore: decorator
@inline function zeroRange(p: usize, from: i32, to: i32): void {
  const z = f32x4.splat(0);
  let i = from;
  for (; i + 4 <= to; i += 4) v128.store(p + (<usize>i << 2), z);
  for (; i < to; i++) store<f32>(p + (<usize>i << 2), 0);
}

/** p[0..3] = exp(p[0..3] - mv); returns sumv + those four. */
// @ts-ignore: decorator
@inline function expAdd(p: usize, mv: v128, sumv: v128): v128 {
  const e = expv(f32x4.sub(v128.load(p), mv));
  v128.store(p, e);
  return f32x4.add(sumv, e);
}

/** p[0..3] *= inv, flushed. */
// @ts-ignore: decorator
@inline function scaleFlush(p: usize, inv: v128, tiny: v128): void {
  v128.store(p, flushv(f32x4.mul(v128.load(p), inv), tiny));
}

/**
 * Softmax in place over t2 <= t of row t of att (at `row`), and with `two` also of row t + 1 (the
 * next row in memory). A row's softmax is a chain of dependent steps (max, exp, sum, scale), so
 * two rows side by side keep the core busier; each row gets the same operations in the same order.
 */
// @ts-ignore: decorator
@inline function softmaxRows(row: usize, t: i32, T: i32, two: bool): void {
  const row1 = row + (<usize>T << 2);
  const t1 = t + 1;
  // Pad the rows to whole vectors with -inf (exp gives ~1e-38 there, zeroed below) where it fits.
  let end = (t + 4) & ~3;
  if (end > T) end = T;
  let end1 = (t1 + 4) & ~3;
  if (end1 > T) end1 = T;
  for (let t2 = t + 1; t2 < end; t2++) store<f32>(row + (<usize>t2 << 2), -Infinity);
  if (two) for (let t2 = t1 + 1; t2 < end1; t2++) store<f32>(row1 + (<usize>t2 << 2), -Infinity);
  const vEnd = end & ~3;
  const vEnd1 = two ? end1 & ~3 : vEnd; // vEnd or vEnd + 4
  let maxvv = f32x4.splat(-Infinity);
  let maxvv1 = maxvv;
  let t2 = 0;
  for (; t2 < vEnd; t2 += 4) {
    maxvv = f32x4.pmax(maxvv, v128.load(row + (<usize>t2 << 2)));
    if (two) maxvv1 = f32x4.pmax(maxvv1, v128.load(row1 + (<usize>t2 << 2)));
  }
  if (two && t2 < vEnd1) maxvv1 = f32x4.pmax(maxvv1, v128.load(row1 + (<usize>t2 << 2)));
  let maxv = Mathf.max(Mathf.max(f32x4.extract_lane(maxvv, 0), f32x4.extract_lane(maxvv, 1)), Mathf.max(f32x4.extract_lane(maxvv, 2), f32x4.extract_lane(maxvv, 3)));
  let maxv1 = Mathf.max(Mathf.max(f32x4.extract_lane(maxvv1, 0), f32x4.extract_lane(maxvv1, 1)), Mathf.max(f32x4.extract_lane(maxvv1, 2), f32x4.extract_lane(maxvv1, 3)));
  for (let u = vEnd; u <= t; u++) maxv = Mathf.max(maxv, load<f32>(row + (<usize>u << 2)));
  if (two) for (let u = vEnd1; u <= t1; u++) maxv1 = Mathf.max(maxv1, load<f32>(row1 + (<usize>u << 2)));
  const mv = f32x4.splat(maxv);
  const mv1 = f32x4.splat(maxv1);
  let sumv = f32x4.splat(0);
  let sumv1 = sumv;
  for (t2 = 0; t2 < vEnd; t2 += 4) {
    sumv = expAdd(row + (<usize>t2 << 2), mv, sumv);
    if (two) sumv1 = expAdd(row1 + (<usize>t2 << 2), mv1, sumv1);
  }
  if (two && t2 < vEnd1) sumv1 = expAdd(row1 + (<usize>t2 << 2), mv1, sumv1);
  let sum = hsum(sumv);
  let sum1 = hsum(sumv1);
  for (let u = vEnd; u <= t; u++) {
    const p = row + (<usize>u << 2);
    const e = exps(load<f32>(p) - maxv);
    store<f32>(p, e);
    sum += e;
  }
  if (two) {
    for (let u = vEnd1; u <= t1; u++) {
      const p = row1 + (<usize>u << 2);
      const e = exps(load<f32>(p) - maxv1);
      store<f32>(p, e);
      sum1 += e;
    }
  }
  const invs: f32 = <f32>1.0 / sum;
  const invs1: f32 = <f32>1.0 / sum1;
  const inv = f32x4.splat(invs);
  const inv1 = f32x4.splat(invs1);
  const tiny = f32x4.splat(TINY); // see flushTiny: weights this small change nothing but cost a lot
  for (t2 = 0; t2 < vEnd; t2 += 4) {
    scaleFlush(row + (<usize>t2 << 2), inv, tiny);
    if (two) scaleFlush(row1 + (<usize>t2 << 2), inv1, tiny);
  }
  if (two && t2 < vEnd1) scaleFlush(row1 + (<usize>t2 << 2), inv1, tiny);
  for (let u = vEnd; u <= t; u++) {
    const p = row + (<usize>u << 2);
    const a = load<f32>(p) * invs;
    store<f32>(p, Mathf.abs(a) < TINY ? 0 : a);
  }
  if (two) {
    for (let u = vEnd1; u <= t1; u++) {
      const p = row1 + (<usize>u << 2);
      const a = load<f32>(p) * invs1;
      store<f32>(p, Mathf.abs(a) < TINY ? 0 : a);
    }
  }
}

/** Rows m0 .. m0 + rows - 1 of att (at attRows): softmax over t2 <= t (or nothing for linear attention), zeros above. */
// @ts-ignore: decorator
@inline function finishAttRows(attRows: usize, m0: i32, rows: i32, T: i32, softmax: i32): void {
  const ld = <usize>T << 2;
  if (softmax != 0) {
    let r = 0;
    for (; r + 2 <= rows; r += 2) softmaxRows(attRows + <usize>r * ld, m0 + r, T, true);
    if (r < rows) softmaxRows(attRows + <usize>r * ld, m0 + r, T, false);
  }
  for (let r = 0; r < rows; r++) zeroRange(attRows + <usize>r * ld, m0 + r + 1, T);
}

// @ts-ignore: decorator
@inline function paddedT(T: i32): i32 {
  return (T + 7) & ~7;
}

export function attentionForward(out: u32, att: u32, qkv: u32, B: i32, T: i32, C: i32, NH: i32, softmax: i32): void {
  const hs = C / NH;
  const scale: f32 = 1.0 / Mathf.sqrt(<f32>hs);
  const C3 = <usize>(3 * C) << 2; // row stride of qkv in bytes
  const ldT = <usize>paddedT(T) << 2; // row stride of the transposed key block in scratch
  const kT = scratchBytePtr;
  for (let b = 0; b < B; b++) {
    const qkvB = ((<usize>qkv) << 2) + <usize>(b * T) * C3;
    for (let h = 0; h < NH; h++) {
      const q = qkvB + (<usize>(h * hs) << 2);
      const k = q + (<usize>C << 2);
      const v = q + (<usize>(2 * C) << 2);
      const attBH = ((<usize>att) << 2) + (<usize>((b * NH + h) * T * T) << 2);
      const o = ((<usize>out) << 2) + (<usize>(b * T * C + h * hs) << 2);
      transposeHead(kT, ldT, k, C3, T, hs, scale); // kT[i, t2] = k[t2, i] / sqrt(hs)
      for (let m0 = 0; m0 < T; m0 += 6) {
        const rows = minI(6, T - m0);
        // keys visible to this block, rounded up to whole vectors: the extra scores lie above the
        // diagonal, where finishAttRows writes 0, so they cost nothing in the att·V product
        const keys = minI(T, (m0 + rows + 7) & ~7);
        const attRows = attBH + (<usize>(m0 * T) << 2);
        // scores[t, t2] = q[t] · k[t2] / sqrt(hs)
        gemm(attRows, <usize>T << 2, q + <usize>m0 * C3, C3, 4, kT, ldT, 0, rows, keys, hs, false, 6, hs > 0 ? hs : 1);
        finishAttRows(attRows, m0, rows, T, softmax);
        // out[t] = Σ_t2 att[t, t2] v[t2]
        gemm(o + <usize>(m0 * C) * 4, <usize>C << 2, attRows, <usize>T << 2, 4, v, C3, 0, rows, hs, keys, false, 6, keys);
      }
    }
  }
}

export function attentionBackward(
  dqkv: u32, datt: u32, dout: u32, qkv: u32, att: u32,
  B: i32, T: i32, C: i32, NH: i32, softmax: i32, overwrite: i32,
): void {
  // Each element of dq, dk and dv is one gemm sum over a single k block, so overwriting gives the
  // bits of accumulating into zeros.
  const acc = overwrite == 0;
  const hs = C / NH;
  const scale: f32 = 1.0 / Mathf.sqrt(<f32>hs);
  const C3 = <usize>(3 * C) << 2;
  const ldT = <usize>paddedT(T) << 2;
  const ldA = <usize>T << 2; // row stride of att / datt
  const vT = scratchBytePtr;
  for (let b = 0; b < B; b++) {
    const qkvB = ((<usize>qkv) << 2) + <usize>(b * T) * C3;
    const dqkvB = ((<usize>dqkv) << 2) + <usize>(b * T) * C3;
    for (let h = 0; h < NH; h++) {
      const headOff = <usize>(h * hs) << 2;
      const q = qkvB + headOff;
      const k = q + (<usize>C << 2);
      const v = q + (<usize>(2 * C) << 2);
      const dq = dqkvB + headOff;
      const dk = dq + (<usize>C << 2);
      const dv = dq + (<usize>(2 * C) << 2);
      const dy = ((<usize>dout) << 2) + (<usize>(b * T * C + h * hs) << 2);
      const bhOff = <usize>((b * NH + h) * T * T) << 2;
      const attBH = ((<usize>att) << 2) + bhOff;
      const dattBH = ((<usize>datt) << 2) + bhOff;
      transposeHead(vT, ldT, v, C3, T, hs, 1.0);
      for (let m0 = 0; m0 < T; m0 += 6) {
        const rows = minI(6, T - m0);
        const keys = minI(T, (m0 + rows + 7) & ~7); // as in forward: dpre is 0 above the diagonal
        const dRows = dattBH + <usize>m0 * ldA;
        const aRows = attBH + <usize>m0 * ldA;
        // datt[t, t2] = dout[t] · v[t2]
        gemm(dRows, ldA, dy + <usize>(m0 * C) * 4, <usize>C << 2, 4, vT, ldT, 0, rows, keys, hs, false, 6, hs > 0 ? hs : 1);
        // dpre = att ⊙ (datt - Σ att·datt) for softmax, datt for linear; times 1/sqrt(hs); 0 above the diagonal
        for (let r = 0; r < rows; r++) {
          const t = m0 + r;
          const ar = aRows + <usize>r * ldA;
          const dr = dRows + <usize>r * ldA;
          const sv = f32x4.splat(scale);
          const tiny = f32x4.splat(TINY);
          if (softmax != 0) {
            let accv = f32x4.splat(0);
            let t2 = 0;
            for (; t2 + 4 <= t + 1; t2 += 4) {
              const off = <usize>t2 << 2;
              accv = f32x4.add(accv, f32x4.mul(v128.load(ar + off), v128.load(dr + off)));
            }
            let s = hsum(accv);
            for (; t2 <= t; t2++) s += load<f32>(ar + (<usize>t2 << 2)) * load<f32>(dr + (<usize>t2 << 2));
            const svv = f32x4.splat(s);
            t2 = 0;
            for (; t2 + 4 <= t + 1; t2 += 4) {
              const off = <usize>t2 << 2;
              v128.store(dr + off, flushv(f32x4.mul(f32x4.mul(v128.load(ar + off), f32x4.sub(v128.load(dr + off), svv)), sv), tiny));
            }
            for (; t2 <= t; t2++) {
              const off = <usize>t2 << 2;
              const d = load<f32>(ar + off) * (load<f32>(dr + off) - s) * scale;
              store<f32>(dr + off, Mathf.abs(d) < TINY ? 0 : d);
            }
          } else {
            let t2 = 0;
            for (; t2 + 4 <= t + 1; t2 += 4) {
              const off = <usize>t2 << 2;
              v128.store(dr + off, f32x4.mul(v128.load(dr + off), sv));
            }
            for (; t2 <= t; t2++) {
              const off = <usize>t2 << 2;
              store<f32>(dr + off, load<f32>(dr + off) * scale);
            }
          }
          zeroRange(dr, t + 1, T);
        }
        // dq[t] += Σ_t2 dpre[t, t2] k[t2]
        gemm(dq + <usize>m0 * C3, C3, dRows, ldA, 4, k, C3, 0, rows, hs, keys, acc, 6, keys);
      }
      // dk[t2] += Σ_{t >= t2} dpre[t, t2] q[t];  dv[t2] += Σ_{t >= t2} att[t, t2] dout[t]
      for (let m0 = 0; m0 < T; m0 += 6) {
        const rows = minI(6, T - m0);
        const n = T - m0; // queries that see these keys
        gemm(dk + <usize>m0 * C3, C3, dattBH + <usize>m0 * ldA + (<usize>m0 << 2), 4, ldA, q + <usize>m0 * C3, C3, 0, rows, hs, n, acc, 6, n);
        gemm(dv + <usize>m0 * C3, C3, attBH + <usize>m0 * ldA + (<usize>m0 << 2), 4, ldA, dy + <usize>(m0 * C) * 4, <usize>C << 2, 0, rows, hs, n, acc, 6, n);
      }
    }
  }
}

// ---------------------------------------------------------------------------------------------
// GELU (tanh approximation): gelu(x) = 0.5 x (1 + tanh(u)) = x · sigmoid(2u), u = √(2/π)(x + 0.044715 x³)

const GELU_K: f32 = 0.7978845608028654; // sqrt(2/pi)
const GELU_C: f32 = 0.044715;

// One f32x4 of GELU forward / backward. The loops below run four of them per iteration: each is one
// long dependent chain (exp, then a division), and with one chain per iteration the core waited on
// latency; four side by side ran 1.2-1.4x (forward) and 1.3-1.5x (backward) faster, with the same
// operations per element (two: 1.2x; eight spill registers and are slower than four).

// @ts-ignore: decorator
@inline function geluv(v: v128): v128 {
  const v2 = f32x4.mul(v, v);
  const u2 = f32x4.mul(f32x4.splat(-2.0 * GELU_K), madd(f32x4.mul(f32x4.splat(GELU_C), v2), v, v)); // -2u
  return f32x4.div(v, f32x4.add(f32x4.splat(1.0), expv(u2)));
}

/** dx (flushed) + gelu'(v) · dy (flushed), flushed. */
// @ts-ignore: decorator
@inline function geluGradv(v: v128, dy: v128, dx: v128, tiny: v128): v128 {
  const one = f32x4.splat(1.0);
  const v2 = f32x4.mul(v, v);
  const u2 = f32x4.mul(f32x4.splat(-2.0 * GELU_K), madd(f32x4.mul(f32x4.splat(GELU_C), v2), v, v));
  const e = expv(u2);
  const sg = f32x4.div(one, f32x4.add(one, e)); // sigmoid(2u); 1 - sg = e sg without cancellation
  // d/dx = s + x s (1 - s) 2 u'(x),  2u' = 2√(2/π)(1 + 3c x²)
  const du2 = f32x4.mul(f32x4.splat(2.0 * GELU_K), madd(f32x4.splat(3.0 * GELU_C), v2, one));
  const grad = madd(f32x4.mul(v, f32x4.mul(sg, f32x4.mul(e, sg))), du2, sg);
  return flushv(madd(grad, flushv(dy, tiny), dx), tiny);
}

export function geluForward(out: u32, inp: u32, N: i32): void {
  let x = (<usize>inp) << 2;
  let y = (<usize>out) << 2;
  let i = 0;
  for (; i + 16 <= N; i += 16) {
    const a = geluv(v128.load(x));
    const b = geluv(v128.load(x, 16));
    const c = geluv(v128.load(x, 32));
    const d = geluv(v128.load(x, 48));
    v128.store(y, a);
    v128.store(y, b, 16);
    v128.store(y, c, 32);
    v128.store(y, d, 48);
    x += 64;
    y += 64;
  }
  for (; i + 4 <= N; i += 4) {
    v128.store(y, geluv(v128.load(x)));
    x += 16;
    y += 16;
  }
  for (; i < N; i++) {
    const v = load<f32>(x);
    const u2: f32 = <f32>-2.0 * GELU_K * (v + GELU_C * v * v * v);
    store<f32>(y, v / (<f32>1.0 + exps(u2)));
    x += 4;
    y += 4;
  }
}

export function geluBackward(dinp: u32, inp: u32, dout: u32, N: i32, overwrite: i32): void {
  if (overwrite != 0) geluBackwardFrom(dinp, inp, dout, N, true);
  else geluBackwardFrom(dinp, inp, dout, N, false);
}

/** dinp = flush(base + gelu'(inp) · flush(dout)), base = dinp, or +0 when `zero` (the bits of a zeroed dinp). */
// @ts-ignore: decorator
@inline function geluBackwardFrom(dinp: u32, inp: u32, dout: u32, N: i32, zero: bool): void {
  let x = (<usize>inp) << 2;
  let dx = (<usize>dinp) << 2;
  let dy = (<usize>dout) << 2;
  const tiny = f32x4.splat(TINY); // dout is read and dinp written flushed (see flushTiny)
  const z = f32x4.splat(0);
  let i = 0;
  for (; i + 16 <= N; i += 16) {
    const a = geluGradv(v128.load(x), v128.load(dy), zero ? z : v128.load(dx), tiny);
    const b = geluGradv(v128.load(x, 16), v128.load(dy, 16), zero ? z : v128.load(dx, 16), tiny);
    const c = geluGradv(v128.load(x, 32), v128.load(dy, 32), zero ? z : v128.load(dx, 32), tiny);
    const d = geluGradv(v128.load(x, 48), v128.load(dy, 48), zero ? z : v128.load(dx, 48), tiny);
    v128.store(dx, a);
    v128.store(dx, b, 16);
    v128.store(dx, c, 32);
    v128.store(dx, d, 48);
    x += 64;
    dx += 64;
    dy += 64;
  }
  for (; i + 4 <= N; i += 4) {
    v128.store(dx, geluGradv(v128.load(x), v128.load(dy), zero ? z : v128.load(dx), tiny));
    x += 16;
    dx += 16;
    dy += 16;
  }
  for (; i < N; i++) {
    const v = load<f32>(x);
    const u2: f32 = <f32>-2.0 * GELU_K * (v + GELU_C * v * v * v);
    const e = exps(u2);
    const sg: f32 = <f32>1.0 / (<f32>1.0 + e);
    const du2: f32 = <f32>2.0 * GELU_K * (<f32>1.0 + <f32>3.0 * GELU_C * v * v);
    const grad = sg + v * sg * (e * sg) * du2;
    const base: f32 = zero ? 0 : load<f32>(dx);
    store<f32>(dx, flushs(base + grad * flushs(load<f32>(dy))));
    x += 4;
    dx += 4;
    dy += 4;
  }
}

// ---------------------------------------------------------------------------------------------
// Elementwise

export function add(out: u32, a: u32, b: u32, N: i32): void {
  let o = (<usize>out) << 2;
  let p = (<usize>a) << 2;
  let q = (<usize>b) << 2;
  let i = 0;
  for (; i + 4 <= N; i += 4) {
    v128.store(o, f32x4.add(v128.load(p), v128.load(q)));
    o += 16; p += 16; q += 16;
  }
  for (; i < N; i++) {
    store<f32>(o, load<f32>(p) + load<f32>(q));
    o += 4; p += 4; q += 4;
  }
}

export function accumulate(dst: u32, src: u32, N: i32): void {
  let o = (<usize>dst) << 2;
  let p = (<usize>src) << 2;
  let i = 0;
  for (; i + 4 <= N; i += 4) {
    v128.store(o, f32x4.add(v128.load(o), v128.load(p)));
    o += 16; p += 16;
  }
  for (; i < N; i++) {
    store<f32>(o, load<f32>(o) + load<f32>(p));
    o += 4; p += 4;
  }
}

/** dst[i] = 0 where |dst[i]| < 2^-60; NaN and infinities pass unchanged. */
export function flushTiny(dst: u32, N: i32): void {
  let o = (<usize>dst) << 2;
  const tiny = f32x4.splat(TINY);
  let i = 0;
  for (; i + 4 <= N; i += 4) {
    v128.store(o, flushv(v128.load(o), tiny));
    o += 16;
  }
  for (; i < N; i++) {
    if (Mathf.abs(load<f32>(o)) < TINY) store<f32>(o, 0);
    o += 4;
  }
}

export function fill(dst: u32, value: f32, N: i32): void {
  let o = (<usize>dst) << 2;
  const v = f32x4.splat(value);
  let i = 0;
  for (; i + 4 <= N; i += 4) {
    v128.store(o, v);
    o += 16;
  }
  for (; i < N; i++) {
    store<f32>(o, value);
    o += 4;
  }
}

/** PyTorch Adam: m = lerp(m, g, 1-β1); v = β2 v + (1-β2) g²; p -= (lr/bc1) · m / (√v/√bc2 + eps). */
export function adamUpdate(
  params: u32, grads: u32, m: u32, v: u32, N: i32,
  lr: f64, beta1: f64, beta2: f64, eps: f64, t: f64,
): void {
  const bc1 = 1.0 - Math.pow(beta1, t);
  const bc2 = 1.0 - Math.pow(beta2, t);
  const stepSize = <f32>(lr / bc1);
  const sqrtBc2 = <f32>Math.sqrt(bc2);
  const b1c = <f32>(1.0 - beta1);
  const b2 = <f32>beta2;
  const b2c = <f32>(1.0 - beta2);
  const e = <f32>eps;
  let p = (<usize>params) << 2;
  let g = (<usize>grads) << 2;
  let mp = (<usize>m) << 2;
  let vp = (<usize>v) << 2;
  const vStep = f32x4.splat(stepSize);
  const vSqrtBc2 = f32x4.splat(sqrtBc2);
  const vB1c = f32x4.splat(b1c);
  const vB2 = f32x4.splat(b2);
  const vB2c = f32x4.splat(b2c);
  const vEps = f32x4.splat(e);
  let i = 0;
  for (; i + 4 <= N; i += 4) {
    const gv = v128.load(g);
    let mv = v128.load(mp);
    mv = f32x4.add(mv, f32x4.mul(vB1c, f32x4.sub(gv, mv)));
    const vv = f32x4.add(f32x4.mul(v128.load(vp), vB2), f32x4.mul(vB2c, f32x4.mul(gv, gv)));
    const denom = f32x4.add(f32x4.div(f32x4.sqrt(vv), vSqrtBc2), vEps);
    v128.store(p, f32x4.sub(v128.load(p), f32x4.mul(vStep, f32x4.div(mv, denom))));
    v128.store(mp, mv);
    v128.store(vp, vv);
    p += 16; g += 16; mp += 16; vp += 16;
  }
  for (; i < N; i++) {
    const gs = load<f32>(g);
    let ms = load<f32>(mp);
    ms = ms + b1c * (gs - ms);
    const vs = load<f32>(vp) * b2 + b2c * gs * gs;
    const denom = Mathf.sqrt(vs) / sqrtBc2 + e;
    store<f32>(p, load<f32>(p) - stepSize * (ms / denom));
    store<f32>(mp, ms);
    store<f32>(vp, vs);
    p += 4; g += 4; mp += 4; vp += 4;
  }
}
