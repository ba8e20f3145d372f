/**
 * Summarises swap.py runs (and --score runs): one table row per run with its error at 15 examples at each
 * reward-noise level and the step at which it left the initial plateau, and an SVG of the training losses.
 * Then each side's own runs (TypeScript: a scored engine model or a TS init + TS batches replay, one per TS seed;
 * PyTorch: torch init + torch batches of one seed, i.e. torch_reference.py's run) are compared at each noise level:
 * mean ± sd over seeds, Welch's t and an exact permutation p-value of the difference.
 *
 *   node dist/bench/torch-parity/swap-report.js runs/torch-parity/full-s0/{ts-ts,torch-ts}.json --out runs/torch-parity/swap-losses.svg
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { type Cell, markdownTable } from "../../src/report/html.js";
import { lineChartSvg, SERIES_COLORS } from "../../src/report/plot.js";
import { mean, permutationP, sd, welchT } from "../support/stats.js";

const { values: a, positionals: files } = parseArgs({
  allowPositionals: true,
  options: {
    out: { type: "string", default: "runs/torch-parity/swap-losses.svg" },
    // the loss is averaged over windows of this many steps, for the plot and the plateau test
    window: { type: "string", default: "50" },
    // a run has left the plateau at the first window whose mean loss is below this
    plateau: { type: "string", default: "16" },
  },
});
if (files.length === 0) throw new Error("give swap.py --json-out files");
const width = Number(a.window);
const plateau = Number(a.plateau);

interface SwapRun {
  init: string | null;
  data: string | null;
  seed: number;
  data_seed?: number | null;
  ts_seed: number;
  score: string | null;
  losses: number[];
  curves: Record<string, { mean: number[]; se: number[] }>;
}

/** The TypeScript seed a scored engine model was trained with, from its checkpoint's sidecar (null when unknown). */
function scoredSeed(score: string): number | null {
  try {
    const meta = JSON.parse(readFileSync(`${score}.json`, "utf8")) as { extra?: { spec?: { seed?: number } } };
    return meta.extra?.spec?.seed ?? null;
  } catch {
    return null;
  }
}

/** Which side's own run this is ("TS 3", "torch 5"), or null for a swap. */
function ownRun(r: SwapRun): string | null {
  if (r.score) {
    const seed = scoredSeed(r.score);
    return seed === null ? `TS ${r.score}` : `TS ${seed}`;
  }
  if (r.init === "ts" && r.data === "ts") return `TS ${r.ts_seed}`;
  if (r.init === "torch" && r.data === "torch" && (r.data_seed ?? r.seed) === r.seed) return `torch ${r.seed}`;
  return null;
}

/** Each own run's error curve (2..15 examples) at each noise level. */
const own = new Map<string, Record<string, number[]>>();
const rows: Cell[][] = [];
const series: { name: string; x: number[]; y: number[]; color: string }[] = [];
let ps: string[] = [];
for (const file of files) {
  let r: SwapRun;
  try {
    r = JSON.parse(readFileSync(file, "utf8")) as SwapRun;
  } catch (e) {
    throw new Error(`${file}: not a swap.py --json-out file (${(e as Error).message})`);
  }
  // runs of several dump directories share file names (torch-ts.json ...): the directory tells them apart
  const name = `${basename(dirname(file))}/${basename(file, ".json")}`;
  if (!r.curves || !Array.isArray(r.losses)) throw new Error(`${file} is not a swap.py --json-out file`);
  ps = Object.keys(r.curves);
  const windows: number[] = [];
  for (let i = 0; i + width <= r.losses.length; i += width) {
    windows.push(mean(r.losses.slice(i, i + width)));
  }
  const left = windows.findIndex((x) => x < plateau);
  const initLabel = r.init === "ts" ? `TS ${r.ts_seed}` : `torch ${r.seed}`;
  const dataLabel = r.data === "ts" ? `TS ${r.ts_seed}` : `torch ${r.data_seed ?? r.seed}`;
  const what = r.score ? `scored ${r.score}` : `${initLabel} + ${dataLabel}`;
  rows.push([name, what, ...ps.map((p) => r.curves[p]!.mean.at(-1)!), left < 0 ? "-" : String(left * width)]);
  const key = ownRun(r);
  if (key !== null) {
    if (own.has(key)) process.stderr.write(`${file}: a second run of ${key}; the first one counts\n`);
    else own.set(key, Object.fromEntries(ps.map((p) => [p, r.curves[p]!.mean])));
  }
  if (windows.length > 0) {
    series.push({
      name: what,
      x: windows.map((_, i) => i * width),
      y: windows,
      color: SERIES_COLORS[series.length % SERIES_COLORS.length]!,
    });
  }
}
process.stdout.write(
  `${markdownTable(["run", "init + batches", ...ps.map((p) => `p = ${p}`), "left the plateau at step"], rows, 4)}\n`,
);
const side = (prefix: string) => [...own].filter(([k]) => k.startsWith(prefix));
const tsRuns = side("TS ");
const torchRuns = side("torch ");
const ts = tsRuns.map(([, v]) => v);
const torch = torchRuns.map(([, v]) => v);
if (ts.length >= 2 && torch.length >= 2) {
  const cell = (xs: number[]) => `${mean(xs).toFixed(4)} ± ${sd(xs).toFixed(4)}`;
  const sideRows: Cell[][] = ps.map((p) => {
    const at = (runs: Record<string, number[]>[], k: number) => runs.map((v) => v[p]![k]!);
    const last = ts[0]![p]!.length - 1;
    const a = at(ts, last);
    const b = at(torch, last);
    // the same test at every example count, as a description of the whole curve (the counts are not independent)
    const largestT = Math.max(...ts[0]![p]!.map((_, k) => Math.abs(welchT(at(ts, k), at(torch, k)))));
    return [p, cell(a), cell(b), mean(a) - mean(b), welchT(a, b), permutationP(a, b), largestT];
  });
  process.stdout.write(
    `\nown runs, error at 15 examples: TypeScript (${tsRuns.map(([k]) => k).join(", ")}) ` +
      `vs PyTorch (${torchRuns.map(([k]) => k).join(", ")})\n` +
      `${markdownTable(["p", `TypeScript (n = ${ts.length})`, `PyTorch (n = ${torch.length})`, "TS - PyTorch", "Welch t", "permutation p", "largest |t| over 2..15 examples"], sideRows, 4)}\n`,
  );
}
if (series.length > 0) {
  const svg = await lineChartSvg({
    title: `training loss (init + batches), mean of each ${width} steps`,
    xTitle: "step",
    yTitle: "PL loss",
    series,
  });
  writeFileSync(a.out!, svg);
  process.stdout.write(`plot: ${a.out}\n`);
}
