import type { Command } from "commander";

/** `selfcorrect lm train`: placeholder until the trainer lands. */
export function registerLmTrainCommand(_lm: Command): void {}
