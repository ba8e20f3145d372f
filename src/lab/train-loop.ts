/**
 * The step loop every trainer in the project shares (the lab's ICA trainer, the world's language
 * model): checkpoint cadence, Ctrl-C handling, the progress bar, the 10-step loss windows that a
 * checkpoint carries, and the one-writer lock on the checkpoint's directory. The trainer supplies one
 * optimisation step and a save; keeping the rest here means a fix to resume or interrupt behaviour
 * reaches both.
 */
import { mkdirSync } from "node:fs";
import { basename, dirname } from "node:path";
import { ExitCode, UserError } from "../util/errors.js";
import { acquireDirLock } from "../util/fs.js";
import { ProgressBar } from "../util/progress.js";
import { recordLoss, type LossLog } from "./schedule.js";

export { LOSS_WINDOW, checkLoss, learningRate, recordLoss, type LossLog, type ScheduleSpec } from "./schedule.js";

/** Runs `fn` holding the lock on the checkpoint's directory: two writers would overwrite each other's steps. */
export async function withCheckpointLock<T>(checkpointPath: string, fn: () => Promise<T>, flag?: string): Promise<T> {
  mkdirSync(dirname(checkpointPath), { recursive: true });
  const release = acquireDirLock(dirname(checkpointPath), `${basename(checkpointPath)}.lock`, "training run", flag);
  try {
    return await fn();
  } finally {
    release();
  }
}

/**
 * Aborts the returned signal on the first Ctrl-C (the loop then finishes its step and saves); a
 * second Ctrl-C exits at once, for a user who does not want to wait for the step.
 */
export function interruptOnSigint(): { signal: AbortSignal; dispose: () => void } {
  const controller = new AbortController();
  const onSigint = () => {
    if (controller.signal.aborted) process.exit(ExitCode.interrupted);
    controller.abort();
    process.stderr.write("\ninterrupt: finishing this step and writing a checkpoint (Ctrl-C again to quit now)\n");
  };
  process.on("SIGINT", onSigint);
  return { signal: controller.signal, dispose: () => process.off("SIGINT", onSigint) };
}

export interface StepInfo {
  /** Steps done (the one just taken included). */
  step: number;
  stopAt: number;
  loss: number;
  /** Exponential moving average of the loss (0.95), what the bar shows. */
  ema: number;
}

export interface TrainLoopOptions {
  /** First step to take (the model's step after a resume). */
  startStep: number;
  /** Steps end here (exclusive). */
  stopAt: number;
  /** The run's full length, for the interrupt message. */
  totalSteps: number;
  /** Takes optimisation step `step` and returns its loss. */
  step: (step: number) => number | Promise<number>;
  /** Writes a checkpoint of the current state, `log` included. */
  save: () => void | Promise<void>;
  /** Updated in place as steps finish; pass the restored log when resuming. */
  log: LossLog;
  checkpointEvery: number;
  /** Named in the interrupt message; without it nothing is saved on an interrupt. */
  checkpointPath?: string;
  label: string;
  progress: boolean;
  signal?: AbortSignal;
  onStep?: (info: StepInfo) => void;
}

/**
 * Steps from startStep to stopAt, saving every checkpointEvery steps and at the end. When `signal`
 * aborts, it saves after the current step and throws a UserError with exit code 130.
 */
export async function runTrainLoop(o: TrainLoopOptions): Promise<void> {
  // Counts only this invocation's steps so the rate and ETA stay right after a resume.
  const bar = new ProgressBar({
    total: o.stopAt - o.startStep,
    label: o.label + (o.startStep > 0 ? ` (resumed at step ${o.startStep})` : ""),
    unit: "step",
    enabled: o.progress,
  });
  let ema = NaN;
  for (let step = o.startStep; step < o.stopAt; step++) {
    const loss = await o.step(step);
    recordLoss(o.log, loss);
    ema = Number.isNaN(ema) ? loss : 0.95 * ema + 0.05 * loss;
    bar.update(step + 1 - o.startStep, `loss ${ema.toFixed(4)}`);
    const done = step + 1;
    o.onStep?.({ step: done, stopAt: o.stopAt, loss, ema });
    // The engine may finish a step without touching the event loop; yield so SIGINT gets delivered.
    await new Promise((r) => setImmediate(r));
    if (o.signal?.aborted) {
      await o.save();
      bar.finish();
      throw new UserError(
        `interrupted at step ${done}/${o.totalSteps}` +
          (o.checkpointPath ? `; checkpoint written to ${o.checkpointPath}; run the same command again to resume` : " (no checkpoint path, nothing saved)"),
        ExitCode.interrupted,
      );
    }
    if (done % o.checkpointEvery === 0 || done === o.stopAt) await o.save();
  }
  if (o.stopAt > o.startStep) bar.finish(`loss ${ema.toFixed(4)}`);
}
