import type { Kernels } from "../kernels/types.js";
import type { ResolvedConfig } from "../model/config.js";
import { blockForward, blocksForward } from "../model/forward.js";
import { blocksBackward } from "../model/backward.js";
import type { LayerActs, ParamPtrs } from "../model/layout.js";
import type { LmHeapPlan, LmParamPtrs } from "./layout.js";

/**
 * Forward and backward of the token LM over a heap laid out by planLmHeap. The blocks are the ICA
 * model's own (blocksForward / blocksBackward); only the ends differ: token + position embedding in,
 * final LayerNorm and the head tied to wte out, softmax cross-entropy in between.
 */

function lastResidual(rc: ResolvedConfig, plan: LmHeapPlan): number {
  return rc.nLayer > 0 ? plan.acts.layers[rc.nLayer - 1]!.resOut : plan.acts.encoded;
}

/** The block code takes the ICA model's pointer table but reads only `blocks` from it. */
function asIca(p: LmParamPtrs): ParamPtrs {
  return { readInW: 0, readInB: 0, wpe: p.wpe, blocks: p.blocks, lnfW: p.lnfW, lnfB: p.lnfB, readOutW: 0, readOutB: 0 };
}

/** tokens[B*T] -> logits[B, T, V] at plan.logitsPtr; keeps the activations for lmBackward. */
export function lmForward(k: Kernels, rc: ResolvedConfig, plan: LmHeapPlan, V: number, tokens: ArrayLike<number>, B: number, T: number): void {
  const C = rc.nEmbd;
  const P = plan.params.ptrsAt(plan.paramsPtr);
  const acts = plan.acts;
  for (let b = 0; b < B; b++) {
    for (let t = 0; t < T; t++) {
      const bt = b * T + t;
      k.add(acts.encoded + bt * C, P.wte + tokens[bt]! * C, P.wpe + t * C, C);
    }
  }
  blocksForward(k, rc, asIca(P), acts, B, T);
  k.layernormForward(acts.lnf, acts.lnfMean, acts.lnfRstd, lastResidual(rc, plan), P.lnfW, P.lnfB, B * T, C);
  k.matmulForward(plan.logitsPtr, acts.lnf, P.wte, 0, B * T, C, V);
}

/**
 * Mean cross-entropy over the rows with mask != 0, computed in float64 from the stored logits.
 * With `dlogitsPtr` also writes dLoss/dlogits = (softmax - onehot) * mask / count there.
 */
export function lmLoss(
  heap: Float32Array | Float64Array, logitsPtr: number, V: number, rows: number,
  targets: ArrayLike<number>, mask: ArrayLike<number>, dlogitsPtr: number,
): number {
  let count = 0;
  for (let r = 0; r < rows; r++) if (mask[r] !== 0) count++;
  if (dlogitsPtr !== 0) heap.fill(0, dlogitsPtr, dlogitsPtr + rows * V);
  if (count === 0) return 0;
  let total = 0;
  for (let r = 0; r < rows; r++) {
    if (mask[r] === 0) continue;
    const row = logitsPtr + r * V;
    let max = -Infinity;
    for (let i = 0; i < V; i++) max = Math.max(max, heap[row + i]!);
    let sum = 0;
    for (let i = 0; i < V; i++) sum += Math.exp(heap[row + i]! - max);
    const target = targets[r]!;
    total += max + Math.log(sum) - heap[row + target]!;
    if (dlogitsPtr === 0) continue;
    const d = dlogitsPtr + r * V;
    for (let i = 0; i < V; i++) heap[d + i] = Math.exp(heap[row + i]! - max) / sum / count;
    heap[d + target]! -= 1 / count;
  }
  return total / count;
}

/** Overwrites the gradients with dLoss/dParams for dlogits at plan.dlogitsPtr and the last forward's tokens. */
export function lmBackward(k: Kernels, rc: ResolvedConfig, plan: LmHeapPlan, V: number, tokens: ArrayLike<number>, B: number, T: number): void {
  const C = rc.nEmbd;
  const BT = B * T;
  const P = plan.params.ptrsAt(plan.paramsPtr);
  const G = plan.params.ptrsAt(plan.gradsPtr);
  const s = plan.scratch;
  const acts = plan.acts;
  k.fill(plan.gradsPtr, 0, plan.params.count);
  // Probabilities of unlikely tokens underflow into float32 subnormals, which WebAssembly computes slowly.
  k.flushTiny(plan.dlogitsPtr, BT * V);
  k.matmulBackward(s.dln, G.wte, 0, plan.dlogitsPtr, acts.lnf, P.wte, BT, C, V, 1);
  k.fill(s.dres, 0, BT * C);
  k.layernormBackward(s.dres, G.lnfW, G.lnfB, s.dln, lastResidual(rc, plan), P.lnfW, acts.lnfMean, acts.lnfRstd, BT, C);
  blocksBackward(k, rc, asIca(P), asIca(G), acts, s, B, T);
  for (let b = 0; b < B; b++) k.accumulate(G.wpe, s.dres + b * T * C, T * C);
  for (let bt = 0; bt < BT; bt++) k.accumulate(G.wte + tokens[bt]! * C, s.dres + bt * C, C);
}

/** A layer's activation pointers moved to row t of sequence 0: the one-token view of the same buffers. */
function rowView(a: LayerActs, t: number, C: number): LayerActs {
  return {
    resIn: a.resIn + t * C, ln1: a.ln1 + t * C, ln1Mean: a.ln1Mean + t, ln1Rstd: a.ln1Rstd + t,
    qkv: a.qkv + t * 3 * C, atty: a.atty + t * C, att: a.att, res2: a.res2 + t * C,
    ln2: a.ln2 + t * C, ln2Mean: a.ln2Mean + t, ln2Rstd: a.ln2Rstd + t,
    fch: a.fch + t * 4 * C, fchGelu: a.fchGelu + t * 4 * C, resOut: a.resOut + t * C,
  };
}

/** Same threshold as the kernels' flushTiny, which the WebAssembly attention applies to softmax weights. */
const TINY = 2 ** -60;

/**
 * Causal attention of the query at row t against keys and values of rows 0..t (qkv of sequence 0,
 * filled by earlier forward or decode calls): writes atty row t. Same maths as attentionForward.
 */
function attendOne(h: Float32Array | Float64Array, a: LayerActs, t: number, C: number, NH: number, softmax: boolean, w: Float64Array): void {
  const hs = C / NH;
  const scale = 1 / Math.sqrt(hs);
  const q0 = a.qkv + t * 3 * C;
  for (let head = 0; head < NH; head++) {
    const q = q0 + head * hs;
    let max = -Infinity;
    for (let t2 = 0; t2 <= t; t2++) {
      const key = a.qkv + t2 * 3 * C + C + head * hs;
      let s = 0;
      for (let i = 0; i < hs; i++) s += h[q + i]! * h[key + i]!;
      w[t2] = s * scale;
      max = Math.max(max, w[t2]!);
    }
    if (softmax) {
      let sum = 0;
      for (let t2 = 0; t2 <= t; t2++) {
        w[t2] = Math.exp(w[t2]! - max);
        sum += w[t2]!;
      }
      for (let t2 = 0; t2 <= t; t2++) w[t2] = w[t2]! / sum < TINY ? 0 : w[t2]! / sum;
    }
    const out = a.atty + t * C + head * hs;
    for (let i = 0; i < hs; i++) {
      let s = 0;
      for (let t2 = 0; t2 <= t; t2++) s += w[t2]! * h[a.qkv + t2 * 3 * C + 2 * C + head * hs + i]!;
      h[out + i] = s;
    }
  }
}

/**
 * Kernels whose matmulForward computes a single row as weight[OC, C] · inp[C]: the matrix goes in as
 * the OC-row input and the vector as a one-row weight. The WebAssembly matmulForward transposes its
 * weight into scratch on every call, which at one row costs more than the product itself.
 */
function oneRowKernels(k: Kernels): Kernels {
  return {
    ...k,
    matmulForward(out, inp, weight, bias, BT, C, OC) {
      if (BT !== 1) return k.matmulForward(out, inp, weight, bias, BT, C, OC);
      k.matmulForward(out, weight, inp, 0, OC, C, 1);
      if (bias !== 0) k.add(out, out, bias, OC);
    },
  };
}

/**
 * Runs token `token` at position t of sequence 0 through the model, given that rows 0..t-1 of every
 * layer's qkv hold that sequence's keys and values: logits row t of sequence 0 (at logitsPtr + t*V).
 * Cost is one token's matmuls plus O(t) attention, instead of a forward over all t+1 tokens.
 */
export function lmDecodeStep(
  k0: Kernels, rc: ResolvedConfig, plan: LmHeapPlan, V: number, token: number, t: number, w: Float64Array,
): void {
  const C = rc.nEmbd;
  const P = plan.params.ptrsAt(plan.paramsPtr);
  const acts = plan.acts;
  const h = k0.heap();
  const k = oneRowKernels(k0);
  k.add(acts.encoded + t * C, P.wte + token * C, P.wpe + t * C, C);
  for (let l = 0; l < rc.nLayer; l++) {
    const a = acts.layers[l]!;
    const soft = rc.blocks[l]!.attention === "softmax";
    blockForward(k, rc, l, P.blocks[l]!, rowView(a, t, C), 1, () => attendOne(h, a, t, C, rc.nHead, soft, w));
  }
  k.layernormForward(acts.lnf + t * C, acts.lnfMean + t, acts.lnfRstd + t, lastResidual(rc, plan) + t * C, P.lnfW, P.lnfB, 1, C);
  k.matmulForward(plan.logitsPtr + t * V, acts.lnf + t * C, P.wte, 0, 1, C, V);
}
