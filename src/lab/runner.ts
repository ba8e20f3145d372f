/**
 * Runs Figure 1 panels: plans the unique training runs of the requested panels, trains what is
 * missing (resuming partial checkpoints, reusing finished ones whose config matches), evaluates
 * every model on the same held-out tasks at the reward-noise levels its panels need, computes the
 * GD and running-mean baselines, checks the paper's findings, and writes results.json (merged with
 * earlier panels, written atomically) and the report.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { acquireDirLock, ensureWritableDir, writeJsonAtomic } from "../util/fs.js";
import type { Engine } from "./engine-link.js";
import { baselineCurves, evaluateModel, type EvalTaskSpec } from "./evaluate.js";
import {
  PANELS,
  gdLabel,
  tfLabel,
  variantSpec,
  type PanelId,
  type PresetDef,
  type PresetName,
} from "./experiments.js";
import { checkFindings, type Finding } from "./findings.js";
import { runId, train, type TrainSpec } from "./train.js";

export interface PanelResult {
  panel: PanelId;
  title: string;
  paperFinding: string;
  preset: PresetName;
  examples: number[];
  curves: Record<string, number[]>;
  /** Labels drawn dashed (baselines). */
  dashed: string[];
  /** Curve label -> training run id (transformer curves only). */
  runs: Record<string, string>;
  findings: Finding[];
}

export interface RunRecord {
  id: string;
  spec: TrainSpec;
  paramCount: number;
  trainSeconds: number;
  /** Steps trained in this invocation (0 when the checkpoint was reused). */
  stepsTrainedNow: number;
  threads: number;
  lossHistory: number[];
  checkpoint: string;
}

export interface LabResults {
  version: 1;
  updatedAt: string;
  preset: PresetName;
  presetDescription: string;
  evalTasks: number;
  evalSeed: number;
  runs: Record<string, RunRecord>;
  panels: Partial<Record<PanelId, PanelResult>>;
}

export interface ExperimentOptions {
  outputDir: string;
  threads?: number;
  progress?: boolean;
  engine?: Engine;
  /** Messages for the user (stderr by default). */
  log?: (line: string) => void;
  /** Checkpoint interval in steps (default 100). */
  checkpointEvery?: number;
}

export interface PlannedRun {
  id: string;
  spec: TrainSpec;
  ps: number[];
  checkpoint: string;
}

/** Everything the panels need, computed before any training (so bad input fails first). */
export function planExperiments(panels: PanelId[], preset: PresetDef, outputDir: string): PlannedRun[] {
  if (preset.maxExamples > preset.base.n - 1) {
    throw new UserError(
      `examples = ${preset.maxExamples} exceeds the ${preset.base.n - 1} in-context examples a sequence of ${preset.base.n} positions has; use at most ${preset.base.n - 1}`,
    );
  }
  const runs = new Map<string, PlannedRun>();
  for (const id of panels) {
    const panel = PANELS[id];
    for (const variant of panel.variants[preset.name]) {
      const spec = variantSpec(preset, variant);
      const rid = runId(spec);
      const run = runs.get(rid) ?? { id: rid, spec, ps: [], checkpoint: join(outputDir, "runs", rid, "model.safetensors") };
      for (const p of panel.ps) if (!run.ps.includes(p)) run.ps.push(p);
      runs.set(rid, run);
    }
  }
  return [...runs.values()];
}

export function resultsPath(outputDir: string): string {
  return join(outputDir, "results.json");
}

export function readResults(outputDir: string): LabResults | null {
  const path = resultsPath(outputDir);
  if (!existsSync(path)) return null;
  try {
    const r = JSON.parse(readFileSync(path, "utf8")) as LabResults;
    return r.version === 1 ? r : null;
  } catch {
    return null;
  }
}

export async function runExperiments(panels: PanelId[], preset: PresetDef, opts: ExperimentOptions): Promise<LabResults> {
  ensureWritableDir(opts.outputDir);
  // One runner per output directory: two would train the same checkpoints and race on results.json.
  const release = acquireDirLock(opts.outputDir, LAB_LOCK_FILE, "lab run");
  try {
    return await runExperimentsLocked(panels, preset, opts);
  } finally {
    release();
  }
}

export const LAB_LOCK_FILE = "lab.lock";

async function runExperimentsLocked(panels: PanelId[], preset: PresetDef, opts: ExperimentOptions): Promise<LabResults> {
  const log = opts.log ?? ((l: string) => process.stderr.write(l + "\n"));
  const plan = planExperiments(panels, preset, opts.outputDir);
  const evalTask = (spec: TrainSpec): EvalTaskSpec => ({
    d: spec.d,
    n: spec.n,
    noise: spec.noise,
    tasks: preset.evalTasks,
    seed: preset.evalSeed,
  });

  const previous = readResults(opts.outputDir);
  if (previous && previous.preset !== preset.name) {
    throw new UserError(
      `--output ${opts.outputDir} holds results of the ${previous.preset} preset; write the ${preset.name} preset elsewhere (its default is runs/lab/${preset.name})`,
    );
  }
  const results: LabResults =
    previous && previous.preset === preset.name && previous.evalSeed === preset.evalSeed && previous.evalTasks === preset.evalTasks
      ? previous
      : {
          version: 1,
          updatedAt: "",
          preset: preset.name,
          presetDescription: preset.description,
          evalTasks: preset.evalTasks,
          evalSeed: preset.evalSeed,
          runs: {},
          panels: {},
        };

  log(`lab: preset ${preset.name}, panels ${panels.join(", ")}: ${plan.length} model${plan.length === 1 ? "" : "s"} (${opts.outputDir})`);
  const tfCurves = new Map<string, Record<string, number[]>>(); // run id -> p -> curve
  let examples: number[] = [];
  for (const [i, run] of plan.entries()) {
    const label = `[${i + 1}/${plan.length}] ${run.id}`;
    const trained = await train(run.spec, {
      checkpointPath: run.checkpoint,
      threads: opts.threads,
      progress: opts.progress,
      label,
      checkpointEvery: opts.checkpointEvery,
      maxBatch: Math.min(preset.evalTasks, 256),
      engine: opts.engine,
    });
    const now = trained.model.step - trained.resumedFrom;
    if (now === 0) log(`${label}: reusing the finished checkpoint ${run.checkpoint}`);
    try {
      const ev = await evaluateModel(trained.model, evalTask(run.spec), run.ps, preset.maxExamples, Math.min(preset.evalTasks, 256));
      examples = ev.examples;
      tfCurves.set(run.id, ev.tf);
      results.runs[run.id] = {
        id: run.id,
        spec: run.spec,
        paramCount: trained.model.paramCount,
        trainSeconds: trained.trainSeconds,
        stepsTrainedNow: now,
        threads: trained.model.threads,
        lossHistory: trained.lossHistory,
        checkpoint: run.checkpoint,
      };
    } finally {
      await trained.model.dispose();
    }
  }

  for (const id of panels) {
    const panel = PANELS[id];
    const curves: Record<string, number[]> = {};
    const runs: Record<string, string> = {};
    const dashed: string[] = [];
    for (const variant of panel.variants[preset.name]) {
      const spec = variantSpec(preset, variant);
      const rid = runId(spec);
      for (const p of panel.ps) {
        const label = tfLabel(panel, variant, p);
        curves[label] = tfCurves.get(rid)![String(p)]!;
        runs[label] = rid;
      }
    }
    if (panel.baselines.length) {
      // GD only for the panels that plot it (a and b); the running mean is nearly free.
      const gdPs = panel.baselines.includes("gd") ? panel.ps : [];
      const base = baselineCurves(evalTask(preset.base), gdPs, preset.maxExamples, { steps: panel.gdSteps, score: preset.base.score });
      if (panel.baselines.includes("gd")) {
        for (const p of panel.ps) {
          curves[gdLabel(panel, p)] = base.gd[String(p)]!;
          dashed.push(gdLabel(panel, p));
        }
      }
      if (panel.baselines.includes("mean")) {
        curves.mean = base.mean;
        dashed.push("mean");
      }
    }
    const findings = checkFindings(id, { examples, curves });
    results.panels[id] = {
      panel: id,
      title: panel.title,
      paperFinding: panel.paperFinding,
      preset: preset.name,
      examples,
      curves,
      dashed,
      runs,
      findings,
    };
  }
  results.updatedAt = new Date().toISOString();
  writeJsonAtomic(resultsPath(opts.outputDir), results);
  return results;
}
