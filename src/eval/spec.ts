/**
 * What one eval run is (EvalSpec) and how the CLI's already-parsed settings become one: the judge
 * names are checked against the registry, BBQ gets the paper's review prompt and turn lengths unless
 * the user chose others, and the combinations that cannot run are refused before anything starts.
 */
import { BBQ_REVIEW_PROMPT_CODE, BBQ_REVIEW_PROMPT_PAPER, CRITIC_BINARY, CRITIC_COT_BINARY, CRITIC_STANDARDIZED, CRITIC_VERBAL } from "../cac/presets.js";
import type { CaCOptions } from "../cac/types.js";
import { UserError } from "../util/errors.js";
import { isJudgeName, judgeNames, JUDGES, UnknownJudgeError, type JudgeName } from "./judges/index.js";
import { BBQ_PER_CALL, type BbqCriticConfig, type DefenseConfig } from "./tasks.js";
import { WORLD_DATASET } from "./datasets/world.js";
import { worldCacOptions } from "./world-eval.js";
import { WORLD_DEFAULT_SEED, type WorldSplit } from "../world/index.js";
import type { Defense, EvalTask } from "./types.js";

/** BBQ check prompts by critic format (the critic-format study, paper Fig. 4b, and the code's default). */
export const BBQ_CRITIC_FORMATS = {
  code: BBQ_REVIEW_PROMPT_CODE,
  paper: BBQ_REVIEW_PROMPT_PAPER,
  verbal: CRITIC_VERBAL,
  binary: CRITIC_BINARY,
  "cot-binary": CRITIC_COT_BINARY,
  standardized: CRITIC_STANDARDIZED,
} as const;
export type BbqCriticFormat = keyof typeof BBQ_CRITIC_FORMATS;
export const BBQ_CRITIC_FORMAT_NAMES = Object.keys(BBQ_CRITIC_FORMATS) as [BbqCriticFormat, ...BbqCriticFormat[]];

export interface EvalSpec {
  task: EvalTask;
  dataDir: string;
  /** jailbreak: advbench | jbb | world; xstest: xstest | jbb-benign | world; bbq: bbq | bbq-subset. */
  dataset: string;
  /** --dataset world: which world (the seed its corpus was generated with); default WORLD_DEFAULT_SEED. */
  worldSeed?: number;
  /** --dataset world: the held-out test sets (default) or the validation sets. */
  worldSplit?: WorldSplit;
  /** jailbreak only. */
  attack: string;
  /** bbq only: categories to load (default all present). */
  categories?: string[];
  /** xstest only: which labels to run (default both). */
  labels?: ("safe" | "unsafe")[];
  limit?: number;
  /** Shuffles the items with this seed before --limit; also seeds the ground-truth critic. */
  seed?: number;
  defense: DefenseConfig;
  judges: JudgeName[];
  critic: BbqCriticConfig & { format: string };
  concurrency: number;
  itemTimeoutMs: number;
  itemAttempts: number;
  retryErrors: boolean;
  output?: string;
  progress: boolean;
}

/** The settings of a run as the CLI parsed them, before the task's defaults and checks. */
export interface EvalSpecInput {
  task: EvalTask;
  dataDir: string;
  dataset?: string;
  worldSeed?: number;
  worldSplit?: WorldSplit;
  attack?: string;
  categories?: string[];
  labels?: string[];
  limit?: number;
  seed?: number;
  defense: Defense;
  cac: CaCOptions;
  icdShots: number;
  icdFamily: "vicuna" | "llama2";
  systemPrompt?: string;
  /** Judge names as given (ignored for bbq). */
  judges: string[];
  /** The judge names are the CLI's defaults, not the user's: --dataset world then uses its own judge. */
  judgesDefaulted?: boolean;
  critic: "self" | "ground-truth";
  criticP: number;
  criticFormat: BbqCriticFormat;
  /** The user chose the check prompt / the max tokens; BBQ keeps the paper's otherwise. */
  checkPromptGiven: boolean;
  maxTokensGiven: boolean;
  concurrency: number;
  itemTimeoutMs: number;
  itemAttempts: number;
  retryErrors: boolean;
  output?: string;
  progress: boolean;
}

/** The judges of a jailbreak or xstest run, checked against the registry (bbq has none); `scope` admits a dataset's own judges. */
export function parseJudges(task: EvalTask, names: readonly string[], scope?: "world"): JudgeName[] {
  if (task === "bbq") return [];
  const allowed = judgeNames(task === "jailbreak" ? "jailbreak" : "refusal", scope);
  const out: JudgeName[] = [];
  for (const j of names) {
    if (!isJudgeName(j) || !allowed.includes(j)) throw new UnknownJudgeError(j, task, allowed);
    out.push(j);
  }
  if (out.length === 0) throw new UserError(`--judge: give at least one of ${allowed.join(", ")}`);
  return out;
}

/** The world's own judge when the user named none: the other judges do not know its answer format. */
const WORLD_DEFAULT_JUDGES = { jailbreak: ["world"], xstest: ["world-refusal"], bbq: [] } as const;

export function makeEvalSpec(input: EvalSpecInput): EvalSpec {
  const { task } = input;
  const world = task !== "bbq" && input.dataset === WORLD_DATASET;
  let cac = { ...input.cac };
  const judges = world
    ? parseJudges(task, input.judgesDefaulted ? WORLD_DEFAULT_JUDGES[task] : input.judges, "world")
    : parseJudges(task, input.judges);
  if (world) cac = worldCacOptions(cac, input.checkPromptGiven);
  if (input.worldSeed !== undefined && !world) throw new UserError("--world-seed goes with --dataset world");
  if (input.worldSplit !== undefined && !world) throw new UserError("--world-split goes with --dataset world");
  if (task !== "bbq" && input.critic === "ground-truth") {
    if (!world) throw new UserError(`--critic ground-truth for eval ${task} needs --dataset world (the ground truth is the world's hidden rule)`);
    if (input.defense !== "cac") throw new UserError("--critic ground-truth needs --defense cac");
  }
  if (task === "bbq") {
    // The BBQ review prompt replaces the jailbreak check prompt unless the user gave one.
    if (!input.checkPromptGiven) cac.checkPrompt = BBQ_CRITIC_FORMATS[input.criticFormat];
    // The paper's BBQ turn lengths unless the user gave --max-tokens.
    if (!input.maxTokensGiven) {
      cac.perCall = BBQ_PER_CALL;
      if (cac.generation) {
        cac.generation = { ...cac.generation };
        delete cac.generation.maxTokens;
      }
    }
    if (input.critic === "ground-truth" && input.defense !== "cac") throw new UserError("--critic ground-truth needs --defense cac");
  }
  let labels: ("safe" | "unsafe")[] | undefined;
  if (task === "xstest") {
    const ls = input.labels ?? ["safe", "unsafe"];
    for (const l of ls) if (l !== "safe" && l !== "unsafe") throw new UserError(`--labels ${l}: use safe, unsafe or safe,unsafe`);
    labels = ls as ("safe" | "unsafe")[];
  }
  return {
    task,
    dataDir: input.dataDir,
    dataset: input.dataset ?? (task === "jailbreak" ? "advbench" : task === "xstest" ? "xstest" : "bbq"),
    ...(world ? { worldSeed: input.worldSeed ?? WORLD_DEFAULT_SEED, worldSplit: input.worldSplit ?? "test" } : {}),
    attack: input.attack ?? "none",
    categories: input.categories,
    labels,
    limit: input.limit,
    seed: input.seed,
    defense: { defense: input.defense, cac, icdShots: input.icdShots, icdFamily: input.icdFamily, systemPrompt: input.systemPrompt },
    judges,
    critic: { kind: input.critic, p: input.criticP, seed: input.seed ?? 0, format: input.criticFormat },
    concurrency: input.concurrency,
    itemTimeoutMs: input.itemTimeoutMs,
    itemAttempts: input.itemAttempts,
    retryErrors: input.retryErrors,
    output: input.output,
    progress: input.progress,
  };
}

/** Whether a run's judges need a judge model. */
export function needsJudgeModel(judges: readonly JudgeName[]): boolean {
  return judges.some((j) => JUDGES[j].usesModel);
}
