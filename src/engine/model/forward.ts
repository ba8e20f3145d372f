import type { Kernels } from "../kernels/types.js";
import type { ResolvedConfig } from "./config.js";
import type { ActPtrs, BlockParams, LayerActs, ParamPtrs } from "./layout.js";

/**
 * Forward pass of one batch shard (llm.c gpt2_forward): input[B, T, inputDim] -> output[B, T, outputDim],
 * keeping what backward needs in `acts`.
 */
export function forwardPass(
  k: Kernels, c: ResolvedConfig, P: ParamPtrs, acts: ActPtrs,
  input: number, output: number, B: number, T: number,
): void {
  const C = c.nEmbd;
  const BT = B * T;
  k.matmulForward(acts.encoded, input, P.readInW, P.readInB, BT, c.inputDim, C);
  for (let b = 0; b < B; b++) {
    const row = acts.encoded + b * T * C;
    k.add(row, row, P.wpe, T * C);
  }
  blocksForward(k, c, P, acts, B, T);
  const last = c.nLayer > 0 ? acts.layers[c.nLayer - 1]!.resOut : acts.encoded;
  k.layernormForward(acts.lnf, acts.lnfMean, acts.lnfRstd, last, P.lnfW, P.lnfB, BT, C);
  k.matmulForward(output, acts.lnf, P.readOutW, P.readOutB, BT, C, c.outputDim);
}

/** The transformer blocks over acts.encoded (already embedded), as in forwardPass. */
export function blocksForward(k: Kernels, c: ResolvedConfig, P: ParamPtrs, acts: ActPtrs, B: number, T: number): void {
  const C = c.nEmbd;
  for (let l = 0; l < c.nLayer; l++) {
    const a = acts.layers[l]!;
    const soft = c.blocks[l]!.attention === "softmax" ? 1 : 0;
    blockForward(k, c, l, P.blocks[l]!, a, B * T, () => k.attentionForward(a.atty, a.att, a.qkv, B, T, C, c.nHead, soft));
  }
}

/**
 * Block l over BT rows. `attend` fills a.atty from a.qkv: the full causal kernel in training, a
 * single query against the cached keys and values when the language model decodes one token.
 */
export function blockForward(k: Kernels, c: ResolvedConfig, l: number, p: BlockParams, a: LayerActs, BT: number, attend: () => void): void {
  const C = c.nEmbd;
  k.layernormForward(a.ln1, a.ln1Mean, a.ln1Rstd, a.resIn, p.ln1w, p.ln1b, BT, C);
  k.matmulForward(a.qkv, a.ln1, p.attnW, p.attnB, BT, C, 3 * C);
  attend();
  // res2 = resIn + c_proj(atty): the projection is written straight into the residual buffer.
  k.matmulForward(a.res2, a.atty, p.projW, p.projB, BT, C, C);
  k.add(a.res2, a.res2, a.resIn, BT * C);
  if (c.blocks[l]!.ffn) {
    k.layernormForward(a.ln2, a.ln2Mean, a.ln2Rstd, a.res2, p.ln2w, p.ln2b, BT, C);
    k.matmulForward(a.fch, a.ln2, p.fcW, p.fcB, BT, C, 4 * C);
    k.geluForward(a.fchGelu, a.fch, BT * 4 * C);
    k.matmulForward(a.resOut, a.fchGelu, p.fcProjW, p.fcProjB, BT, 4 * C, C);
    k.add(a.resOut, a.resOut, a.res2, BT * C);
  }
}
