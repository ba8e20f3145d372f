/**
 * Figure 1 of the paper as data: one entry per panel, each a list of model variants (overrides of
 * the preset's base training spec), the reward-noise levels to evaluate, and the baselines to draw.
 * Presets: `paper` (the released configurations), `medium` (the released model at half the depth and
 * a quarter of the batch) and `quick` (the same comparisons scaled down to run in minutes on 2 CPU
 * cores; see QUICK_BASE for how it was chosen).
 */
import { UserError } from "../util/errors.js";
import type { GdOptions } from "./baselines.js";
import { DEFAULT_EVAL_SEED, DEFAULT_EVAL_TASKS } from "./evaluate.js";
import { PAPER_TRAIN_SPEC, type LabModelSpec, type TrainSpec } from "./train.js";
import type { ScoreKind } from "./losses.js";
import type { NoiseKind } from "./task.js";

export const PANEL_IDS = ["a", "b", "c", "d", "e", "f"] as const;
export type PanelId = (typeof PANEL_IDS)[number];
export const PRESET_NAMES = ["quick", "medium", "paper"] as const;
export type PresetName = (typeof PRESET_NAMES)[number];

export interface ModelVariant {
  /** Curve label, e.g. "TF 10 layers". */
  label: string;
  model: Partial<LabModelSpec>;
}

export type Baseline = "gd" | "mean";

export interface PanelDef {
  id: PanelId;
  title: string;
  /** What the paper reports for this panel (section 4 / digest 3.5). */
  paperFinding: string;
  variants: Record<PresetName, ModelVariant[]>;
  /** Reward-noise levels; with more than one, labels get " p=<p>". */
  ps: number[];
  baselines: Baseline[];
  /** GD step schedule: the paper's fixed 50, or the reward-noise notebook's int(50 - 25 p). */
  gdSteps: GdOptions["steps"];
}

export interface PresetDef {
  name: PresetName;
  base: TrainSpec;
  evalTasks: number;
  evalSeed: number;
  maxExamples: number;
  description: string;
}

/**
 * The quick preset's base model, chosen by measurement on 2 threads (src/lab/README.md has the log):
 * small enough to train in a few minutes, trained long enough to get past the plateau where the
 * model only reproduces the running mean of the responses and start using the rewards. Same task,
 * loss, metric and evaluation as the paper; differs in size (2 layers, 48 dims, 3 heads of dim 16),
 * batch 64, a higher learning rate with warm-up and cosine decay, and PyTorch's default Linear init.
 */
export const QUICK_BASE: TrainSpec = {
  ...PAPER_TRAIN_SPEC,
  model: { nLayer: 2, nEmbd: 48, nHead: 3, attention: "softmax", ffn: true },
  batch: 64,
  lr: 2e-3,
  steps: 3000,
  warmupSteps: 100,
  decay: "cosine",
  seed: 0,
  init: "torch",
};

/**
 * The medium preset's base model: the released configuration (Adam lr 1e-4, constant, 3000 steps) at
 * 10 layers and batch 64, with PyTorch's default Linear init, between quick's minutes and paper's
 * CPU-days (0.66 s per step at 1 thread on the dev machine: about 33 minutes per model).
 */
export const MEDIUM_BASE: TrainSpec = {
  ...PAPER_TRAIN_SPEC,
  model: { ...PAPER_TRAIN_SPEC.model, nLayer: 10 },
  batch: 64,
  init: "torch",
};

export const PRESETS: Record<PresetName, PresetDef> = {
  paper: {
    name: "paper",
    base: PAPER_TRAIN_SPEC,
    evalTasks: DEFAULT_EVAL_TASKS,
    evalSeed: DEFAULT_EVAL_SEED,
    maxExamples: 15,
    description: "the released configuration: GPT-2 20 layers, 96 dims, 3 heads, batch 256, Adam lr 1e-4, 3000 steps",
  },
  medium: {
    name: "medium",
    base: MEDIUM_BASE,
    evalTasks: DEFAULT_EVAL_TASKS,
    evalSeed: DEFAULT_EVAL_SEED,
    maxExamples: 15,
    description: "the released model at 10 layers and batch 64, PyTorch-default init (see MEDIUM_BASE in src/lab/experiments.ts)",
  },
  quick: {
    name: "quick",
    base: QUICK_BASE,
    evalTasks: DEFAULT_EVAL_TASKS,
    evalSeed: DEFAULT_EVAL_SEED,
    maxExamples: 15,
    description: "scaled down to minutes on 2 cores (see QUICK_BASE in src/lab/experiments.ts)",
  },
};

/** The same variants under every preset. */
const everyPreset = (variants: ModelVariant[]): Record<PresetName, ModelVariant[]> => ({ paper: variants, medium: variants, quick: variants });
const same = (label: string): Record<PresetName, ModelVariant[]> => everyPreset([{ label, model: {} }]);

/** 1, 3, 4 and 6 heads of a fixed head dimension. */
const headVariants = (headDim: number): ModelVariant[] =>
  [1, 3, 4, 6].map((h) => ({ label: `TF ${h} head${h > 1 ? "s" : ""}`, model: { nHead: h, nEmbd: headDim * h } }));

export const PANELS: Record<PanelId, PanelDef> = {
  a: {
    id: "a",
    title: "Transformer vs gradient descent",
    paperFinding:
      "Both improve with more in-context examples; GD is better at the beginning, the transformer adapts quickly and is slightly better with more examples (e.g. 14).",
    variants: same("TF"),
    ps: [0],
    baselines: ["gd", "mean"],
    gdSteps: 50,
  },
  b: {
    id: "b",
    title: "Reward noise",
    paperFinding:
      "Replacing each reward by a random one with probability p degrades the transformer and GD alike; a large p significantly decreases performance.",
    variants: same("TF"),
    ps: [0, 0.25, 0.5, 0.75, 1],
    baselines: ["gd"],
    gdSteps: "notebook",
  },
  c: {
    id: "c",
    title: "Depth",
    paperFinding: "A 5-layer model is much worse; more depth helps, with diminishing returns after 15 layers.",
    variants: {
      paper: [5, 10, 15, 20].map((l) => ({ label: `TF ${l} layers`, model: { nLayer: l } })),
      medium: [2, 5, 10].map((l) => ({ label: `TF ${l} layers`, model: { nLayer: l } })),
      quick: [1, 2, 3, 4].map((l) => ({ label: `TF ${l} layer${l > 1 ? "s" : ""}`, model: { nLayer: l } })),
    },
    ps: [0],
    baselines: ["mean"],
    gdSteps: 50,
  },
  d: {
    id: "d",
    title: "Softmax vs linear attention",
    paperFinding: "Linear attention can hardly solve the in-context alignment task; softmax attention performs much better.",
    variants: everyPreset([
      { label: "TF softmax", model: {} },
      { label: "TF linear", model: { attention: "linear" } },
    ]),
    ps: [0],
    baselines: ["mean"],
    gdSteps: 50,
  },
  e: {
    id: "e",
    title: "Number of heads (fixed head dim)",
    paperFinding: "A single head struggles; 3, 4 and 6 heads perform well, with no significant benefit beyond 3.",
    variants: {
      paper: headVariants(32),
      medium: headVariants(32),
      quick: headVariants(16),
    },
    ps: [0],
    baselines: ["mean"],
    gdSteps: 50,
  },
  f: {
    id: "f",
    title: "FFN vs no FFN",
    paperFinding: "Without the FFN the model cannot align in context.",
    variants: everyPreset([
      { label: "TF FFN", model: {} },
      { label: "TF no FFN", model: { ffn: false } },
    ]),
    ps: [0],
    baselines: ["mean"],
    gdSteps: 50,
  },
};

export function parsePanels(arg: string): PanelId[] {
  if (arg === "all") return [...PANEL_IDS];
  const ids = arg.split(",").map((s) => s.trim().toLowerCase());
  for (const id of ids) {
    if (!(PANEL_IDS as readonly string[]).includes(id)) {
      throw new UserError(`unknown panel "${id}"; expected one of ${PANEL_IDS.join(", ")} or "all"`);
    }
  }
  return [...new Set(ids)] as PanelId[];
}

export function parsePreset(arg: string): PresetDef {
  if (!(PRESET_NAMES as readonly string[]).includes(arg)) {
    throw new UserError(`unknown preset "${arg}"; expected one of ${PRESET_NAMES.join(", ")}`);
  }
  return PRESETS[arg as PresetName];
}

/** The training spec of one variant under a preset. */
export function variantSpec(preset: PresetDef, variant: ModelVariant): TrainSpec {
  return { ...preset.base, model: { ...preset.base.model, ...variant.model } };
}

/** Curve label of a transformer variant at noise level p in a panel. */
export function tfLabel(panel: PanelDef, variant: ModelVariant, p: number): string {
  return panel.ps.length > 1 ? `${variant.label} p=${p}` : variant.label;
}

export function gdLabel(panel: PanelDef, p: number): string {
  return panel.ps.length > 1 ? `GD p=${p}` : "GD";
}

/** A preset's base training spec with some fields replaced (the knobs of `lab train`, named as its flags). */
export interface TrainOverrides {
  preset: string;
  layers?: number;
  embd?: number;
  heads?: number;
  attention?: LabModelSpec["attention"];
  ffn?: boolean;
  batch?: number;
  lr?: number;
  steps?: number;
  warmup?: number;
  decay?: TrainSpec["decay"];
  seed?: number;
  noise?: NoiseKind;
  score?: ScoreKind;
  init?: TrainSpec["init"];
}

export function trainSpecFromOverrides(o: TrainOverrides): TrainSpec {
  const base = parsePreset(o.preset).base;
  const spec: TrainSpec = {
    ...base,
    model: {
      nLayer: o.layers ?? base.model.nLayer,
      nEmbd: o.embd ?? base.model.nEmbd,
      nHead: o.heads ?? base.model.nHead,
      attention: o.attention ?? base.model.attention,
      ffn: o.ffn ?? base.model.ffn,
    },
    batch: o.batch ?? base.batch,
    lr: o.lr ?? base.lr,
    steps: o.steps ?? base.steps,
    warmupSteps: o.warmup ?? base.warmupSteps,
    decay: o.decay ?? base.decay,
    seed: o.seed ?? base.seed,
    noise: o.noise ?? base.noise,
    score: o.score ?? base.score,
    init: o.init ?? base.init,
  };
  if (spec.model.nEmbd % spec.model.nHead !== 0) {
    throw new UserError(`--heads ${spec.model.nHead} does not divide --embd ${spec.model.nEmbd}; choose heads that divide the width`);
  }
  return spec;
}
