/**
 * The contract between the transformer (src/engine/model) and its compute kernels.
 *
 * Every buffer lives in one flat heap (WebAssembly linear memory, possibly shared between worker
 * threads). Pointers are ELEMENT indices into that heap viewed as Float32Array (byte offset / 4),
 * so a pointer `p` names `heap[p]`. A pointer of 0 means "absent" (e.g. no bias); the first bytes
 * of the heap are reserved, so no real buffer starts at 0.
 *
 * Shapes follow llm.c: B = batch, T = sequence length, C = channels, OC = output channels,
 * NH = heads, hs = C / NH. Weights are [out, in] (torch.nn.Linear layout).
 * Backward kernels ACCUMULATE (+=) into every gradient buffer, as in llm.c; the caller zeroes.
 * matmulBackward's dinp, attentionBackward's dqkv and geluBackward's dinp may instead be written
 * (`overwrite` = 1): the same bits as accumulating into a zeroed buffer, without the zeroing pass
 * and without reading the buffer.
 *
 * Two implementations exist: a plain-JS reference (src/engine/kernels/reference.ts, also usable
 * over a Float64Array heap for finite-difference tests) and WebAssembly SIMD
 * (src/engine/kernels/wasm.ts, built from src/engine/kernels/assembly by AssemblyScript).
 */
export interface Kernels {
  /** The heap as Float32Array (or Float64Array for the reference float64 path). Re-read after grow(). */
  heap(): Float32Array | Float64Array;

  /** out[BT,OC] = inp[BT,C] · weight[OC,C]^T (+ bias[OC] when bias != 0). */
  matmulForward(out: number, inp: number, weight: number, bias: number, BT: number, C: number, OC: number): void;
  /**
   * dinp[BT,C] += dout[BT,OC] · weight[OC,C];  dweight[OC,C] += dout^T · inp;  dbias[OC] += Σ_t dout.
   * dinp or dbias may be 0 to skip that product. overwrite = 1: dinp = dout · weight instead of +=.
   */
  matmulBackward(
    dinp: number, dweight: number, dbias: number,
    dout: number, inp: number, weight: number,
    BT: number, C: number, OC: number, overwrite?: number,
  ): void;

  /** out = (inp - mean) * rstd * weight + bias over the last dim C; stores mean[BT], rstd[BT]. eps = 1e-5. */
  layernormForward(out: number, mean: number, rstd: number, inp: number, weight: number, bias: number, BT: number, C: number): void;
  layernormBackward(
    dinp: number, dweight: number, dbias: number,
    dout: number, inp: number, weight: number, mean: number, rstd: number,
    BT: number, C: number,
  ): void;

  /**
   * Causal multi-head attention over qkv[B,T,3C] laid out [q | k | v], each [NH, hs].
   * out[B,T,C]; att[B,NH,T,T] keeps the (post-softmax, or for linear the scaled-score) weights
   * needed by backward; only the causal lower triangle is meaningful.
   * softmax = 1: att = softmax(q·k / sqrt(hs)) over keys t2 <= t.
   * softmax = 0 ("linear attention"): att = q·k / sqrt(hs) for t2 <= t, 0 above; no normalisation.
   */
  attentionForward(out: number, att: number, qkv: number, B: number, T: number, C: number, NH: number, softmax: number): void;
  /** dqkv += ... (= with overwrite = 1); uses the att saved by forward. `datt` is scratch of size B*NH*T*T (overwritten). */
  attentionBackward(
    dqkv: number, datt: number, dout: number, qkv: number, att: number,
    B: number, T: number, C: number, NH: number, softmax: number, overwrite?: number,
  ): void;

  /** GELU, tanh approximation: out[i] = gelu(inp[i]) for N elements. */
  geluForward(out: number, inp: number, N: number): void;
  /** dinp += gelu'(inp) * dout (= with overwrite = 1). */
  geluBackward(dinp: number, inp: number, dout: number, N: number, overwrite?: number): void;

  /** out[i] = a[i] + b[i] (out may alias a). */
  add(out: number, a: number, b: number, N: number): void;
  /** dst[i] += src[i]. */
  accumulate(dst: number, src: number, N: number): void;
  fill(dst: number, value: number, N: number): void;
  /**
   * dst[i] = 0 where |dst[i]| < 2^-60. WebAssembly has no flush-to-zero mode and subnormal floats
   * are ~100x slower on x86. The WebAssembly layernormBackward, geluBackward and attention kernels
   * apply the same flush to the gradients they read and write and to softmax weights; the
   * reference kernels compute in float64 and need not.
   */
  flushTiny(dst: number, N: number): void;

  /**
   * PyTorch Adam (no weight decay, no amsgrad) on N parameters; t is the 1-based step count.
   * m and v are the first and second moment buffers.
   */
  adamUpdate(
    params: number, grads: number, m: number, v: number, N: number,
    lr: number, beta1: number, beta2: number, eps: number, t: number,
  ): void;
}
