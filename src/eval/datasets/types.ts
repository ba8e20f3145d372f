/**
 * Item types shared by the dataset loaders, the attacks and the eval runner.
 * Every item has an `id` that is stable across runs (derived from the file, never from load order
 * after filtering), so results stored by the runner can be matched back to items on resume.
 */

/** A harmful request: AdvBench `harmful_behaviors.csv` or the JBB-Behaviors harmful split. */
export interface JailbreakBehavior {
  /** `advbench-<row>` (0-based row in file order), `jbb-harmful-<index>` or `world-harmful-<n>`. */
  id: string;
  source: "advbench" | "jbb-harmful" | "world";
  /** The user request. */
  goal: string;
  /** The affirmative response prefix the attack optimises for ("Sure, here is ..."). */
  target?: string;
  /** JBB only: one of 10 OpenAI-usage-policy categories. */
  category?: string;
  /** JBB only: short unique name shared by a harmful/benign pair. */
  behavior?: string;
  /** JBB: the `index` column (0-99), which joins a behavior to JailbreakBench artifacts; world: the held-out position, which picks its test suffix. */
  index?: number;
}

/** A prompt for the over-refusal measurement: XSTest, or the JBB-Behaviors benign split. */
export interface BenignPrompt {
  /** `xstest-<id>`, `jbb-benign-<index>` or `world-<kind>-<n>`. */
  id: string;
  source: "xstest" | "jbb-benign" | "world";
  prompt: string;
  /** XSTest: `safe` prompts should be answered, `unsafe` contrast prompts refused. JBB benign: all `safe`. */
  label: "safe" | "unsafe";
  /** XSTest prompt type (e.g. `homonyms`, `contrast_homonyms`); JBB benign: the category. */
  type?: string;
  /** XSTest trigger word or entity; JBB benign: the behavior name. */
  focus?: string;
  /** XSTest sub-type (often empty). */
  note?: string;
  /** JBB only: the `index` column, pairing the benign row with harmful row of the same index. */
  index?: number;
}

export const BBQ_CATEGORIES = [
  "Age",
  "Disability_status",
  "Gender_identity",
  "Nationality",
  "Physical_appearance",
  "Race_ethnicity",
  "Race_x_SES",
  "Race_x_gender",
  "Religion",
  "SES",
  "Sexual_orientation",
] as const;
export type BbqCategory = (typeof BBQ_CATEGORIES)[number];

export type AnswerIndex = 0 | 1 | 2;

/**
 * How `targetIndex` was obtained (see bbq.ts for the rule):
 * - `groups`: from `answer_info` group labels against `stereotyped_groups` (one-dimensional categories);
 * - `race-only`: intersectional categories (Race_x_gender, Race_x_SES): only the race dimension is
 *   matched, because the JSONL lacks the second dimension's stereotyped value (`Known_stereotyped_var2`);
 * - `metadata`: from BBQ's `supplemental/additional_metadata.csv` `target_loc`, when that file is present.
 */
export type BbqTargetRule = "groups" | "race-only" | "metadata";

/** One BBQ item (Parrish et al. 2022). */
export interface BbqItem {
  /** `bbq-<Category>-<example_id>` (or `bbq-subset-<Category>-<example_id>`). */
  id: string;
  category: string;
  exampleId: number;
  questionIndex: string;
  contextCondition: "ambig" | "disambig";
  /** `neg`: the question targets the negative stereotype; `nonneg`: its complement. */
  questionPolarity: "neg" | "nonneg";
  context: string;
  question: string;
  answers: [string, string, string];
  /** Index of the correct answer. In ambiguous contexts this is the "unknown" option. */
  label: AnswerIndex;
  /** Index of the "unknown"-type answer (group label `unknown` in `answer_info`). */
  unknownIndex: AnswerIndex;
  /**
   * The answer that names the bias target (the stereotyped group), regardless of polarity; null
   * when the data does not single out one answer (both or neither non-unknown answers match).
   */
  targetIndex: AnswerIndex | null;
  targetRule: BbqTargetRule;
  /** `ans0..ans2` -> [surface text, group label], as in the file. */
  answerInfo: Record<string, [string, string]>;
  stereotypedGroups: string[];
  subcategory?: string;
  /** 1-based line of the item in its JSONL file (for error messages and provenance). */
  line: number;
  /** Which folder the item came from. */
  subset: boolean;
}

/** One item of a JailbreakBench artifact file (`jailbreaks[]`). */
export interface ArtifactJailbreak {
  index: number;
  goal: string;
  behavior: string;
  category: string;
  /** The adversarial prompt sent to the model; null where the attack submitted none. */
  prompt: string | null;
  response: string | null;
  jailbroken: boolean;
}

export interface JailbreakArtifact {
  /** Folder name, e.g. `GCG`, `prompt_with_random_search`. */
  method: string;
  /** Full model name, e.g. `vicuna-13b-v1.5`. */
  model: string;
  /** e.g. `white_box`, `black_box`, `manual`, `transfer`. */
  attackType: string;
  file: string;
  parameters: Record<string, unknown>;
  items: ArtifactJailbreak[];
  /** JBB behavior index -> adversarial prompt, for items whose prompt is not null. */
  prompts: Map<number, string>;
  /** Items without a prompt (the attack submitted none for that behavior). */
  skipped: { index: number; goal: string; reason: string }[];
}
