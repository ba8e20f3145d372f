/**
 * `selfcorrect lab theory`: runs the paper's hand-built constructions (Thm 3.2 for BT, Thm 3.3 for PL)
 * against explicit gradient steps over random tasks and reports the error as a function of gamma.
 * A thin layer: flags are validated here (cli/flags.ts); the work lives in src/lab/theory.
 */
import { join, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { UserError } from "../../util/errors.js";
import { ensureWritableDir, writeFileAtomic, writeJsonAtomic } from "../../util/fs.js";
import { ProgressBar } from "../../util/progress.js";
import { lineChartSvg } from "../../report/plot.js";
import { markdownTable } from "../../report/html.js";
import { DEFAULT_GAMMAS, GAMMA_MAX, checkErrorVsGamma, parseGammas, type CheckResult, type ErrorRow } from "../../lab/theory/index.js";
import { flag, parseFlags } from "../flags.js";

const theoryFlags = z.object({
  loss: flag.choice("--loss", ["bt", "pl"]),
  n: flag.int("--n", 2, 64),
  gamma: flag.text("--gamma"),
  steps: flag.int("--steps", 1, 50),
  tasks: flag.int("--tasks", 1, 100000),
  seed: flag.int("--seed", Number.MIN_SAFE_INTEGER),
  eta: flag.number("--eta", 0).refine((v) => v > 0, { message: "--eta must be greater than 0" }),
  head2: flag.choice("--head2", ["exact", "approx"]),
  bound: flag.number("--bound", 0).refine((v) => v > 0, { message: "--bound must be greater than 0" }),
  squareStep: flag.number("--square-step", 0).refine((v) => v > 0, { message: "--square-step must be greater than 0" }),
  reportDir: flag.text("--report-dir"),
  json: flag.bool(),
  causal: flag.bool(),
});

/** 1e+6 rather than 1000000 in the table. */
function fmtGamma(g: number): string {
  return g >= 1e4 || g < 1e-3 ? g.toExponential().replace(/\.?0+e/, "e") : String(g);
}

function fmtErr(v: number): string {
  return Number.isFinite(v) ? v.toExponential(2) : String(v);
}

export function registerLabTheory(lab: Command): void {
  lab
    .command("theory")
    .description(
      "check the paper's constructions numerically: hand-built transformer weights (Thm 3.2 BT, Thm 3.3 PL) vs explicit gradient steps, error vs gamma",
    )
    .option("--loss <loss>", "alignment loss: bt (one top sample, Thm 3.2) or pl (Plackett-Luce, Thm 3.3)", "pl")
    .option("--n <N>", "tokens per task (context responses plus the test token)", "5")
    .option("--gamma <list>", "attention temperatures, comma-separated", DEFAULT_GAMMAS)
    .option("--steps <K>", "gradient steps (K stacked constructions)", "1")
    .option("--tasks <M>", "random tasks (d = 5, ||x|| = 1)", "100")
    .option("--seed <S>", "random seed", "1")
    .option("--eta <eta>", "learning rate of the gradient step", "0.1")
    .option("--head2 <variant>", "head 2 score: exact (one-hot PE + broadcast) or approx (piecewise-linear FFN feature)", "exact")
    .option("--bound <B>", "response bound the positional gate / approximate square assume", "64")
    .option("--square-step <h>", "knot spacing of the approximate square (--head2 approx)", String(1 / 64))
    .option("--causal", "App. F.2: causal attention performing an online PL step (token i compares with j <= i); pl, K = 1 only", false)
    .option("--report-dir <dir>", "where the SVG plot and JSON go", join("reports", "theory"))
    .option("--json", "print one JSON object as the last stdout line", false)
    .action(async (raw: object) => {
      const f = parseFlags(theoryFlags, raw);
      const gammas = parseGammas(f.gamma);
      if (f.causal && (f.loss !== "pl" || f.steps !== 1 || f.head2 !== "exact")) {
        throw new UserError("--causal: the online-PL construction (App. F.2) needs --loss pl, --steps 1 and --head2 exact");
      }
      const reportDir = resolve(f.reportDir);
      ensureWritableDir(reportDir, "--report-dir");

      // Always also measure the largest usable gamma (the acceptance figure), off the plot's x range.
      const measured = gammas.includes(GAMMA_MAX) ? gammas : [...gammas, GAMMA_MAX];
      const bar = new ProgressBar({ total: measured.length, label: `theory ${f.loss} N=${f.n} K=${f.steps}`, unit: "gamma" });
      const t0 = Date.now();
      const all = checkErrorVsGamma({
        loss: f.loss,
        n: f.n,
        gammas: measured,
        steps: f.steps,
        tasks: f.tasks,
        seed: f.seed,
        eta: f.eta,
        head2: f.head2,
        bound: f.bound,
        squareStep: f.squareStep,
        causal: f.causal,
        onGamma: (row, i) => bar.update(i + 1, `gamma ${fmtGamma(row.gamma)} max err ${fmtErr(row.max_abs_err)}`),
      });
      bar.finish();
      const seconds = (Date.now() - t0) / 1000;
      const result: CheckResult = { ...all, rows: all.rows.filter((r) => gammas.includes(r.gamma)) };
      const largest = all.rows.find((r) => r.gamma === GAMMA_MAX)!;

      const base = `theory-${f.loss}-n${f.n}-k${f.steps}${f.head2 === "approx" ? "-approx" : ""}${f.causal ? "-causal" : ""}`;
      const svgPath = join(reportDir, `${base}.svg`);
      const jsonPath = join(reportDir, `${base}.json`);
      const svg = await lineChartSvg({
        title: f.causal
          ? `causal online-PL construction (App. F.2) vs online PL step, N = ${f.n}, ${f.tasks} tasks`
          : `${f.loss.toUpperCase()} construction vs ${f.steps} gradient step(s), N = ${f.n}, ${f.tasks} tasks`,
        xTitle: "attention temperature gamma",
        yTitle: "|constructed - analytic| updated y",
        logX: true,
        logY: true,
        series: [
          { name: "max over tasks", x: result.rows.map((r) => r.gamma), y: result.rows.map((r) => r.max_abs_err) },
          { name: "mean over tasks", x: result.rows.map((r) => r.gamma), y: result.rows.map((r) => r.mean_abs_err) },
          { name: "1e-6", x: [gammas[0]!, gammas[gammas.length - 1]!], y: [1e-6, 1e-6], dashed: true },
        ],
      });
      writeFileAtomic(svgPath, svg);
      const summary = {
        loss: f.loss,
        n: f.n,
        steps: f.steps,
        rows: result.rows,
        tasks: f.tasks,
        seed: f.seed,
        eta: f.eta,
        head2: f.head2,
        causal: f.causal,
        min_reward_gap: result.min_reward_gap,
        loss_reference: result.loss_reference,
        loss_transformer: result.loss_transformer,
        largest_usable_gamma: { gamma: GAMMA_MAX, max_abs_err: largest.max_abs_err, mean_abs_err: largest.mean_abs_err },
        seconds,
        svg: svgPath,
      };
      writeJsonAtomic(jsonPath, summary);

      if (!f.json) printReport(f, result, largest, svgPath, seconds);
      else process.stdout.write(JSON.stringify(summary) + "\n");
    });
}

function printReport(
  f: { loss: string; n: number; steps: number; tasks: number; head2: string; eta: number; causal: boolean },
  result: CheckResult,
  largest: ErrorRow,
  svgPath: string,
  seconds: number,
): void {
  const out = process.stdout;
  const thm = f.causal
    ? `App. F.2 (causal attention, online PL: ${f.n - 1} two-head causal blocks + mask-update FFN)`
    : f.loss === "bt"
      ? "Thm 3.2 (two-head layer, one top sample)"
      : `Thm 3.3 (${f.n - 1} three-head blocks + masking FFN)`;
  out.write(`${thm}, head 2 ${f.head2}, N = ${f.n}, K = ${f.steps}, eta = ${f.eta}, ${f.tasks} tasks (${seconds.toFixed(1)} s)\n\n`);
  const headers = ["gamma", "max abs err", "mean abs err", ...(f.steps > 1 ? result.rows[0]!.max_abs_err_per_step.map((_, k) => `step ${k + 1}`) : [])];
  const rows = result.rows.map((r: ErrorRow) => [
    fmtGamma(r.gamma),
    fmtErr(r.max_abs_err),
    fmtErr(r.mean_abs_err),
    ...(f.steps > 1 ? r.max_abs_err_per_step.map(fmtErr) : []),
  ]);
  out.write(markdownTable(headers, rows) + "\n\n");
  out.write(
    `largest usable gamma in float64: ${fmtGamma(GAMMA_MAX)} (above it the PL masking push gamma^2 overflows): max abs err ${fmtErr(largest.max_abs_err)}\n`,
  );
  out.write(`smallest reward gap over the tasks: ${result.min_reward_gap.toExponential(2)} (head 1's error ~ exp(-gamma * gap))\n`);
  if (result.loss_reference.length > 0) {
    out.write(
      `linear-model loss L(W_k), k = 0..${f.steps}: ${result.loss_reference.map((v) => v.toFixed(4)).join(" -> ")} (explicit GD)\n` +
        `                         ${result.loss_transformer.map((v) => v.toFixed(4)).join(" -> ")} (L(W_0; transformer's y), largest gamma)\n`,
    );
  }
  out.write(`plot: ${svgPath}\n`);
}
