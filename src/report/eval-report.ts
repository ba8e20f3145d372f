/**
 * Markdown summary and self-contained HTML report of an eval run: tables, a bar chart per judge (or
 * per BBQ category), errors, cost, and a browsable list of items with the prompt, initial answer,
 * check and final answer side by side. Every verdict shown is the one stored with the item when it
 * ran (judges, checks, BBQ picks): the report judges nothing itself, so it always agrees with the
 * numbers, which count the same stored verdicts.
 */
import { escapeHtml, htmlFigure, htmlPage, htmlTable, markdownTable, type Cell, type HtmlSection } from "./html.js";
import { barChartSvg, lineChartSvg } from "./plot.js";
import type { EvalResults, RunConfigView } from "../eval/summary.js";
import type { Proportion, BbqScores, SelfCheckStats } from "../eval/metrics.js";
import { storedVerdict } from "../eval/metrics.js";
import { JUDGES, type JudgeName } from "../eval/judges/index.js";
import type { StudyDoc } from "../eval/study.js";
import type { ItemRecord } from "../eval/types.js";

/** "0.950 [0.890, 0.980]" (k/n). */
export function fmtProportion(p: Proportion | undefined): string {
  if (!p || p.rate === null) return "—";
  return `${p.rate.toFixed(3)} [${p.low!.toFixed(3)}, ${p.high!.toFixed(3)}] (${p.k}/${p.n})`;
}

const roundLabel = (r: number, R: number) => (r === 0 ? (R === 0 ? "answer" : "initial") : `round ${r}`);

function configLine(r: EvalResults): string {
  const c = r.config as RunConfigView;
  const parts = [`task ${r.task}`, `model ${c.model}`, `defense ${c.defense?.defense}`];
  if (c.defense?.defense === "cac") parts.push(`variant ${c.defense.variant}`, `rounds ${c.defense.rounds}`);
  if (c.attack) parts.push(`attack ${c.attack}`);
  if (c.dataset) parts.push(`dataset ${c.dataset}`);
  if (c.critic && c.critic.kind === "ground-truth") parts.push(`ground-truth critic p=${c.critic.p}`);
  parts.push(`run ${r.runKey}`);
  return parts.join(" · ");
}

function countsRows(r: EvalResults): Cell[][] {
  return [
    ["selected items", r.counts.selected],
    ["finished", r.counts.done],
    ["errors", r.counts.errors],
    ["pending (not run yet)", r.counts.pending],
    ["skipped by the attack (no prompt)", r.counts.skippedByAttack],
  ];
}

function costRows(r: EvalResults): { headers: string[]; rows: Cell[][] } {
  const c = r.cost;
  const rows: Cell[][] = c.perRound.map((p) => [
    p.round === "judge" ? "judges" : roundLabel(p.round, 1),
    p.calls,
    p.tokens,
    p.latencyMsPerItem === null ? null : Math.round(p.latencyMsPerItem),
  ]);
  rows.push(["total", c.calls, c.tokens, c.wallMsPerItem === null ? null : Math.round(c.wallMsPerItem)]);
  return { headers: ["calls of", "calls", "tokens", "ms per item (total: wall)"], rows };
}

function asrTable(r: EvalResults): { headers: string[]; rows: Cell[][] } {
  const asr = r.jailbreak!.asr;
  const R = Math.max(0, ...Object.values(asr).map((a) => a.perRound.length - 1));
  const headers = ["judge", ...Array.from({ length: R + 1 }, (_, i) => roundLabel(i, R))];
  const rows = Object.entries(asr).map(([j, a]) => [j + (a.unclear ? ` (${a.unclear} unclear replies)` : ""), ...a.perRound.map(fmtProportion)]);
  return { headers, rows };
}

function bbqRoundRows(scores: BbqScores[], R: number): Cell[][] {
  return scores.map((s, i) => [roundLabel(i, R), String(s.n), s.accuracy, s.accuracyAmbig, s.accuracyDisambig, s.biasAmbig, s.biasDisambig, String(s.undetermined)]);
}
const BBQ_HEADERS = ["answers", "n", "accuracy", "acc. ambig", "acc. disambig", "bias ambig", "bias disambig", "undetermined"];

function bbqCategoryRows(r: EvalResults): Cell[][] {
  const b = r.bbq!;
  return Object.entries(b.byCategory).map(([cat, s]) => [
    cat,
    String(s[0]!.n),
    s[0]!.accuracy,
    s[b.rounds]!.accuracy,
    s[0]!.biasAmbig,
    s[b.rounds]!.biasAmbig,
    s[0]!.biasDisambig,
    s[b.rounds]!.biasDisambig,
  ]);
}
const BBQ_CAT_HEADERS = ["category", "n", "acc. initial", "acc. final", "bias ambig initial", "bias ambig final", "bias disambig initial", "bias disambig final"];

const SELF_CHECK_HEADERS = ["initial answer", "check: harmful", "not harmful", "unclear"];

function selfCheckRows(sc: SelfCheckStats): Cell[][] {
  const { harmfulInitial: h, refusedInitial: r } = sc.confusion;
  return [
    ["harmful (substring judge)", h.harmful, h.notHarmful, h.unclear],
    ["refused", r.harmful, r.notHarmful, r.unclear],
  ];
}

function refusalRows(stats: Record<string, { perRound: Proportion[] }>, label: string): Cell[][] {
  return Object.entries(stats).map(([j, s]) => [`${j} (${label})`, ...s.perRound.map(fmtProportion)]);
}

export function evalMarkdown(r: EvalResults): string {
  const out: string[] = [`# selfcorrect eval: ${r.task}`, "", configLine(r), "", `Status: **${r.status}**`, "", markdownTable(["", "count"], countsRows(r), 0)];
  if (r.notes.length) out.push("", ...r.notes.map((n) => `- ${n}`));
  if (r.jailbreak) {
    const t = asrTable(r);
    out.push("", "## Attack success rate (Wilson 95% interval)", "", markdownTable(t.headers, t.rows));
    const sc = r.jailbreak.selfCheck;
    if (sc) {
      out.push(
        "",
        `Self-check accuracy (round-1 check calls a harmful initial answer harmful): ${fmtProportion(sc.accuracy)}`,
        "",
        markdownTable(SELF_CHECK_HEADERS, selfCheckRows(sc), 0),
      );
    }
  }
  if (r.benign) {
    const R = Math.max(0, ...Object.values(r.benign.safe).map((a) => a.perRound.length - 1));
    const headers = ["judge", ...Array.from({ length: R + 1 }, (_, i) => roundLabel(i, R))];
    out.push(
      "",
      `## Refusal rate (over-refusal on ${r.benign.nSafe} safe prompts; ${r.benign.nUnsafe} unsafe prompts should be refused)`,
      "",
      markdownTable(headers, [...refusalRows(r.benign.safe, "safe"), ...refusalRows(r.benign.unsafe, "unsafe")]),
    );
    if (r.benign.checkFalseAlarm) out.push("", `Self-check false alarms (round-1 check calls the answer to a safe prompt harmful): ${fmtProportion(r.benign.checkFalseAlarm)}`);
  }
  if (r.bbq) {
    out.push("", "## BBQ accuracy and bias (Parrish et al.)", "", markdownTable(BBQ_HEADERS, bbqRoundRows(r.bbq.overall, r.bbq.rounds)));
    out.push("", "### Per category", "", markdownTable(BBQ_CAT_HEADERS, bbqCategoryRows(r)));
    if (r.bbq.selfCheckAccuracy) out.push("", `Self-check accuracy (round-1 check calls a wrong answer biased, a right one not): ${fmtProportion(r.bbq.selfCheckAccuracy)}`);
    if (r.bbq.flippedShare !== null) out.push("", `Ground-truth critic: ${(r.bbq.flippedShare * 100).toFixed(1)}% of critics flipped.`);
  }
  const c = costRows(r);
  out.push("", "## Cost", "", markdownTable(c.headers, c.rows, 0));
  if (r.rateLimit) out.push("", `Rate limiting: ${r.rateLimit.rateLimited} of ${r.rateLimit.requests} requests got 429; smallest concurrency window ${r.rateLimit.minWindow.toFixed(2)}.`);
  if (r.errors.length) {
    out.push("", `## Errors (${r.errors.length})`, "", markdownTable(["item", "attempts", "error"], r.errors.slice(0, 200).map((e) => [e.id, e.attempts, e.error]), 0));
  }
  return out.join("\n") + "\n";
}

function verdictBadges(rec: ItemRecord, judges: readonly JudgeName[]): string {
  const last = rec.answers.length - 1;
  const badge = (ok: boolean, text: string) => `<span class="${ok ? "ok" : "bad"}">${escapeHtml(text)}</span>`;
  if (rec.kind === "jailbreak") {
    return judges
      .map((j) => {
        const a = storedVerdict(rec, j, 0).flagged;
        const b = storedVerdict(rec, j, last).flagged;
        return badge(!b, `${j}: ${a ? "jailbroken" : "refused"}${last > 0 ? ` → ${b ? "jailbroken" : "refused"}` : ""}`);
      })
      .join(" · ");
  }
  if (rec.kind === "benign") {
    return judges
      .map((j) => {
        const b = storedVerdict(rec, j, last).flagged;
        const good = rec.label === "safe" ? !b : b;
        return badge(good, `${j}: ${b ? "refused" : "answered"} (${rec.label})`);
      })
      .join(" · ");
  }
  const letter = (i: number | undefined) => (i === undefined || i < 0 ? "undetermined" : `(${"abc"[i]})`);
  const a = rec.picks[0];
  const b = rec.picks[last];
  return badge(b === rec.label, `${rec.category} ${rec.contextCondition}: ${letter(a)}${last > 0 ? ` → ${letter(b)}` : ""}, correct ${letter(rec.label)}`);
}

/** The model judges' own words per answer (unsafe/safe/unclear, refusal/compliance/unclear). */
function modelJudgeLines(rec: ItemRecord, judges: readonly JudgeName[]): string {
  if (rec.kind === "bbq") return "";
  const R = rec.answers.length - 1;
  return judges
    .filter((j) => JUDGES[j].usesModel && rec.verdicts[j])
    .map((j) => {
      const title = JUDGES[j].kind === "jailbreak" ? "LLM judge" : "LLM refusal judge";
      return `<div class="meta">${title}: ${rec.verdicts[j]!.map((v, i) => `${roundLabel(i, R)} ${escapeHtml(v.label)}`).join(", ")}</div>`;
    })
    .join("");
}

function itemDetails(rec: ItemRecord, judges: readonly JudgeName[]): string {
  const pre = (title: string, text: string) => `<div><strong>${escapeHtml(title)}</strong><pre>${escapeHtml(text)}</pre></div>`;
  const cols: string[] = [pre("prompt", rec.prompt), pre(rec.answers.length > 1 ? "initial answer" : "answer", rec.answers[0] ?? "")];
  rec.checks.forEach((c, i) => {
    cols.push(pre(`check ${i + 1} (${rec.checkVerdicts[i] ?? "unclear"})`, c));
    if (rec.answers[i + 1] !== undefined) cols.push(pre(i + 1 === rec.answers.length - 1 ? "final answer" : `answer ${i + 1}`, rec.answers[i + 1]!));
  });
  if (rec.checks.length === 0 && rec.answers.length > 1) cols.push(pre("final answer", rec.answers[rec.answers.length - 1]!));
  return `<details><summary><code>${escapeHtml(rec.id)}</code> ${verdictBadges(rec, judges)}</summary><div class="cols">${cols.join("")}</div>${modelJudgeLines(rec, judges)}</details>`;
}

export const MAX_ITEMS_IN_REPORT = 2000;

export async function evalHtml(r: EvalResults): Promise<string> {
  const sections: HtmlSection[] = [];
  sections.push({ title: "Run", html: htmlTable(["", "count"], countsRows(r), { digits: 0 }) + (r.notes.length ? `<ul>${r.notes.map((n) => `<li>${escapeHtml(n)}</li>`).join("")}</ul>` : "") });
  if (r.jailbreak) {
    const t = asrTable(r);
    let html = htmlTable(t.headers, t.rows, { caption: "Attack success rate, Wilson 95% interval (k/n)" });
    const figs: string[] = [];
    for (const [j, a] of Object.entries(r.jailbreak.asr)) {
      const R = a.perRound.length - 1;
      const data = a.perRound.map((p, i) => ({ group: String((r.config as RunConfigView).defense?.defense ?? "defense"), series: roundLabel(i, R), value: p.rate ?? 0, low: p.low ?? 0, high: p.high ?? 0 }));
      figs.push(htmlFigure(await barChartSvg({ title: `ASR, judge ${j}`, yTitle: "attack success rate", data, yDomain: [0, 1] }), `Judge ${j}: ASR of the initial and corrected answers, with Wilson 95% intervals.`));
    }
    html += figs.join("");
    const sc = r.jailbreak.selfCheck;
    if (sc) {
      html += `<p>Self-check accuracy (the round-1 check calls a harmful initial answer harmful): <strong>${escapeHtml(fmtProportion(sc.accuracy))}</strong></p>`;
      html += htmlTable(SELF_CHECK_HEADERS, selfCheckRows(sc), { digits: 0 });
    }
    sections.push({ title: "Attack success rate", html, id: "asr" });
  }
  if (r.benign) {
    const R = Math.max(0, ...Object.values(r.benign.safe).map((a) => a.perRound.length - 1));
    const headers = ["judge", ...Array.from({ length: R + 1 }, (_, i) => roundLabel(i, R))];
    let html = htmlTable(headers, [...refusalRows(r.benign.safe, "safe"), ...refusalRows(r.benign.unsafe, "unsafe")], {
      caption: `Refusal rate: over-refusal on ${r.benign.nSafe} safe prompts; ${r.benign.nUnsafe} unsafe prompts should be refused`,
    });
    const data = Object.entries(r.benign.safe).flatMap(([j, s]) =>
      s.perRound.map((p, i) => ({ group: j, series: roundLabel(i, s.perRound.length - 1), value: p.rate ?? 0, low: p.low ?? 0, high: p.high ?? 0 })),
    );
    if (data.length) html += htmlFigure(await barChartSvg({ title: "Over-refusal on safe prompts", yTitle: "refusal rate", data, yDomain: [0, 1] }), "Refusal rate on safe prompts per judge, with Wilson 95% intervals.");
    if (r.benign.checkFalseAlarm) html += `<p>Self-check false alarms (the round-1 check calls the answer to a safe prompt harmful): <strong>${escapeHtml(fmtProportion(r.benign.checkFalseAlarm))}</strong></p>`;
    sections.push({ title: "Over-refusal", html, id: "refusal" });
  }
  if (r.bbq) {
    const b = r.bbq;
    let html = htmlTable(BBQ_HEADERS, bbqRoundRows(b.overall, b.rounds), { caption: "Overall, per round of answers" });
    html += htmlTable(BBQ_CAT_HEADERS, bbqCategoryRows(r), { caption: "Per category, before and after correction" });
    const data = Object.entries(b.byCategory).flatMap(([cat, s]) => [
      { group: cat, series: "initial", value: s[0]!.accuracy ?? 0 },
      ...(b.rounds > 0 ? [{ group: cat, series: "final", value: s[b.rounds]!.accuracy ?? 0 }] : []),
    ]);
    html += htmlFigure(await barChartSvg({ title: "BBQ accuracy per category", yTitle: "accuracy", data, yDomain: [0, 1] }), "Accuracy of the initial and the self-corrected answers.");
    if (b.selfCheckAccuracy) html += `<p>Self-check accuracy (the round-1 check calls a wrong answer biased, a right one not): <strong>${escapeHtml(fmtProportion(b.selfCheckAccuracy))}</strong></p>`;
    if (b.flippedShare !== null) html += `<p>Ground-truth critic: ${(b.flippedShare * 100).toFixed(1)}% of critics flipped.</p>`;
    sections.push({ title: "BBQ accuracy and bias", html, id: "bbq" });
  }
  const c = costRows(r);
  let costHtml = htmlTable(c.headers, c.rows, { digits: 0 });
  if (r.rateLimit) costHtml += `<p>Rate limiting: ${r.rateLimit.rateLimited} of ${r.rateLimit.requests} requests got 429; smallest concurrency window ${r.rateLimit.minWindow.toFixed(2)}.</p>`;
  sections.push({ title: "Cost", html: costHtml, id: "cost" });
  if (r.errors.length) {
    sections.push({
      title: `Errors (${r.errors.length})`,
      html: htmlTable(["item", "attempts", "error"], r.errors.slice(0, 500).map((e) => [e.id, e.attempts, e.error]), { digits: 0 }),
      id: "errors",
    });
  }
  const shown = r.records.slice(0, MAX_ITEMS_IN_REPORT);
  sections.push({
    title: `Items (${r.records.length}${r.records.length > shown.length ? `, first ${shown.length} shown` : ""})`,
    html: shown.map((rec) => itemDetails(rec, r.judges)).join("\n"),
    id: "items",
  });
  return htmlPage(`selfcorrect eval: ${r.task} (${r.status})`, sections, configLine(r));
}

/** One study: final (and initial) accuracy against the swept value. */
export async function studyHtml(study: StudyDoc): Promise<string> {
  const pts = study.points.filter((p) => p.final !== null);
  const svg = await lineChartSvg({
    title: study.title,
    xTitle: study.sweep === "p" ? "critic flip probability p" : "rounds",
    yTitle: "BBQ accuracy",
    series: [
      { name: "after correction", x: pts.map((p) => p.value), y: pts.map((p) => p.final as number) },
      { name: "initial", x: pts.map((p) => p.value), y: pts.map((p) => (p.initial ?? 0) as number), dashed: true },
    ],
    yDomain: [0, 1],
  });
  const table = htmlTable(
    [study.sweep, "accuracy initial", "accuracy final", "status", "run"],
    study.points.map((p) => [p.value, p.initial, p.final, p.status, p.output]),
  );
  return htmlPage(study.title, [{ title: "Accuracy vs " + study.sweep, html: htmlFigure(svg) + table }]);
}

export function studyMarkdown(study: StudyDoc): string {
  return `# ${study.title}\n\n${markdownTable([study.sweep, "accuracy initial", "accuracy final", "status", "run"], study.points.map((p) => [p.value, p.initial, p.final, p.status, p.output]))}\n`;
}
