import { availableParallelism } from "node:os";
import { readFileSync } from "node:fs";
import { z } from "zod";
import type { CreateModelOptions, ModelConfig } from "../api.js";
import { UserError, formatZodError } from "../../util/errors.js";
import { writeJsonAtomic } from "../../util/fs.js";
import { readSafetensors, writeSafetensors, type TensorData } from "../safetensors.js";
import { blockSchema, resolveConfig, sameConfig } from "./config.js";
import { prepareBackend, type KernelKind } from "./backend.js";
import { PoolExecutor } from "./pool.js";
import { CHECKPOINT_FORMAT, buildModel, createModelWith, type BuildOptions, type CheckpointFiles, type Model } from "./model-core.js";

export interface EngineOptions {
  threads?: number;
  maxBatch: number;
  /** Kernel implementation; "wasm" (default) or the plain-JS "reference" (slow; for tests). */
  kernels?: KernelKind;
}

/** Node's build options: the default thread count, the worker pool, dist/wasm and atomic files. */
function nodeBuild(opts: EngineOptions): BuildOptions {
  return {
    maxBatch: opts.maxBatch,
    threads: opts.threads ?? availableParallelism(),
    backend: (shared, dims) => prepareBackend(opts.kernels ?? "wasm", shared, dims),
    pool: PoolExecutor.create,
    writer: writeCheckpoint,
  };
}

function writeCheckpoint(path: string, files: CheckpointFiles): void {
  writeSafetensors(path, files.tensors, files.metadata);
  writeJsonAtomic(`${path}.json`, files.json);
}

export type EngineModel = Model;

/** Builds a model with GPT-2 init from `seed`. */
export async function createModel(config: ModelConfig, opts: CreateModelOptions & { kernels?: KernelKind }): Promise<EngineModel> {
  return createModelWith(config, opts.seed, nodeBuild(opts));
}

const checkpointJsonSchema = z.object({
  format: z.literal(CHECKPOINT_FORMAT),
  step: z.number().int().nonnegative(),
  config: z.object({
    inputDim: z.number(), outputDim: z.number(), nEmbd: z.number(), nHead: z.number(),
    nLayer: z.number(), nPositions: z.number(), blocks: z.array(blockSchema),
  }),
  extra: z.record(z.string(), z.unknown()).default({}),
});

/** Reads `<path>` and `<path>.json` written by save(); resumes bit-exactly (parameters, Adam moments, step). */
export async function loadModel(
  path: string,
  opts: { threads?: number; maxBatch: number; expectConfig?: ModelConfig; kernels?: KernelKind },
): Promise<{ model: EngineModel; extra: Record<string, unknown> }> {
  let raw: unknown;
  try {
    raw = JSON.parse(readFileSync(`${path}.json`, "utf8"));
  } catch (e) {
    throw new UserError(`checkpoint ${path}.json: cannot read the checkpoint config (${(e as Error).message}); expected the JSON file written next to the checkpoint`);
  }
  const r = checkpointJsonSchema.safeParse(raw);
  if (!r.success) throw new UserError(formatZodError(r.error, `checkpoint config ${path}.json`));
  const meta = r.data;
  const c = resolveConfig(meta.config);
  if (opts.expectConfig) {
    const want = resolveConfig(opts.expectConfig);
    const diff = sameConfig(c, want);
    if (diff) throw new UserError(`checkpoint ${path} was written for a different model config: ${diff}`);
  }
  const file = readSafetensors(path);
  if (file.metadata.format !== CHECKPOINT_FORMAT) {
    throw new UserError(`checkpoint ${path}: __metadata__.format is ${JSON.stringify(file.metadata.format)}; expected "${CHECKPOINT_FORMAT}"`);
  }
  if (file.metadata.step !== String(meta.step)) {
    throw new UserError(`checkpoint ${path}: step ${file.metadata.step} in the tensors file does not match step ${meta.step} in ${path}.json; expected both from the same save`);
  }
  const model = await buildModel(c, nodeBuild(opts), meta.step);
  try {
    const params = new Map<string, TensorData>();
    const m = new Map<string, TensorData>();
    const v = new Map<string, TensorData>();
    const expected = new Set<string>();
    for (const s of model.plan.params.specs) {
      for (const [prefix, into] of [["", params], ["optimizer.m.", m], ["optimizer.v.", v]] as const) {
        const name = prefix + s.name;
        expected.add(name);
        const t = file.tensors.get(name);
        if (!t) throw new UserError(`checkpoint ${path}: tensor ${name} is missing; expected every parameter and its Adam moments`);
        if (t.dtype !== "F32") throw new UserError(`checkpoint ${path}: tensor ${name} has dtype ${t.dtype}; expected F32`);
        if (t.shape.join(",") !== s.shape.join(",")) {
          throw new UserError(`checkpoint ${path}: tensor ${name} has shape [${t.shape.join(", ")}]; expected [${s.shape.join(", ")}] for this config`);
        }
        for (let i = 0; i < t.data.length; i++) {
          if (!Number.isFinite(t.data[i]!)) throw new UserError(`checkpoint ${path}: tensor ${name} holds a non-finite value at index ${i}; expected finite numbers`);
        }
        into.set(s.name, t);
      }
    }
    for (const name of file.tensors.keys()) {
      if (!expected.has(name)) throw new UserError(`checkpoint ${path}: unexpected tensor ${name}; expected only this config's parameters and Adam moments`);
    }
    model.restoreState(params, m, v, meta.step);
  } catch (e) {
    await model.dispose();
    throw e;
  }
  return { model, extra: meta.extra };
}
