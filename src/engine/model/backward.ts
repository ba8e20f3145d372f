import type { Kernels } from "../kernels/types.js";
import type { ResolvedConfig } from "./config.js";
import type { ActPtrs, GradScratch, ParamPtrs } from "./layout.js";

/**
 * Backward pass of one batch shard (llm.c gpt2_backward), ACCUMULATING into the gradient buffers G
 * (the caller zeroes them). One residual-gradient buffer `dres` flows down through the blocks: the
 * residual connections are identities, so each block's LayerNorm backward adds into it in place.
 * The gradient-of-activation scratch buffers are written, not accumulated (the kernels' `overwrite`
 * flag: the bits of accumulating into zeros, without zeroing them first), except dres.
 * Gradients are kept out of the subnormal range (see Kernels.flushTiny): LayerNorm and GELU backward
 * flush what they read and write, and the matmul outputs that feed attention are flushed here.
 * Without that, a trained model's backward pass ran 20-40x slower in WebAssembly.
 */
export function backwardPass(
  k: Kernels, c: ResolvedConfig, P: ParamPtrs, G: ParamPtrs, acts: ActPtrs, s: GradScratch,
  input: number, dout: number, B: number, T: number,
): void {
  const C = c.nEmbd;
  const BT = B * T;
  const last = c.nLayer > 0 ? acts.layers[c.nLayer - 1]!.resOut : acts.encoded;

  k.matmulBackward(s.dln, G.readOutW, G.readOutB, dout, acts.lnf, P.readOutW, BT, C, c.outputDim, 1);
  k.fill(s.dres, 0, BT * C);
  k.layernormBackward(s.dres, G.lnfW, G.lnfB, s.dln, last, P.lnfW, acts.lnfMean, acts.lnfRstd, BT, C);

  blocksBackward(k, c, P, G, acts, s, B, T);

  for (let b = 0; b < B; b++) k.accumulate(G.wpe, s.dres + b * T * C, T * C);
  k.matmulBackward(0, G.readInW, G.readInB, s.dres, input, P.readInW, BT, c.inputDim, C);
}

/**
 * Backward through the blocks, top to bottom: s.dres holds dLoss/d(last block's output) on entry
 * and dLoss/d(embedding) on exit.
 */
export function blocksBackward(
  k: Kernels, c: ResolvedConfig, P: ParamPtrs, G: ParamPtrs, acts: ActPtrs, s: GradScratch, B: number, T: number,
): void {
  const C = c.nEmbd;
  const BT = B * T;
  const NH = c.nHead;
  for (let l = c.nLayer - 1; l >= 0; l--) {
    const a = acts.layers[l]!;
    const p = P.blocks[l]!;
    const g = G.blocks[l]!;
    const blk = c.blocks[l]!;
    if (blk.ffn) {
      k.matmulBackward(s.dfchGelu, g.fcProjW, g.fcProjB, s.dres, a.fchGelu, p.fcProjW, BT, 4 * C, C, 1);
      k.geluBackward(s.dfch, a.fch, s.dfchGelu, BT * 4 * C, 1);
      k.matmulBackward(s.dln, g.fcW, g.fcB, s.dfch, a.ln2, p.fcW, BT, C, 4 * C, 1);
      k.layernormBackward(s.dres, g.ln2w, g.ln2b, s.dln, a.res2, p.ln2w, a.ln2Mean, a.ln2Rstd, BT, C);
    }
    k.matmulBackward(s.datty, g.projW, g.projB, s.dres, a.atty, p.projW, BT, C, C, 1);
    k.flushTiny(s.datty, BT * C);
    k.attentionBackward(s.dqkv, s.datt, s.datty, a.qkv, a.att, B, T, C, NH, blk.attention === "softmax" ? 1 : 0, 1);
    k.flushTiny(s.dqkv, BT * 3 * C);
    k.matmulBackward(s.dln, g.attnW, g.attnB, s.dqkv, a.ln1, p.attnW, BT, C, 3 * C, 1);
    k.layernormBackward(s.dres, g.ln1w, g.ln1b, s.dln, a.resIn, p.ln1w, a.ln1Mean, a.ln1Rstd, BT, C);
  }
}
