/**
 * Side-by-side comparison of several eval runs of one task (e.g. the same model under each defense):
 * a table and one bar chart per judge with the runs as groups and initial/final as bars, the way the
 * paper's Table 1 sets defenses against each other.
 */
import { readFileSync, existsSync } from "node:fs";
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { escapeHtml, htmlFigure, htmlPage, htmlTable, markdownTable, type Cell } from "./html.js";
import { barChartSvg, type BarDatum } from "./plot.js";
import { fmtProportion } from "./eval-report.js";
import type { EvalResults, RunConfigView } from "../eval/summary.js";
import type { Proportion } from "../eval/metrics.js";

export interface ComparedRun {
  label: string;
  dir: string;
  results: EvalResults;
}

/** A short label for a run: its defense and, for CaC, rounds (and the variant unless self-instruct); the attack when not none. */
export function runLabel(r: EvalResults): string {
  const c = r.config as RunConfigView;
  const d = c.defense ?? {};
  let label = String(d.defense ?? "?");
  if (d.defense === "cac") label += `${d.variant && d.variant !== "self-instruct" ? ` ${d.variant}` : ""}${d.rounds !== undefined ? ` R=${d.rounds}` : ""}`;
  if (d.defense === "icd") label += ` k=${d.icdShots}`;
  if (c.critic?.kind === "ground-truth") label += ` gt p=${c.critic.p}`;
  if (c.attack && c.attack !== "none") label += ` / ${c.attack}`;
  return label;
}

export function loadRuns(dirs: string[]): ComparedRun[] {
  if (dirs.length === 0) throw new UserError("eval compare: give at least one run directory (an --output of `selfcorrect eval`)");
  const runs = dirs.map((dir) => {
    const file = join(dir, "results.json");
    if (!existsSync(file)) throw new UserError(`${file}: not found; is ${dir} the --output of a finished \`selfcorrect eval\` run?`);
    let results: EvalResults;
    try {
      results = JSON.parse(readFileSync(file, "utf8")) as EvalResults;
    } catch (e) {
      throw new UserError(`${file}: not valid JSON (${(e as Error).message})`);
    }
    return { dir, label: runLabel(results), results };
  });
  const tasks = new Set(runs.map((r) => r.results.task));
  if (tasks.size > 1) throw new UserError(`eval compare: the runs are of different tasks (${[...tasks].join(", ")}); compare runs of one task`);
  // Same labels (e.g. the same defense on two models) get the directory to tell them apart.
  const counts = new Map<string, number>();
  for (const r of runs) counts.set(r.label, (counts.get(r.label) ?? 0) + 1);
  for (const r of runs) if (counts.get(r.label)! > 1) r.label += ` (${r.dir})`;
  return runs;
}

export interface Metric {
  title: string;
  yTitle: string;
  /** initial and final per run, or undefined when the run lacks it. */
  get(r: EvalResults): { initial: Proportion | number | null; final: Proportion | number | null } | undefined;
}

/** The headline metrics of runs of one task: ASR or over-refusal per judge, or BBQ accuracy. */
export function metricsOf(runs: readonly { results: EvalResults }[]): Metric[] {
  const task = runs[0]!.results.task;
  if (task === "jailbreak") {
    const judges = [...new Set(runs.flatMap((r) => Object.keys(r.results.jailbreak?.asr ?? {})))];
    return judges.map((j) => ({
      title: `ASR, judge ${j}`,
      yTitle: "attack success rate",
      get: (r) => {
        const a = r.jailbreak?.asr[j];
        return a ? { initial: a.initial, final: a.final } : undefined;
      },
    }));
  }
  if (task === "xstest") {
    const judges = [...new Set(runs.flatMap((r) => Object.keys(r.results.benign?.safe ?? {})))];
    return judges.map((j) => ({
      title: `Over-refusal, judge ${j}`,
      yTitle: "refusal rate on safe prompts",
      get: (r) => {
        const a = r.benign?.safe[j];
        return a ? { initial: a.initial, final: a.final } : undefined;
      },
    }));
  }
  return [
    {
      title: "BBQ accuracy",
      yTitle: "accuracy",
      get: (r) => (r.bbq ? { initial: r.bbq.overall[0]?.accuracy ?? null, final: r.bbq.overall[r.bbq.rounds]?.accuracy ?? null } : undefined),
    },
  ];
}

const rate = (v: Proportion | number | null | undefined) => (v === null || v === undefined ? null : typeof v === "number" ? v : v.rate);
const cell = (v: Proportion | number | null | undefined): Cell => (v === null || v === undefined ? null : typeof v === "number" ? v : fmtProportion(v));

function rows(runs: ComparedRun[], metrics: Metric[]): { headers: string[]; rows: Cell[][] } {
  const headers = ["run", "items", "errors", ...metrics.flatMap((m) => [`${m.title}: initial`, "final"])];
  return {
    headers,
    rows: runs.map((r) => [
      r.label,
      String(r.results.counts.selected),
      String(r.results.counts.errors),
      ...metrics.flatMap((m) => {
        const v = m.get(r.results);
        return [cell(v?.initial), cell(v?.final)];
      }),
    ]),
  };
}

export function compareMarkdown(runs: ComparedRun[]): string {
  const m = metricsOf(runs);
  const t = rows(runs, m);
  return `# selfcorrect eval compare: ${runs[0]!.results.task}\n\n${markdownTable(t.headers, t.rows)}\n\n${runs.map((r) => `- ${r.label}: ${r.dir}`).join("\n")}\n`;
}

export async function compareHtml(runs: ComparedRun[]): Promise<string> {
  const metrics = metricsOf(runs);
  const t = rows(runs, metrics);
  const figs: string[] = [];
  for (const m of metrics) {
    const data: BarDatum[] = [];
    for (const r of runs) {
      const v = m.get(r.results);
      if (!v) continue;
      for (const [series, p] of [["initial", v.initial], ["final", v.final]] as const) {
        const value = rate(p);
        if (value === null) continue;
        const d: BarDatum = { group: r.label, series, value };
        if (p && typeof p === "object" && p.low !== null && p.high !== null) {
          d.low = p.low;
          d.high = p.high;
        }
        data.push(d);
      }
    }
    if (data.length) figs.push(htmlFigure(await barChartSvg({ title: m.title, yTitle: m.yTitle, data, yDomain: [0, 1] }), `${m.title}: initial and final answers per run.`));
  }
  const list = `<ul>${runs.map((r) => `<li>${escapeHtml(r.label)}: <code>${escapeHtml(r.dir)}</code> (${escapeHtml(r.results.status)})</li>`).join("")}</ul>`;
  return htmlPage(`selfcorrect eval compare: ${runs[0]!.results.task}`, [
    { title: "Runs side by side", html: htmlTable(t.headers, t.rows) + figs.join("") },
    { title: "Runs", html: list },
  ]);
}
