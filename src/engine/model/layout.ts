import type { ResolvedConfig } from "./config.js";

/**
 * Offset tables (llm.c's ParameterTensors / ActivationTensors): every tensor is a range of one
 * flat heap, named by an element index. Parameters, gradients and the two Adam moments share one
 * layout (same relative offsets), so optimizer code runs over flat ranges.
 */

/** Every buffer starts on a 64-byte boundary (16 floats) for SIMD loads and cache lines. */
export const ALIGN = 16;
export const align = (n: number): number => Math.ceil(n / ALIGN) * ALIGN;

export type InitKind = "normal" | "zero" | "one";

export interface ParamSpec {
  name: string;
  shape: number[];
  /** Offset relative to the start of the parameter block. */
  offset: number;
  size: number;
  init: InitKind;
}

export interface BlockParams {
  ln1w: number; ln1b: number;
  attnW: number; attnB: number;
  projW: number; projB: number;
  ln2w: number; ln2b: number;
  fcW: number; fcB: number;
  fcProjW: number; fcProjB: number;
}

export interface ParamPtrs {
  readInW: number; readInB: number; wpe: number;
  blocks: BlockParams[];
  lnfW: number; lnfB: number;
  readOutW: number; readOutB: number;
}

export interface ParamLayout {
  specs: ParamSpec[];
  /** Number of parameters (the sum of tensor sizes). */
  count: number;
  /** Floats reserved per parameter-shaped buffer (count rounded up to ALIGN). */
  span: number;
  /** Pointers relative to a parameter block starting at 0; use ptrsAt(base) for absolute ones. */
  ptrsAt(base: number): ParamPtrs;
}

export function paramLayout(c: ResolvedConfig): ParamLayout {
  const specs: ParamSpec[] = [];
  let off = 0;
  const add = (name: string, shape: number[], init: InitKind): number => {
    const size = shape.reduce((a, b) => a * b, 1);
    const at = off;
    specs.push({ name, shape, offset: at, size, init });
    off += size;
    return at;
  };
  const C = c.nEmbd;
  const rel: ParamPtrs = {
    readInW: add("read_in.weight", [C, c.inputDim], "normal"),
    readInB: add("read_in.bias", [C], "zero"),
    wpe: add("wpe", [c.nPositions, C], "normal"),
    blocks: [],
    lnfW: 0, lnfB: 0, readOutW: 0, readOutB: 0,
  };
  for (let l = 0; l < c.nLayer; l++) rel.blocks.push(blockParams(add, `h.${l}.`, C, c.blocks[l]!.ffn));
  rel.lnfW = add("ln_f.weight", [C], "one");
  rel.lnfB = add("ln_f.bias", [C], "zero");
  rel.readOutW = add("read_out.weight", [c.outputDim, C], "normal");
  rel.readOutB = add("read_out.bias", [c.outputDim], "zero");

  return {
    specs,
    count: off,
    span: align(off),
    ptrsAt(base: number): ParamPtrs {
      return {
        readInW: rel.readInW + base, readInB: rel.readInB + base, wpe: rel.wpe + base,
        blocks: rel.blocks.map((b) => shiftBlockParams(b, base)),
        lnfW: rel.lnfW + base, lnfB: rel.lnfB + base,
        readOutW: rel.readOutW + base, readOutB: rel.readOutB + base,
      };
    },
  };
}

/** Adds one block's parameters (HF GPT-2 names under `prefix`) through `add`; -1 marks absent FFN tensors. */
export function blockParams(add: (name: string, shape: number[], init: InitKind) => number, prefix: string, C: number, ffn: boolean): BlockParams {
  const p = prefix;
  const b: BlockParams = {
    ln1w: add(p + "ln_1.weight", [C], "one"),
    ln1b: add(p + "ln_1.bias", [C], "zero"),
    attnW: add(p + "attn.c_attn.weight", [3 * C, C], "normal"),
    attnB: add(p + "attn.c_attn.bias", [3 * C], "zero"),
    projW: add(p + "attn.c_proj.weight", [C, C], "normal"),
    projB: add(p + "attn.c_proj.bias", [C], "zero"),
    ln2w: -1, ln2b: -1, fcW: -1, fcB: -1, fcProjW: -1, fcProjB: -1,
  };
  if (ffn) {
    b.ln2w = add(p + "ln_2.weight", [C], "one");
    b.ln2b = add(p + "ln_2.bias", [C], "zero");
    b.fcW = add(p + "mlp.c_fc.weight", [4 * C, C], "normal");
    b.fcB = add(p + "mlp.c_fc.bias", [4 * C], "zero");
    b.fcProjW = add(p + "mlp.c_proj.weight", [C, 4 * C], "normal");
    b.fcProjB = add(p + "mlp.c_proj.bias", [C], "zero");
  }
  return b;
}

/** Block pointers relative to 0 -> absolute at `base`; absent (-1) tensors become 0, the kernels' "none". */
export function shiftBlockParams(b: BlockParams, base: number): BlockParams {
  const shift = (x: number) => (x < 0 ? 0 : x + base);
  return {
    ln1w: shift(b.ln1w), ln1b: shift(b.ln1b),
    attnW: shift(b.attnW), attnB: shift(b.attnB),
    projW: shift(b.projW), projB: shift(b.projB),
    ln2w: shift(b.ln2w), ln2b: shift(b.ln2b),
    fcW: shift(b.fcW), fcB: shift(b.fcB),
    fcProjW: shift(b.fcProjW), fcProjB: shift(b.fcProjB),
  };
}

/**
 * What one batch shard keeps between forward and backward. Pre-softmax scores, the attention
 * projection output and the MLP projection output are not stored (the residual sums are), so a
 * layer costs B·T·(6C + 2 + NH·T) floats, plus B·T·(10C + 2) with an FFN (16·96 + 4 + 180 = 1720
 * floats per token at C = 96, NH = 3, T = 60).
 */
export interface LayerActs {
  /** Residual stream entering the block (the previous block's output, or the embedding). */
  resIn: number;
  ln1: number; ln1Mean: number; ln1Rstd: number;
  qkv: number; atty: number; att: number;
  /** Residual after attention. */
  res2: number;
  ln2: number; ln2Mean: number; ln2Rstd: number;
  fch: number; fchGelu: number;
  /** Residual leaving the block (== res2 when the block has no FFN). */
  resOut: number;
}

export interface ActPtrs {
  encoded: number;
  layers: LayerActs[];
  lnf: number; lnfMean: number; lnfRstd: number;
}

/** Gradient-of-activation buffers, reused by every layer. */
export interface GradScratch {
  dres: number;
  dln: number;
  dqkv: number;
  datty: number;
  datt: number;
  dfch: number;
  dfchGelu: number;
}

/** Activations for up to `B` sequences of nPositions, from `take`. */
function actsLayout(c: ResolvedConfig, B: number, take: (n: number) => number): ActPtrs {
  const BT = B * c.nPositions;
  const C = c.nEmbd;
  const encoded = take(BT * C);
  const layers: LayerActs[] = [];
  let resIn = encoded;
  for (let l = 0; l < c.nLayer; l++) {
    const ffn = c.blocks[l]!.ffn;
    const a: LayerActs = {
      resIn,
      ln1: take(BT * C), ln1Mean: take(BT), ln1Rstd: take(BT),
      qkv: take(BT * 3 * C), atty: take(BT * C), att: take(B * c.nHead * c.nPositions * c.nPositions),
      res2: take(BT * C),
      ln2: 0, ln2Mean: 0, ln2Rstd: 0, fch: 0, fchGelu: 0, resOut: 0,
    };
    if (ffn) {
      a.ln2 = take(BT * C); a.ln2Mean = take(BT); a.ln2Rstd = take(BT);
      a.fch = take(BT * 4 * C); a.fchGelu = take(BT * 4 * C);
      a.resOut = take(BT * C);
    } else {
      a.resOut = a.res2;
    }
    layers.push(a);
    resIn = a.resOut;
  }
  return { encoded, layers, lnf: take(BT * C), lnfMean: take(BT), lnfRstd: take(BT) };
}

/** Gradient-of-activation buffers for up to `B` sequences of nPositions, from `take`. */
function gradScratchLayout(c: ResolvedConfig, B: number, take: (n: number) => number): GradScratch {
  const BT = B * c.nPositions;
  const C = c.nEmbd;
  const anyFfn = c.blocks.some((b) => b.ffn);
  return {
    dres: take(BT * C),
    dln: take(BT * C),
    dqkv: take(BT * 3 * C),
    datty: take(BT * C),
    datt: take(B * c.nHead * c.nPositions * c.nPositions),
    dfch: anyFfn ? take(BT * 4 * C) : 0,
    dfchGelu: anyFfn ? take(BT * 4 * C) : 0,
  };
}

/** An aligned bump allocator starting at `base`. */
function bump(base: number): { take: (n: number) => number; end: () => number } {
  let off = base;
  return {
    take(n) {
      const at = off;
      off += align(n);
      return at;
    },
    end: () => off,
  };
}

/** Activations and gradient scratch for up to `B` sequences of nPositions on one thread (the LM's layout). */
export function shardLayout(c: ResolvedConfig, B: number, base: number): { acts: ActPtrs; scratch: GradScratch; end: number } {
  const heap = bump(base);
  const acts = actsLayout(c, B, heap.take);
  const scratch = gradScratchLayout(c, B, heap.take);
  return { acts, scratch, end: heap.end() };
}

/**
 * The activations of rows [r, ...) of a batch of sequences of length T laid out by actsLayout
 * (each buffer is [rows, T, ...] with the actual T, so row r starts r·T tokens in).
 */
export function actsAtRows(a: ActPtrs, c: ResolvedConfig, r: number, T: number): ActPtrs {
  const tok = r * T;
  const C = c.nEmbd;
  const at = (p: number, perToken: number) => (p === 0 ? 0 : p + tok * perToken);
  return {
    encoded: at(a.encoded, C),
    layers: a.layers.map((l) => ({
      resIn: at(l.resIn, C),
      ln1: at(l.ln1, C), ln1Mean: at(l.ln1Mean, 1), ln1Rstd: at(l.ln1Rstd, 1),
      qkv: at(l.qkv, 3 * C), atty: at(l.atty, C), att: at(l.att, c.nHead * T),
      res2: at(l.res2, C),
      ln2: at(l.ln2, C), ln2Mean: at(l.ln2Mean, 1), ln2Rstd: at(l.ln2Rstd, 1),
      fch: at(l.fch, 4 * C), fchGelu: at(l.fchGelu, 4 * C),
      resOut: at(l.resOut, C),
    })),
    lnf: at(a.lnf, C), lnfMean: at(a.lnfMean, 1), lnfRstd: at(a.lnfRstd, 1),
  };
}

/**
 * Every batch is cut into min(B, MICRO_SHARDS) micro-shards of fixed rows (microRows), whatever the
 * thread count: each micro-shard's parameter gradient goes to its own buffer and the buffers are summed
 * in micro-shard order, so the summation order, and with it every bit of the result, depends only on
 * the batch size. 12 divides evenly among 1, 2, 3, 4 or 6 workers; it also caps the useful workers at 12.
 */
export const MICRO_SHARDS = 12;

export function microShards(B: number): number {
  return Math.min(B, MICRO_SHARDS);
}

/** Rows [lo, hi) of micro-shard m of a batch of B (contiguous, as even as possible). */
export function microRows(B: number, m: number): [number, number] {
  return evenSplit(B, microShards(B), m);
}

/** Micro-shards [lo, hi) that worker w of W runs for a batch of B. */
export function workerMicroShards(B: number, W: number, w: number): [number, number] {
  return evenSplit(microShards(B), W, w);
}

function evenSplit(n: number, parts: number, i: number): [number, number] {
  return [Math.floor((i * n) / parts), Math.floor(((i + 1) * n) / parts)];
}

/**
 * Heap plan: W workers (threads) sharing parameters, Adam state, I/O and the activations of the
 * whole batch; each worker has its own gradient scratch and kernel scratch, sized for one micro-shard.
 */
export interface HeapPlan {
  params: ParamLayout;
  /** Shared parameter-shaped buffers. `grads` holds the reduced gradient (and is micro-shard 0's own buffer). */
  paramsPtr: number; gradsPtr: number; mPtr: number; vPtr: number;
  /** Shared I/O: input[maxBatch, nPositions, inputDim], output and dOutput [maxBatch, nPositions, outputDim]. */
  inputPtr: number; outputPtr: number; doutPtr: number;
  /** Activations of maxBatch sequences; a micro-shard uses actsAtRows(acts, c, its first row, T). */
  acts: ActPtrs;
  /**
   * Parameter-gradient buffer of each micro-shard, [0] = gradsPtr. With one worker, micro-shards run
   * one after the other and every m >= 1 shares one buffer that is added into gradsPtr right away.
   */
  microGrads: number[];
  workers: WorkerPlan[];
  /** Total floats of the heap. */
  totalFloats: number;
}

export interface WorkerPlan {
  scratch: GradScratch;
  /** Kernel scratch (for the WASM kernels' packing buffers), 0 when none is needed. */
  kernelScratchPtr: number;
  kernelScratchFloats: number;
}

export function planHeap(
  c: ResolvedConfig,
  opts: { maxBatch: number; workers: number; baseFloats: number; kernelScratchFloats: number },
): HeapPlan {
  const params = paramLayout(c);
  const heap = bump(align(Math.max(opts.baseFloats, ALIGN)));
  const take = heap.take;
  const paramsPtr = take(params.span);
  const gradsPtr = take(params.span);
  const mPtr = take(params.span);
  const vPtr = take(params.span);
  const io = opts.maxBatch * c.nPositions;
  const inputPtr = take(io * c.inputDim);
  const outputPtr = take(io * c.outputDim);
  const doutPtr = take(io * c.outputDim);
  const M = microShards(opts.maxBatch);
  const microGrads = [gradsPtr];
  if (M > 1) {
    const own = opts.workers > 1 ? M - 1 : 1;
    for (let i = 0; i < own; i++) microGrads.push(take(params.span));
    while (microGrads.length < M) microGrads.push(microGrads[1]!);
  }
  const acts = actsLayout(c, opts.maxBatch, take);
  // A batch B <= maxBatch has micro-shards of at most ceil(maxBatch / M) rows.
  const microMax = Math.ceil(opts.maxBatch / M);
  const workers: WorkerPlan[] = [];
  for (let w = 0; w < opts.workers; w++) {
    const ks = opts.kernelScratchFloats > 0 ? take(opts.kernelScratchFloats) : 0;
    workers.push({ scratch: gradScratchLayout(c, microMax, take), kernelScratchPtr: ks, kernelScratchFloats: opts.kernelScratchFloats });
  }
  return { params, paramsPtr, gradsPtr, mPtr, vPtr, inputPtr, outputPtr, doutPtr, acts, microGrads, workers, totalFloats: heap.end() };
}

/** Parameter range [lo, hi) that worker w of W reduces and updates (aligned, fixed -> deterministic). */
export function paramSlice(count: number, W: number, w: number): [number, number] {
  const per = align(Math.ceil(count / W));
  return [Math.min(count, w * per), Math.min(count, (w + 1) * per)];
}
