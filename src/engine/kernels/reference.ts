import type { Kernels } from "./types.js";

/** flushTiny threshold, 2^-60: the WebAssembly kernels use the same value. */
const TINY = 2 ** -60;

/**
 * Plain-JS kernels, the executable specification of src/engine/kernels/types.ts. They work over a
 * Float32Array heap (a slow but exact twin of the WASM kernels, also usable over a SharedArrayBuffer)
 * or a Float64Array heap (the float64 path used for finite-difference gradient checks).
 * Arithmetic is done in JS doubles and rounded when stored.
 */
export function createReferenceKernels(heapArray: Float32Array | Float64Array): Kernels {
  const h = heapArray;
  const LN_EPS = 1e-5;
  const GELU_SCALE = Math.sqrt(2 / Math.PI);

  return {
    heap: () => h,

    matmulForward(out, inp, weight, bias, BT, C, OC) {
      for (let t = 0; t < BT; t++) {
        const ip = inp + t * C;
        const op = out + t * OC;
        for (let o = 0; o < OC; o++) {
          const wp = weight + o * C;
          let s = bias !== 0 ? h[bias + o]! : 0;
          for (let i = 0; i < C; i++) s += h[ip + i]! * h[wp + i]!;
          h[op + o] = s;
        }
      }
    },

    matmulBackward(dinp, dweight, dbias, dout, inp, weight, BT, C, OC, overwrite = 0) {
      if (dinp !== 0) {
        if (overwrite) h.fill(0, dinp, dinp + BT * C);
        for (let t = 0; t < BT; t++) {
          const dop = dout + t * OC;
          const dip = dinp + t * C;
          for (let i = 0; i < C; i++) {
            let s = 0;
            for (let o = 0; o < OC; o++) s += h[dop + o]! * h[weight + o * C + i]!;
            h[dip + i]! += s;
          }
        }
      }
      for (let o = 0; o < OC; o++) {
        const dwp = dweight + o * C;
        let db = 0;
        for (let i = 0; i < C; i++) {
          let s = 0;
          for (let t = 0; t < BT; t++) s += h[dout + t * OC + o]! * h[inp + t * C + i]!;
          h[dwp + i]! += s;
        }
        if (dbias !== 0) {
          for (let t = 0; t < BT; t++) db += h[dout + t * OC + o]!;
          h[dbias + o]! += db;
        }
      }
    },

    layernormForward(out, mean, rstd, inp, weight, bias, BT, C) {
      for (let t = 0; t < BT; t++) {
        const x = inp + t * C;
        let m = 0;
        for (let i = 0; i < C; i++) m += h[x + i]!;
        m /= C;
        let v = 0;
        for (let i = 0; i < C; i++) {
          const d = h[x + i]! - m;
          v += d * d;
        }
        v /= C;
        const s = 1 / Math.sqrt(v + LN_EPS);
        const o = out + t * C;
        for (let i = 0; i < C; i++) h[o + i] = (h[x + i]! - m) * s * h[weight + i]! + h[bias + i]!;
        h[mean + t] = m;
        h[rstd + t] = s;
      }
    },

    layernormBackward(dinp, dweight, dbias, dout, inp, weight, mean, rstd, BT, C) {
      for (let t = 0; t < BT; t++) {
        const dop = dout + t * C;
        const x = inp + t * C;
        const dip = dinp + t * C;
        const m = h[mean + t]!;
        const s = h[rstd + t]!;
        let dnormMean = 0;
        let dnormNormMean = 0;
        for (let i = 0; i < C; i++) {
          const norm = (h[x + i]! - m) * s;
          const dnorm = h[weight + i]! * h[dop + i]!;
          dnormMean += dnorm;
          dnormNormMean += dnorm * norm;
        }
        dnormMean /= C;
        dnormNormMean /= C;
        for (let i = 0; i < C; i++) {
          const norm = (h[x + i]! - m) * s;
          const dnorm = h[weight + i]! * h[dop + i]!;
          h[dbias + i]! += h[dop + i]!;
          h[dweight + i]! += norm * h[dop + i]!;
          h[dip + i]! += (dnorm - dnormMean - norm * dnormNormMean) * s;
        }
      }
    },

    attentionForward(out, att, qkv, B, T, C, NH, softmax) {
      const hs = C / NH;
      const scale = 1 / Math.sqrt(hs);
      const C3 = 3 * C;
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          for (let hh = 0; hh < NH; hh++) {
            const q = qkv + (b * T + t) * C3 + hh * hs;
            const a = att + ((b * NH + hh) * T + t) * T;
            let max = -Infinity;
            for (let t2 = 0; t2 <= t; t2++) {
              const k = qkv + (b * T + t2) * C3 + C + hh * hs;
              let s = 0;
              for (let i = 0; i < hs; i++) s += h[q + i]! * h[k + i]!;
              s *= scale;
              h[a + t2] = s;
              if (s > max) max = s;
            }
            if (softmax) {
              let sum = 0;
              for (let t2 = 0; t2 <= t; t2++) {
                const e = Math.exp(h[a + t2]! - max);
                h[a + t2] = e;
                sum += e;
              }
              const inv = sum === 0 ? 0 : 1 / sum;
              for (let t2 = 0; t2 <= t; t2++) h[a + t2]! *= inv;
            }
            for (let t2 = t + 1; t2 < T; t2++) h[a + t2] = 0;
            const o = out + (b * T + t) * C + hh * hs;
            for (let i = 0; i < hs; i++) {
              let s = 0;
              for (let t2 = 0; t2 <= t; t2++) s += h[a + t2]! * h[qkv + (b * T + t2) * C3 + 2 * C + hh * hs + i]!;
              h[o + i] = s;
            }
          }
        }
      }
    },

    attentionBackward(dqkv, _datt, dout, qkv, att, B, T, C, NH, softmax, overwrite = 0) {
      if (overwrite) h.fill(0, dqkv, dqkv + B * T * 3 * C);
      const hs = C / NH;
      const scale = 1 / Math.sqrt(hs);
      const C3 = 3 * C;
      const datt = new Float64Array(T);
      for (let b = 0; b < B; b++) {
        for (let t = 0; t < T; t++) {
          for (let hh = 0; hh < NH; hh++) {
            const a = att + ((b * NH + hh) * T + t) * T;
            const dop = dout + (b * T + t) * C + hh * hs;
            // through the value mix: out[t] = Σ a[t2] v[t2]
            for (let t2 = 0; t2 <= t; t2++) {
              const v = qkv + (b * T + t2) * C3 + 2 * C + hh * hs;
              const dv = dqkv + (b * T + t2) * C3 + 2 * C + hh * hs;
              const at = h[a + t2]!;
              let s = 0;
              for (let i = 0; i < hs; i++) {
                s += h[v + i]! * h[dop + i]!;
                h[dv + i]! += at * h[dop + i]!;
              }
              datt[t2] = s;
            }
            // through the softmax (or nothing for linear attention): d(score)
            if (softmax) {
              let dot = 0;
              for (let t2 = 0; t2 <= t; t2++) dot += h[a + t2]! * datt[t2]!;
              for (let t2 = 0; t2 <= t; t2++) datt[t2] = h[a + t2]! * (datt[t2]! - dot);
            }
            // through score = scale * q·k
            const q = qkv + (b * T + t) * C3 + hh * hs;
            const dq = dqkv + (b * T + t) * C3 + hh * hs;
            for (let t2 = 0; t2 <= t; t2++) {
              const g = datt[t2]! * scale;
              const k = qkv + (b * T + t2) * C3 + C + hh * hs;
              const dk = dqkv + (b * T + t2) * C3 + C + hh * hs;
              for (let i = 0; i < hs; i++) {
                h[dq + i]! += g * h[k + i]!;
                h[dk + i]! += g * h[q + i]!;
              }
            }
          }
        }
      }
    },

    geluForward(out, inp, N) {
      for (let i = 0; i < N; i++) {
        const x = h[inp + i]!;
        const u = GELU_SCALE * (x + 0.044715 * x * x * x);
        h[out + i] = 0.5 * x * (1 + Math.tanh(u));
      }
    },

    geluBackward(dinp, inp, dout, N, overwrite = 0) {
      if (overwrite) h.fill(0, dinp, dinp + N);
      for (let i = 0; i < N; i++) {
        const x = h[inp + i]!;
        const u = GELU_SCALE * (x + 0.044715 * x * x * x);
        const th = Math.tanh(u);
        const sech2 = 1 - th * th;
        const local = 0.5 * (1 + th) + 0.5 * x * sech2 * GELU_SCALE * (1 + 3 * 0.044715 * x * x);
        h[dinp + i]! += local * h[dout + i]!;
      }
    },

    add(out, a, b, N) {
      for (let i = 0; i < N; i++) h[out + i] = h[a + i]! + h[b + i]!;
    },

    accumulate(dst, src, N) {
      for (let i = 0; i < N; i++) h[dst + i]! += h[src + i]!;
    },

    fill(dst, value, N) {
      h.fill(value, dst, dst + N);
    },

    flushTiny(dst, N) {
      for (let i = dst; i < dst + N; i++) if (Math.abs(h[i]!) < TINY) h[i] = 0;
    },

    adamUpdate(params, grads, m, v, N, lr, beta1, beta2, eps, t) {
      // torch.optim.Adam (foreach path): p -= lr / bc1 * m / (sqrt(v) / sqrt(bc2) + eps)
      const bc1 = 1 - Math.pow(beta1, t);
      const bc2Sqrt = Math.sqrt(1 - Math.pow(beta2, t));
      const stepSize = lr / bc1;
      for (let i = 0; i < N; i++) {
        const g = h[grads + i]!;
        const mi = beta1 * h[m + i]! + (1 - beta1) * g;
        const vi = beta2 * h[v + i]! + (1 - beta2) * g * g;
        h[m + i] = mi;
        h[v + i] = vi;
        h[params + i]! -= (stepSize * mi) / (Math.sqrt(vi) / bc2Sqrt + eps);
      }
    },
  };
}
