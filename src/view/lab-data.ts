/**
 * Lab runs as the viewer's API sees them: the panels of a lab results.json (curves and findings, as
 * `lab experiment` wrote them) and the training runs with their loss curves. A training run's loss
 * history is read from its checkpoint's `<path>.json`, which the trainer rewrites (atomically) every
 * --checkpoint-every steps, so a run in training shows its curve growing; the `<path>.lock` of a live
 * trainer says it is still training.
 */
import { existsSync } from "node:fs";
import { basename, join } from "node:path";
import { liveLockHolder } from "../util/fs.js";
import { LAB_LOCK_FILE, readResults, type LabResults } from "../lab/runner.js";
import { readCheckpointMeta } from "../lab/train.js";
import { LOSS_WINDOW } from "../lab/train-loop.js";
import { CHECKPOINT_FILE, trainingDirs, type ServedDir } from "./sources.js";

export interface TrainingRun {
  /** The run id (its folder name). */
  id: string;
  status: "training" | "finished" | "stopped";
  step: number;
  steps: number | null;
  /** Mean loss per LOSS_WINDOW steps, from step 0. */
  lossHistory: number[];
  lossWindow: number;
  trainSeconds: number | null;
  spec: unknown;
}

export interface LabDirView {
  dir: number;
  label: string;
  /** A `lab experiment` is running in this directory. */
  running: boolean;
  results: LabResults | null;
  training: TrainingRun[];
}

function trainingRun(dir: string): TrainingRun {
  const ckpt = join(dir, CHECKPOINT_FILE);
  const meta = readCheckpointMeta(ckpt);
  const training = liveLockHolder(`${ckpt}.lock`) !== null;
  const steps = meta?.spec?.steps ?? null;
  const step = meta?.step ?? 0;
  return {
    id: basename(dir),
    status: training ? "training" : steps !== null && step >= steps ? "finished" : "stopped",
    step,
    steps,
    lossHistory: meta?.extra?.lossHistory ?? [],
    lossWindow: LOSS_WINDOW,
    trainSeconds: meta?.extra?.trainSeconds ?? null,
    spec: meta?.spec ?? null,
  };
}

export function labDirView(d: ServedDir): LabDirView {
  const direct = existsSync(join(d.path, `${CHECKPOINT_FILE}.json`)) || existsSync(join(d.path, `${CHECKPOINT_FILE}.lock`));
  const dirs = [...(direct ? [d.path] : []), ...trainingDirs(d.path)];
  return {
    dir: d.id,
    label: d.label,
    running: liveLockHolder(join(d.path, LAB_LOCK_FILE)) !== null,
    results: readResults(d.path),
    training: dirs.map(trainingRun),
  };
}
