/**
 * Accuracy side by side: the TypeScript pipeline and shared/bench/torch_reference.py trained at the
 * same configuration (task, PL cosine loss, model, PyTorch-default Linear init, constant-lr Adam,
 * steps) over several seeds, then evaluated at the same reward-noise levels. Prints the error at
 * each example count as mean ± sd over seeds for both, the largest |difference of means| in units
 * of its standard error, and writes an SVG with both sets of curves.
 *
 *   node dist/bench/compare-curves.js --layers 2 --embd 48 --heads 3 --batch 64 --lr 2e-3 \
 *     --steps 3000 --seeds 0,1,2 --p 0,0.5,1 --eval-tasks 2048 --out runs/compare-curves
 *
 * Each finished run is kept in --out (torch-<seed>.json, ts-<seed>/eval.json) and reused when the
 * script is run again, so an interrupted comparison resumes; `--only typescript` / `--only pytorch`
 * run one side (e.g. both sides at once, one per core). The two implementations cannot share
 * random streams: seeds make runs reproducible within an implementation, and agreement is judged
 * across seeds. Both run with --threads each (default 1), one after the other.
 * Needs python3-torch (apt-get install -y python3-torch libopenblas0-pthread).
 */
import { spawnSync } from "node:child_process";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { join, resolve } from "node:path";
import { parseArgs } from "node:util";
import { lineChartSvg, SERIES_COLORS } from "../src/report/plot.js";
import { mean, sd } from "./support/stats.js";
import { lastLine, torchEnv, torchOptions, torchScriptPath } from "./support/torch-reference.js";

const { values: a } = parseArgs({
  options: {
    layers: { type: "string", default: "2" },
    embd: { type: "string", default: "48" },
    heads: { type: "string", default: "3" },
    batch: { type: "string", default: "64" },
    lr: { type: "string", default: "2e-3" },
    steps: { type: "string", default: "3000" },
    seeds: { type: "string", default: "0,1,2" },
    p: { type: "string", default: "0,0.5,1" },
    // held-out tasks per evaluation, the same count on both sides; 2048 keeps eval noise well under seed noise
    "eval-tasks": { type: "string", default: "2048" },
    threads: { type: "string", default: "1" },
    out: { type: "string", default: "runs/compare-curves" },
    ...torchOptions,
    only: { type: "string", default: "both" },
    json: { type: "boolean", default: false },
  },
});

const here = fileURLToPath(new URL(".", import.meta.url));
const torchScript = torchScriptPath(a.torch);
const cli = resolve(here, "../src/cli/main.js");
const seeds = a.seeds!.split(",").map(Number);
const ps = a.p!.split(",").map(Number);
const out = resolve(a.out!);
mkdirSync(out, { recursive: true });
const EXAMPLES = Array.from({ length: 14 }, (_, i) => i + 2); // 2..15, as torch_reference.py reports

function run(what: string, cmd: string, args: string[], env?: NodeJS.ProcessEnv): string {
  process.stderr.write(`${what} ...\n`);
  const t0 = Date.now();
  const line = lastLine(what, spawnSync(cmd, args, { encoding: "utf8", env: env ?? process.env, maxBuffer: 1 << 26 }));
  process.stderr.write(`${what}: ${((Date.now() - t0) / 1000).toFixed(0)} s\n`);
  return line;
}

/** curves[p][k index] for one run of one implementation. */
type Curves = Record<string, number[]>;

function torchRun(seed: number): Curves {
  const file = join(out, `torch-${seed}.json`);
  if (!existsSync(file)) {
    // torch.set_num_threads does not reach OpenBLAS's own pool, which otherwise spins a thread per core
    const env = { ...torchEnv(), OPENBLAS_NUM_THREADS: a.threads!, OMP_NUM_THREADS: a.threads! };
    const line = run(`pytorch seed ${seed}`, a.python!, [
      torchScript, "--layers", a.layers!, "--embd", a.embd!, "--heads", a.heads!, "--batch", a.batch!,
      "--lr", a.lr!, "--steps", a.steps!, "--threads", a.threads!, "--seed", String(seed), "--eval-batch", a["eval-tasks"]!, "--noise-p", ...ps.map(String),
    ], env);
    writeFileSync(file, line + "\n");
  }
  const r = JSON.parse(readFileSync(file, "utf8")) as { curves: Record<string, Record<string, number>> };
  const curves: Curves = {};
  for (const p of ps) {
    const c = r.curves[Number.isInteger(p) ? p.toFixed(1) : String(p)]; // Python's str(float)
    if (!c) throw new Error(`${file} has no curve for p = ${p} (it has ${Object.keys(r.curves).join(", ")}); delete it to rerun`);
    curves[String(p)] = EXAMPLES.map((k) => c[String(k)]!);
  }
  return curves;
}

function tsRun(seed: number): Curves {
  const dir = join(out, `ts-${seed}`);
  const file = join(dir, "eval.json");
  if (!existsSync(file)) {
    run(`typescript seed ${seed} (train)`, process.execPath, [
      cli, "lab", "train", "--layers", a.layers!, "--embd", a.embd!, "--heads", a.heads!, "--batch", a.batch!,
      "--lr", a.lr!, "--steps", a.steps!, "--warmup", "0", "--decay", "none", "--init", "torch",
      "--seed", String(seed), "--threads", a.threads!, "--output", dir, "--no-progress", "--json",
    ]);
    const line = run(`typescript seed ${seed} (eval)`, process.execPath, [
      cli, "lab", "eval", "--checkpoint", join(dir, "model.safetensors"), "--p", ps.join(","),
      "--no-baselines", "--tasks", a["eval-tasks"]!, "--threads", a.threads!, "--json",
    ]);
    writeFileSync(file, line + "\n");
  }
  const r = JSON.parse(readFileSync(file, "utf8")) as { examples: number[]; curves: Record<string, number[]> };
  const curves: Curves = {};
  for (const p of ps) {
    const c = r.curves[ps.length > 1 ? `TF p=${p}` : "TF"]!;
    curves[String(p)] = EXAMPLES.map((k) => c[r.examples.indexOf(k)]!);
  }
  return curves;
}

// --only typescript|pytorch runs one side (e.g. both at once on two cores); the comparison needs both.
if (!["both", "typescript", "pytorch"].includes(a.only!)) throw new Error(`--only must be both, typescript or pytorch, got ${a.only}`);
const tsRuns = a.only === "pytorch" ? [] : seeds.map(tsRun);
const torchRuns = a.only === "typescript" ? [] : seeds.map(torchRun);
if (a.only !== "both") process.exit(0);

const summary: Record<string, { examples: number[]; pytorch: { mean: number[]; sd: number[] }; typescript: { mean: number[]; sd: number[] }; max_abs_diff: number; max_diff_in_se: number }> = {};
const lines: string[] = [];
const series = [];
for (const p of ps) {
  const key = String(p);
  const stat = (runs: Curves[]) => ({
    mean: EXAMPLES.map((_, i) => mean(runs.map((r) => r[key]![i]!))),
    sd: EXAMPLES.map((_, i) => sd(runs.map((r) => r[key]![i]!))),
  });
  const t = stat(torchRuns);
  const s = stat(tsRuns);
  const diffs = EXAMPLES.map((_, i) => Math.abs(s.mean[i]! - t.mean[i]!));
  // standard error of a difference of two means over the seeds (training noise dominates eval noise)
  const se = EXAMPLES.map((_, i) => Math.sqrt((s.sd[i]! ** 2 + t.sd[i]! ** 2) / seeds.length));
  summary[key] = {
    examples: EXAMPLES, pytorch: t, typescript: s,
    max_abs_diff: Math.max(...diffs),
    max_diff_in_se: Math.max(...diffs.map((d, i) => (se[i]! > 0 ? d / se[i]! : d > 0 ? Infinity : 0))),
  };
  lines.push(`\nreward noise p = ${p} (1 - cos to y*, mean ± sd over seeds ${seeds.join(", ")})`);
  lines.push("| examples | PyTorch | TypeScript | difference |", "| --- | --- | --- | --- |");
  EXAMPLES.forEach((k, i) => {
    lines.push(`| ${k} | ${t.mean[i]!.toFixed(3)} ± ${t.sd[i]!.toFixed(3)} | ${s.mean[i]!.toFixed(3)} ± ${s.sd[i]!.toFixed(3)} | ${(s.mean[i]! - t.mean[i]!).toFixed(3)} |`);
  });
  const color = SERIES_COLORS[ps.indexOf(p) % SERIES_COLORS.length]!; // one hue per p
  series.push({ name: `PyTorch p=${p}`, x: EXAMPLES, y: t.mean, dashed: true, color }, { name: `TypeScript p=${p}`, x: EXAMPLES, y: s.mean, color });
}
process.stdout.write(
  `config: ${a.layers} layers, ${a.embd} dims, ${a.heads} heads, batch ${a.batch}, Adam lr ${a.lr} (constant), ${a.steps} steps, PyTorch-default init, ${a["eval-tasks"]} held-out tasks per evaluation\n` +
    lines.join("\n") + "\n",
);
const svg = await lineChartSvg({
  title: `TypeScript vs PyTorch, ${a.layers} layers / ${a.embd} dims, ${a.steps} steps, mean of ${seeds.length} seeds`,
  xTitle: "in-context examples", yTitle: "1 - cos(prediction, y*)", series, yDomain: [0, 1.1],
});
writeFileSync(join(out, "curves.svg"), svg);
process.stdout.write(`plot: ${join(out, "curves.svg")}\n`);
if (a.json) process.stdout.write(JSON.stringify({ seeds, p: ps, summary }) + "\n");
