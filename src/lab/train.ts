/**
 * Training a transformer on the ICA task with the engine: sample a batch, build tokens, forward,
 * PL loss and its gradient at the x tokens, backward, Adam. Checkpoints carry the data RNG state
 * and the loss history, so a run killed at any point and started again continues the exact same
 * stream and ends with the same weights as an uninterrupted run (given the same thread count:
 * the engine is deterministic per thread count).
 */
import { existsSync, readFileSync } from "node:fs";
import type { TrainableModel } from "../engine/api.js";
import { UserError } from "../util/errors.js";
import { canonicalJson, contentHash } from "../util/json.js";
import { Rng } from "../util/rng.js";
import { interruptOnSigint, learningRate, runTrainLoop, withCheckpointLock, type LossLog, type StepInfo } from "./train-loop.js";
import { defaultEngine, type Engine } from "./engine-link.js";
import { applyInit, icaTrainStep, modelConfigFor, trainingDataRng, type LabCheckpointExtra, type TrainSpec } from "./train-core.js";

export {
  PAPER_TRAIN_SPEC, applyInit, icaLossAndBackward, modelConfigFor, trainingDataRng, type LabCheckpointExtra, type LabModelSpec, type TrainSpec,
} from "./train-core.js";

/** A short id naming a training run by everything that determines its result. */
export function runId(spec: TrainSpec): string {
  const m = spec.model;
  const tag = `L${m.nLayer}-C${m.nEmbd}-H${m.nHead}${m.attention === "linear" ? "-linear" : ""}${m.ffn ? "" : "-noffn"}`;
  return `${tag}-${contentHash(spec)}`;
}

export { learningRate };

export interface TrainOptions {
  /** Checkpoint base path (`<path>` + `<path>.json`). Resumes from it when it exists. */
  checkpointPath?: string;
  threads?: number;
  /** Write a checkpoint every this many steps (and at the end). Default 100. */
  checkpointEvery?: number;
  /** Progress bar on stderr (default true). */
  progress?: boolean;
  label?: string;
  /** Stop cleanly on SIGINT: write a checkpoint and throw a UserError with exit code 130. Default true. */
  handleSigint?: boolean;
  /** Stops after this step count even if spec.steps is larger (tests, benchmarks). */
  stopAtStep?: number;
  engine?: Engine;
  /** Largest batch the model will see (training batch and evaluation chunks). */
  maxBatch?: number;
  /** Called after every step (a cluster worker reports progress with it). */
  onStep?: (info: StepInfo) => void;
}

export interface TrainResult {
  model: TrainableModel;
  spec: TrainSpec;
  /** Mean training loss per 10-step window, from step 0 (restored across resumes). */
  lossHistory: number[];
  /** Step the run started from (0 when fresh). */
  resumedFrom: number;
  trainSeconds: number;
}

/** Reads `<path>.json`'s lab state without loading the weights; null when there is no checkpoint. */
export function readCheckpointMeta(path: string): { spec?: TrainSpec; step?: number; extra?: LabCheckpointExtra } | null {
  if (!existsSync(path) || !existsSync(`${path}.json`)) return null;
  try {
    const meta = JSON.parse(readFileSync(`${path}.json`, "utf8")) as Record<string, unknown>;
    const extra = meta.extra as LabCheckpointExtra | undefined;
    const step = typeof meta.step === "number" ? meta.step : undefined;
    return { spec: extra?.spec, step, extra };
  } catch {
    return null;
  }
}

function sameSpecForResume(a: TrainSpec, b: TrainSpec): boolean {
  return canonicalJson(a) === canonicalJson(b);
}

export async function train(spec: TrainSpec, opts: TrainOptions = {}): Promise<TrainResult> {
  if (!opts.checkpointPath) return trainLocked(spec, opts);
  return withCheckpointLock(opts.checkpointPath, () => trainLocked(spec, opts));
}

async function trainLocked(spec: TrainSpec, opts: TrainOptions): Promise<TrainResult> {
  const engine = opts.engine ?? (await defaultEngine());
  const config = modelConfigFor(spec);
  const maxBatch = Math.max(spec.batch, opts.maxBatch ?? spec.batch);
  const every = opts.checkpointEvery ?? 100;
  const stopAt = Math.min(spec.steps, opts.stopAtStep ?? spec.steps);

  let model: TrainableModel;
  let rng: Rng;
  const log: LossLog = { lossHistory: [], window: [0, 0] };
  let priorSeconds = 0;
  const ckpt = opts.checkpointPath;
  const existing = ckpt ? readCheckpointMeta(ckpt) : null;
  if (ckpt && existing) {
    const loaded = await engine.loadModel(ckpt, { threads: opts.threads, maxBatch, expectConfig: config });
    const extra = loaded.extra as unknown as LabCheckpointExtra;
    if (extra?.kind !== "selfcorrect-lab-train" || !sameSpecForResume(extra.spec, spec)) {
      await loaded.model.dispose();
      throw new UserError(
        `checkpoint ${ckpt} was trained with a different configuration; use another output directory or delete it to retrain`,
      );
    }
    model = loaded.model;
    rng = Rng.fromState(extra.rng);
    log.lossHistory = extra.lossHistory.slice();
    log.window = [extra.window[0], extra.window[1]];
    priorSeconds = extra.trainSeconds;
  } else {
    model = await engine.createModel(config, { seed: spec.seed, threads: opts.threads, maxBatch });
    applyInit(model, spec.init, spec.seed);
    rng = trainingDataRng(spec.seed);
  }
  const resumedFrom = model.step;

  const started = Date.now();
  const seconds = () => priorSeconds + (Date.now() - started) / 1000;
  const save = async () => {
    if (!ckpt) return;
    const extra: LabCheckpointExtra = {
      kind: "selfcorrect-lab-train",
      spec,
      rng: rng.getState(),
      lossHistory: log.lossHistory,
      window: log.window,
      trainSeconds: seconds(),
    };
    await model.save(ckpt, extra as unknown as Record<string, unknown>);
  };

  const sigint = (opts.handleSigint ?? true) ? interruptOnSigint() : null;
  try {
    await runTrainLoop({
      startStep: resumedFrom,
      stopAt,
      totalSteps: spec.steps,
      log,
      checkpointEvery: every,
      checkpointPath: ckpt,
      label: opts.label ?? `train ${runId(spec)}`,
      progress: opts.progress ?? true,
      signal: sigint?.signal,
      onStep: opts.onStep,
      save,
      step: (step) => icaTrainStep(model, spec, rng, step),
    });
  } catch (e) {
    await model.dispose().catch(() => {});
    throw e;
  } finally {
    sigint?.dispose();
  }
  return { model, spec, lossHistory: log.lossHistory, resumedFrom, trainSeconds: seconds() };
}
