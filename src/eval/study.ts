/**
 * `eval study bbq`: sweep one setting of a BBQ CaC run (the ground-truth critic's flip probability p,
 * paper Fig. 4a, or the number of rounds, Fig. 4e), each value its own resumable run under
 * <outDir>/<sweep>-<value>, and collect accuracy before and after correction per value.
 */
import { join } from "node:path";
import { UserError } from "../util/errors.js";
import { ensureWritableDir } from "../util/fs.js";
import { runEval, type EvalDeps } from "./run.js";
import { makeEvalSpec, type EvalSpec, type EvalSpecInput } from "./spec.js";

export type StudySweep = "p" | "rounds";

export const DEFAULT_STUDY_VALUES: Record<StudySweep, readonly number[]> = { p: [0, 0.25, 0.5, 0.75, 1], rounds: [1, 2, 3, 4, 5] };

export interface StudyPoint {
  value: number;
  initial: number | null;
  final: number | null;
  status: string;
  output: string;
  errors: number;
}

/** What study.json holds, and what the study report draws. */
export interface StudyDoc {
  study: "bbq";
  sweep: StudySweep;
  title: string;
  points: StudyPoint[];
}

/** The swept values: the given ones checked (p in [0, 1], rounds 1..10), else the defaults. */
export function parseStudyValues(sweep: StudySweep, raw: readonly string[] | undefined): number[] {
  if (raw === undefined) return [...DEFAULT_STUDY_VALUES[sweep]];
  return raw.map((v) => {
    const n = Number(v);
    const ok = sweep === "p" ? Number.isFinite(n) && n >= 0 && n <= 1 : Number.isInteger(n) && n >= 1 && n <= 10;
    if (!ok) throw new UserError(`--values ${v}: ${sweep === "p" ? "p must be in [0, 1]" : "rounds must be whole numbers from 1 to 10"}`);
    return n;
  });
}

/** The run every value of the study starts from: BBQ under CaC, with the ground-truth critic for a p sweep. */
export function studyBaseSpec(input: Omit<EvalSpecInput, "task">, sweep: StudySweep): EvalSpec {
  if (input.defense !== "cac") throw new UserError("eval study bbq runs CaC: leave --defense at cac");
  return makeEvalSpec({ ...input, task: "bbq", critic: sweep === "p" ? "ground-truth" : input.critic });
}

export function studyTitle(sweep: StudySweep, base: EvalSpec): string {
  return sweep === "p" ? "BBQ accuracy vs ground-truth critic flip probability" : `BBQ accuracy vs rounds (${base.critic.kind} critic)`;
}

/**
 * Runs the sweep, one value after another. Stops at the first interrupted run (its finished items
 * are stored; re-running the study resumes it) and says so.
 */
export async function runBbqStudy(
  base: EvalSpec,
  o: { sweep: StudySweep; values: readonly number[]; outDir: string },
  deps: EvalDeps,
): Promise<{ interrupted: boolean; doc: StudyDoc }> {
  ensureWritableDir(o.outDir);
  const points: StudyPoint[] = [];
  for (const v of o.values) {
    const spec: EvalSpec = {
      ...base,
      output: join(o.outDir, `${o.sweep}-${v}`),
      critic: o.sweep === "p" ? { ...base.critic, kind: "ground-truth", p: v } : base.critic,
      defense: o.sweep === "rounds" ? { ...base.defense, cac: { ...base.defense.cac, rounds: v } } : base.defense,
    };
    const r = await runEval(spec, deps);
    if (r.interrupted || !r.results) return { interrupted: true, doc: { study: "bbq", sweep: o.sweep, title: studyTitle(o.sweep, base), points } };
    const b = r.results.bbq!;
    points.push({ value: v, initial: b.overall[0]?.accuracy ?? null, final: b.overall[b.rounds]?.accuracy ?? null, status: r.results.status, output: r.outputDir, errors: r.results.counts.errors });
  }
  return { interrupted: false, doc: { study: "bbq", sweep: o.sweep, title: studyTitle(o.sweep, base), points } };
}

/** The last stdout line of `eval study --json`. */
export function studyJsonSummary(doc: StudyDoc, outDir: string): Record<string, unknown> {
  return { study: "bbq", sweep: doc.sweep, points: doc.points.map((p) => ({ value: p.value, accuracy: { initial: p.initial, final: p.final }, errors: p.errors })), output: outDir };
}
