/**
 * The TypeScript half of the step-by-step parity check against PyTorch (replay.py is the other).
 * Builds the lab's model exactly as `lab train` does for a fresh run (engine init with the seed,
 * then applyInit), samples the first --steps batches from the trainer's own data stream, trains on
 * them with constant-lr Adam, and writes to --out:
 *
 *   init.safetensors     the initial parameters (engine names, weights [out, in])
 *   batches.safetensors  xs, ys, ystar [steps, B, n, d] and rs [steps, B, n]: what the loss needs, and y*
 *   grads0.safetensors   every parameter's gradient at step 0 (before the first Adam update)
 *   params1.safetensors  the parameters after the first Adam update
 *   losses.json          config and the training loss of every step
 *
 * --no-train writes init.safetensors and batches.safetensors only (distributions.py needs no more).
 *
 *   node dist/bench/torch-parity/dump.js --layers 10 --embd 96 --heads 3 --batch 64 --lr 1e-4 \
 *     --steps 150 --seed 0 --threads 1 --out runs/torch-parity/L10-s0
 *   env -u OPENBLAS_CORETYPE -u OPENBLAS_L2_SIZE /usr/bin/python3 bench/torch-parity/replay.py runs/torch-parity/L10-s0
 */
import { mkdirSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createModel, writeSafetensors, type NamedTensor } from "../../src/engine/index.js";
import { applyInit, icaLossAndBackward, modelConfigFor, trainingDataRng, type TrainSpec } from "../../src/lab/train.js";
import { sampleIcaBatch, type IcaBatch } from "../../src/lab/task.js";

const { values: a } = parseArgs({
  options: {
    layers: { type: "string", default: "10" },
    embd: { type: "string", default: "96" },
    heads: { type: "string", default: "3" },
    batch: { type: "string", default: "64" },
    lr: { type: "string", default: "1e-4" },
    steps: { type: "string", default: "150" },
    seed: { type: "string", default: "0" },
    init: { type: "string", default: "torch" },
    threads: { type: "string", default: "1" },
    out: { type: "string", default: "runs/torch-parity/run" },
    "no-train": { type: "boolean", default: false },
  },
});

const int = (name: string, v: string | undefined): number => {
  const x = Number(v);
  if (!Number.isSafeInteger(x) || x < 0) throw new Error(`--${name} must be a non-negative integer, got ${v}`);
  return x;
};
if (a.init !== "torch" && a.init !== "released") throw new Error(`--init must be torch or released, got ${a.init}`);
const spec: TrainSpec = {
  model: { nLayer: int("layers", a.layers), nEmbd: int("embd", a.embd), nHead: int("heads", a.heads), attention: "softmax", ffn: true },
  d: 5,
  n: 20,
  noise: "shared",
  score: "cosine",
  batch: int("batch", a.batch),
  lr: Number(a.lr),
  steps: int("steps", a.steps),
  warmupSteps: 0,
  decay: "none",
  seed: int("seed", a.seed),
  init: a.init,
};
const out = resolve(a.out!);
mkdirSync(out, { recursive: true });

const model = await createModel(modelConfigFor(spec), { seed: spec.seed, threads: int("threads", a.threads), maxBatch: spec.batch });
applyInit(model, spec.init, spec.seed);
writeSafetensors(join(out, "init.safetensors"), model.getParams());

const rng = trainingDataRng(spec.seed);
const { batch: B, n, d, steps } = spec;
const xs = new Float32Array(steps * B * n * d);
const ys = new Float32Array(steps * B * n * d);
const ystar = new Float32Array(steps * B * n * d);
const rs = new Float32Array(steps * B * n);
const losses: number[] = [];
const t0 = Date.now();
for (let step = 0; step < steps; step++) {
  const batch: IcaBatch = sampleIcaBatch(rng, B, n, d, { noise: spec.noise });
  xs.set(batch.xs, step * B * n * d);
  ys.set(batch.ys, step * B * n * d);
  ystar.set(batch.ystar, step * B * n * d);
  rs.set(batch.rs, step * B * n);
  if (a["no-train"]) continue;
  losses.push(await icaLossAndBackward(model, batch, spec.score, step));
  if (step === 0) writeSafetensors(join(out, "grads0.safetensors"), model.getGrads());
  await model.adamStep({ lr: spec.lr });
  if (step === 0) writeSafetensors(join(out, "params1.safetensors"), model.getParams());
  if ((step + 1) % 25 === 0) process.stderr.write(`step ${step + 1}/${steps} loss ${losses[step]!.toFixed(6)} ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
}
const data = new Map<string, NamedTensor>([
  ["xs", { shape: [steps, B, n, d], data: xs }],
  ["ys", { shape: [steps, B, n, d], data: ys }],
  ["rs", { shape: [steps, B, n], data: rs }],
  ["ystar", { shape: [steps, B, n, d], data: ystar }],
]);
writeSafetensors(join(out, "batches.safetensors"), data);
writeFileSync(join(out, "losses.json"), `${JSON.stringify({ spec, threads: model.threads, seconds: (Date.now() - t0) / 1000, losses })}\n`);
await model.dispose();
const trained = losses.length > 0 ? `, loss ${losses[0]!.toFixed(6)} -> ${losses[steps - 1]!.toFixed(6)}` : " (not trained)";
process.stdout.write(`wrote ${out}: ${steps} steps${trained}\n`);
