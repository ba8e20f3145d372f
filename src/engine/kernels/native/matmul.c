// Native AVX-512 matmuls for Node: the same numbers as the WebAssembly FMA kernels
// (src/engine/kernels/assembly/kernels.ts), bit for bit, in wider registers.
//
// Why the bits agree: the WebAssembly GEMM gives every output element one chain of operations,
// whatever its register tile: it starts from the output (accumulating), the bias or +0, then adds
// A(m, k) * B(k, n) for k = 0, 1, ..., K-1 in order, fused (relaxed_madd, an FMA on x86-64) for the
// columns below N rounded down to a multiple of 4 and as a separate multiply then add for the last
// N mod 4 columns. The chain does not depend on how many columns share a register, so a 16-lane FMA
// here computes what four 4-lane FMAs compute there. Blocking over k (storing the partial sums and
// loading them again) does not round. The bias gradient is not a GEMM and is copied operation by
// operation: four rows summed pairwise, then added.
//
// Compiled without -ffast-math and with -ffp-contract=off, so the compiler neither fuses the scalar
// multiply-adds nor reorders any sum. Flush-to-zero stays off, as WebAssembly has none.
#include <immintrin.h>
#include <node_api.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#define AVX512 __attribute__((target("avx512f,fma")))
#define INLINE static inline __attribute__((always_inline))

// Rows and 16-float vectors of the register tile: 8 x 3 accumulators, 3 B vectors and a broadcast
// in the 32 zmm registers.
enum { MR = 8, NV = 3, NR = NV * 16, KB = 128 };

typedef struct {
  float* out; long ldo;
  const float* a; long sam, sak;
  const float* b; long ldb;
  const float* bias;
  int acc;
} Gemm;

// One tile: rows m..m+R-1, FMA columns n..n+V*16 (the last vector masked by `last`), k in [k0, k1).
// The accumulators are named variables, not an array: GCC keeps an array of vectors in memory and
// stores it back on every k.
#define MASK(j) ((j) == TV - 1 ? last : (__mmask16)0xFFFF)
#define INIT1(i, j) c##i##j = (!init || g->acc) ? _mm512_maskz_loadu_ps(MASK(j), o + i * ldo + (j) * 16) \
  : g->bias ? _mm512_maskz_loadu_ps(MASK(j), g->bias + n + (j) * 16) : _mm512_setzero_ps();
#define INITROW(i) if (TR > i) { INIT1(i, 0) if (TV > 1) { INIT1(i, 1) } if (TV > 2) { INIT1(i, 2) } }
#define FMAROW(i) if (TR > i) { const __m512 x = _mm512_set1_ps(ap[i * sam]); \
  c##i##0 = _mm512_fmadd_ps(x, b0, c##i##0); \
  if (TV > 1) c##i##1 = _mm512_fmadd_ps(x, b1, c##i##1); \
  if (TV > 2) c##i##2 = _mm512_fmadd_ps(x, b2, c##i##2); }
#define STOREROW(i) if (TR > i) { _mm512_mask_storeu_ps(o + i * ldo, MASK(0), c##i##0); \
  if (TV > 1) _mm512_mask_storeu_ps(o + i * ldo + 16, MASK(1), c##i##1); \
  if (TV > 2) _mm512_mask_storeu_ps(o + i * ldo + 32, MASK(2), c##i##2); }
#define ALLROWS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7)
#define DEFINE_TILE(R, V)                                                                                    \
  INLINE AVX512 void tile##R##x##V(const Gemm* g, long m, long n, long k0, long k1, int init, __mmask16 last) { \
    enum { TR = R, TV = V };                                                                                  \
    __m512 c00, c01, c02, c10, c11, c12, c20, c21, c22, c30, c31, c32;                                        \
    __m512 c40, c41, c42, c50, c51, c52, c60, c61, c62, c70, c71, c72;                                        \
    const long ldo = g->ldo, sam = g->sam, sak = g->sak, ldb = g->ldb;                                        \
    float* o = g->out + m * ldo + n;                                                                          \
    ALLROWS(INITROW)                                                                                          \
    const float* ap = g->a + m * sam + k0 * sak;                                                              \
    const float* bp = g->b + k0 * ldb + n;                                                                    \
    for (long k = k0; k < k1; k++) {                                                                          \
      const __m512 b0 = _mm512_maskz_loadu_ps(MASK(0), bp);                                                   \
      const __m512 b1 = V > 1 ? _mm512_maskz_loadu_ps(MASK(1), bp + 16) : b0;                                 \
      const __m512 b2 = V > 2 ? _mm512_maskz_loadu_ps(MASK(2), bp + 32) : b0;                                 \
      ALLROWS(FMAROW)                                                                                         \
      ap += sak;                                                                                              \
      bp += ldb;                                                                                              \
    }                                                                                                         \
    ALLROWS(STOREROW)                                                                                         \
  }

#define DEFINE_TILES(V) \
  DEFINE_TILE(1, V) DEFINE_TILE(2, V) DEFINE_TILE(3, V) DEFINE_TILE(4, V) \
  DEFINE_TILE(5, V) DEFINE_TILE(6, V) DEFINE_TILE(7, V) DEFINE_TILE(8, V)
DEFINE_TILES(1)
DEFINE_TILES(2)
DEFINE_TILES(3)

#define ROWS_CASES(V)                                                          \
  switch (rows) {                                                              \
    case 1: tile1x##V(g, m, n, k0, k1, init, last); break;                     \
    case 2: tile2x##V(g, m, n, k0, k1, init, last); break;                     \
    case 3: tile3x##V(g, m, n, k0, k1, init, last); break;                     \
    case 4: tile4x##V(g, m, n, k0, k1, init, last); break;                     \
    case 5: tile5x##V(g, m, n, k0, k1, init, last); break;                     \
    case 6: tile6x##V(g, m, n, k0, k1, init, last); break;                     \
    case 7: tile7x##V(g, m, n, k0, k1, init, last); break;                     \
    default: tile8x##V(g, m, n, k0, k1, init, last); break;                    \
  }

static AVX512 void tileAny(const Gemm* g, long m, int rows, long n, int vecs, long k0, long k1, int init, __mmask16 last) {
  if (vecs == 3) { ROWS_CASES(3) }
  else if (vecs == 2) { ROWS_CASES(2) }
  else { ROWS_CASES(1) }
}

// out[M, N] (= or +=) A(M, K) . B[K, N] (+ bias), element strides; the chain of each element as
// described at the top of this file.
static AVX512 void gemm(const Gemm* g, long M, long N, long K) {
  const long N4 = N & ~3L;
  long k0 = 0;
  do { // once even when K = 0: the tiles still write the start of each chain (output, bias or +0)
    const long k1 = K < k0 + KB ? K : k0 + KB;
    const int init = k0 == 0;
    for (long n = 0; n < N4; n += NR) {
      const long cols = N4 - n < NR ? N4 - n : NR;
      const int vecs = (int)((cols + 15) / 16);
      const int rem = (int)(cols - (vecs - 1) * 16);
      const __mmask16 last = (__mmask16)(rem == 16 ? 0xFFFF : (1u << rem) - 1);
      for (long m = 0; m < M; m += MR) {
        const int rows = M - m < MR ? (int)(M - m) : MR;
        tileAny(g, m, rows, n, vecs, k0, k1, init, last);
      }
    }
    k0 += KB;
  } while (k0 < K);
  // The last N mod 4 columns: multiply, then add, one rounding each (WebAssembly's scalar tile).
  for (long n = N4; n < N; n++) {
    for (long m = 0; m < M; m++) {
      float* o = g->out + m * g->ldo + n;
      float c = g->acc ? *o : g->bias ? g->bias[n] : 0.0f;
      const float* ap = g->a + m * g->sam;
      const float* bp = g->b + n;
      for (long k = 0; k < K; k++) {
        const float p = ap[k * g->sak] * bp[k * g->ldb];
        c = c + p;
      }
      *o = c;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// Per-thread scratch (each worker thread is its own napi_env)

typedef struct { float* p; size_t floats; } Scratch;

static void freeScratch(napi_env env, void* data, void* hint) {
  (void)env; (void)hint;
  Scratch* s = (Scratch*)data;
  free(s->p);
  free(s);
}

static float* scratchFor(napi_env env, size_t floats) {
  Scratch* s = NULL;
  if (napi_get_instance_data(env, (void**)&s) != napi_ok || s == NULL) return NULL;
  if (s->floats < floats) {
    float* p = (float*)aligned_alloc(64, ((floats * sizeof(float) + 63) / 64) * 64);
    if (!p) return NULL;
    free(s->p);
    s->p = p;
    s->floats = floats;
  }
  return s->p;
}

static AVX512 void matmulForward(float* heap, float* wt, uint32_t out, uint32_t inp, uint32_t weight, uint32_t bias, long BT, long C, long OC) {
  const float* w = heap + weight;
  for (long o = 0; o < OC; o++)
    for (long c = 0; c < C; c++) wt[c * OC + o] = w[o * C + c];
  Gemm g = { heap + out, OC, heap + inp, C, 1, wt, OC, bias ? heap + bias : NULL, 0 };
  gemm(&g, BT, OC, C);
}

// dbias += sum over rows of dout, in the WebAssembly kernel's order: blocks of kc rows; within a
// block, four rows at a time added pairwise ((r0 + r1) + (r2 + r3)) for the first OC rounded down to
// 4 columns and one row at a time for the others; the block's last kc mod 4 rows one at a time.
static void biasGradient(float* db, const float* d, long BT, long OC, long kc) {
  const long O4 = OC & ~3L;
  for (long t0 = 0; t0 < BT; t0 += kc) {
    const long len = BT - t0 < kc ? BT - t0 : kc;
    long t = 0;
    for (; t + 4 <= len; t += 4) {
      const float* r = d + (t0 + t) * OC;
      for (long o = 0; o < O4; o++) {
        const float s01 = r[o] + r[OC + o];
        const float s23 = r[2 * OC + o] + r[3 * OC + o];
        db[o] = db[o] + (s01 + s23);
      }
      for (long o = O4; o < OC; o++)
        for (long j = 0; j < 4; j++) db[o] = db[o] + r[j * OC + o];
    }
    for (; t < len; t++) {
      const float* r = d + (t0 + t) * OC;
      for (long o = 0; o < OC; o++) db[o] = db[o] + r[o];
    }
  }
}

static AVX512 void matmulBackward(
  float* heap, uint32_t dinp, uint32_t dweight, uint32_t dbias, uint32_t dout, uint32_t inp, uint32_t weight,
  long BT, long C, long OC, int overwrite, long wasmScratchFloats
) {
  const float* d = heap + dout;
  if (dinp) {
    Gemm g = { heap + dinp, C, d, OC, 1, heap + weight, C, NULL, overwrite == 0 };
    gemm(&g, BT, C, OC);
  }
  if (dbias) {
    // The WebAssembly kernel packs dout in blocks of 128 rows, fewer when its scratch is small, and
    // adds the bias gradient unpacked, a row at a time, when not even 4 rows fit.
    long kc = 128;
    if (OC * kc > wasmScratchFloats) kc = (OC > 0 ? wasmScratchFloats / OC : 0) & ~3L;
    biasGradient(heap + dbias, d, BT, OC, kc >= 4 ? kc : 1);
  }
  if (dweight) {
    // A(m = o, k = t) = dout[t, o]
    Gemm g = { heap + dweight, C, d, 1, OC, heap + inp, C, NULL, 1 };
    gemm(&g, OC, C, BT);
  }
}

// ---------------------------------------------------------------------------------------------
// Node bindings: (heap: Float32Array, pointers as float indices, sizes as integers)

#define CHECK(call) do { if ((call) != napi_ok) { napi_throw_error(env, NULL, "native matmul: " #call " failed"); return NULL; } } while (0)

static int argsToInts(napi_env env, napi_value* argv, size_t from, size_t to, int64_t* outInts) {
  for (size_t i = from; i < to; i++) {
    double v;
    if (napi_get_value_double(env, argv[i], &v) != napi_ok || !(v >= 0) || v > 4294967295.0 || v != (double)(int64_t)v) {
      char msg[96];
      snprintf(msg, sizeof msg, "native matmul: argument %zu must be an integer in [0, 2^32), got another value", i);
      napi_throw_range_error(env, NULL, msg);
      return 0;
    }
    outInts[i] = (int64_t)v;
  }
  return 1;
}

static float* heapOf(napi_env env, napi_value v, size_t* length) {
  napi_typedarray_type type;
  void* data = NULL;
  size_t len = 0;
  if (napi_get_typedarray_info(env, v, &type, &len, &data, NULL, NULL) != napi_ok || type != napi_float32_array) {
    napi_throw_type_error(env, NULL, "native matmul: the heap must be a Float32Array");
    return NULL;
  }
  *length = len;
  return (float*)data;
}

static int inHeap(napi_env env, const char* what, int64_t ptr, int64_t floats, size_t length) {
  if (ptr + floats > (int64_t)length) {
    char msg[160];
    snprintf(msg, sizeof msg, "native matmul: %s [%lld, %lld) lies beyond the heap (%zu floats)", what, (long long)ptr, (long long)(ptr + floats), length);
    napi_throw_range_error(env, NULL, msg);
    return 0;
  }
  return 1;
}

// Reads a call's `nargs` arguments (heap, then integers into x[1..nargs-1]); NULL with a JavaScript
// exception pending when one is wrong.
static float* readCall(napi_env env, napi_callback_info info, const char* name, size_t nargs, int64_t* x, size_t* len) {
  size_t argc = 12;
  napi_value argv[12];
  if (napi_get_cb_info(env, info, &argc, argv, NULL, NULL) != napi_ok) {
    napi_throw_error(env, NULL, "native matmul: cannot read the arguments");
    return NULL;
  }
  if (argc != nargs) {
    char msg[96];
    snprintf(msg, sizeof msg, "native %s: expected %zu arguments", name, nargs);
    napi_throw_type_error(env, NULL, msg);
    return NULL;
  }
  float* heap = heapOf(env, argv[0], len);
  if (!heap || !argsToInts(env, argv, 1, nargs, x)) return NULL;
  return heap;
}

// matmulForward(heap, out, inp, weight, bias, BT, C, OC)
static napi_value jsMatmulForward(napi_env env, napi_callback_info info) {
  int64_t x[8];
  size_t len;
  float* heap = readCall(env, info, "matmulForward", 8, x, &len);
  if (!heap) return NULL;
  const int64_t out = x[1], inp = x[2], weight = x[3], bias = x[4], BT = x[5], C = x[6], OC = x[7];
  if (!inHeap(env, "out", out, BT * OC, len) || !inHeap(env, "inp", inp, BT * C, len) ||
      !inHeap(env, "weight", weight, OC * C, len) || (bias && !inHeap(env, "bias", bias, OC, len))) return NULL;
  float* wt = scratchFor(env, (size_t)(C * OC) + 16);
  if (!wt) { napi_throw_error(env, NULL, "native matmulForward: out of memory for the transposed weight"); return NULL; }
  matmulForward(heap, wt, (uint32_t)out, (uint32_t)inp, (uint32_t)weight, (uint32_t)bias, BT, C, OC);
  return NULL;
}

// matmulBackward(heap, dinp, dweight, dbias, dout, inp, weight, BT, C, OC, overwrite, wasmScratchFloats)
static napi_value jsMatmulBackward(napi_env env, napi_callback_info info) {
  int64_t x[12];
  size_t len;
  float* heap = readCall(env, info, "matmulBackward", 12, x, &len);
  if (!heap) return NULL;
  const int64_t dinp = x[1], dweight = x[2], dbias = x[3], dout = x[4], inp = x[5], weight = x[6];
  const int64_t BT = x[7], C = x[8], OC = x[9], overwrite = x[10], scratch = x[11];
  if (!inHeap(env, "dout", dout, BT * OC, len) ||
      (dinp && (!inHeap(env, "dinp", dinp, BT * C, len) || !inHeap(env, "weight", weight, OC * C, len))) ||
      (dweight && (!inHeap(env, "dweight", dweight, OC * C, len) || !inHeap(env, "inp", inp, BT * C, len))) ||
      (dbias && !inHeap(env, "dbias", dbias, OC, len))) return NULL;
  matmulBackward(heap, (uint32_t)dinp, (uint32_t)dweight, (uint32_t)dbias, (uint32_t)dout, (uint32_t)inp, (uint32_t)weight,
                 BT, C, OC, (int)overwrite, scratch);
  return NULL;
}

// fmaPeak(iterations): 24 independent chains of 512-bit FMAs, nothing else; the benchmark times it
// for this core's FMA peak (32 FLOP per instruction: 16 lanes, a multiply and an add). Returns a sum of the
// chains so that the compiler keeps them.
#define PEAK_CHAINS(X) X(0) X(1) X(2) X(3) X(4) X(5) X(6) X(7) X(8) X(9) X(10) X(11) \
  X(12) X(13) X(14) X(15) X(16) X(17) X(18) X(19) X(20) X(21) X(22) X(23)
static AVX512 double fmaPeak(int64_t iterations) {
#define PEAK_DECL(i) __m512 p##i = _mm512_set1_ps(0.001f * (float)(i));
#define PEAK_FMA(i) p##i = _mm512_fmadd_ps(p##i, x, y);
#define PEAK_SUM(i) acc = _mm512_add_ps(acc, p##i);
  PEAK_CHAINS(PEAK_DECL)
  const __m512 x = _mm512_set1_ps(0.999999f), y = _mm512_set1_ps(1e-7f);
  for (int64_t it = 0; it < iterations; it++) { PEAK_CHAINS(PEAK_FMA) }
  __m512 acc = _mm512_setzero_ps();
  PEAK_CHAINS(PEAK_SUM)
  return (double)_mm512_reduce_add_ps(acc);
}

static napi_value jsFmaPeak(napi_env env, napi_callback_info info) {
  size_t argc = 1;
  napi_value argv[1];
  CHECK(napi_get_cb_info(env, info, &argc, argv, NULL, NULL));
  int64_t n[1];
  if (argc != 1) { napi_throw_type_error(env, NULL, "native fmaPeak: expected 1 argument"); return NULL; }
  if (!argsToInts(env, argv, 0, 1, n)) return NULL;
  napi_value r;
  CHECK(napi_create_double(env, fmaPeak(n[0]), &r));
  return r;
}

// supported(): whether this CPU runs the AVX-512 code (the module loads anywhere x86-64).
static napi_value jsSupported(napi_env env, napi_callback_info info) {
  (void)info;
  __builtin_cpu_init();
  napi_value r;
  CHECK(napi_get_boolean(env, __builtin_cpu_supports("avx512f") && __builtin_cpu_supports("fma"), &r));
  return r;
}

NAPI_MODULE_INIT() {
  Scratch* s = (Scratch*)calloc(1, sizeof(Scratch));
  if (!s || napi_set_instance_data(env, s, freeScratch, NULL) != napi_ok) {
    free(s);
    napi_throw_error(env, NULL, "native matmul: cannot set up per-thread scratch");
    return NULL;
  }
  napi_property_descriptor props[] = {
    { "matmulForward", NULL, jsMatmulForward, NULL, NULL, NULL, napi_enumerable, NULL },
    { "matmulBackward", NULL, jsMatmulBackward, NULL, NULL, NULL, napi_enumerable, NULL },
    { "fmaPeak", NULL, jsFmaPeak, NULL, NULL, NULL, napi_enumerable, NULL },
    { "supported", NULL, jsSupported, NULL, NULL, NULL, napi_enumerable, NULL },
  };
  CHECK(napi_define_properties(env, exports, sizeof props / sizeof props[0], props));
  return exports;
}
