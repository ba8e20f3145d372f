/**
 * `selfcorrect eval jailbreak|bbq|xstest` and `selfcorrect eval study bbq`: measure a model with and
 * without Checking-as-Context. Thin layer: flags (parseFlags) -> EvalSpecInput -> makeEvalSpec ->
 * runEval / runBbqStudy of src/eval, with src/report rendering each run's summary.md and report.html.
 *
 * Exit codes: 0 every selected item finished; 1 the run completed but some items are recorded as
 * errors (results are written and count them; re-run with --retry-errors to retry only those);
 * 2 bad input (flags, data files), nothing run; 130 interrupted (finished items are stored; re-run
 * the same command to resume).
 */
import { Option, type Command } from "commander";
import { z } from "zod";
import { join } from "node:path";
import { addCacOptions, addModelOptions, cacOptionsFromOptions, modelFromOptions, type CacFlags, type ModelFlags } from "../options.js";
import { flag, parseFlags } from "../flags.js";
import type { ChatModel } from "../../cac/types.js";
import { ExitCode, UserError } from "../../util/errors.js";
import { writeFileAtomic, writeJsonAtomic, ensureWritableDir } from "../../util/fs.js";
import { defaultDataDir } from "../../eval/datasets/paths.js";
import { AdaptiveLimiter } from "../../eval/limiter.js";
import { runConfig, runEval, runKeyOf, type EvalDeps, type EvalReporter } from "../../eval/run.js";
import { openCluster } from "../../cluster/connect.js";
import { shardDispatcher } from "../../cluster/eval.js";
import { BBQ_CRITIC_FORMAT_NAMES, makeEvalSpec, needsJudgeModel, type EvalSpec, type EvalSpecInput } from "../../eval/spec.js";
import { parseStudyValues, runBbqStudy, studyBaseSpec, studyJsonSummary } from "../../eval/study.js";
import { jsonSummary, type EvalResults } from "../../eval/summary.js";
import { JAILBREAK_JUDGES, REFUSAL_JUDGES } from "../../eval/judges/index.js";
import type { EvalTask } from "../../eval/types.js";

/** The eval flags (the model and CaC flags are parsed by ../options.ts). Commander supplies the defaults. */
const EvalFlagsSchema = z.object({
  defense: flag.choice("--defense", ["none", "cac", "self-reminder", "icd"]).default("cac"),
  icdShots: flag.int("--icd-shots", 1, 3).default(1),
  icdFamily: flag.choice("--icd-family", ["vicuna", "llama2"]).default("vicuna"),
  system: z.string().optional(),
  dataset: z.string().optional(),
  worldSeed: flag.int("--world-seed", 0, 2 ** 32 - 1).optional(),
  worldSplit: flag.choice("--world-split", ["test", "validation"]).optional(),
  attack: z.string().optional(),
  judge: flag.list("--judge").optional(),
  judgeBaseUrl: z.string().optional(),
  judgeModel: z.string().optional(),
  judgeApiKey: z.string().optional(),
  dataDir: z.string().optional(),
  limit: flag.int("--limit", 1).optional(),
  seed: flag.int("--seed", 0, 2 ** 31 - 1).optional(),
  concurrency: flag.int("--concurrency", 1, 512).default(4),
  itemTimeoutMs: flag.int("--item-timeout-ms", 1, 86_400_000).default(300_000),
  itemAttempts: flag.int("--item-attempts", 1, 10).default(2),
  output: z.string().optional(),
  retryErrors: flag.bool(),
  json: flag.bool(),
  progress: z.boolean().default(true),
  categories: flag.list("--categories").optional(),
  critic: flag.choice("--critic", ["self", "ground-truth"]).default("self"),
  criticP: flag.number("--critic-p", 0, 1).default(0),
  criticFormat: flag.choice("--critic-format", BBQ_CRITIC_FORMAT_NAMES).default("code"),
  labels: flag.list("--labels").optional(),
  sweep: flag.choice("--sweep", ["p", "rounds"]).optional(),
  values: flag.list("--values").optional(),
  redis: flag.text("--redis").optional(),
  shardSize: flag.int("--shard-size", 1, 10_000).default(10),
  shards: flag.int("--shards", 1, 1000).default(8),
});
type EvalFlags = z.output<typeof EvalFlagsSchema>;
type RawFlags = ModelFlags & CacFlags & Record<string, unknown>;

function addEvalOptions(cmd: Command, task: EvalTask | "study"): Command {
  addModelOptions(cmd);
  addCacOptions(cmd);
  cmd
    .addOption(new Option("--defense <name>", "none, cac (Checking-as-Context), self-reminder, icd").choices(["none", "cac", "self-reminder", "icd"]).default("cac"))
    .option("--icd-shots <k>", "icd: number of refusal demos (1-3; llama2 has 2)", "1")
    .addOption(new Option("--icd-family <family>", "icd: whose demos (the paper's code has vicuna and llama2 sets)").choices(["vicuna", "llama2"]).default("vicuna"))
    .option("--system <text>", "a system prompt before every conversation")
    .option("--data-dir <dir>", "data laid out like ../shared/data (default: the `selfcorrect data fetch` cache)")
    .option("--limit <n>", "evaluate the first N items (after --seed shuffling)")
    .option("--seed <s>", "shuffle the items with this seed before --limit; also seeds the ground-truth critic")
    .option("--concurrency <c>", "items in flight at once (the rate limiter may lower it on 429)", "4")
    .option("--item-timeout-ms <ms>", "deadline for one item (all its calls, retries included)", "300000")
    .option("--item-attempts <n>", "tries per item before it is recorded as an error", "2")
    .option("--output <dir>", "output directory (default: selfcorrect-eval/<task>-<run key>)")
    .option("--retry-errors", "re-run items recorded as errors (finished items are never re-run)")
    .option("--json", "print one JSON summary as the last line of stdout")
    .option("--no-progress", "no progress bar on stderr");
  if (task === "jailbreak") {
    cmd
      .addOption(
        new Option("--dataset <name>", "advbench (harmful_behaviors.csv; the paper uses --limit 100), jbb (JBB-Behaviors harmful) or world (the synthetic world's held-out harmful requests)")
          .choices(["advbench", "jbb", "world"])
          .default("advbench"),
      )
      .option("--attack <name>", "none | gcg-suffix:<vicuna|llama|official> | autodan[:<Developer>] | jbb:<METHOD>:<model> | world (held-out world suffixes)", "none")
      .option("--judge <list>", `comma-separated: ${JAILBREAK_JUDGES.join(", ")}; with --dataset world also world (its default)`, "substring,gcg-list");
  }
  if (task === "xstest") {
    cmd
      .addOption(
        new Option("--dataset <name>", "xstest (250 safe + 200 unsafe prompts), jbb-benign (100 benign behaviors) or world (held-out benign look-alikes; unsafe: held-out harmful requests)")
          .choices(["xstest", "jbb-benign", "world"])
          .default("xstest"),
      )
      .option("--labels <list>", "which XSTest labels to run: safe,unsafe", "safe,unsafe")
      .option("--judge <list>", `comma-separated: ${REFUSAL_JUDGES.join(", ")}; with --dataset world also world-refusal (its default)`, "refusal");
  }
  if (task === "jailbreak" || task === "xstest") {
    cmd
      .option("--world-seed <n>", "--dataset world: the seed of the world (the one its training corpus was generated with)")
      .option("--world-split <split>", "--dataset world: test (the held-out sets, default) or validation (sets carved from the training side, for choosing how to train)")
      .addOption(new Option("--critic <kind>", "--dataset world with --defense cac: self (the model checks itself) or ground-truth (inject the hidden rule's verdict)").choices(["self", "ground-truth"]).default("self"))
      .option("--critic-p <p>", "ground-truth critic: probability of flipping its verdict (the critic-quality study)", "0");
  }
  if (task === "bbq" || task === "study") {
    cmd
      .addOption(new Option("--dataset <name>", "bbq (full files; 6 of 11 categories in ../shared/data) or bbq-subset (the paper's 100 ambiguous items per category)").choices(["bbq", "bbq-subset"]).default("bbq"))
      .option("--categories <list>", "comma-separated BBQ categories (default: all present)")
      .addOption(new Option("--critic <kind>", "self: the model reviews its answer; ground-truth: inject 'My previous answer is (un)biased.' from the label").choices(["self", "ground-truth"]).default("self"))
      .option("--critic-p <p>", "ground-truth critic: probability of flipping its verdict (paper Fig. 4a)", "0")
      .addOption(
        new Option("--critic-format <format>", "the review prompt of the self critic: code (the released code), paper (App. D), verbal, binary, cot-binary, standardized (Fig. 4b)")
          .choices(BBQ_CRITIC_FORMAT_NAMES)
          .default("code"),
      );
  }
  if (task !== "study") {
    cmd
      .option("--redis <url>", "run the items on a cluster of `selfcorrect worker`s (docs/cluster.md); the store and the results stay here")
      .option("--shard-size <n>", "with --redis: items per job", "10")
      .option("--shards <n>", "with --redis: jobs in flight at once", "8");
  }
  cmd
    .option("--judge-base-url <url>", "OpenAI-compatible endpoint of the LLM judge")
    .option("--judge-model <name>", "judge model name")
    .option("--judge-api-key <key>", "judge API key (default: the model's key)");
  return cmd;
}

/** The model the flags name, with the adaptive limiter in its fetch when it is an HTTP endpoint. */
async function buildModel(flags: ModelFlags, limiter: AdaptiveLimiter): Promise<ChatModel & { dispose?(): Promise<void> }> {
  if (flags.gguf) return modelFromOptions(flags);
  // The limiter sees every HTTP exchange (it lowers concurrency on 429) and paces the item-level retries.
  return limiter.wrapModel(await modelFromOptions(flags, { fetch: limiter.wrapFetch(), retryBaseMs: 200 }));
}

async function buildJudge(raw: RawFlags, f: EvalFlags, spec: EvalSpec, limiter: AdaptiveLimiter): Promise<ChatModel | undefined> {
  if (!needsJudgeModel(spec.judges)) return undefined;
  if (!f.judgeBaseUrl || !f.judgeModel) {
    throw new UserError("--judge llm / llm-refusal needs --judge-base-url URL and --judge-model NAME (any OpenAI-compatible model)");
  }
  return buildModel({ baseUrl: f.judgeBaseUrl, model: f.judgeModel, apiKey: f.judgeApiKey ?? raw.apiKey, timeoutMs: raw.timeoutMs, retries: raw.retries }, limiter);
}

/** The run's settings: the eval flags, the CaC flags, and which of them the user typed. */
function specInput(task: EvalTask, raw: RawFlags, f: EvalFlags, cmd: Command): EvalSpecInput {
  return {
    task,
    dataDir: f.dataDir ?? defaultDataDir(),
    dataset: f.dataset,
    worldSeed: f.worldSeed,
    worldSplit: f.worldSplit,
    attack: f.attack,
    // An empty list means the default, as an absent flag does.
    categories: f.categories?.length ? f.categories : undefined,
    labels: f.labels,
    limit: f.limit,
    seed: f.seed,
    defense: f.defense,
    cac: cacOptionsFromOptions(raw),
    icdShots: f.icdShots,
    icdFamily: f.icdFamily,
    systemPrompt: f.system,
    judges: f.judge ?? [],
    judgesDefaulted: cmd.getOptionValueSource("judge") === "default",
    critic: f.critic,
    criticP: f.criticP,
    criticFormat: f.criticFormat,
    checkPromptGiven: cmd.getOptionValueSource("checkPrompt") === "cli",
    maxTokensGiven: cmd.getOptionValueSource("maxTokens") === "cli",
    concurrency: f.concurrency,
    itemTimeoutMs: f.itemTimeoutMs,
    itemAttempts: f.itemAttempts,
    retryErrors: f.retryErrors,
    output: f.output,
    progress: f.progress,
  };
}

/** The report of each finished run; its module is loaded on first use (the charts pull in Vega, about half a second). */
const reporter: EvalReporter = {
  async render(results: EvalResults) {
    const { evalHtml, evalMarkdown } = await import("../../report/eval-report.js");
    return { markdown: evalMarkdown(results), html: await evalHtml(results) };
  },
};

function withSigint<T>(fn: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ac = new AbortController();
  const onSigint = () => {
    process.stderr.write("\ninterrupted: finishing nothing new; finished items are stored, re-run the same command to resume\n");
    ac.abort(new Error("interrupted"));
  };
  process.once("SIGINT", onSigint);
  process.once("SIGTERM", onSigint);
  return fn(ac.signal).finally(() => {
    process.removeListener("SIGINT", onSigint);
    process.removeListener("SIGTERM", onSigint);
  });
}

function humanSummary(r: EvalResults, outputDir: string): string {
  const lines = [`${r.task}: ${r.counts.done} finished, ${r.counts.errors} errors, ${r.counts.pending} pending of ${r.counts.selected} (${r.status})`];
  if (r.jailbreak) for (const [j, a] of Object.entries(r.jailbreak.asr)) lines.push(`  ASR ${j}: initial ${a.initial.rate?.toFixed(3) ?? "—"} -> final ${a.final.rate?.toFixed(3) ?? "—"}`);
  if (r.jailbreak?.selfCheck) lines.push(`  self-check accuracy: ${r.jailbreak.selfCheck.accuracy.rate?.toFixed(3) ?? "—"}`);
  if (r.benign) for (const [j, a] of Object.entries(r.benign.safe)) lines.push(`  over-refusal ${j}: initial ${a.initial.rate?.toFixed(3) ?? "—"} -> final ${a.final.rate?.toFixed(3) ?? "—"}`);
  if (r.bbq) {
    const a = r.bbq.overall[0]!;
    const b = r.bbq.overall[r.bbq.rounds]!;
    lines.push(`  accuracy: ${a.accuracy?.toFixed(3) ?? "—"} -> ${b.accuracy?.toFixed(3) ?? "—"}; bias ambig ${a.biasAmbig?.toFixed(3) ?? "—"} -> ${b.biasAmbig?.toFixed(3) ?? "—"}; bias disambig ${a.biasDisambig?.toFixed(3) ?? "—"} -> ${b.biasDisambig?.toFixed(3) ?? "—"}`);
  }
  lines.push(`  ${r.cost.calls} calls, ${r.cost.tokens} tokens`, `  report: ${join(outputDir, "report.html")}`);
  return lines.join("\n") + "\n";
}

/**
 * `--redis`: the items run on the cluster's workers in shards; this process keeps the runner and the store.
 * The job carries the settings as parsed here (never the API key: a worker takes its own from the
 * environment, so no secret is written into Redis).
 */
async function clusterDeps(raw: RawFlags, f: EvalFlags, input: EvalSpecInput, spec: EvalSpec, deps: EvalDeps, redis: string) {
  const cluster = await openCluster(redis);
  const { apiKey: _key, ...modelFlags } = pickModelFlags(raw);
  const judge = deps.judgeModel ? { baseUrl: f.judgeBaseUrl, model: f.judgeModel, timeoutMs: raw.timeoutMs, retries: raw.retries } : undefined;
  const dispatcher = shardDispatcher({
    queue: cluster.queue,
    runKey: runKeyOf(runConfig(spec, deps)),
    specInput: input,
    model: modelFlags,
    judge,
    shardSize: f.shardSize,
  });
  return {
    spec: { ...spec, concurrency: f.shardSize * f.shards },
    processItem: dispatcher.processItem,
    close: async () => {
      dispatcher.close();
      await cluster.close();
    },
  };
}

function pickModelFlags(raw: RawFlags): ModelFlags {
  const keys = ["baseUrl", "model", "apiKey", "gguf", "backend", "maxTokens", "temperature", "timeoutMs", "retries", "contextSize", "maxUpstreamBytes"] as const;
  const out: Record<string, unknown> = {};
  for (const k of keys) if (raw[k] !== undefined) out[k] = raw[k];
  return out as ModelFlags;
}

async function runOne(task: EvalTask, raw: RawFlags, cmd: Command): Promise<void> {
  const f = parseFlags(EvalFlagsSchema, raw);
  const input = specInput(task, raw, f, cmd);
  let spec = makeEvalSpec(input);
  const limiter = new AdaptiveLimiter(spec.concurrency);
  const judgeLimiter = new AdaptiveLimiter(spec.concurrency);
  const model = await buildModel(raw, limiter);
  let cluster: Awaited<ReturnType<typeof clusterDeps>> | undefined;
  try {
    const judgeModel = await buildJudge(raw, f, spec, judgeLimiter);
    const deps: EvalDeps = { model, judgeModel, limiter: raw.gguf ? undefined : limiter, reporter };
    if (f.redis) {
      cluster = await clusterDeps(raw, f, input, spec, deps, f.redis);
      spec = cluster.spec;
      deps.processItem = cluster.processItem;
    }
    const outcome = await withSigint((signal) => runEval(spec, { ...deps, signal }));
    if (outcome.interrupted || !outcome.results) {
      process.stderr.write(`interrupted after ${outcome.ran} item(s) started; state is in ${outcome.outputDir}\n`);
      process.exitCode = ExitCode.interrupted;
      return;
    }
    const r = outcome.results;
    if (f.json) process.stdout.write(JSON.stringify(jsonSummary(r, outcome.outputDir)) + "\n");
    else process.stdout.write(humanSummary(r, outcome.outputDir));
    process.exitCode = r.counts.errors > 0 ? ExitCode.failure : ExitCode.ok;
  } finally {
    await cluster?.close();
    await model.dispose?.();
  }
}

async function runStudy(raw: RawFlags, cmd: Command): Promise<void> {
  const f = parseFlags(EvalFlagsSchema, raw);
  const sweep = f.sweep ?? "p";
  const values = parseStudyValues(sweep, f.values?.length ? f.values : undefined);
  const base = studyBaseSpec(specInput("bbq", raw, f, cmd), sweep);
  const outDir = f.output ?? join("selfcorrect-eval", `study-bbq-${sweep}`);
  const limiter = new AdaptiveLimiter(base.concurrency);
  const model = await buildModel(raw, limiter);
  let study: Awaited<ReturnType<typeof runBbqStudy>>;
  try {
    study = await withSigint((signal) => runBbqStudy(base, { sweep, values, outDir }, { model, limiter: raw.gguf ? undefined : limiter, signal, reporter }));
  } finally {
    await model.dispose?.();
  }
  if (study.interrupted) {
    process.exitCode = ExitCode.interrupted;
    return;
  }
  const { doc } = study;
  const { studyHtml, studyMarkdown } = await import("../../report/eval-report.js");
  writeFileAtomic(join(outDir, "study.md"), studyMarkdown(doc));
  writeFileAtomic(join(outDir, "study.html"), await studyHtml(doc));
  writeJsonAtomic(join(outDir, "study.json"), doc);
  if (f.json) process.stdout.write(JSON.stringify(studyJsonSummary(doc, outDir)) + "\n");
  else {
    for (const p of doc.points) process.stdout.write(`${sweep}=${p.value}: accuracy ${p.initial?.toFixed(3) ?? "—"} -> ${p.final?.toFixed(3) ?? "—"}\n`);
    process.stdout.write(`study: ${join(outDir, "study.html")}\n`);
  }
  process.exitCode = doc.points.some((p) => p.errors > 0) ? ExitCode.failure : ExitCode.ok;
}

const EXAMPLES = `
Examples:
  selfcorrect eval jailbreak --base-url http://127.0.0.1:8080/v1 --model vicuna-7b --defense cac --rounds 3 --limit 100
  selfcorrect eval jailbreak --gguf ./model.gguf --defense none --attack gcg-suffix:vicuna --judge substring,gcg-list,llm \\
      --judge-base-url https://api.openai.com/v1 --judge-model gpt-4o-mini
  selfcorrect eval xstest --base-url ... --model ... --defense cac --labels safe
  selfcorrect eval bbq --base-url ... --model ... --dataset bbq-subset --defense cac --critic ground-truth --critic-p 0.25
  selfcorrect eval jailbreak --gguf ./world.gguf --dataset world --attack world --defense cac --rounds 1
  selfcorrect eval xstest --gguf ./world.gguf --dataset world --labels safe

Re-running the same command resumes: finished items are skipped, items recorded as errors are re-run only
with --retry-errors. Results: <output>/results.json, summary.md, report.html, and the store eval.sqlite.
Exit codes: 0 all items finished, 1 some items failed (counted in the results), 2 bad input, 130 interrupted.`;

export function registerEvalCommands(program: Command): void {
  const evalCmd = program
    .command("eval")
    .description("Evaluate a model with and without Checking-as-Context: jailbreak ASR, BBQ bias, over-refusal (resumable)");

  for (const task of ["jailbreak", "bbq", "xstest"] as const) {
    const desc = {
      jailbreak: "attack success rate on harmful behaviors (AdvBench / JBB) under several judges, initial vs corrected, with self-check accuracy",
      bbq: "BBQ accuracy and bias scores before and after self-correction, with the ground-truth-critic and critic-format studies",
      xstest: "over-refusal on benign prompts (XSTest safe prompts or JBB benign behaviors), initial vs corrected",
    }[task];
    const cmd = evalCmd.command(task).description(desc);
    addEvalOptions(cmd, task);
    cmd.addHelpText("after", EXAMPLES);
    cmd.action(async (raw: RawFlags) => runOne(task, raw, cmd));
  }

  evalCmd
    .command("compare")
    .description("compare finished runs of one task side by side (e.g. each defense): a table and a bar chart per judge")
    .argument("<dirs...>", "output directories of `selfcorrect eval` runs")
    .requiredOption("--output <dir>", "where to write compare.md and compare.html")
    .option("--json", "print one JSON summary as the last line of stdout")
    .action(async (dirs: string[], flags: { output: string; json?: boolean }) => {
      const { loadRuns, compareHtml, compareMarkdown } = await import("../../report/eval-compare.js");
      const runs = loadRuns(dirs);
      ensureWritableDir(flags.output);
      writeFileAtomic(join(flags.output, "compare.md"), compareMarkdown(runs));
      writeFileAtomic(join(flags.output, "compare.html"), await compareHtml(runs));
      if (flags.json) {
        process.stdout.write(JSON.stringify({ task: runs[0]!.results.task, runs: runs.map((r) => ({ label: r.label, dir: r.dir, summary: jsonSummary(r.results, r.dir) })), output: flags.output }) + "\n");
      } else process.stdout.write(`compared ${runs.length} runs: ${join(flags.output, "compare.html")}\n`);
    });

  const study = evalCmd.command("study").description("controlled studies that sweep a setting and plot accuracy against it");
  const bbqStudy = study
    .command("bbq")
    .description("BBQ: sweep the ground-truth critic's flip probability p (Fig. 4a) or the number of rounds (Fig. 4e) and plot accuracy");
  addEvalOptions(bbqStudy, "study");
  bbqStudy
    .addOption(new Option("--sweep <what>", "p (ground-truth critic flip probability) or rounds").choices(["p", "rounds"]).makeOptionMandatory())
    .option("--values <list>", "comma-separated values (default p: 0,0.25,0.5,0.75,1; rounds: 1,2,3,4,5)");
  bbqStudy.addHelpText(
    "after",
    `
Each value is its own resumable run under <output>/<sweep>-<value>; <output>/study.json, study.md and
study.html (accuracy vs the swept value) summarise them.
  selfcorrect eval study bbq --base-url ... --model ... --dataset bbq-subset --sweep p --output runs/fig4a`,
  );
  bbqStudy.action(async (raw: RawFlags) => runStudy(raw, bbqStudy));
}
