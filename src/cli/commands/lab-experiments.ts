/**
 * `selfcorrect lab train | eval | experiment | report | quickstart`: the in-context alignment lab
 * (Figure 1 of the paper) from the command line. A thin layer: flags are validated here (zod), the
 * work lives in src/lab, the report in src/report/lab-report.ts.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { UserError, parseOrThrow } from "../../util/errors.js";
import { ensureWritableDir } from "../../util/fs.js";
import { markdownTable, type Cell } from "../../report/html.js";
import { writeLabReport } from "../../report/lab-report.js";
import { defaultEngine } from "../../lab/engine-link.js";
import { baselineCurves, evaluateModel, DEFAULT_EVAL_SEED, DEFAULT_EVAL_TASKS } from "../../lab/evaluate.js";
import { PANELS, parsePanels, parsePreset, type PanelId } from "../../lab/experiments.js";
import { readResults, runExperiments, type LabResults } from "../../lab/runner.js";
import { readCheckpointMeta, runId, train, type TrainSpec } from "../../lab/train.js";

const threadsSchema = z.coerce.number().int("--threads must be an integer").min(1, "--threads must be >= 1").max(256).optional();

function parseThreads(v: unknown): number | undefined {
  return parseOrThrow(threadsSchema, v, "--threads");
}

export const QUICK_PRESET_THREADS = 2;

/** "0,0.25,1" -> [0, 0.25, 1], each in [0, 1]. */
export function parseNoiseLevels(arg: string): number[] {
  const ps = arg.split(",").map((s) => s.trim()).filter(Boolean).map(Number);
  if (ps.length === 0) throw new UserError(`--p: expected a comma-separated list of probabilities in [0, 1], got "${arg}"`);
  for (const p of ps) {
    if (!Number.isFinite(p) || p < 0 || p > 1) {
      throw new UserError(`--p: reward-noise probability ${p} is outside [0, 1]; use values such as 0,0.25,0.5,0.75,1`);
    }
  }
  return ps;
}

function parseExamples(v: unknown, n: number): number {
  const k = Number(v);
  if (!Number.isInteger(k) || k < 2) throw new UserError(`--examples: expected an integer >= 2, got "${String(v)}"`);
  if (k > n - 1) {
    throw new UserError(`--examples ${k} exceeds the ${n - 1} in-context examples a sequence of ${n} positions has; use at most ${n - 1}`);
  }
  return k;
}

function defaultOutput(preset: string): string {
  return join("runs", "lab", preset);
}

/** Prints a curve table (examples x curves) to stdout. */
function printCurves(examples: number[], curves: Record<string, number[]>, title?: string): void {
  const labels = Object.keys(curves);
  const rows: Cell[][] = examples.map((k, i) => [String(k), ...labels.map((l) => curves[l]![i]!)]);
  if (title) process.stdout.write(`\n${title}\n`);
  process.stdout.write(markdownTable(["examples", ...labels], rows, 3) + "\n");
}

function panelJson(r: LabResults, id: PanelId) {
  const p = r.panels[id]!;
  return { panel: id, preset: p.preset, examples: p.examples, curves: p.curves, findings: p.findings };
}

function printFindings(r: LabResults, ids: PanelId[]): void {
  for (const id of ids) {
    const p = r.panels[id];
    if (!p) continue;
    process.stdout.write(`\nFigure 1${id} (${p.title}):\n`);
    for (const f of p.findings) process.stdout.write(`  [${f.holds ? "holds" : "FAILS"}] ${f.claim}: ${f.detail}\n`);
  }
}

const trainFlags = z.object({
  preset: z.string().default("quick"),
  layers: z.coerce.number().int().min(1).optional(),
  embd: z.coerce.number().int().min(1).optional(),
  heads: z.coerce.number().int().min(1).optional(),
  attention: z.enum(["softmax", "linear"]).optional(),
  ffn: z.boolean().optional(),
  batch: z.coerce.number().int().min(1).max(4096).optional(),
  lr: z.coerce.number().positive().max(1).optional(),
  steps: z.coerce.number().int().min(1).optional(),
  warmup: z.coerce.number().int().min(0).optional(),
  decay: z.enum(["none", "cosine"]).optional(),
  seed: z.coerce.number().int().min(0).optional(),
  noise: z.enum(["shared", "independent"]).optional(),
  score: z.enum(["cosine", "neg-sq"]).optional(),
  init: z.enum(["released", "torch"]).optional(),
  output: z.string().optional(),
  threads: z.unknown().optional(),
  checkpointEvery: z.coerce.number().int().min(1).optional(),
  json: z.boolean().optional(),
  progress: z.boolean().optional(),
});

export function trainSpecFromFlags(flags: z.infer<typeof trainFlags>): TrainSpec {
  const base = parsePreset(flags.preset).base;
  const spec: TrainSpec = {
    ...base,
    model: {
      nLayer: flags.layers ?? base.model.nLayer,
      nEmbd: flags.embd ?? base.model.nEmbd,
      nHead: flags.heads ?? base.model.nHead,
      attention: flags.attention ?? base.model.attention,
      ffn: flags.ffn ?? base.model.ffn,
    },
    batch: flags.batch ?? base.batch,
    lr: flags.lr ?? base.lr,
    steps: flags.steps ?? base.steps,
    warmupSteps: flags.warmup ?? base.warmupSteps,
    decay: flags.decay ?? base.decay,
    seed: flags.seed ?? base.seed,
    noise: flags.noise ?? base.noise,
    score: flags.score ?? base.score,
    init: flags.init ?? base.init,
  };
  if (spec.model.nEmbd % spec.model.nHead !== 0) {
    throw new UserError(`--heads ${spec.model.nHead} does not divide --embd ${spec.model.nEmbd}; choose heads that divide the width`);
  }
  return spec;
}

export function registerLabExperiments(lab: Command): void {
  lab
    .command("train")
    .description("train one transformer on the in-context alignment task (resumes from its checkpoint; Ctrl-C saves and stops)")
    .option("--preset <name>", "base configuration: quick or paper", "quick")
    .option("--layers <n>", "transformer blocks")
    .option("--embd <n>", "model width")
    .option("--heads <n>", "attention heads")
    .option("--attention <kind>", "softmax or linear")
    .option("--no-ffn", "blocks without the feed-forward network")
    .option("--batch <n>", "tasks per step")
    .option("--lr <x>", "Adam learning rate")
    .option("--steps <n>", "training steps")
    .option("--warmup <n>", "linear learning-rate warm-up steps")
    .option("--decay <kind>", "none or cosine (to 10% of lr)")
    .option("--seed <n>", "seed of the init and the data stream")
    .option("--noise <kind>", "distractors: shared (released code) or independent (paper text)")
    .option("--score <kind>", "PL score: cosine (released code) or neg-sq (paper text)")
    .option("--init <kind>", "released (GPT-2 blocks, PyTorch read-in/out) or torch (PyTorch default for every Linear)")
    .option("--output <dir>", "run directory (default runs/lab/train/<run id>)")
    .option("--threads <n>", "engine worker threads")
    .option("--checkpoint-every <n>", "checkpoint interval in steps", "100")
    .option("--no-progress", "no progress bar")
    .option("--json", "print one JSON summary as the last stdout line")
    .action(async (raw: Record<string, unknown>) => {
      const flags = parseOrThrow(trainFlags, { ...raw, ffn: raw.ffn === false ? false : undefined }, "lab train flags");
      const threads = parseThreads(flags.threads);
      const spec = trainSpecFromFlags(flags);
      const dir = flags.output ?? join("runs", "lab", "train", runId(spec));
      ensureWritableDir(dir);
      const checkpoint = join(dir, "model.safetensors");
      const r = await train(spec, { checkpointPath: checkpoint, threads, checkpointEvery: flags.checkpointEvery, progress: flags.progress, maxBatch: 256 });
      try {
        const ev = await evaluateModel(r.model, { d: spec.d, n: spec.n, noise: spec.noise, tasks: DEFAULT_EVAL_TASKS, seed: DEFAULT_EVAL_SEED }, [0], 15, 256);
        const finalLoss = r.lossHistory.length ? r.lossHistory[r.lossHistory.length - 1]! : NaN;
        const summary = {
          checkpoint,
          runId: runId(spec),
          steps: r.model.step,
          params: r.model.paramCount,
          trainSeconds: Math.round(r.trainSeconds * 10) / 10,
          finalLoss,
          examples: ev.examples,
          curves: { TF: ev.tf["0"]! },
        };
        process.stdout.write(
          `trained ${summary.runId}: ${summary.steps} steps, ${summary.params} parameters, ${summary.trainSeconds} s, loss over the last 10 steps ${finalLoss.toFixed(4)}\n` +
            `checkpoint: ${checkpoint}\nerror at 15 examples (clean rewards, ${DEFAULT_EVAL_TASKS} tasks): ${ev.tf["0"]![13]!.toFixed(3)}\n`,
        );
        if (flags.json) process.stdout.write(JSON.stringify(summary) + "\n");
      } finally {
        await r.model.dispose();
      }
    });

  lab
    .command("eval")
    .description("error curves of a trained checkpoint (1 - cos to y*) vs in-context examples, with GD and running-mean baselines")
    .requiredOption("--checkpoint <path>", "model.safetensors written by lab train or lab experiment")
    .option("--p <list>", "reward-noise probabilities, comma-separated, each in [0, 1]", "0")
    .option("--examples <n>", "largest number of in-context examples", "15")
    .option("--tasks <n>", "held-out tasks", String(DEFAULT_EVAL_TASKS))
    .option("--eval-seed <n>", "seed of the held-out tasks", String(DEFAULT_EVAL_SEED))
    .option("--no-baselines", "skip GD and running mean")
    .option("--gd-steps <n|notebook>", "GD Adam steps, or notebook for int(50 - 25 p)", "50")
    .option("--threads <n>", "engine worker threads")
    .option("--json", "print {examples, curves} as the last stdout line")
    .action(async (raw: Record<string, unknown>) => {
      const ps = parseNoiseLevels(String(raw.p));
      const threads = parseThreads(raw.threads);
      const tasks = parseOrThrow(z.coerce.number().int().min(1).max(100000), raw.tasks, "--tasks");
      const seed = parseOrThrow(z.coerce.number().int().min(0), raw.evalSeed, "--eval-seed");
      const gdStepsRaw = String(raw.gdSteps);
      const gdSteps = gdStepsRaw === "notebook" ? "notebook" : parseOrThrow(z.coerce.number().int().min(0), gdStepsRaw, "--gd-steps");
      const path = String(raw.checkpoint);
      const meta = readCheckpointMeta(path);
      if (!meta?.spec) throw new UserError(`--checkpoint ${path}: not a lab checkpoint (expected ${path} and ${path}.json written by lab train)`);
      const spec = meta.spec;
      const maxExamples = parseExamples(raw.examples, spec.n);
      const engine = await defaultEngine();
      const chunk = Math.min(tasks, 256);
      const { model } = await engine.loadModel(path, { threads, maxBatch: chunk });
      const task = { d: spec.d, n: spec.n, noise: spec.noise, tasks, seed };
      const curves: Record<string, number[]> = {};
      let examples: number[];
      try {
        const ev = await evaluateModel(model, task, ps, maxExamples, chunk);
        examples = ev.examples;
        for (const p of ps) curves[ps.length > 1 ? `TF p=${p}` : "TF"] = ev.tf[String(p)]!;
      } finally {
        await model.dispose();
      }
      if (raw.baselines !== false) {
        const base = baselineCurves(task, ps, maxExamples, { steps: gdSteps, score: spec.score });
        for (const p of ps) curves[ps.length > 1 ? `GD p=${p}` : "GD"] = base.gd[String(p)]!;
        curves.mean = base.mean;
      }
      printCurves(examples, curves, `${path} (${tasks} tasks, eval seed ${seed})`);
      if (raw.json) process.stdout.write(JSON.stringify({ checkpoint: path, examples, curves }) + "\n");
    });

  const experimentAction = async (panelArg: string, raw: Record<string, unknown>, quickstart = false) => {
    // Everything is validated before anything is trained.
    const panels = parsePanels(panelArg);
    const preset = parsePreset(String(raw.preset));
    // Training is bit-reproducible for a fixed thread count, not across counts (the gradient reduce
    // sums shards in a different order), so the quick preset pins 2 threads by default: its tables
    // then come out the same on every machine, as printed in the README.
    const threads = parseThreads(raw.threads) ?? (preset.name === "quick" ? QUICK_PRESET_THREADS : undefined);
    const output = String(raw.output ?? defaultOutput(preset.name));
    ensureWritableDir(output);
    const results = await runExperiments(panels, preset, { outputDir: output, threads, progress: raw.progress !== false });
    const files = await writeLabReport(output, results);
    if (quickstart) printQuickstartTable(results);
    else for (const id of panels) printCurves(results.panels[id]!.examples, results.panels[id]!.curves, `Figure 1${id}: ${PANELS[id].title} (${preset.name})`);
    printFindings(results, panels);
    process.stdout.write(`\nreport: ${resolve(files.html)}\n        ${resolve(files.markdown)}\nresults: ${resolve(join(output, "results.json"))}\n`);
    if (raw.json) {
      const obj = panels.length === 1 ? panelJson(results, panels[0]!) : { preset: preset.name, panels: panels.map((id) => panelJson(results, id)) };
      process.stdout.write(JSON.stringify(obj) + "\n");
    }
  };

  lab
    .command("experiment")
    .description("reproduce Figure 1 panels: a (TF vs GD), b (reward noise), c (depth), d (softmax vs linear), e (heads), f (FFN)")
    .argument("<panel>", "a, b, c, d, e, f, a comma-separated list, or all")
    .option("--preset <name>", "quick (minutes on 2 cores) or paper (the released configuration)", "quick")
    .option("--output <dir>", "output directory (default runs/lab/<preset>)")
    .option("--threads <n>", "engine worker threads (default: 2 for quick, so results match on every machine; all cores for paper)")
    .option("--no-progress", "no progress bars")
    .option("--json", "print the panel's results as the last stdout line")
    .action(async (panel: string, raw: Record<string, unknown>) => experimentAction(panel, raw));

  lab
    .command("report")
    .description("rebuild the HTML/Markdown report and SVG figures from results.json")
    .option("--preset <name>", "which preset's default output directory", "quick")
    .option("--output <dir>", "output directory holding results.json (default runs/lab/<preset>)")
    .action(async (raw: Record<string, unknown>) => {
      const preset = parsePreset(String(raw.preset));
      const output = String(raw.output ?? defaultOutput(preset.name));
      const results = readResults(output);
      if (!results) {
        throw new UserError(
          `--output ${output}: no results.json there${existsSync(output) ? "" : " (the directory does not exist)"}; run selfcorrect lab experiment first`,
        );
      }
      ensureWritableDir(output);
      const files = await writeLabReport(output, results);
      process.stdout.write(`report: ${resolve(files.html)}\n        ${resolve(files.markdown)}\n`);
    });

  lab
    .command("quickstart")
    .description("the quick reproduction of Figure 1a and 1b (one model, reward noise applied at evaluation): a table and a report")
    .option("--output <dir>", "output directory", defaultOutput("quick"))
    .option("--threads <n>", "engine worker threads (default 2: results are reproducible for a fixed thread count)")
    .option("--no-progress", "no progress bars")
    .option("--json", "print the panels' results as the last stdout line")
    .action(async (raw: Record<string, unknown>) => experimentAction("a,b", { ...raw, preset: "quick" }, true));
}

/** examples x {TF, GD, mean, TF at each p} from panels a and b. */
function printQuickstartTable(r: LabResults): void {
  const a = r.panels.a!, b = r.panels.b!;
  const curves: Record<string, number[]> = { TF: a.curves.TF!, GD: a.curves.GD!, mean: a.curves.mean! };
  for (const [label, c] of Object.entries(b.curves)) if (label.startsWith("TF p=")) curves[label] = c;
  printCurves(a.examples, curves, `1 - cos(prediction, y*) on ${r.evalTasks} held-out tasks (quick preset; TF p = transformer with reward noise p)`);
}
