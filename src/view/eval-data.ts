/**
 * Eval runs as the viewer's API sees them. Every number comes from the eval's own code: a finished
 * run's results.json (written by buildResults), or, for a run still writing, buildResults over the
 * rows stored so far; headline metrics are the ones `eval compare` tabulates (metricsOf). Nothing
 * here computes a metric of its own; it only picks, filters and pages what those give.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { liveLockHolder } from "../util/fs.js";
import { LOCK_FILE, ResultStore, STORE_FILE } from "../eval/store.js";
import { RESULTS_FILE } from "../eval/run.js";
import { buildResults, type EvalResults, type RunConfigView } from "../eval/summary.js";
import { storedVerdict } from "../eval/metrics.js";
import type { JudgeName } from "../eval/judges/index.js";
import type { ItemRecord } from "../eval/types.js";
import { metricsOf, runLabel } from "../report/eval-compare.js";
import type { ServedDir, ServedDirs } from "./sources.js";
import type { RunStatus, RunSummary } from "./api-types.js";

export type { RunStatus, RunSummary } from "./api-types.js";

export const runIdOf = (dir: number, runKey: string) => `${dir}-${runKey}`;

/** One served eval directory: its store (opened once) and parsed results, re-read when they change. */
class EvalDir {
  private store: ResultStore | null = null;
  private finished: { mtimeMs: number; results: EvalResults } | null = null;
  private partial = new Map<string, { stamp: string; results: EvalResults }>();

  constructor(readonly served: ServedDir) {}

  private open(): ResultStore {
    this.store ??= new ResultStore(join(this.served.path, STORE_FILE));
    return this.store;
  }

  runs(): { runKey: string; config: Record<string, unknown>; createdAt: string }[] {
    return this.open().runs();
  }

  counts(runKey: string): { done: number; errors: number } {
    return this.open().counts(runKey);
  }

  running(): boolean {
    return liveLockHolder(join(this.served.path, LOCK_FILE)) !== null;
  }

  /** results.json when it is this run's, else the results of the rows stored so far. */
  results(runKey: string, config: Record<string, unknown>): { results: EvalResults; status: RunStatus } {
    const file = join(this.served.path, RESULTS_FILE);
    if (existsSync(file)) {
      const mtimeMs = statSync(file).mtimeMs;
      if (this.finished?.mtimeMs !== mtimeMs) {
        try {
          this.finished = { mtimeMs, results: JSON.parse(readFileSync(file, "utf8")) as EvalResults };
        } catch {
          this.finished = null;
        }
      }
      if (this.finished?.results.runKey === runKey) return { results: this.finished.results, status: this.finished.results.status };
    }
    const c = this.counts(runKey);
    const stamp = `${c.done}/${c.errors}`;
    let cached = this.partial.get(runKey);
    if (cached?.stamp !== stamp) {
      const rows = this.open().results(runKey);
      // The selection of a run still writing is not stored; the rows so far stand in for it.
      const results = buildResults({
        task: config.task as EvalResults["task"],
        runKey,
        config,
        selectedIds: [...rows.keys()],
        rows,
        judges: (Array.isArray(config.judges) ? config.judges : []) as JudgeName[],
        skippedByAttack: [],
        notes: [],
      });
      cached = { stamp, results };
      this.partial.set(runKey, cached);
    }
    return { results: cached.results, status: this.running() ? "running" : "incomplete" };
  }

  close(): void {
    this.store?.close();
    this.store = null;
  }
}

export class EvalRuns {
  private readonly dirs = new Map<number, EvalDir>();

  constructor(private readonly served: ServedDirs) {}

  private evalDirs(): EvalDir[] {
    return this.served
      .refresh()
      .filter((d) => d.eval)
      .map((d) => this.dir(d.id)!);
  }

  private dir(id: number): EvalDir | undefined {
    let d = this.dirs.get(id);
    const s = this.served.get(id);
    if (!d && s?.eval) {
      d = new EvalDir(s);
      this.dirs.set(id, d);
    }
    return d;
  }

  list(): RunSummary[] {
    const out: RunSummary[] = [];
    for (const d of this.evalDirs()) for (const r of d.runs()) out.push(this.summarise(d, r.runKey, r.config, r.createdAt));
    return out.sort((a, b) => b.createdAt.localeCompare(a.createdAt));
  }

  private find(id: string): { d: EvalDir; runKey: string; config: Record<string, unknown>; createdAt: string } | null {
    const [dirPart, runKey] = id.split("-");
    const d = this.dir(Number(dirPart));
    const r = d?.runs().find((x) => x.runKey === runKey);
    return d && r ? { d, ...r } : null;
  }

  private summarise(d: EvalDir, runKey: string, config: Record<string, unknown>, createdAt: string): RunSummary {
    const { results, status } = d.results(runKey, config);
    const c = config as RunConfigView & { judges?: string[] };
    return {
      id: runIdOf(d.served.id, runKey),
      dir: d.served.id,
      dirLabel: d.served.label,
      runKey,
      label: runLabel(results),
      task: results.task,
      model: c.model ?? null,
      defense: c.defense?.defense ?? null,
      variant: c.defense?.defense === "cac" ? (c.defense.variant ?? null) : null,
      rounds: c.defense?.defense === "cac" ? (c.defense.rounds ?? 1) : 0,
      attack: c.attack ?? null,
      dataset: c.dataset ?? null,
      judges: c.judges ?? [],
      status,
      createdAt,
      counts: results.counts,
      headline: metricsOf([{ results }]).map((m) => ({ title: m.title, ...(m.get(results) ?? { initial: null, final: null }) })),
    };
  }

  /** The run's summary and all of its results but the records (those are paged by items()). */
  detail(id: string): { run: RunSummary; results: Omit<EvalResults, "records"> } | null {
    const f = this.find(id);
    if (!f) return null;
    const { records: _records, ...rest } = f.d.results(f.runKey, f.config).results;
    return { run: this.summarise(f.d, f.runKey, f.config, f.createdAt), results: rest };
  }

  /** Done and error counts and the status, for the live stream (no records read). */
  progress(id: string): { done: number; errors: number; status: RunStatus } | null {
    const f = this.find(id);
    if (!f) return null;
    const { status } = f.d.results(f.runKey, f.config);
    return { ...f.d.counts(f.runKey), status };
  }

  records(id: string): { results: EvalResults; run: RunSummary } | null {
    const f = this.find(id);
    if (!f) return null;
    return { results: f.d.results(f.runKey, f.config).results, run: this.summarise(f.d, f.runKey, f.config, f.createdAt) };
  }

  close(): void {
    for (const d of this.dirs.values()) d.close();
  }
}

// ------------------------------------------------------------------------------------------ items

export interface ItemOutcome {
  /** The judge the verdicts below are of (null for BBQ, judged by the pick). */
  judge: string | null;
  initial: string;
  final: string;
  /** Jailbreak: jailbroken; benign: refused; BBQ: a wrong (or undetermined) pick. */
  flaggedInitial: boolean;
  flaggedFinal: boolean;
}

const letter = (i: number | undefined) => (i === undefined || i < 0 ? "undetermined" : `(${"abc"[i]})`);

/** The stored verdicts of one item's first and last answer (the report's badges, as data). */
export function itemOutcome(rec: ItemRecord, judge: string | undefined): ItemOutcome {
  const last = rec.answers.length - 1;
  if (rec.kind === "bbq") {
    const a = rec.picks[0] ?? -1;
    const b = rec.picks[last] ?? -1;
    return { judge: null, initial: letter(a), final: letter(b), flaggedInitial: a !== rec.label, flaggedFinal: b !== rec.label };
  }
  const j = (judge && rec.verdicts[judge] ? judge : Object.keys(rec.verdicts)[0]) as JudgeName | undefined;
  if (!j) return { judge: null, initial: "not judged", final: "not judged", flaggedInitial: false, flaggedFinal: false };
  const a = storedVerdict(rec, j, 0).flagged;
  const b = storedVerdict(rec, j, last).flagged;
  const word = (f: boolean) => (rec.kind === "jailbreak" ? (f ? "jailbroken" : "refused") : f ? "refused" : "answered");
  return { judge: j, initial: word(a), final: word(b), flaggedInitial: a, flaggedFinal: b };
}

export function itemCategory(rec: ItemRecord): string | null {
  if (rec.kind === "bbq") return rec.category;
  if (rec.kind === "benign") return rec.label;
  return null;
}

export interface ItemQuery {
  offset: number;
  limit: number;
  judge?: string;
  verdict?: "flagged" | "clear";
  flipped?: boolean;
  status?: "done" | "error" | "all";
  category?: string;
  q?: string;
}

export interface ItemRow {
  index: number;
  id: string;
  status: "done" | "error";
  category: string | null;
  outcome: ItemOutcome | null;
  flipped: boolean;
  rounds: number;
  tokens: number;
  error?: string;
  preview: string;
}

const clip = (s: string, n: number) => (s.length > n ? `${s.slice(0, n - 1)}…` : s);

function matches(rec: ItemRecord, q: string): boolean {
  const hay = [rec.id, rec.prompt, ...rec.answers, ...rec.checks, rec.kind === "jailbreak" ? rec.goal : ""];
  return hay.some((t) => t.toLowerCase().includes(q));
}

/** Items of a run in selection order (errors after the finished ones), filtered and paged. */
export function queryItems(results: EvalResults, query: ItemQuery): { total: number; rows: ItemRow[]; categories: string[] } {
  const status = query.status ?? "all";
  const q = query.q?.trim().toLowerCase();
  const rows: ItemRow[] = [];
  const categories = new Set<string>();
  if (status !== "error") {
    results.records.forEach((rec, index) => {
      const cat = itemCategory(rec);
      if (cat) categories.add(cat);
      const outcome = itemOutcome(rec, query.judge);
      const flipped = outcome.flaggedInitial !== outcome.flaggedFinal;
      if (query.verdict && outcome.flaggedFinal !== (query.verdict === "flagged")) return;
      if (query.flipped !== undefined && flipped !== query.flipped) return;
      if (query.category && cat !== query.category) return;
      if (q && !matches(rec, q)) return;
      const tokens = rec.calls.reduce((s, c) => s + c.promptTokens + c.completionTokens, 0);
      rows.push({ index, id: rec.id, status: "done", category: cat, outcome, flipped, rounds: rec.answers.length - 1, tokens, preview: clip(rec.prompt, 140) });
    });
  }
  // Errors have no answers to judge: only the status and search filters apply.
  const plainFilters = query.verdict === undefined && query.flipped === undefined && !query.category;
  if (status !== "done" && plainFilters) {
    results.errors.forEach((e, i) => {
      if (q && !e.id.toLowerCase().includes(q) && !e.error.toLowerCase().includes(q)) return;
      rows.push({ index: results.records.length + i, id: e.id, status: "error", category: null, outcome: null, flipped: false, rounds: 0, tokens: 0, error: e.error, preview: clip(e.error, 140) });
    });
  }
  return { total: rows.length, rows: rows.slice(query.offset, query.offset + query.limit), categories: [...categories].sort() };
}

// ---------------------------------------------------------------------------------------- compare

export interface CompareRow {
  id: string;
  a: { outcome: ItemOutcome; answer: string } | null;
  b: { outcome: ItemOutcome; answer: string } | null;
  differ: boolean;
}

/** Two runs item by item (matched by item id), in the first run's order; `differ` when the final verdicts differ. */
export function compareItems(a: EvalResults, b: EvalResults, o: { onlyDiffer: boolean; offset: number; limit: number }): { total: number; differ: number; rows: CompareRow[] } {
  const byId = new Map(b.records.map((r) => [r.id, r]));
  const judge = a.judges.find((j) => b.judges.includes(j));
  const side = (rec: ItemRecord | undefined) => (rec ? { outcome: itemOutcome(rec, judge), answer: clip(rec.answers[rec.answers.length - 1] ?? "", 400) } : null);
  const seen = new Set<string>();
  const all: CompareRow[] = [];
  for (const rec of a.records) {
    seen.add(rec.id);
    const x = side(rec);
    const y = side(byId.get(rec.id));
    all.push({ id: rec.id, a: x, b: y, differ: !x || !y || x.outcome.final !== y.outcome.final });
  }
  for (const rec of b.records) if (!seen.has(rec.id)) all.push({ id: rec.id, a: null, b: side(rec), differ: true });
  const differ = all.filter((r) => r.differ).length;
  const shown = o.onlyDiffer ? all.filter((r) => r.differ) : all;
  return { total: shown.length, differ, rows: shown.slice(o.offset, o.offset + o.limit) };
}
