/**
 * The engine against a PyTorch reference fixture (test/engine-fixtures/make_fixture.py format: config,
 * inputs, params, pred, loss, grads; float64): runs the fixture's model and batch through the engine in
 * float32 with the lab's token layout and Plackett-Luce loss, and reports how far the predictions, the
 * loss and every gradient are from the reference. `selfcorrect lab verify-reference` prints this.
 */
import { readFileSync } from "node:fs";
import { z } from "zod";
import { UserError, parseOrThrow } from "../util/errors.js";
import { blockSchema, createModel, type BlockConfig, type KernelKind, type ModelConfig, type NamedTensor } from "../engine/index.js";
import { buildTokens, extractPredictions, scatterPredictionGrad } from "./task.js";
import { plLossICA } from "./losses.js";

const posInt = z.number().int().positive();
const numbers = z.array(z.number());

const fixtureSchema = z.object({
  config: z.object({
    dims: posInt,
    points: posInt.min(3, "points must be >= 3 (the loss trains positions 2..points-1)"),
    embd: posInt,
    heads: posInt,
    layers: posInt,
    batch: posInt,
    /** Optional extensions (make_fixture.py's model is softmax attention + FFN in every block, cosine score). */
    attention: z.enum(["softmax", "linear"]).optional(),
    ffn: z.boolean().optional(),
    blocks: z.array(blockSchema).optional(),
    score: z.enum(["cosine", "neg-sq"]).optional(),
  }),
  inputs: z.object({ xs: numbers, ys: numbers, rs: numbers }),
  params: z.record(z.string(), z.object({ shape: z.array(z.number().int().nonnegative()), data: numbers })),
  pred: numbers,
  loss: z.number(),
  grads: z.record(z.string(), numbers),
});

export type Fixture = z.infer<typeof fixtureSchema>;

export interface VerifyResult {
  loss: number;
  loss_ref: number;
  loss_rel_err: number;
  pred_max_abs_err: number;
  grad_max_rel_err: number;
  /** The parameter with the largest relative gradient error. */
  grad_worst_param: string;
  params: number;
  threads: number;
  kernels: KernelKind;
}

export const TOLERANCES = { loss_rel_err: 1e-5, grad_max_rel_err: 1e-4 } as const;

export function loadFixture(path: string): Fixture {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(path, "utf8"));
  } catch (e) {
    throw new UserError(`fixture ${path}: cannot read it as JSON (${(e as Error).message}); expected a fixture written by test/engine-fixtures/make_fixture.py`);
  }
  return parseOrThrow(fixtureSchema, raw, `fixture ${path}`);
}

/** The engine config a fixture describes (validated against the parameters it carries). */
export function fixtureModelConfig(f: Fixture): ModelConfig {
  const c = f.config;
  let blocks: BlockConfig[];
  if (c.blocks) blocks = c.blocks;
  else {
    blocks = Array.from({ length: c.layers }, (_, l) => ({
      attention: c.attention ?? "softmax",
      ffn: c.ffn ?? `h.${l}.mlp.c_fc.weight` in f.params,
    }));
  }
  return { inputDim: c.dims, outputDim: c.dims, nEmbd: c.embd, nHead: c.heads, nLayer: c.layers, nPositions: 3 * c.points, blocks };
}

function expectLength(what: string, got: number, want: number): void {
  if (got !== want) throw new UserError(`fixture ${what} has ${got} values; expected ${want} from config`);
}

export async function verifyReference(f: Fixture, opts: { threads?: number; kernels?: KernelKind } = {}): Promise<VerifyResult> {
  const { dims: d, points: n, batch: B } = f.config;
  const T = 3 * n;
  expectLength("inputs.xs", f.inputs.xs.length, B * n * d);
  expectLength("inputs.ys", f.inputs.ys.length, B * n * d);
  expectLength("inputs.rs", f.inputs.rs.length, B * n);
  expectLength("pred", f.pred.length, B * n * d);
  const config = fixtureModelConfig(f);
  const model = await createModel(config, { seed: 0, maxBatch: B, threads: opts.threads ?? 1, kernels: opts.kernels ?? "wasm" });
  try {
    const own = model.getParams();
    const params = new Map<string, NamedTensor>();
    for (const [name, t] of own) {
      const p = f.params[name];
      if (!p) throw new UserError(`fixture params: ${name} is missing; expected every parameter of the config (${own.size} tensors)`);
      if (p.shape.join(",") !== t.shape.join(",") || p.data.length !== t.data.length) {
        throw new UserError(`fixture params.${name}: shape [${p.shape}] with ${p.data.length} values; expected [${t.shape}]`);
      }
      const g = f.grads[name];
      if (!g) throw new UserError(`fixture grads: ${name} is missing; expected a gradient for every parameter`);
      expectLength(`grads.${name}`, g.length, t.data.length);
      params.set(name, { shape: t.shape, data: Float32Array.from(p.data) });
    }
    for (const name of Object.keys(f.params)) {
      if (!own.has(name)) throw new UserError(`fixture params: unexpected tensor ${name}; expected only the parameters of the config`);
    }
    model.setParams(params);

    const xs = Float32Array.from(f.inputs.xs);
    const ys = Float64Array.from(f.inputs.ys);
    const rs = Float64Array.from(f.inputs.rs);
    const tokens = buildTokens({ B, n, d, xs, ys: Float32Array.from(ys), rs: Float32Array.from(rs) });
    const out = await model.forward(tokens, B, T);
    const pred = extractPredictions(out, B, n, d);
    const { loss, grad } = plLossICA(pred, ys, rs, B, n, d, { score: f.config.score ?? "cosine" });
    await model.backward(scatterPredictionGrad(grad, B, n, d));

    let predErr = 0;
    for (let i = 0; i < pred.length; i++) predErr = Math.max(predErr, Math.abs(pred[i]! - f.pred[i]!));
    let gradErr = 0;
    let worst = "";
    for (const [name, g] of model.getGrads()) {
      const ref = f.grads[name]!; // every parameter's gradient was checked above
      let maxDiff = 0;
      let maxRef = 0;
      for (let i = 0; i < ref.length; i++) {
        maxDiff = Math.max(maxDiff, Math.abs(g.data[i]! - ref[i]!));
        maxRef = Math.max(maxRef, Math.abs(ref[i]!));
      }
      const rel = maxDiff / (maxRef + 1e-12);
      if (rel >= gradErr) {
        gradErr = rel;
        worst = name;
      }
    }
    return {
      loss,
      loss_ref: f.loss,
      loss_rel_err: Math.abs(loss - f.loss) / Math.max(Math.abs(f.loss), 1e-300),
      pred_max_abs_err: predErr,
      grad_max_rel_err: gradErr,
      grad_worst_param: worst,
      params: model.paramCount,
      threads: model.threads,
      kernels: opts.kernels ?? "wasm",
    };
  } finally {
    await model.dispose();
  }
}

export function withinTolerance(r: VerifyResult): boolean {
  return r.loss_rel_err <= TOLERANCES.loss_rel_err && r.grad_max_rel_err <= TOLERANCES.grad_max_rel_err && Number.isFinite(r.pred_max_abs_err);
}
