/** Messages and the shared control block between the pool (main thread) and its workers. */
import type { ResolvedConfig } from "./config.js";
import type { KernelSource } from "./backend-core.js";

export interface WorkerInit {
  index: number;
  workers: number;
  config: ResolvedConfig;
  planOpts: { maxBatch: number; workers: number; baseFloats: number; kernelScratchFloats: number };
  source: KernelSource;
  /** Int32Array control block of CTRL_INTS ints (the CTRL_* indices below), for worker.ts's barrier. */
  ctrl: SharedArrayBuffer;
}

export type WorkerCommand =
  | { cmd: "forward"; B: number; T: number }
  | { cmd: "backward"; B: number; T: number }
  | { cmd: "adam"; lr: number; beta1: number; beta2: number; eps: number; t: number }
  | { cmd: "fail" };

export type WorkerReply = { type: "ready" } | { type: "done" } | { type: "error"; message: string; stack?: string };

/** Workers that have reached the current barrier. */
export const CTRL_COUNT = 0;
/** Barrier generation: the last worker to arrive bumps it and wakes the others. */
export const CTRL_GEN = 1;
/** Set by a worker that threw, so the others stop waiting for it. */
export const CTRL_FAILED = 2;
export const CTRL_INTS = 4;

