/**
 * GELU as llama.cpp's CPU backend computes it. ggml does not evaluate tanh per element: it rounds the
 * input to float16, looks the answer up in a 65536-entry table of float16 GELU values, and passes inputs
 * outside (-10, 10) through as 0 or x. A model exported to a gpt2 GGUF is therefore run by llama.cpp with
 * this activation, and a model that uses it in the engine too (LmConfig.gelu = "ggml-f16") computes the
 * same function on both runtimes, which is what makes their logits agree to float32 round-off.
 *
 * Only the forward pass changes. The backward pass keeps the derivative of the smooth tanh GELU at the
 * unrounded input (a straight-through estimate): the table is flat between float16 steps, so its own
 * derivative is zero almost everywhere and would stop training.
 */
import type { Kernels } from "../kernels/types.js";
import { float16BitsToFloat32, float32ToFloat16Bits } from "../gguf/writer.js";

export type LmGelu = "tanh" | "ggml-f16";
export const LM_GELU_KINDS: readonly LmGelu[] = ["tanh", "ggml-f16"];

let table: Float32Array | undefined;

/** ggml_table_gelu_f16: for every float16 bit pattern, the float16-rounded GELU of its value (float32 arithmetic). */
function geluTable(): Float32Array {
  if (table) return table;
  const s = Math.fround(Math.sqrt(2 / Math.PI));
  const a = Math.fround(0.044715);
  table = new Float32Array(65536);
  for (let h = 0; h < 65536; h++) {
    const x = float16BitsToFloat32(h);
    const g = Math.fround(0.5 * x * (1 + Math.tanh(Math.fround(s * x * Math.fround(1 + Math.fround(a * x * x))))));
    table[h] = float16BitsToFloat32(float32ToFloat16Bits(g));
  }
  return table;
}

/** ggml's table GELU over heap elements [inp, inp + N) into [out, out + N). */
export function ggmlGeluForward(heap: Float32Array | Float64Array, out: number, inp: number, N: number): void {
  const t = geluTable();
  if (!(heap instanceof Float32Array)) {
    for (let i = 0; i < N; i++) {
      const x = heap[inp + i]!;
      heap[out + i] = x <= -10 ? 0 : x >= 10 ? x : t[float32ToFloat16Bits(x)]!;
    }
    return;
  }
  // The float32 heap is read as bits, and the common case (a normal float16, |x| < 10) is inlined: this
  // loop runs over every MLP activation of every training step.
  const bits = new Uint32Array(heap.buffer, heap.byteOffset, heap.length);
  for (let i = 0; i < N; i++) {
    const b = bits[inp + i]!;
    const a = b & 0x7fffffff;
    if (a >= TEN_BITS) {
      heap[out + i] = a > INF_BITS ? Number.NaN : b >>> 31 ? 0 : heap[inp + i]!;
      continue;
    }
    if (a >= HALF_MIN_NORMAL_BITS) {
      // Round to nearest even without a data-dependent branch (the low mantissa bits are noise, so a
      // branch on them mispredicts half the time): adding 0xfff plus the kept bit's parity carries
      // exactly when RNE rounds up, into the exponent too; then rebias 127 -> 15.
      const half = ((a + 0xfff + ((a >>> 13) & 1)) >>> 13) - REBIAS;
      heap[out + i] = t[((b >>> 16) & 0x8000) | half]!;
    } else {
      heap[out + i] = t[float32ToFloat16Bits(heap[inp + i]!)]!;
    }
  }
}

/** Float32 bit patterns of 10, of +infinity and of 2^-14 (the smallest normal float16), as magnitudes. */
const TEN_BITS = 0x41200000;
const INF_BITS = 0x7f800000;
const HALF_MIN_NORMAL_BITS = 0x38800000;
/** (127 - 15) << 10: float32 exponent bias to float16's, in the shifted bits. */
const REBIAS = 112 << 10;

/** `k` with its GELU forward replaced by ggml's table GELU (every other kernel, backward included, unchanged). */
export function withGgmlGelu(k: Kernels): Kernels {
  return { ...k, geluForward: (out, inp, N) => ggmlGeluForward(k.heap(), out, inp, N) };
}
