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

/** Allocates the activations and gradient scratch of one shard of up to `B` sequences of nPositions. */
export function shardLayout(c: ResolvedConfig, B: number, base: number): { acts: ActPtrs; scratch: GradScratch; end: number } {
  const T = c.nPositions;
  const C = c.nEmbd;
  const BT = B * T;
  const att = B * c.nHead * T * T;
  let off = base;
  const take = (n: number): number => {
    const at = off;
    off += align(n);
    return at;
  };
  const encoded = take(BT * C);
  const layers: LayerActs[] = [];
  let resIn = encoded;
  for (let l = 0; l < c.nLayer; l++) {
    const ffn = c.blocks[l]!.ffn;
    const a: LayerActs = {
      resIn,
      ln1: take(BT * C), ln1Mean: take(BT), ln1Rstd: take(BT),
      qkv: take(BT * 3 * C), atty: take(BT * C), att: take(att),
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
  const acts: ActPtrs = { encoded, layers, lnf: take(BT * C), lnfMean: take(BT), lnfRstd: take(BT) };
  const anyFfn = c.blocks.some((b) => b.ffn);
  const scratch: GradScratch = {
    dres: take(BT * C),
    dln: take(BT * C),
    dqkv: take(BT * 3 * C),
    datty: take(BT * C),
    datt: take(att),
    dfch: anyFfn ? take(BT * 4 * C) : 0,
    dfchGelu: anyFfn ? take(BT * 4 * C) : 0,
  };
  return { acts, scratch, end: off };
}

/** Heap plan for W workers sharing parameters, with one shard each. */
export interface HeapPlan {
  params: ParamLayout;
  /** Shared parameter-shaped buffers. `grads` holds the reduced gradient (and is worker 0's own gradient buffer). */
  paramsPtr: number; gradsPtr: number; mPtr: number; vPtr: number;
  /** Shared I/O: input[maxBatch, nPositions, inputDim], output and dOutput [maxBatch, nPositions, outputDim]. */
  inputPtr: number; outputPtr: number; doutPtr: number;
  workers: WorkerPlan[];
  /** Total floats of the heap. */
  totalFloats: number;
}

export interface WorkerPlan {
  /** Gradient buffer of this worker (gradsPtr for worker 0). */
  gradsPtr: number;
  acts: ActPtrs;
  scratch: GradScratch;
  /** Kernel scratch (for the WASM kernels' packing buffers), 0 when none is needed. */
  kernelScratchPtr: number;
  kernelScratchFloats: number;
  /** Largest shard this worker can take. */
  maxRows: number;
}

export function planHeap(
  c: ResolvedConfig,
  opts: { maxBatch: number; workers: number; baseFloats: number; kernelScratchFloats: number },
): HeapPlan {
  const params = paramLayout(c);
  let off = align(Math.max(opts.baseFloats, ALIGN));
  const take = (n: number): number => {
    const at = off;
    off += align(n);
    return at;
  };
  const paramsPtr = take(params.span);
  const gradsPtr = take(params.span);
  const mPtr = take(params.span);
  const vPtr = take(params.span);
  const io = opts.maxBatch * c.nPositions;
  const inputPtr = take(io * c.inputDim);
  const outputPtr = take(io * c.outputDim);
  const doutPtr = take(io * c.outputDim);
  const maxRows = Math.ceil(opts.maxBatch / opts.workers);
  const workers: WorkerPlan[] = [];
  for (let w = 0; w < opts.workers; w++) {
    const g = w === 0 ? gradsPtr : take(params.span);
    const ks = opts.kernelScratchFloats > 0 ? take(opts.kernelScratchFloats) : 0;
    const shard = shardLayout(c, maxRows, off);
    off = shard.end;
    workers.push({ gradsPtr: g, acts: shard.acts, scratch: shard.scratch, kernelScratchPtr: ks, kernelScratchFloats: opts.kernelScratchFloats, maxRows });
  }
  return { params, paramsPtr, gradsPtr, mPtr, vPtr, inputPtr, outputPtr, doutPtr, workers, totalFloats: off };
}

/** Rows [lo, hi) of a batch of B handled by worker w of W (contiguous, as even as possible). */
export function shardRows(B: number, W: number, w: number): [number, number] {
  return [Math.floor((w * B) / W), Math.floor(((w + 1) * B) / W)];
}

/** Parameter range [lo, hi) that worker w of W reduces and updates (aligned, fixed -> deterministic). */
export function paramSlice(count: number, W: number, w: number): [number, number] {
  const per = align(Math.ceil(count / W));
  return [Math.min(count, w * per), Math.min(count, (w + 1) * per)];
}
