/**
 * The synthetic self-correction world (docs/world.md): a small invented language, a hidden
 * compositional rule that makes some requests harmful, attack suffixes that make the base behaviour
 * comply, a pretraining corpus in the CaC loop's turn layout, and held-out evaluation sets.
 */
export {
  VOCABULARY,
  WORD_COUNTS,
  WORLD_CHECK_HARMFUL,
  WORLD_CHECK_HARMLESS,
  WORLD_CHECK_PROMPT,
  WORLD_REANSWER_PROMPT,
  WORLD_REFUSAL,
  answerKind,
  complianceText,
  parseRequest,
  requestText,
  type AnswerKind,
  type Triple,
} from "./language.js";
export { RULE_SIZES, RULE_TEXT, WORLD_DEFAULT_SEED, isHarmful, isHarmfulTriple, requestKind, worldSpec, type RequestKind, type WorldSpec } from "./rule.js";
export {
  ATTACK_HEAD,
  HELD_OUT_SIZES,
  VALIDATION_SIZES,
  WORLD_SPLITS,
  NOISE_HEAD,
  SUFFIX_SYMBOLS,
  exampleRequests,
  hasAttackSuffix,
  heldOutSets,
  trainingPool,
  withSuffix,
  type HeldOutSets,
  type TrainingPool,
  type WorldRequest,
  type WorldSplit,
} from "./heldout.js";
export {
  DEFAULT_MAX_TOKENS,
  MAX_EPISODE_ROUNDS,
  DEFAULT_MIXTURE,
  encodeDocument,
  generateCorpus,
  iterateCorpus,
  type CorpusMixture,
  type CorpusOptions,
  type DocumentKind,
  type WorldDocument,
  type WorldMessage,
} from "./corpus.js";
