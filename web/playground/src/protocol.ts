/** Messages between the page (main.tsx) and the training worker (worker.ts). */
import type { TrainSpec } from "../../../src/lab/train-core.js";

export interface RunSettings {
  spec: TrainSpec;
  /** Reward-noise probability applied to the rewards the model reads at evaluation (training always sees true rewards). */
  p: number;
  /** Evaluate on the held-out tasks every this many steps (and when training stops). */
  evalEvery: number;
  evalTasks: number;
}

export type ToWorker =
  | { type: "start"; settings: RunSettings }
  | { type: "stop" }
  | { type: "resume" }
  | { type: "checkpoint" };

export interface EvalResult {
  step: number;
  examples: number[];
  /** Transformer error 1 - cos(pred, y*) at examples[i], with the rewards noised at p. */
  tf: number[];
  /** The same without reward noise (only when p > 0). */
  tfClean: number[] | null;
  /** Running mean of the responses seen so far (src/lab/baselines.ts). */
  mean: number[];
}

export type FromWorker =
  | { type: "ready"; kernels: "fma" | "mul-add"; memory: "shared" | "plain"; params: number }
  | { type: "steps"; first: number; losses: number[]; msPerStep: number }
  | { type: "eval"; result: EvalResult }
  | { type: "paused"; step: number; reason: "stopped" | "done"; steps: number; trainSeconds: number }
  | { type: "checkpoint"; safetensors: Uint8Array; json: string; step: number; sha256: boolean }
  | { type: "error"; message: string };
