/**
 * The lab's view of the training engine (src/engine/api.ts). Callers can inject another
 * implementation (tests may use a labelled stand-in); by default the real engine is used.
 */
import type { CreateModelOptions, ModelConfig, TrainableModel } from "../engine/api.js";
import { createModel, loadModel } from "../engine/index.js";

export interface Engine {
  createModel(config: ModelConfig, opts: CreateModelOptions): Promise<TrainableModel>;
  loadModel(
    path: string,
    opts: { threads?: number; maxBatch: number; expectConfig?: ModelConfig },
  ): Promise<{ model: TrainableModel; extra: Record<string, unknown> }>;
}

export async function defaultEngine(): Promise<Engine> {
  return { createModel, loadModel };
}
