/**
 * The lab's report: one SVG per Figure 1 panel (GD and the running mean dashed), a self-contained
 * HTML page (figures inline) and a Markdown twin, built from results.json alone so
 * `selfcorrect lab report` can rebuild it without retraining.
 */
import { join } from "node:path";
import type { LabResults, PanelResult } from "../lab/runner.js";
import { PANEL_IDS } from "../lab/experiments.js";
import { writeFileAtomic } from "../util/fs.js";
import { escapeHtml, htmlFigure, htmlPage, htmlTable, markdownTable, type Cell, type HtmlSection } from "./html.js";
import { lineChartSvg, SERIES_COLORS } from "./plot.js";

/**
 * Curves labelled "... p=<level>" (panel b) get one hue per noise level, TF solid and GD dashed, so a
 * level's two curves read as a pair; "mean" is grey. Other panels keep the default colours.
 */
function noiseLevelColors(names: string[]): Map<string, string> | null {
  const level = (n: string) => /p=([\d.]+)$/.exec(n)?.[1];
  if (!names.some((n) => level(n) !== undefined)) return null;
  const levels = [...new Set(names.map(level).filter((l): l is string => l !== undefined))];
  const colors = new Map<string, string>();
  for (const n of names) {
    const l = level(n);
    colors.set(n, l === undefined ? "#888888" : SERIES_COLORS[levels.indexOf(l) % SERIES_COLORS.length]!);
  }
  return colors;
}

export async function panelSvg(p: PanelResult): Promise<string> {
  const colors = noiseLevelColors(Object.keys(p.curves));
  return lineChartSvg({
    title: `Figure 1${p.panel}: ${p.title} (${p.preset})`,
    xTitle: "in-context examples",
    yTitle: "1 - cos(prediction, y*)",
    series: Object.entries(p.curves).map(([name, y]) => ({
      name, x: p.examples, y, dashed: p.dashed.includes(name), ...(colors ? { color: colors.get(name)! } : {}),
    })),
  });
}

/** Rows: examples; columns: every curve of the panel. */
export function panelTable(p: PanelResult): { headers: string[]; rows: Cell[][] } {
  const labels = Object.keys(p.curves);
  return {
    headers: ["examples", ...labels],
    rows: p.examples.map((k, i) => [String(k), ...labels.map((l) => p.curves[l]![i]!)]),
  };
}

function findingsHtml(p: PanelResult): string {
  const items = p.findings
    .map((f) => `<li><span class="${f.holds ? "ok" : "bad"}">${f.holds ? "holds" : "does not hold"}</span>: ${escapeHtml(f.claim)} <span class="meta">(${escapeHtml(f.detail)})</span></li>`)
    .join("\n");
  return `<p><b>Paper:</b> ${escapeHtml(p.paperFinding)}</p><ul>${items}</ul>`;
}

function runsTable(r: LabResults): { headers: string[]; rows: Cell[][] } {
  return {
    headers: ["run", "layers", "embd", "heads", "attention", "FFN", "batch", "lr", "steps", "params", "train time (s)", "final loss"],
    rows: Object.values(r.runs).map((run) => [
      run.id,
      String(run.spec.model.nLayer),
      String(run.spec.model.nEmbd),
      String(run.spec.model.nHead),
      run.spec.model.attention,
      run.spec.model.ffn ? "yes" : "no",
      String(run.spec.batch),
      String(run.spec.lr),
      String(run.spec.steps),
      String(run.paramCount),
      Math.round(run.trainSeconds),
      run.lossHistory.length ? run.lossHistory[run.lossHistory.length - 1]! : null,
    ]),
  };
}

const METHOD = `Task: d = 5, one query x ~ N(0, I) per task, y* = x W, rewards r ~ U(0, 1), responses y = r y* + (1 - r) e
(noise "shared": one distractor per task as in the released code; "independent": one per response as in the paper text).
Tokens interleave (x, y, r); the prediction at position k has seen k (response, reward) pairs. Loss: Plackett-Luce over the
preceding responses ranked by reward (cosine score, as released). Metric: 1 - cos(prediction, y*) averaged over the held-out
tasks. GD: a bias-free linear map per task and example count, Adam lr 0.1, 50 steps (panel b: int(50 - 25 p) as in the
released notebook), on the same PL loss and observed rewards. Mean: the running mean of the responses seen so far.
Reward noise p: each observed reward replaced by a fresh U(0, 1) value with probability p; responses keep their true rewards.`;

const NOTES = `Reading the curves. With shared distractors every response lies between y* and one distractor, so the running
mean of the responses already scores about 0.3-0.35; a model below it uses the rewards. A model that follows the rewards
extrapolates from low- to high-reward responses, so with random rewards (p = 1) it points in a random direction and scores
about 1 (chance), like GD; a model that only averages would stay near the mean at p = 1. Training shows a long plateau (chance,
then the running mean) before the use of the rewards appears abruptly, at a step that varies with the seed; the quick preset
trains past it. Its configuration and the PyTorch-default init of the Linear layers (init "torch", as
shared/bench/torch_reference.py; with GPT-2's normal(0, 0.02) init small models stayed at chance much longer) were chosen
by measurement: see src/lab/README.md.`;

export interface LabReportFiles {
  html: string;
  markdown: string;
  svgs: string[];
}

export async function writeLabReport(outputDir: string, r: LabResults): Promise<LabReportFiles> {
  const sections: HtmlSection[] = [];
  const md: string[] = [
    `# In-context alignment lab: Figure 1 (${r.preset} preset)`,
    "",
    `Updated ${r.updatedAt}. ${r.evalTasks} held-out tasks (eval seed ${r.evalSeed}). Preset: ${r.presetDescription}.`,
    "",
  ];
  const svgs: string[] = [];
  for (const id of PANEL_IDS) {
    const p = r.panels[id];
    if (!p) continue;
    const svg = await panelSvg(p);
    const svgPath = join(outputDir, `panel-${id}.svg`);
    writeFileAtomic(svgPath, svg);
    svgs.push(svgPath);
    const t = panelTable(p);
    sections.push({
      id: `panel-${id}`,
      title: `Figure 1${id}: ${p.title}`,
      html: `${htmlFigure(svg, `Error vs in-context examples; dashed = baselines.`)}${findingsHtml(p)}${htmlTable(t.headers, t.rows, { digits: 3 })}`,
    });
    md.push(`## Figure 1${id}: ${p.title}`, "", `![panel ${id}](panel-${id}.svg)`, "", `Paper: ${p.paperFinding}`, "");
    for (const f of p.findings) md.push(`- **${f.holds ? "holds" : "does not hold"}**: ${f.claim} (${f.detail})`);
    md.push("", markdownTable(t.headers, t.rows, 3), "");
  }
  const rt = runsTable(r);
  sections.push({ id: "runs", title: "Training runs", html: htmlTable(rt.headers, rt.rows, { digits: 4 }) });
  sections.push({ id: "method", title: "Method", html: `<p>${escapeHtml(METHOD)}</p>` });
  sections.push({ id: "notes", title: "Notes", html: `<p>${escapeHtml(NOTES)}</p>` });
  md.push("## Training runs", "", markdownTable(rt.headers, rt.rows, 4), "", "## Method", "", METHOD, "", "## Notes", "", NOTES, "");
  const html = htmlPage(`In-context alignment lab: Figure 1 (${r.preset} preset)`, sections, `Updated ${r.updatedAt}; ${r.evalTasks} held-out tasks.`);
  const htmlPath = join(outputDir, "report.html");
  const mdPath = join(outputDir, "report.md");
  writeFileAtomic(htmlPath, html);
  writeFileAtomic(mdPath, md.join("\n"));
  return { html: htmlPath, markdown: mdPath, svgs };
}
