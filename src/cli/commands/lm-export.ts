import type { Command } from "commander";

/** `selfcorrect lm export`: placeholder until the exporter lands. */
export function registerLmExportCommand(_lm: Command): void {}
