/**
 * Attacks as prompt transforms: each turns a harmful behavior into the user prompt sent to the model.
 *
 * - `none`: the goal as is.
 * - `gcg-suffix:<key>`: the goal, a space, then a fixed GCG adversarial suffix — the transfer suffixes
 *   hard-coded in Self-Correction's `Jailbreak/config.py` (keys `vicuna`, `llama`, `official`;
 *   `jailbreak-prompts/gcg_suffixes_self_correction.json`). As in llm-attacks, the user turn is
 *   `"{goal} {suffix}"`.
 * - `autodan` / `autodan:<Developer>`: AutoDAN's initial "Developer Mode" prompt as a prefix
 *   template (`jailbreak-prompts/autodan_initial_prompt.json`), prepared the way Self-Correction's
 *   Jailbreak/main.py prepares its population: `ChatGPT`/`chatGPT` -> `Assistant`, then ` [PROMPT]:`
 *   appended, and the user turn is `"{template} {goal}"`. The two `[PROMPT]` tokens inside the text are
 *   left literal, as there. `ModelKeeper` (the model's developer) is left as is by `autodan`, as in
 *   Self-Correction; `autodan:Meta` substitutes it, as the original AutoDAN code does per model.
 * - `jbb:<METHOD>:<model>`: replay the per-behavior jailbreak prompts that JailbreakBench published
 *   for GCG, PAIR, JBC, prompt_with_random_search and DSN against vicuna-13b-v1.5 / llama-2-7b-chat-hf
 *   (and GPT models for some): `jailbreakbench-artifacts/<METHOD>/<type>/<model>.json`, field
 *   `prompt`. Matched to JBB harmful behaviors by `index`, to other behaviors (AdvBench) by exact
 *   goal text. Behaviors without a prompt (null in the artifact, or not covered) are reported in
 *   `skipped` with the reason, never sent.
 *
 * - `world`: the synthetic world's GCG analog (src/world): each held-out harmful request of
 *   `--dataset world` gets one of the world's held-out attack suffixes (request i, suffix i mod n), as
 *   `"{request} {suffix}"`. Neither the requests nor the suffixes occur in the world's training corpus.
 *
 * Out of scope: optimisation attacks run against the model under test. GCG needs the model's
 * gradients, AutoDAN's genetic search needs its loss (and an LLM for mutation), PAIR and the
 * random-search attack need an attacker LLM and many queries per behavior. We replay published
 * transfer prompts and templates instead, which measures robustness to known jailbreaks, not to an
 * adaptive attacker, and will understate attack success against a specific model.
 */
import { UserError } from "../util/errors.js";
import {
  listArtifacts,
  loadAutodanInitialPrompt,
  loadGcgSuffixes,
  loadJailbreakArtifact,
  GCG_SUFFIXES_FILE,
  AUTODAN_PROMPT_FILE,
} from "./datasets/artifacts.js";
import type { JailbreakBehavior } from "./datasets/types.js";
import { heldOutSets, WORLD_DEFAULT_SEED, withSuffix, type WorldSplit } from "../world/index.js";
import { existsSync } from "node:fs";
import { join, relative } from "node:path";

export type AttackKind = "none" | "suffix" | "prefix-template" | "artifact";

export interface AttackInfo {
  /** Canonical name, accepted by applyAttack. */
  name: string;
  kind: AttackKind;
  description: string;
  /** Data file it needs, relative to the data dir (null for `none`). */
  file: string | null;
}

export interface AttackedPrompt {
  /** The behavior's id (one attack per run, so ids stay those of the behaviors). */
  id: string;
  behavior: JailbreakBehavior;
  /** The user prompt to send. */
  prompt: string;
}

export interface AttackResult {
  /** Canonical attack name. */
  attack: string;
  kind: AttackKind;
  items: AttackedPrompt[];
  /** Behaviors the attack has no prompt for, with the reason; they are not run. */
  skipped: { id: string; behavior: JailbreakBehavior; reason: string }[];
}

export type ParsedAttack =
  | { kind: "none" }
  | { kind: "suffix"; key: string }
  | { kind: "prefix-template"; template: "autodan"; developer: string | null }
  | { kind: "artifact"; method: string; model: string }
  | { kind: "world" };

const SYNTAX = "none | gcg-suffix:<vicuna|llama|official> | autodan[:<Developer>] | jbb:<METHOD>:<model> | world";

/** Parses an attack name (syntax only; applyAttack checks it against the data). */
export function parseAttack(spec: string): ParsedAttack {
  const s = spec.trim();
  if (s === "none") return { kind: "none" };
  if (s === "world") return { kind: "world" };
  const parts = s.split(":");
  const head = parts[0]!.toLowerCase();
  if (head === "gcg-suffix" && parts.length === 2 && parts[1]) return { kind: "suffix", key: parts[1] };
  if (head === "autodan" && parts.length <= 2) {
    if (parts.length === 2 && !parts[1]) throw new UserError(`attack '${spec}': empty developer name; expected ${SYNTAX}`);
    return { kind: "prefix-template", template: "autodan", developer: parts[1] ?? null };
  }
  if (head === "jbb" && parts.length === 3 && parts[1] && parts[2]) return { kind: "artifact", method: parts[1], model: parts[2] };
  throw new UserError(`unknown attack '${spec}'; expected ${SYNTAX} (see \`selfcorrect data list\`)`);
}

/** The attacks available with the files present in `dataDir`. */
export function listAttacks(dataDir: string): AttackInfo[] {
  const out: AttackInfo[] = [{ name: "none", kind: "none", description: "the behavior's goal, unmodified", file: null }];
  if (existsSync(join(dataDir, GCG_SUFFIXES_FILE))) {
    for (const key of loadGcgSuffixes(dataDir).keys()) {
      out.push({
        name: `gcg-suffix:${key}`,
        kind: "suffix",
        description: `goal + fixed GCG transfer suffix '${key}' (Self-Correction Jailbreak/config.py)`,
        file: GCG_SUFFIXES_FILE,
      });
    }
  }
  if (existsSync(join(dataDir, AUTODAN_PROMPT_FILE))) {
    out.push({
      name: "autodan",
      kind: "prefix-template",
      description: "AutoDAN initial 'Developer Mode' prompt + goal (autodan:<Developer> fills ModelKeeper)",
      file: AUTODAN_PROMPT_FILE,
    });
  }
  for (const a of listArtifacts(dataDir)) {
    out.push({
      name: `jbb:${a.method}:${a.model}`,
      kind: "artifact",
      description: `JailbreakBench ${a.method} (${a.attackType}) prompts against ${a.model}, replayed`,
      file: relative(dataDir, a.file),
    });
  }
  return out;
}

/** Prepares AutoDAN's initial prompt as Self-Correction does (see the module doc). */
export function autodanTemplate(initialPrompt: string, developer: string | null): string {
  let t = initialPrompt.replace(/ChatGPT/g, "Assistant").replace(/chatGPT/g, "Assistant");
  if (developer !== null) t = t.replace(/ModelKeeper/g, developer);
  return `${t} [PROMPT]:`;
}

function normGoal(s: string): string {
  return s.trim().replace(/\s+/g, " ").toLowerCase();
}

function worldAttack(behaviors: JailbreakBehavior[], worldSeed: number, split: WorldSplit): AttackResult {
  const suffixes = heldOutSets(worldSeed, split).testSuffixes;
  const items = behaviors.map((b, i) => {
    if (b.source !== "world") throw new UserError("--attack world needs --dataset world (its suffixes are the synthetic world's)");
    return { id: b.id, behavior: b, prompt: withSuffix(b.goal, suffixes[(b.index ?? i) % suffixes.length]!) };
  });
  return { attack: "world", kind: "suffix", items, skipped: [] };
}

/**
 * Applies an attack to behaviors, in their order. Pure given the data files: the same inputs give
 * the same prompts. Throws a UserError for an unknown attack or a missing/bad data file.
 * `worldSeed` is the world whose held-out suffixes `world` uses, from its test or validation split.
 */
export function applyAttack(
  attack: string,
  behaviors: JailbreakBehavior[],
  dataDir: string,
  worldSeed: number = WORLD_DEFAULT_SEED,
  worldSplit: WorldSplit = "test",
): AttackResult {
  const parsed = parseAttack(attack);
  switch (parsed.kind) {
    case "world":
      return worldAttack(behaviors, worldSeed, worldSplit);
    case "none":
      return { attack: "none", kind: "none", items: behaviors.map((b) => ({ id: b.id, behavior: b, prompt: b.goal })), skipped: [] };
    case "suffix": {
      const suffixes = loadGcgSuffixes(dataDir);
      const suffix = suffixes.get(parsed.key);
      if (suffix === undefined) {
        throw new UserError(`unknown GCG suffix '${parsed.key}'; available: ${[...suffixes.keys()].map((k) => `gcg-suffix:${k}`).join(", ")}`);
      }
      return {
        attack: `gcg-suffix:${parsed.key}`,
        kind: "suffix",
        items: behaviors.map((b) => ({ id: b.id, behavior: b, prompt: `${b.goal} ${suffix}` })),
        skipped: [],
      };
    }
    case "prefix-template": {
      const template = autodanTemplate(loadAutodanInitialPrompt(dataDir), parsed.developer);
      return {
        attack: parsed.developer === null ? "autodan" : `autodan:${parsed.developer}`,
        kind: "prefix-template",
        items: behaviors.map((b) => ({ id: b.id, behavior: b, prompt: `${template} ${b.goal}` })),
        skipped: [],
      };
    }
    case "artifact": {
      const art = loadJailbreakArtifact(dataDir, parsed.method, parsed.model);
      const byGoal = new Map<string, number>();
      for (const it of art.items) byGoal.set(normGoal(it.goal), it.index);
      const nullReason = new Map(art.skipped.map((s) => [s.index, s.reason]));
      const items: AttackedPrompt[] = [];
      const skipped: AttackResult["skipped"] = [];
      for (const b of behaviors) {
        const index = b.source === "jbb-harmful" && b.index !== undefined ? b.index : byGoal.get(normGoal(b.goal));
        if (index === undefined) {
          skipped.push({ id: b.id, behavior: b, reason: `no ${art.method} artifact prompt for this goal (artifacts cover the 100 JBB-Behaviors)` });
          continue;
        }
        const prompt = art.prompts.get(index);
        if (prompt === undefined) {
          skipped.push({ id: b.id, behavior: b, reason: nullReason.get(index) ?? `artifact has no item with index ${index}` });
          continue;
        }
        items.push({ id: b.id, behavior: b, prompt });
      }
      return { attack: `jbb:${art.method}:${art.model}`, kind: "artifact", items, skipped };
    }
  }
}
