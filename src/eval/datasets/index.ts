/**
 * Evaluation datasets. Every loader reads a data directory laid out like `../shared/data` (or the
 * `selfcorrect data fetch` cache), validates every record, and either returns all items or throws a
 * UserError naming the file and line. See registry.ts for provenance and checksums, download.ts for the fetcher.
 */
export * from "./types.js";
export { loadAdvBench, ADVBENCH_BEHAVIORS_FILE } from "./advbench.js";
export { loadJbbBehaviors, loadJbbHarmful, loadJbbBenign, JBB_FILES } from "./jbb.js";
export { loadXsTest, XSTEST_FILE } from "./xstest.js";
export { loadWorldBenign, loadWorldHarmful, WORLD_DATASET } from "./world.js";
export {
  loadBbq,
  biasedAnswerIndex,
  deriveTargetIndex,
  resolveBbqCategory,
  normalizeGroup,
  splitGroupLabel,
  BBQ_DIR,
  BBQ_SUBSET_DIR,
  BBQ_METADATA_FILES,
  type BbqLoadResult,
} from "./bbq.js";
export {
  loadJailbreakArtifact,
  listArtifacts,
  loadGcgSuffixes,
  loadRefusalPrefixes,
  loadAutodanInitialPrompt,
  ARTIFACTS_DIR,
  ARTIFACT_MODEL_ALIASES,
  ARTIFACT_METHOD_ALIASES,
  GCG_SUFFIXES_FILE,
  AUTODAN_PROMPT_FILE,
} from "./artifacts.js";
export { readCsv, readJsonl, readJson, type CsvRecord } from "./files.js";
export { defaultDataDir } from "./paths.js";
