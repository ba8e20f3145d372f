/**
 * The paper's qualitative Figure 1 findings as checks on measured curves, each with the numbers it
 * is based on. A finding that fails is reported as failed; nothing is tuned to make it pass.
 * Curves are 1 - cos errors indexed like `examples` (2..maxExamples); "at k" reads the entry k.
 */
import type { PanelId } from "./experiments.js";

export interface Finding {
  claim: string;
  holds: boolean;
  detail: string;
}

export interface PanelCurves {
  examples: number[];
  curves: Record<string, number[]>;
}

/** Standard error of a 1 - cos mean over T tasks is about 0.3 / sqrt(T): ~0.02 at 256 tasks. */
const MARGIN = 0.02;

const f3 = (v: number | undefined) => (v === undefined || !Number.isFinite(v) ? "n/a" : v.toFixed(3));

function at(pc: PanelCurves, label: string, k: number): number {
  const i = pc.examples.indexOf(k);
  const c = pc.curves[label];
  return i < 0 || !c ? NaN : c[i]!;
}

function last(pc: PanelCurves): number {
  return pc.examples[pc.examples.length - 1]!;
}

function first(pc: PanelCurves): number {
  return pc.examples[0]!;
}

function tfLabels(pc: PanelCurves): string[] {
  return Object.keys(pc.curves).filter((l) => l.startsWith("TF"));
}

export function checkFindings(panel: PanelId, pc: PanelCurves): Finding[] {
  const K = last(pc);
  const k0 = first(pc);
  const out: Finding[] = [];
  const push = (claim: string, holds: boolean, detail: string) => out.push({ claim, holds: Boolean(holds), detail });
  switch (panel) {
    case "a": {
      const tf0 = at(pc, "TF", k0), tfK = at(pc, "TF", K), gd0 = at(pc, "GD", k0), gdK = at(pc, "GD", K), meanK = at(pc, "mean", K);
      push("the transformer's error falls with more examples", tfK < tf0 - MARGIN, `TF ${f3(tf0)} at ${k0} -> ${f3(tfK)} at ${K}`);
      push("GD's error falls with more examples", gdK < gd0 - MARGIN, `GD ${f3(gd0)} at ${k0} -> ${f3(gdK)} at ${K}`);
      push(`TF error at ${K} examples is at most 0.40`, tfK <= 0.4, `TF ${f3(tfK)}`);
      push(`TF is below the running-mean baseline at ${K} (it uses the rewards)`, tfK < meanK, `TF ${f3(tfK)} vs mean ${f3(meanK)}`);
      push(`GD is better than TF at the beginning (${k0} examples)`, gd0 < tf0, `GD ${f3(gd0)} vs TF ${f3(tf0)}`);
      const k14 = pc.examples.includes(14) ? 14 : K;
      const tf14 = at(pc, "TF", k14), gd14 = at(pc, "GD", k14);
      push(`TF is at least as good as GD at ${k14} examples`, tf14 <= gd14, `TF ${f3(tf14)} vs GD ${f3(gd14)}`);
      break;
    }
    case "b": {
      const ps = Object.keys(pc.curves)
        .filter((l) => l.startsWith("TF p="))
        .map((l) => Number(l.slice(5)))
        .sort((x, y) => x - y);
      for (const who of ["TF", "GD"]) {
        const vals = ps.map((p) => at(pc, `${who} p=${p}`, K));
        // Non-decreasing step to step (within noise) and a clear rise overall.
        const mono = vals.every((v, i) => i === 0 || v >= vals[i - 1]! - MARGIN / 2) && vals[vals.length - 1]! > vals[0]! + 2 * MARGIN;
        push(
          `${who} error at ${K} examples rises monotonically with p`,
          mono,
          ps.map((p, i) => `p=${p}: ${f3(vals[i])}`).join(", "),
        );
      }
      if (ps.includes(1)) {
        const v = at(pc, "TF p=1", K), v0 = at(pc, "TF p=1", k0);
        push("TF at p = 1 sits at chance (0.9 to 1.1)", v >= 0.9 && v <= 1.1, `TF p=1 at ${K}: ${f3(v)}`);
        push("TF at p = 1 does not improve with more examples", v >= v0 - 2 * MARGIN, `${f3(v0)} at ${k0} -> ${f3(v)} at ${K}`);
      }
      break;
    }
    case "c": {
      const labels = tfLabels(pc);
      const depth = (l: string) => Number(/(\d+) layer/.exec(l)?.[1] ?? NaN);
      labels.sort((x, y) => depth(x) - depth(y));
      const vals = labels.map((l) => at(pc, l, K));
      const detail = labels.map((l, i) => `${l.slice(3)}: ${f3(vals[i])}`).join(", ");
      if (vals.length >= 2) {
        push("the shallowest model is clearly worse than every deeper one", vals.slice(1).every((v) => v < vals[0]! - MARGIN), detail);
      }
      if (vals.length >= 4) {
        const gainFirst = vals[0]! - vals[1]!, gainLast = vals[vals.length - 2]! - vals[vals.length - 1]!;
        push("depth has diminishing returns (the last step gains less than the first)", gainLast < gainFirst, `gain ${f3(gainFirst)} first vs ${f3(gainLast)} last; ${detail}`);
      }
      break;
    }
    case "d": {
      const s = at(pc, "TF softmax", K), l = at(pc, "TF linear", K), mean = at(pc, "mean", K);
      push("softmax attention is clearly better than linear attention", s < l - MARGIN, `softmax ${f3(s)} vs linear ${f3(l)} at ${K}`);
      push("linear attention can hardly align (not below the running mean)", l >= mean - MARGIN, `linear ${f3(l)} vs mean ${f3(mean)}`);
      break;
    }
    case "e": {
      const h = (n: number) => at(pc, `TF ${n} head${n > 1 ? "s" : ""}`, K);
      const h1 = h(1), h3 = h(3), h4 = h(4), h6 = h(6);
      const detail = `1: ${f3(h1)}, 3: ${f3(h3)}, 4: ${f3(h4)}, 6: ${f3(h6)} at ${K}`;
      push("a single head is clearly worse than 3 heads", h1 > h3 + MARGIN, detail);
      push("no significant benefit beyond 3 heads (neither 4 nor 6 heads beats 3 by more than 0.03)", Math.min(h4, h6) >= h3 - 0.03, detail);
      break;
    }
    case "f": {
      const a = at(pc, "TF FFN", K), b = at(pc, "TF no FFN", K), mean = at(pc, "mean", K);
      push("the model with FFN is clearly better than without", a < b - MARGIN, `FFN ${f3(a)} vs no FFN ${f3(b)} at ${K}`);
      push("without FFN the model can hardly align (not below the running mean)", b >= mean - MARGIN, `no FFN ${f3(b)} vs mean ${f3(mean)}`);
      break;
    }
  }
  return out;
}
