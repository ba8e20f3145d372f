/**
 * Engine training-step benchmark: full steps (sample an ICA batch, forward, Plackett-Luce loss,
 * backward, Adam) after warm-up, on the model of shared/bench/torch_reference.py.
 *
 *   npm run bench:engine -- --layers 5 --batch 64 --threads 2 --json
 *   npm run bench:engine -- --checkpoint runs/lab/quick/runs/<id>/model.safetensors --batch 64
 *
 * --checkpoint times a trained model (its own config; --layers/--embd/... are ignored): a trained
 * model's sharp attention is where float32 subnormals used to slow the backward pass 20x.
 *
 * Prints progress to stderr and one JSON object as the last line of stdout.
 */
import { availableParallelism } from "node:os";
import { parseArgs } from "node:util";
import { Rng } from "../src/util/rng.js";
import { createModel, loadModel } from "../src/engine/model/index.js";
import { buildTokens, extractPredictions, sampleIcaBatch, scatterPredictionGrad } from "../src/lab/task.js";
import { plLossICA } from "../src/lab/losses.js";
import type { Kernels } from "../src/engine/kernels/types.js";

const { values: a } = parseArgs({
  options: {
    layers: { type: "string", default: "20" },
    batch: { type: "string", default: "256" },
    heads: { type: "string", default: "3" },
    embd: { type: "string", default: "96" },
    dims: { type: "string", default: "5" },
    points: { type: "string", default: "20" },
    threads: { type: "string" },
    steps: { type: "string", default: "5" },
    warmup: { type: "string", default: "2" },
    lr: { type: "string", default: "1e-4" },
    kernels: { type: "string", default: "wasm" },
    attention: { type: "string", default: "softmax" },
    "no-ffn": { type: "boolean", default: false },
    profile: { type: "boolean", default: false },
    checkpoint: { type: "string" },
    json: { type: "boolean", default: false },
  },
});

function int(name: string, v: string | undefined): number {
  const x = Number(v);
  if (!Number.isInteger(x) || x < 1) {
    process.stderr.write(`error: --${name} = ${v}; expected an integer >= 1\n`);
    process.exit(2);
  }
  return x;
}

const B = int("batch", a.batch);
const threads = a.threads === undefined ? availableParallelism() : int("threads", a.threads);
const steps = int("steps", a.steps);
const warmup = Number(a.warmup);
const lr = Number(a.lr);
const kernels = a.kernels === "reference" ? "reference" : "wasm";

const model = a.checkpoint
  ? (await loadModel(a.checkpoint, { maxBatch: B, threads, kernels })).model
  : await createModel(
      {
        inputDim: int("dims", a.dims), outputDim: int("dims", a.dims), nEmbd: int("embd", a.embd), nHead: int("heads", a.heads),
        nLayer: int("layers", a.layers), nPositions: 3 * int("points", a.points),
        blocks: { attention: a.attention === "linear" ? "linear" : "softmax", ffn: !a["no-ffn"] },
      },
      { seed: 0, maxBatch: B, threads, kernels },
    );
const L = model.config.nLayer;
const NH = model.config.nHead;
const C = model.config.nEmbd;
const d = model.config.inputDim;
const T = model.config.nPositions;
const n = T / 3;
const rng = new Rng(1);

// --profile (threads = 1): milliseconds per step spent in each kernel, by matmul shape.
const kernelMs = new Map<string, number>();
if (a.profile) {
  model.instrumentKernels((k) => {
    const timed = { ...k } as Record<string, unknown>;
    for (const name of Object.keys(k) as (keyof Kernels)[]) {
      if (name === "heap") continue;
      const f = k[name] as (...args: number[]) => void;
      timed[name] = (...args: number[]) => {
        const t = performance.now();
        f(...args);
        const key =
          name === "matmulForward" ? `matmulForward C=${args[5]} OC=${args[6]}` :
          name === "matmulBackward" ? `matmulBackward C=${args[7]} OC=${args[8]}${args[0] ? "" : " (no dinp)"}` : name;
        kernelMs.set(key, (kernelMs.get(key) ?? 0) + performance.now() - t);
      };
    }
    return timed as unknown as Kernels;
  });
}

const phases = ["sample", "forward", "loss", "backward", "adam"] as const;
type Phase = (typeof phases)[number];
const times: Record<Phase, number[]> = { sample: [], forward: [], loss: [], backward: [], adam: [] };
const stepTimes: number[] = [];
let lastLoss = NaN;

async function step(record: boolean): Promise<void> {
  const t0 = performance.now();
  const batch = sampleIcaBatch(rng, B, n, d);
  const tokens = buildTokens(batch);
  const t1 = performance.now();
  const out = await model.forward(tokens, B, T);
  const t2 = performance.now();
  const pred = extractPredictions(out, B, n, d);
  const { loss, grad } = plLossICA(pred, batch.ys, batch.rs, B, n, d);
  const dOut = scatterPredictionGrad(grad, B, n, d);
  const t3 = performance.now();
  await model.backward(dOut);
  const t4 = performance.now();
  await model.adamStep({ lr });
  const t5 = performance.now();
  lastLoss = loss;
  if (!record) return;
  const ts = [t0, t1, t2, t3, t4, t5];
  phases.forEach((p, i) => {
    times[p].push((ts[i + 1]! - ts[i]!) / 1000);
  });
  stepTimes.push((t5 - t0) / 1000);
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;

let cpu0: NodeJS.CpuUsage = process.cpuUsage();
try {
  for (let i = 0; i < warmup; i++) await step(false);
  kernelMs.clear();
  cpu0 = process.cpuUsage();
  for (let i = 0; i < steps; i++) {
    await step(true);
    process.stderr.write(`step ${i + 1}/${steps}: ${stepTimes[i]!.toFixed(3)} s, loss ${lastLoss.toFixed(4)}\n`);
  }
} finally {
  await model.dispose();
}
// CPU seconds of the whole process (all worker threads) per measured step: on a machine shared with
// other work, wall-clock times stretch but this stays close to the unloaded cost.
const cpu = process.cpuUsage(cpu0);
const cpuPerStep = (cpu.user + cpu.system) / 1e6 / steps;

// Floating-point work of one step: every matmul costs 2·M·K·N forward and twice that backward
// (dinp and dweight); causal attention does q·k and att·v over T(T+1)/2 pairs per head.
const BT = B * T;
let fwd = 2 * BT * d * C + 2 * BT * C * d;
for (let l = 0; l < L; l++) {
  fwd += 2 * BT * C * 3 * C + 2 * BT * C * C + 2 * 2 * B * C * ((T * (T + 1)) / 2);
  if (model.config.blocks[l]!.ffn !== false) fwd += 2 * 2 * BT * C * 4 * C;
}
const flops = 3 * fwd;
const stepMedian = median(stepTimes);
const result = {
  impl: "selfcorrect-engine",
  kernels,
  threads: model.threads,
  matmuls: model.matmuls,
  layers: L,
  embd: C,
  heads: NH,
  batch: B,
  points: n,
  dims: d,
  params: model.paramCount,
  step_s_median: stepMedian,
  step_s_min: Math.min(...stepTimes),
  gflops: flops / stepMedian / 1e9,
  cpu_s_per_step: cpuPerStep,
  gflops_per_cpu_s: flops / cpuPerStep / 1e9,
  phase_s_median: Object.fromEntries(phases.map((p) => [p, median(times[p])])),
  loss: lastLoss,
  peak_rss_mib: Math.round(process.resourceUsage().maxRSS / 1024),
  ...(a.profile
    ? { kernel_ms_per_step: Object.fromEntries([...kernelMs].sort((x, y) => y[1] - x[1]).map(([k, v]) => [k, +(v / steps).toFixed(2)])) }
    : {}),
};
if (a.json) process.stdout.write(JSON.stringify(result) + "\n");
else {
  process.stdout.write(
    `${result.params} params, ${result.threads} threads, ${result.matmuls} matmuls: median ${stepMedian.toFixed(3)} s/step, min ${result.step_s_min.toFixed(3)} s, ` +
      `${result.gflops.toFixed(1)} GFLOP/s, peak RSS ${result.peak_rss_mib} MiB\n` +
      JSON.stringify(result) + "\n",
  );
}
