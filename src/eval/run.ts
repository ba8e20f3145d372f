/**
 * One eval run end to end: load and select the items, key the run by a hash of its config, run the
 * pending items through the resumable runner into the SQLite store, then compute the results from the
 * store and write results.json (atomically), summary.md and report.html.
 *
 * Outputs are derived from the store and written only at the end: at the start they are removed,
 * so a run that dies leaves no results.json that could be taken for a finished one. results.json
 * says `"status": "complete"` only when every selected item has a row (finished or error).
 */
import { createHash } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { ensureWritableDir, writeFileAtomic, writeJsonAtomic } from "../util/fs.js";
import { canonicalJson } from "../util/json.js";
import { ProgressBar } from "../util/progress.js";
import { Rng } from "../util/rng.js";
import { UserError } from "../util/errors.js";
import { applyAttack } from "./attacks.js";
import { loadAdvBench } from "./datasets/advbench.js";
import { loadJbbBehaviors } from "./datasets/jbb.js";
import { loadXsTest } from "./datasets/xstest.js";
import { loadBbq } from "./datasets/bbq.js";
import { loadWorldBenign, loadWorldHarmful, WORLD_DATASET } from "./datasets/world.js";
import { worldGroundTruthCritic } from "./world-eval.js";
import { WORLD_DEFAULT_SEED } from "../world/index.js";
import { runItems } from "./runner.js";
import { acquireLock, ResultStore, STORE_FILE } from "./store.js";
import { buildResults, type EvalResults } from "./summary.js";
import { needsJudgeModel, type EvalSpec } from "./spec.js";
import { runBbqItem, runBenignItem, runJailbreakItem, type BbqCriticConfig, type InjectedCritic, type TaskContext } from "./tasks.js";
import type { ItemRecord } from "./types.js";
import type { ChatModel } from "../cac/types.js";
import type { AdaptiveLimiter } from "./limiter.js";

export const RESULTS_FILE = "results.json";
export const SUMMARY_FILE = "summary.md";
export const REPORT_FILE = "report.html";

export type { EvalSpec } from "./spec.js";

/** Renders the human-readable outputs of a finished run (src/report/eval-report.ts does it for the CLI). */
export interface EvalReporter {
  render(results: EvalResults): Promise<{ markdown: string; html: string }>;
}

export interface EvalDeps {
  model: ChatModel;
  judgeModel?: ChatModel;
  limiter?: AdaptiveLimiter;
  signal?: AbortSignal;
  /** Writes summary.md and report.html next to results.json; without it only results.json is written. */
  reporter?: EvalReporter;
  /**
   * Runs one item elsewhere (a cluster worker) instead of here; the runner, the store and the outputs
   * stay this process's, so the no-duplicate and resume rules are the same.
   */
  processItem?: (id: string, signal: AbortSignal) => Promise<ItemRecord>;
}

export interface PreparedItem {
  id: string;
  run: (ctx: TaskContext, signal: AbortSignal) => Promise<ItemRecord>;
}

export function prepareItems(spec: EvalSpec): { items: PreparedItem[]; skipped: { id: string; reason: string }[]; notes: string[] } {
  const notes: string[] = [];
  const worldSeed = spec.worldSeed ?? WORLD_DEFAULT_SEED;
  const worldSplit = spec.worldSplit ?? "test";
  // A fresh critic per attempt, so a retried item records only its own flips.
  const worldCritic = (id: string, request: string): (() => InjectedCritic | undefined) =>
    spec.critic.kind === "ground-truth" && spec.dataset === WORLD_DATASET ? () => worldGroundTruthCritic({ itemId: id, request, worldSeed, p: spec.critic.p, seed: spec.critic.seed }) : () => undefined;
  if (spec.task === "jailbreak") {
    const behaviors =
      spec.dataset === "advbench"
        ? loadAdvBench(spec.dataDir)
        : spec.dataset === "jbb"
          ? loadJbbBehaviors(spec.dataDir, "harmful")
          : spec.dataset === WORLD_DATASET
            ? loadWorldHarmful(worldSeed, worldSplit)
            : badDataset(spec);
    const attacked = applyAttack(spec.attack, behaviors, spec.dataDir, worldSeed, worldSplit);
    return {
      items: attacked.items.map((it) => {
        const make = worldCritic(it.id, it.behavior.goal);
        return { id: it.id, run: (ctx, signal) => runJailbreakItem(ctx, it, signal, make()) };
      }),
      skipped: attacked.skipped.map((s) => ({ id: s.id, reason: s.reason })),
      notes,
    };
  }
  if (spec.task === "xstest") {
    const prompts =
      spec.dataset === "xstest"
        ? loadXsTest(spec.dataDir)
        : spec.dataset === "jbb-benign"
          ? loadJbbBehaviors(spec.dataDir, "benign")
          : spec.dataset === WORLD_DATASET
            ? loadWorldBenign(worldSeed, worldSplit)
            : badDataset(spec);
    const chosen = spec.labels ? prompts.filter((p) => spec.labels!.includes(p.label)) : prompts;
    return {
      items: chosen.map((p) => {
        const make = worldCritic(p.id, p.prompt);
        return { id: p.id, run: (ctx, signal) => runBenignItem(ctx, p, signal, make()) };
      }),
      skipped: [],
      notes,
    };
  }
  if (spec.dataset !== "bbq" && spec.dataset !== "bbq-subset") badDataset(spec);
  const loaded = loadBbq(spec.dataDir, { subset: spec.dataset === "bbq-subset", categories: spec.categories });
  if (loaded.missing.length) notes.push(`BBQ categories missing from ${loaded.dir}: ${loaded.missing.join(", ")} (present: ${loaded.present.join(", ")})`);
  const noTarget = loaded.items.filter((i) => i.targetIndex === null).length;
  if (noTarget) notes.push(`${noTarget} BBQ items have no single bias target; they count for accuracy, not for the bias scores`);
  const critic: BbqCriticConfig = { kind: spec.critic.kind, p: spec.critic.p, seed: spec.critic.seed };
  return { items: loaded.items.map((it) => ({ id: it.id, run: (ctx, signal) => runBbqItem(ctx, it, critic, signal) })), skipped: [], notes };
}

function badDataset(spec: EvalSpec): never {
  const allowed = { jailbreak: "advbench, jbb, world", xstest: "xstest, jbb-benign, world", bbq: "bbq, bbq-subset" }[spec.task];
  throw new UserError(`--dataset ${spec.dataset}: not a ${spec.task} dataset; use one of ${allowed}`);
}

/** Deterministic selection: file order, or a seeded shuffle; then the first `limit`. */
export function selectItems<T>(items: T[], limit: number | undefined, seed: number | undefined): T[] {
  const order = items.slice();
  if (seed !== undefined) {
    const rng = new Rng(seed);
    for (let i = order.length - 1; i > 0; i--) {
      const j = rng.int(i + 1);
      [order[i], order[j]] = [order[j]!, order[i]!];
    }
  }
  return limit === undefined ? order : order.slice(0, limit);
}

/** Everything that changes what an item's record would be (not --limit, --concurrency, --output...). */
export function runConfig(spec: EvalSpec, deps: EvalDeps): Record<string, unknown> {
  const d = spec.defense;
  const cac = d.cac;
  const defense: Record<string, unknown> = { defense: d.defense, systemPrompt: d.systemPrompt };
  if (d.defense === "cac") {
    Object.assign(defense, {
      variant: cac.variant,
      rounds: cac.rounds,
      checkPrompt: cac.checkPrompt,
      generation: cac.generation,
      perCall: cac.perCall,
    });
  } else {
    Object.assign(defense, { generation: cac.generation, perCall: cac.perCall });
  }
  if (d.defense === "icd") Object.assign(defense, { icdShots: d.icdShots, icdFamily: d.icdFamily });
  const config: Record<string, unknown> = {
    version: 1,
    task: spec.task,
    dataset: spec.dataset,
    model: deps.model.id,
    defense,
    judges: spec.judges,
    seed: spec.seed ?? null,
  };
  if (spec.task === "jailbreak") config.attack = spec.attack;
  if (spec.task === "xstest") config.labels = spec.labels ?? ["safe", "unsafe"];
  if (spec.task === "bbq") {
    config.categories = spec.categories ?? null;
    if (d.defense === "cac") config.critic = spec.critic.kind === "ground-truth" ? { kind: "ground-truth", p: spec.critic.p, seed: spec.critic.seed } : { kind: "self", format: spec.critic.format };
  }
  if (needsJudgeModel(spec.judges)) config.judgeModel = deps.judgeModel?.id ?? null;
  // Only models that name their weights (local files) get this key, so the keys of endpoint runs stay.
  if (deps.model.fingerprint !== undefined) config.modelFingerprint = deps.model.fingerprint;
  // Only world runs get these keys, so the keys of every other run stay what they were.
  if (spec.task !== "bbq" && spec.dataset === WORLD_DATASET) {
    config.worldSeed = spec.worldSeed ?? WORLD_DEFAULT_SEED;
    // Only validation runs get this key, so the keys of test runs stay what they were.
    if (spec.worldSplit === "validation") config.worldSplit = "validation";
    if (d.defense === "cac") {
      if (typeof cac.reanswerPrompt === "string") defense.reanswerPrompt = cac.reanswerPrompt;
      if (spec.critic.kind === "ground-truth") config.critic = { kind: "ground-truth", p: spec.critic.p, seed: spec.critic.seed };
    }
  }
  return config;
}

export function runKeyOf(config: Record<string, unknown>): string {
  return createHash("sha256").update(canonicalJson(config)).digest("hex").slice(0, 16);
}

export interface EvalOutcome {
  results: EvalResults | null;
  outputDir: string;
  interrupted: boolean;
  ran: number;
  skipped: number;
}

export async function runEval(spec: EvalSpec, deps: EvalDeps): Promise<EvalOutcome> {
  if (needsJudgeModel(spec.judges) && !deps.judgeModel) {
    throw new UserError("--judge llm / llm-refusal needs a judge model: add --judge-base-url URL --judge-model NAME");
  }
  // All input is read and validated before anything is written.
  const prepared = prepareItems(spec);
  const selected = selectItems(prepared.items, spec.limit, spec.seed);
  const config = runConfig(spec, deps);
  const runKey = runKeyOf(config);
  const outputDir = spec.output ?? join("selfcorrect-eval", `${spec.task}-${runKey}`);
  ensureWritableDir(outputDir);
  const release = acquireLock(outputDir);
  let store: ResultStore | undefined;
  try {
    for (const f of [RESULTS_FILE, SUMMARY_FILE, REPORT_FILE]) rmSync(join(outputDir, f), { force: true });
    store = new ResultStore(join(outputDir, STORE_FILE));
    store.registerRun(runKey, config);
    const ctx: TaskContext = { model: deps.model, defense: spec.defense, judges: spec.judges, judgeModel: deps.judgeModel };
    const byId = new Map(selected.map((p) => [p.id, p]));
    const bar = new ProgressBar({ total: selected.length, label: `eval ${spec.task}`, unit: "items", enabled: spec.progress });
    const outcome = await runItems({
      store,
      runKey,
      items: selected.map((p) => p.id),
      idOf: (id) => id,
      process: deps.processItem ?? ((id, signal) => byId.get(id)!.run(ctx, signal)),
      concurrency: spec.concurrency,
      itemTimeoutMs: spec.itemTimeoutMs,
      attempts: spec.itemAttempts,
      retryErrors: spec.retryErrors,
      signal: deps.signal,
      onProgress: (p) => bar.update(p.finished + p.errors, p.errors ? `errors ${p.errors}` : undefined),
    });
    bar.finish();
    if (outcome.interrupted) return { results: null, outputDir, interrupted: true, ran: outcome.ran, skipped: outcome.skipped };
    const rows = store.results(runKey);
    const results = buildResults({
      task: spec.task,
      runKey,
      config,
      selectedIds: selected.map((p) => p.id),
      rows,
      judges: spec.judges,
      skippedByAttack: prepared.skipped,
      notes: prepared.notes,
      rateLimit: deps.limiter
        ? { requests: deps.limiter.stats.requests, rateLimited: deps.limiter.stats.rateLimited, minWindow: deps.limiter.stats.minWindow }
        : undefined,
    });
    if (deps.reporter) {
      const { markdown, html } = await deps.reporter.render(results);
      writeFileAtomic(join(outputDir, SUMMARY_FILE), markdown);
      writeFileAtomic(join(outputDir, REPORT_FILE), html);
    }
    // Last, so its presence means the other files are there too.
    writeJsonAtomic(join(outputDir, RESULTS_FILE), results);
    return { results, outputDir, interrupted: false, ran: outcome.ran, skipped: outcome.skipped };
  } finally {
    store?.close();
    release();
  }
}
