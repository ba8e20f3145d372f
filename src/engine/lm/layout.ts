import { UserError } from "../../util/errors.js";
import type { BlockConfig } from "../api.js";
import { LM_GELU_KINDS, type LmGelu } from "./gelu.js";
import { resolveConfig, type ResolvedConfig } from "../model/config.js";
import {
  ALIGN, align, blockParams, shardLayout, shiftBlockParams,
  type ActPtrs, type BlockParams, type GradScratch, type InitKind, type ParamSpec,
} from "../model/layout.js";

export interface LmConfig {
  vocabSize: number;
  nEmbd: number;
  nHead: number;
  nLayer: number;
  /** Context length: rows of wpe, the longest sequence forward and generation accept. */
  nPositions: number;
  /** As in ModelConfig; default softmax attention + FFN in every block. */
  blocks?: BlockConfig | BlockConfig[];
  /** The MLP's activation: "tanh" (default, GPT-2's tanh GELU) or "ggml-f16" (llama.cpp's table; see gelu.ts). */
  gelu?: LmGelu;
}

export type ResolvedLmConfig = Required<Omit<LmConfig, "blocks">> & { blocks: BlockConfig[] };

/**
 * Validates through the ICA model's resolveConfig (same field checks and messages) and returns the
 * block config both forms share. The ICA read-in/read-out widths are unused by the blocks; they are
 * set to vocabSize so the ResolvedConfig the block code sees is well-formed.
 */
export function resolveLmConfig(config: LmConfig): { lm: ResolvedLmConfig; blocks: ResolvedConfig } {
  const v = (config as { vocabSize?: unknown }).vocabSize;
  if (typeof v !== "number" || !Number.isSafeInteger(v) || v < 1) {
    throw new UserError(`invalid model config: vocabSize = ${String(v)}; expected an integer >= 1 (259 for the byte tokenizer)`);
  }
  const gelu = config.gelu ?? "tanh";
  if (!LM_GELU_KINDS.includes(gelu)) {
    throw new UserError(`invalid model config: gelu = ${JSON.stringify(gelu)}; expected one of ${LM_GELU_KINDS.map((g) => `"${g}"`).join(", ")}`);
  }
  const rc = resolveConfig({
    inputDim: v, outputDim: v, nEmbd: config.nEmbd, nHead: config.nHead, nLayer: config.nLayer,
    nPositions: config.nPositions, ...(config.blocks === undefined ? {} : { blocks: config.blocks }),
  });
  const lm: ResolvedLmConfig = {
    vocabSize: v, nEmbd: rc.nEmbd, nHead: rc.nHead, nLayer: rc.nLayer, nPositions: rc.nPositions, blocks: rc.blocks, gelu,
  };
  return { lm, blocks: rc };
}

/** Absolute parameter pointers. The LM head has no tensor of its own: it is wte. */
export interface LmParamPtrs {
  wte: number;
  wpe: number;
  blocks: BlockParams[];
  lnfW: number;
  lnfB: number;
}

export interface LmParamLayout {
  specs: ParamSpec[];
  count: number;
  span: number;
  ptrsAt(base: number): LmParamPtrs;
}

/** HF GPT-2 order and names: wte, wpe, h.{l}.*, ln_f.*. */
export function lmParamLayout(c: ResolvedLmConfig): LmParamLayout {
  const specs: ParamSpec[] = [];
  let off = 0;
  const add = (name: string, shape: number[], init: InitKind): number => {
    const size = shape.reduce((a, b) => a * b, 1);
    specs.push({ name, shape, offset: off, size, init });
    off += size;
    return off - size;
  };
  const C = c.nEmbd;
  const wte = add("wte", [c.vocabSize, C], "normal");
  const wpe = add("wpe", [c.nPositions, C], "normal");
  const blocks: BlockParams[] = [];
  for (let l = 0; l < c.nLayer; l++) blocks.push(blockParams(add, `h.${l}.`, C, c.blocks[l]!.ffn));
  const lnfW = add("ln_f.weight", [C], "one");
  const lnfB = add("ln_f.bias", [C], "zero");
  return {
    specs,
    count: off,
    span: align(off),
    ptrsAt: (base) => ({
      wte: wte + base, wpe: wpe + base, blocks: blocks.map((b) => shiftBlockParams(b, base)), lnfW: lnfW + base, lnfB: lnfB + base,
    }),
  };
}

/**
 * One heap: parameters, gradients, Adam m and v (one layout each), logits and dLoss/dlogits
 * [maxBatch, nPositions, vocabSize], the kernels' scratch, then the ICA model's shard layout
 * (activations + gradient scratch) for maxBatch sequences. Generation reuses row 0 of that shard:
 * each layer's qkv activation [nPositions, 3C] is the KV cache.
 */
export interface LmHeapPlan {
  params: LmParamLayout;
  paramsPtr: number; gradsPtr: number; mPtr: number; vPtr: number;
  logitsPtr: number; dlogitsPtr: number;
  kernelScratchPtr: number; kernelScratchFloats: number;
  acts: ActPtrs;
  scratch: GradScratch;
  totalFloats: number;
}

export function planLmHeap(
  c: ResolvedLmConfig, rc: ResolvedConfig, opts: { maxBatch: number; baseFloats: number; kernelScratchFloats: number },
): LmHeapPlan {
  const params = lmParamLayout(c);
  let off = align(Math.max(opts.baseFloats, ALIGN));
  const take = (n: number): number => {
    off += align(n);
    return off - align(n);
  };
  // Parameters, gradients, Adam m and v share one layout, so the optimizer runs over flat ranges.
  const [paramsPtr, gradsPtr, mPtr, vPtr] = [0, 1, 2, 3].map(() => take(params.span)) as [number, number, number, number];
  const logitsPtr = take(opts.maxBatch * c.nPositions * c.vocabSize);
  const dlogitsPtr = take(opts.maxBatch * c.nPositions * c.vocabSize);
  const kernelScratchPtr = opts.kernelScratchFloats > 0 ? take(opts.kernelScratchFloats) : 0;
  const shard = shardLayout(rc, opts.maxBatch, off);
  return {
    params, paramsPtr, gradsPtr, mPtr, vPtr, logitsPtr, dlogitsPtr,
    kernelScratchPtr, kernelScratchFloats: opts.kernelScratchFloats,
    acts: shard.acts, scratch: shard.scratch, totalFloats: shard.end,
  };
}
