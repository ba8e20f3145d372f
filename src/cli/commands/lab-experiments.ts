/**
 * `selfcorrect lab train | eval | experiment | report | quickstart`: the in-context alignment lab
 * (Figure 1 of the paper) from the command line. A thin layer: flags are validated here (one schema
 * per command, cli/flags.ts), the work lives in src/lab, the report in src/report/lab-report.ts.
 */
import { existsSync } from "node:fs";
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { UserError } from "../../util/errors.js";
import { ensureWritableDir } from "../../util/fs.js";
import { markdownTable, type Cell } from "../../report/html.js";
import { writeLabReport } from "../../report/lab-report.js";
import { defaultEngine } from "../../lab/engine-link.js";
import { flag, parseFlags } from "../flags.js";
import { baselineCurves, evaluateModel, parseNoiseLevels, DEFAULT_EVAL_SEED, DEFAULT_EVAL_TASKS } from "../../lab/evaluate.js";
import { PANELS, parsePanels, parsePreset, trainSpecFromOverrides, type PanelId, type PresetDef } from "../../lab/experiments.js";
import { openCluster, redactUrl } from "../../cluster/connect.js";
import { runLabOnCluster } from "../../cluster/lab.js";
import { readResults, runExperiments, type LabResults } from "../../lab/runner.js";
import { readCheckpointMeta, runId, train } from "../../lab/train.js";

const threadsFlag = flag.int("--threads", 1, 256);

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
  preset: flag.text("--preset").default("quick"),
  layers: flag.int("--layers", 1).optional(),
  embd: flag.int("--embd", 1).optional(),
  heads: flag.int("--heads", 1).optional(),
  attention: flag.choice("--attention", ["softmax", "linear"]).optional(),
  // commander gives ffn = true unless --no-ffn; only an explicit --no-ffn overrides the preset
  ffn: z.boolean().optional().transform((v) => (v === false ? false : undefined)),
  batch: flag.int("--batch", 1, 4096).optional(),
  lr: flag.number("--lr", 0, 1).refine((v) => v > 0, { message: "--lr must be greater than 0" }).optional(),
  steps: flag.int("--steps", 1).optional(),
  warmup: flag.int("--warmup", 0).optional(),
  decay: flag.choice("--decay", ["none", "cosine"]).optional(),
  seed: flag.int("--seed", 0).optional(),
  noise: flag.choice("--noise", ["shared", "independent"]).optional(),
  score: flag.choice("--score", ["cosine", "neg-sq"]).optional(),
  init: flag.choice("--init", ["released", "torch"]).optional(),
  output: flag.text("--output").optional(),
  threads: threadsFlag.optional(),
  checkpointEvery: flag.int("--checkpoint-every", 1).optional(),
  json: flag.bool(),
  progress: z.boolean().default(true),
});

const evalFlags = z.object({
  checkpoint: flag.text("--checkpoint"),
  p: flag.text("--p").default("0"),
  examples: flag.int("--examples", 2).default(15),
  tasks: flag.int("--tasks", 1, 100000).default(DEFAULT_EVAL_TASKS),
  evalSeed: flag.int("--eval-seed", 0).default(DEFAULT_EVAL_SEED),
  baselines: z.boolean().default(true),
  gdSteps: z.union([z.literal("notebook"), flag.int("--gd-steps", 0)], { message: "--gd-steps must be notebook or a whole number >= 0" }).default(50),
  threads: threadsFlag.optional(),
  json: flag.bool(),
});

const experimentFlags = z.object({
  preset: flag.text("--preset").default("quick"),
  output: flag.text("--output").optional(),
  threads: threadsFlag.optional(),
  progress: z.boolean().default(true),
  json: flag.bool(),
  steps: flag.int("--steps", 1).optional(),
  checkpointEvery: flag.int("--checkpoint-every", 1).optional(),
  redis: flag.text("--redis").optional(),
  artifacts: flag.text("--artifacts").optional(),
  detach: flag.bool(),
});

const quickstartFlags = z.object({
  output: flag.text("--output").default(defaultOutput("quick")),
  threads: threadsFlag.optional(),
  progress: z.boolean().default(true),
  json: flag.bool(),
});

const reportFlags = z.object({
  preset: flag.text("--preset").default("quick"),
  output: flag.text("--output").optional(),
});

export function registerLabExperiments(lab: Command): void {
  lab
    .command("train")
    .description("train one transformer on the in-context alignment task (resumes from its checkpoint; Ctrl-C saves and stops)")
    .option("--preset <name>", "base configuration: quick, medium or paper", "quick")
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
    .option("--json", "print one JSON summary as stdout's only line (the text goes to stderr)")
    .action(async (raw: object) => {
      const flags = parseFlags(trainFlags, raw);
      const threads = flags.threads;
      const spec = trainSpecFromOverrides(flags);
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
        // With --json, stdout is the JSON alone (a script can parse all of it); the text goes to stderr.
        (flags.json ? process.stderr : process.stdout).write(
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
    .action(async (raw: object) => {
      const flags = parseFlags(evalFlags, raw);
      const ps = parseNoiseLevels(flags.p);
      const { threads, tasks, evalSeed: seed, gdSteps } = flags;
      const path = flags.checkpoint;
      const meta = readCheckpointMeta(path);
      if (!meta?.spec) throw new UserError(`--checkpoint ${path}: not a lab checkpoint (expected ${path} and ${path}.json written by lab train)`);
      const spec = meta.spec;
      const maxExamples = flags.examples;
      if (maxExamples > spec.n - 1) {
        throw new UserError(
          `--examples ${maxExamples} exceeds the ${spec.n - 1} in-context examples a sequence of ${spec.n} positions has; use at most ${spec.n - 1}`,
        );
      }
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
      if (flags.baselines) {
        const base = baselineCurves(task, ps, maxExamples, { steps: gdSteps, score: spec.score });
        for (const p of ps) curves[ps.length > 1 ? `GD p=${p}` : "GD"] = base.gd[String(p)]!;
        curves.mean = base.mean;
      }
      printCurves(examples, curves, `${path} (${tasks} tasks, eval seed ${seed})`);
      if (flags.json) process.stdout.write(JSON.stringify({ checkpoint: path, examples, curves }) + "\n");
    });

  const experimentAction = async (panelArg: string, flags: z.output<typeof experimentFlags>, quickstart = false) => {
    // Everything is validated before anything is trained.
    const panels = parsePanels(panelArg);
    const named = parsePreset(flags.preset);
    const preset = flags.steps === undefined ? named : { ...named, base: { ...named.base, steps: flags.steps } };
    // Unset: all cores. The results do not depend on it (the engine sums fixed micro-shards in a fixed order).
    const threads = flags.threads;
    const output = flags.output ?? defaultOutput(preset.name);
    if (!flags.redis && (flags.detach || flags.artifacts)) throw new UserError(`${flags.detach ? "--detach" : "--artifacts"} needs --redis URL (a cluster)`);
    ensureWritableDir(output);
    const results = flags.redis
      ? await runOnCluster(panels, preset, { ...flags, redis: flags.redis, output, threads })
      : await runExperiments(panels, preset, { outputDir: output, threads, progress: flags.progress, checkpointEvery: flags.checkpointEvery });
    if (!results) return;
    const files = await writeLabReport(output, results);
    if (quickstart) printQuickstartTable(results);
    else for (const id of panels) printCurves(results.panels[id]!.examples, results.panels[id]!.curves, `Figure 1${id}: ${PANELS[id].title} (${preset.name})`);
    printFindings(results, panels);
    process.stdout.write(`\nreport: ${resolve(files.html)}\n        ${resolve(files.markdown)}\nresults: ${resolve(join(output, "results.json"))}\n`);
    if (flags.json) {
      const obj = panels.length === 1 ? panelJson(results, panels[0]!) : { preset: preset.name, panels: panels.map((id) => panelJson(results, id)) };
      process.stdout.write(JSON.stringify(obj) + "\n");
    }
  };

  lab
    .command("experiment")
    .description("reproduce Figure 1 panels: a (TF vs GD), b (reward noise), c (depth), d (softmax vs linear), e (heads), f (FFN)")
    .argument("<panel>", "a, b, c, d, e, f, a comma-separated list, or all")
    .option("--preset <name>", "quick (minutes on 2 cores), medium (10 layers, batch 64: about 14 min per model and thread with native matmuls, 33 without) or paper (the released configuration)", "quick")
    .option("--output <dir>", "output directory (default runs/lab/<preset>)")
    .option("--threads <n>", "engine worker threads (default: all cores; results do not depend on the count)")
    .option("--no-progress", "no progress bars")
    .option("--json", "print the panel's results as the last stdout line")
    .option("--steps <n>", "train every model for n steps instead of the preset's (a quick check; use its own --output)")
    .option("--checkpoint-every <n>", "checkpoint interval in steps", "100")
    .option("--redis <url>", "train on a cluster: enqueue one job per model for `selfcorrect worker`s, follow them, then evaluate here")
    .option("--artifacts <dir>", "with --redis: checkpoints in this shared directory instead of Redis")
    .option("--detach", "with --redis: enqueue and return; run the same command again to re-attach")
    .addHelpText(
      "after",
      `
On a cluster (docs/cluster.md): workers train, this command shows each job's step, loss, ETA and worker,
then evaluates and writes results.json and the report exactly as without --redis. Ctrl-C detaches (the
jobs go on); the same command re-attaches. Models already trained are not enqueued again.
  selfcorrect lab experiment all --preset paper --redis redis://10.0.0.5:6379 --detach`,
    )
    .action(async (panel: string, raw: object) => experimentAction(panel, parseFlags(experimentFlags, raw)));

  lab
    .command("report")
    .description("rebuild the HTML/Markdown report and SVG figures from results.json")
    .option("--preset <name>", "which preset's default output directory", "quick")
    .option("--output <dir>", "output directory holding results.json (default runs/lab/<preset>)")
    .action(async (raw: object) => {
      const flags = parseFlags(reportFlags, raw);
      const preset = parsePreset(flags.preset);
      const output = flags.output ?? defaultOutput(preset.name);
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
    .option("--threads <n>", "engine worker threads (default: all cores; results do not depend on the count)")
    .option("--no-progress", "no progress bars")
    .option("--json", "print the panels' results as the last stdout line")
    .action(async (raw: object) => experimentAction("a,b", { ...parseFlags(quickstartFlags, raw), preset: "quick", detach: false }, true));
}

/** `lab experiment --redis`: the cluster path, detaching on Ctrl-C. Null when detached. */
async function runOnCluster(
  panels: PanelId[],
  preset: PresetDef,
  f: { redis: string; artifacts?: string; output: string; threads?: number; checkpointEvery?: number; progress: boolean; detach: boolean },
): Promise<LabResults | null> {
  const cluster = await openCluster(f.redis, f.artifacts);
  const ac = new AbortController();
  const onSigint = () => ac.abort();
  process.once("SIGINT", onSigint);
  try {
    const results = await runLabOnCluster(panels, preset, {
      queue: cluster.queue,
      artifacts: cluster.artifacts,
      outputDir: f.output,
      threads: f.threads,
      checkpointEvery: f.checkpointEvery ?? 100,
      progress: f.progress,
      detach: f.detach,
      log: (line) => process.stderr.write(`${line}\n`),
      signal: ac.signal,
    });
    if (!results) process.stdout.write(`enqueued; follow with: selfcorrect queue status --redis ${redactUrl(f.redis)}; re-attach with the same command without --detach\n`);
    return results;
  } finally {
    process.off("SIGINT", onSigint);
    await cluster.close();
  }
}

/** examples x {TF, GD, mean, TF at each p} from panels a and b. */
function printQuickstartTable(r: LabResults): void {
  const a = r.panels.a!, b = r.panels.b!;
  const curves: Record<string, number[]> = { TF: a.curves.TF!, GD: a.curves.GD!, mean: a.curves.mean! };
  for (const [label, c] of Object.entries(b.curves)) if (label.startsWith("TF p=")) curves[label] = c;
  printCurves(a.examples, curves, `1 - cos(prediction, y*) on ${r.evalTasks} held-out tasks (quick preset; TF p = transformer with reward noise p)`);
}
