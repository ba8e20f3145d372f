/**
 * The training worker: the engine's WebAssembly kernels on one thread (LocalExecutor), the lab's task,
 * PL loss and evaluation, exactly the code `selfcorrect lab train` runs in Node, minus the file system.
 * Steps run in a loop that yields to the event loop after every step, so "stop" is seen within one step.
 */
import kernelFiles from "virtual:selfcorrect-kernels";
import { wasmBackend } from "../../../src/engine/model/backend-core.js";
import { compileKernelBytes, kernelBytesValid } from "../../../src/engine/kernels/wasm-instance.js";
import { createModelWith, type Model } from "../../../src/engine/model/model-core.js";
import { assembleSafetensors, packTensors } from "../../../src/engine/safetensors-codec.js";
import { runningMeanCurve } from "../../../src/lab/baselines.js";
import { DEFAULT_EVAL_SEED, evalBatch, exampleCounts, observedRewards, transformerCurve } from "../../../src/lab/evaluate.js";
import { recordLoss, type LossLog } from "../../../src/lab/schedule.js";
import { applyInit, icaTrainStep, modelConfigFor, trainingDataRng, type LabCheckpointExtra } from "../../../src/lab/train-core.js";
import type { IcaBatch } from "../../../src/lab/task.js";
import type { Rng } from "../../../src/util/rng.js";
import type { EvalResult, FromWorker, RunSettings, ToWorker } from "./protocol.js";

const MAX_EXAMPLES = 15;

interface Run {
  settings: RunSettings;
  model: Model;
  rng: Rng;
  log: LossLog;
  evalBatch: IcaBatch;
  mean: number[];
  trainMs: number;
  running: boolean;
  stopRequested: boolean;
}

let run: Run | null = null;
const post = (m: FromWorker, transfer: Transferable[] = []) => (self as unknown as Worker).postMessage(m, transfer);

function bytesOf(b64: string): Uint8Array {
  const s = atob(b64);
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i);
  return out;
}

// Shared memory needs a cross-origin-isolated page (COOP/COEP, as `selfcorrect view` serves it); one
// thread gains nothing from it, but it is the memory the Node engine's threads use.
const memory: "shared" | "plain" = (self as { crossOriginIsolated?: boolean }).crossOriginIsolated ? "shared" : "plain";
const fmaBytes = bytesOf(memory === "shared" ? kernelFiles.sharedFma : kernelFiles.plainFma);
const fma = kernelBytesValid(fmaBytes);
const kernelModule = compileKernelBytes(fma ? fmaBytes : bytesOf(memory === "shared" ? kernelFiles.shared : kernelFiles.plain));

/** Lets queued messages ("stop") in between steps without setTimeout's 4 ms clamp. */
const channel = new MessageChannel();
const waiting: (() => void)[] = [];
channel.port1.onmessage = () => waiting.shift()?.();
const yieldToEvents = () =>
  new Promise<void>((resolve) => {
    waiting.push(resolve);
    channel.port2.postMessage(null);
  });

async function start(settings: RunSettings): Promise<void> {
  if (run?.running) throw new Error("a run is in progress: stop it first");
  await run?.model.dispose();
  run = null;
  const { spec } = settings;
  const module = await kernelModule;
  const model = await createModelWith(modelConfigFor(spec), spec.seed, {
    maxBatch: spec.batch,
    threads: 1,
    backend: async (_shared, dims) => wasmBackend(module, memory === "shared", dims),
  });
  applyInit(model, spec.init, spec.seed);
  const batch = evalBatch({ d: spec.d, n: spec.n, noise: spec.noise, tasks: settings.evalTasks, seed: DEFAULT_EVAL_SEED });
  const examples = exampleCounts(MAX_EXAMPLES);
  const meanCurve = runningMeanCurve(batch);
  run = {
    settings, model, rng: trainingDataRng(spec.seed), log: { lossHistory: [], window: [0, 0] },
    evalBatch: batch, mean: examples.map((k) => meanCurve[k]!), trainMs: 0, running: false, stopRequested: false,
  };
  post({ type: "ready", kernels: fma ? "fma" : "mul-add", memory, params: model.paramCount });
  await evaluate(run);
  await loop(run);
}

async function evaluate(r: Run): Promise<void> {
  const { p } = r.settings;
  const examples = exampleCounts(MAX_EXAMPLES);
  const curve = async (q: number) => {
    const c = await transformerCurve(r.model, r.evalBatch, observedRewards(r.evalBatch, DEFAULT_EVAL_SEED, q), r.settings.spec.batch);
    return examples.map((k) => c[k]!);
  };
  const result: EvalResult = {
    step: r.model.step,
    examples,
    tf: await curve(p),
    tfClean: p > 0 ? await curve(0) : null,
    mean: r.mean,
  };
  post({ type: "eval", result });
}

async function loop(r: Run): Promise<void> {
  const { spec, evalEvery } = r.settings;
  r.running = true;
  r.stopRequested = false;
  let pending: number[] = [];
  let first = r.model.step + 1;
  let windowMs = 0;
  let lastPost = performance.now();
  const flush = () => {
    if (pending.length === 0) return;
    post({ type: "steps", first, losses: pending, msPerStep: windowMs / pending.length });
    pending = [];
    windowMs = 0;
    first = r.model.step + 1;
    lastPost = performance.now();
  };
  try {
    while (r.model.step < spec.steps && !r.stopRequested) {
      const t0 = performance.now();
      const loss = await icaTrainStep(r.model, spec, r.rng, r.model.step);
      const dt = performance.now() - t0;
      r.trainMs += dt;
      windowMs += dt;
      recordLoss(r.log, loss);
      pending.push(loss);
      // Batch the messages (~10 per second) so the page redraws its chart at a sane rate.
      if (performance.now() - lastPost > 100) flush();
      if (r.model.step % evalEvery === 0 && r.model.step < spec.steps) {
        flush();
        await evaluate(r);
      }
      await yieldToEvents();
    }
    flush();
    await evaluate(r);
  } finally {
    r.running = false;
  }
  post({ type: "paused", step: r.model.step, reason: r.model.step >= spec.steps ? "done" : "stopped", steps: r.model.step, trainSeconds: r.trainMs / 1000 });
}

async function sha256Hex(data: Uint8Array): Promise<string | null> {
  // Web Crypto exists only in secure contexts (https, localhost, file://); the checksum is optional in the format.
  if (!globalThis.crypto?.subtle) return null;
  const digest = await crypto.subtle.digest("SHA-256", data as Uint8Array<ArrayBuffer>);
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

async function checkpoint(r: Run): Promise<void> {
  if (r.running) throw new Error("stop training before downloading a checkpoint");
  const extra: LabCheckpointExtra = {
    kind: "selfcorrect-lab-train",
    spec: r.settings.spec,
    rng: r.rng.getState(),
    lossHistory: r.log.lossHistory.slice(),
    window: [r.log.window[0], r.log.window[1]],
    trainSeconds: r.trainMs / 1000,
  };
  const files = r.model.checkpointFiles(extra as unknown as Record<string, unknown>);
  const packed = packTensors(files.tensors);
  const sha = await sha256Hex(packed.data);
  const bytes = assembleSafetensors(packed, sha ? { ...files.metadata, data_sha256: sha } : files.metadata);
  post({ type: "checkpoint", safetensors: bytes, json: `${JSON.stringify(files.json, null, 2)}\n`, step: r.model.step, sha256: sha !== null }, [bytes.buffer]);
}

self.onmessage = (e: MessageEvent<ToWorker>) => {
  const m = e.data;
  const fail = (err: unknown) => post({ type: "error", message: err instanceof Error ? err.message : String(err) });
  switch (m.type) {
    case "start":
      start(m.settings).catch(fail);
      break;
    case "stop":
      if (run) run.stopRequested = true;
      break;
    case "resume":
      if (run && !run.running) loop(run).catch(fail);
      break;
    case "checkpoint":
      if (run) checkpoint(run).catch(fail);
      break;
  }
};
