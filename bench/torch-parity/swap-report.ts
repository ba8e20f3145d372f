/**
 * Summarises swap.py runs (and --score runs): one table row per run with its error at 15 examples at each
 * reward-noise level and the step at which it left the initial plateau, and an SVG of the training losses.
 *
 *   node dist/bench/torch-parity/swap-report.js runs/torch-parity/full-s0/{ts-ts,torch-ts}.json --out runs/torch-parity/swap-losses.svg
 */
import { readFileSync, writeFileSync } from "node:fs";
import { basename, dirname } from "node:path";
import { parseArgs } from "node:util";
import { type Cell, markdownTable } from "../../src/report/html.js";
import { lineChartSvg, SERIES_COLORS } from "../../src/report/plot.js";

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

const rows: Cell[][] = [];
const series: { name: string; x: number[]; y: number[]; color: string }[] = [];
let ps: string[] = [];
for (const file of files) {
  const r = JSON.parse(readFileSync(file, "utf8")) as SwapRun;
  // runs of several dump directories share file names (torch-ts.json ...): the directory tells them apart
  const name = `${basename(dirname(file))}/${basename(file, ".json")}`;
  if (!r.curves || !Array.isArray(r.losses)) throw new Error(`${file} is not a swap.py --json-out file`);
  ps = Object.keys(r.curves);
  const windows: number[] = [];
  for (let i = 0; i + width <= r.losses.length; i += width) {
    windows.push(r.losses.slice(i, i + width).reduce((s, x) => s + x, 0) / width);
  }
  const left = windows.findIndex((x) => x < plateau);
  const initLabel = r.init === "ts" ? `TS ${r.ts_seed}` : `torch ${r.seed}`;
  const dataLabel = r.data === "ts" ? `TS ${r.ts_seed}` : `torch ${r.data_seed ?? r.seed}`;
  const what = r.score ? `scored ${r.score}` : `${initLabel} + ${dataLabel}`;
  rows.push([name, what, ...ps.map((p) => r.curves[p]!.mean.at(-1)!), left < 0 ? "-" : String(left * width)]);
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
