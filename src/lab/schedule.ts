/**
 * The browser-safe pieces of the step loop (./train-loop.ts is the Node loop with checkpoints,
 * Ctrl-C and the progress bar): the learning-rate schedule, the divergence check and the 10-step
 * loss windows a checkpoint carries.
 */

/** Loss log restored across resumes: per-10-step means, and the unfinished window's [sum, count]. */
export interface LossLog {
  lossHistory: number[];
  window: [number, number];
}

export const LOSS_WINDOW = 10;

export interface ScheduleSpec {
  lr: number;
  steps: number;
  /** Linear warm-up over this many steps (0 = none). */
  warmupSteps: number;
  /** After warm-up: constant, or cosine decay to 10% of lr at the last step. */
  decay: "none" | "cosine";
}

export function learningRate(spec: ScheduleSpec, step: number): number {
  if (spec.warmupSteps > 0 && step < spec.warmupSteps) return (spec.lr * (step + 1)) / spec.warmupSteps;
  if (spec.decay === "cosine") {
    const span = Math.max(1, spec.steps - spec.warmupSteps);
    const t = Math.min(1, (step - spec.warmupSteps) / span);
    return spec.lr * (0.1 + 0.9 * 0.5 * (1 + Math.cos(Math.PI * t)));
  }
  return spec.lr;
}

/** Adds one step's loss to the log, closing a window every LOSS_WINDOW steps. */
export function recordLoss(log: LossLog, loss: number): void {
  log.window[0] += loss;
  log.window[1] += 1;
  if (log.window[1] === LOSS_WINDOW) {
    log.lossHistory.push(log.window[0] / LOSS_WINDOW);
    log.window = [0, 0];
  }
}

/** Throws when a step's loss is not finite, before the update would spread it into the weights. */
export function checkLoss(loss: number, step: number): number {
  if (!Number.isFinite(loss)) throw new Error(`training diverged at step ${step}: loss ${loss}; try a lower lr`);
  return loss;
}
