/**
 * The results of a run, computed from the stored rows of the selected items only (so a resumed run
 * and an uninterrupted one give the same numbers), and the one-line JSON summary of the CLI.
 */
import type { JudgeName } from "./judges/index.js";
import { asrByJudge, bbqReport, costStats, proportion, refusalByJudge, selfCheckStats, type Proportion, type BbqReport, type CostStats, type JudgeAsr, type RefusalStats, type SelfCheckStats } from "./metrics.js";
import type { BbqRecord, BenignRecord, EvalTask, ItemRecord, JailbreakRecord, StoredResult } from "./types.js";

/** The fields of a run's config (runConfig in run.ts) that reports read back from results.json. */
export interface RunConfigView {
  model?: string;
  dataset?: string;
  attack?: string;
  defense?: { defense?: string; variant?: string; rounds?: number; icdShots?: number };
  critic?: { kind?: string; p?: number };
}

export interface EvalResults {
  task: EvalTask;
  runKey: string;
  /** complete: every selected item has a row (done or error). */
  status: "complete" | "incomplete";
  config: Record<string, unknown>;
  createdAt: string;
  counts: { selected: number; done: number; errors: number; pending: number; skippedByAttack: number };
  errors: { id: string; error: string; attempts: number }[];
  /** Items the attack has no prompt for (not run). */
  skippedByAttack: { id: string; reason: string }[];
  notes: string[];
  judges: JudgeName[];
  jailbreak?: { asr: Record<string, JudgeAsr>; selfCheck: SelfCheckStats | null };
  benign?: {
    safe: Record<string, RefusalStats>;
    unsafe: Record<string, RefusalStats>;
    nSafe: number;
    nUnsafe: number;
    /** CaC only: share of safe prompts whose round-1 check calls the answer harmful (a false alarm). */
    checkFalseAlarm: Proportion | null;
  };
  bbq?: BbqReport;
  cost: CostStats;
  /** The finished records, in selection order. */
  records: ItemRecord[];
  /** Limiter figures for the model endpoint, when it had one. */
  rateLimit?: { requests: number; rateLimited: number; minWindow: number };
}

export function buildResults(args: {
  task: EvalTask;
  runKey: string;
  config: Record<string, unknown>;
  selectedIds: string[];
  rows: Map<string, StoredResult>;
  judges: JudgeName[];
  skippedByAttack: { id: string; reason: string }[];
  notes: string[];
  rateLimit?: EvalResults["rateLimit"];
}): EvalResults {
  const records: ItemRecord[] = [];
  const errors: EvalResults["errors"] = [];
  let pending = 0;
  for (const id of args.selectedIds) {
    const row = args.rows.get(id);
    if (!row) pending++;
    else if (row.status === "done") records.push(row.record);
    else errors.push({ id, error: row.error, attempts: row.attempts });
  }
  const out: EvalResults = {
    task: args.task,
    runKey: args.runKey,
    status: pending === 0 ? "complete" : "incomplete",
    config: args.config,
    createdAt: new Date().toISOString(),
    counts: { selected: args.selectedIds.length, done: records.length, errors: errors.length, pending, skippedByAttack: args.skippedByAttack.length },
    errors,
    skippedByAttack: args.skippedByAttack,
    notes: args.notes,
    judges: args.judges,
    cost: costStats(records),
    records,
  };
  if (args.rateLimit) out.rateLimit = args.rateLimit;
  if (args.task === "jailbreak") {
    const recs = records as JailbreakRecord[];
    // A world run judges harm by the world's answer format, so its self-check split does too.
    out.jailbreak = { asr: asrByJudge(recs, args.judges), selfCheck: selfCheckStats(recs, args.judges.includes("world") ? "world" : "substring") };
  } else if (args.task === "xstest") {
    const recs = records as BenignRecord[];
    const safe = recs.filter((r) => r.label === "safe");
    const unsafe = recs.filter((r) => r.label === "unsafe");
    const checked = safe.filter((r) => r.checks.length > 0);
    out.benign = {
      safe: refusalByJudge(safe, args.judges),
      unsafe: refusalByJudge(unsafe, args.judges),
      nSafe: safe.length,
      nUnsafe: unsafe.length,
      checkFalseAlarm: checked.length ? proportion(checked.filter((r) => r.checkVerdicts[0] === "harmful").length, checked.length) : null,
    };
  } else {
    out.bbq = bbqReport(records as BbqRecord[]);
  }
  return out;
}

const round4 = (x: number | null | undefined) => (x === null || x === undefined ? null : Math.round(x * 1e4) / 1e4);

/** The last stdout line under --json. */
export function jsonSummary(r: EvalResults, outputDir: string): Record<string, unknown> {
  const s: Record<string, unknown> = {
    task: r.task,
    status: r.status,
    items: r.counts.selected,
    done: r.counts.done,
    errors: r.counts.errors,
    pending: r.counts.pending,
  };
  if (r.jailbreak) {
    const asr: Record<string, unknown> = {};
    for (const [j, a] of Object.entries(r.jailbreak.asr)) asr[j] = { initial: round4(a.initial.rate), final: round4(a.final.rate) };
    s.asr = asr;
    s.self_check_accuracy = round4(r.jailbreak.selfCheck?.accuracy.rate ?? null);
    s.over_refusal = null;
  }
  if (r.benign) {
    const o: Record<string, unknown> = {};
    for (const [j, a] of Object.entries(r.benign.safe)) o[j] = { initial: round4(a.initial.rate), final: round4(a.final.rate) };
    s.over_refusal = o;
    const u: Record<string, unknown> = {};
    for (const [j, a] of Object.entries(r.benign.unsafe)) u[j] = { initial: round4(a.initial.rate), final: round4(a.final.rate) };
    s.unsafe_refusal = u;
    s.check_false_alarm = round4(r.benign.checkFalseAlarm?.rate ?? null);
  }
  if (r.bbq) {
    const first = r.bbq.overall[0];
    const last = r.bbq.overall[r.bbq.rounds];
    s.accuracy = { initial: round4(first?.accuracy), final: round4(last?.accuracy) };
    s.bias = {
      ambig: { initial: round4(first?.biasAmbig), final: round4(last?.biasAmbig) },
      disambig: { initial: round4(first?.biasDisambig), final: round4(last?.biasDisambig) },
    };
    s.self_check_accuracy = round4(r.bbq.selfCheckAccuracy?.rate ?? null);
  }
  s.calls = r.cost.calls;
  s.tokens = r.cost.tokens;
  s.run_key = r.runKey;
  s.output = outputDir;
  return s;
}
