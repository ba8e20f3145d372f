import { z } from "zod";
import { UserError, formatZodError } from "../../util/errors.js";
import type { AdamConfig, BlockConfig, ModelConfig } from "../api.js";

export type ResolvedConfig = Required<Omit<ModelConfig, "blocks">> & { blocks: BlockConfig[] };

const positiveInt = (what: string) =>
  z.number({ error: `${what} must be a number` }).int(`${what} must be an integer`).positive(`${what} must be >= 1`);

/** One block's kind, as in a ModelConfig, a checkpoint's config or a reference fixture. */
export const blockSchema = z.object({
  attention: z.enum(["softmax", "linear"]),
  ffn: z.boolean(),
});

const configSchema = z.object({
  inputDim: positiveInt("inputDim"),
  outputDim: positiveInt("outputDim"),
  nEmbd: positiveInt("nEmbd"),
  nHead: positiveInt("nHead"),
  nLayer: positiveInt("nLayer"),
  nPositions: positiveInt("nPositions"),
  blocks: z.union([blockSchema, z.array(blockSchema)]).optional(),
});

/** Validates a model config and expands `blocks` to one entry per layer. Throws UserError naming the field. */
export function resolveConfig(config: ModelConfig): ResolvedConfig {
  const r = configSchema.safeParse(config);
  if (!r.success) throw new UserError(formatZodError(r.error, "model config"));
  const c = r.data;
  if (c.nEmbd % c.nHead !== 0) {
    const divisors = [];
    for (let h = 1; h <= c.nEmbd; h++) if (c.nEmbd % h === 0) divisors.push(h);
    throw new UserError(
      `invalid model config: nHead = ${c.nHead} does not divide nEmbd = ${c.nEmbd}; expected nHead to be one of ${divisors.join(", ")}`,
    );
  }
  let blocks: BlockConfig[];
  if (c.blocks === undefined) blocks = Array.from({ length: c.nLayer }, () => ({ attention: "softmax", ffn: true }));
  else if (Array.isArray(c.blocks)) {
    if (c.blocks.length !== c.nLayer) {
      throw new UserError(
        `invalid model config: blocks has ${c.blocks.length} entries; expected one block config or exactly nLayer = ${c.nLayer} entries`,
      );
    }
    blocks = c.blocks.map((b) => ({ attention: b.attention, ffn: b.ffn }));
  } else {
    const b = c.blocks;
    blocks = Array.from({ length: c.nLayer }, () => ({ attention: b.attention, ffn: b.ffn }));
  }
  return {
    inputDim: c.inputDim,
    outputDim: c.outputDim,
    nEmbd: c.nEmbd,
    nHead: c.nHead,
    nLayer: c.nLayer,
    nPositions: c.nPositions,
    blocks,
  };
}

export interface ResolvedAdam {
  lr: number;
  beta1: number;
  beta2: number;
  eps: number;
}

/** PyTorch defaults; every field must be finite (and in range), else a UserError naming it. */
export function resolveAdam(opt: AdamConfig): ResolvedAdam {
  const r: ResolvedAdam = { lr: opt.lr, beta1: opt.beta1 ?? 0.9, beta2: opt.beta2 ?? 0.999, eps: opt.eps ?? 1e-8 };
  if (typeof r.lr !== "number" || !Number.isFinite(r.lr) || r.lr < 0) {
    throw new UserError(`invalid optimizer config: lr = ${String(opt.lr)}; expected a finite number >= 0 (e.g. 1e-4)`);
  }
  for (const k of ["beta1", "beta2"] as const) {
    if (!Number.isFinite(r[k]) || r[k] < 0 || r[k] >= 1) {
      throw new UserError(`invalid optimizer config: ${k} = ${String(r[k])}; expected a finite number in [0, 1)`);
    }
  }
  if (!Number.isFinite(r.eps) || r.eps <= 0) {
    throw new UserError(`invalid optimizer config: eps = ${String(r.eps)}; expected a finite number > 0 (e.g. 1e-8)`);
  }
  return r;
}

export function sameConfig(a: ResolvedConfig, b: ResolvedConfig): string | null {
  for (const k of ["inputDim", "outputDim", "nEmbd", "nHead", "nLayer", "nPositions"] as const) {
    if (a[k] !== b[k]) return `${k}: checkpoint has ${a[k]}, expected ${b[k]}`;
  }
  for (let l = 0; l < a.blocks.length; l++) {
    const x = a.blocks[l]!;
    const y = b.blocks[l]!;
    if (x.attention !== y.attention) return `blocks[${l}].attention: checkpoint has "${x.attention}", expected "${y.attention}"`;
    if (x.ffn !== y.ffn) return `blocks[${l}].ffn: checkpoint has ${x.ffn}, expected ${y.ffn}`;
  }
  return null;
}
