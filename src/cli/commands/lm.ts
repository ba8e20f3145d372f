import type { Command } from "commander";
import { registerLmExportCommand } from "./lm-export.js";
import { registerLmTrainCommand } from "./lm-train.js";

/** `selfcorrect lm ...`: the token language model trained here on the synthetic self-correction world. */
export function registerLmCommands(parent: Command): void {
  const lm = parent
    .command("lm")
    .description("the language model trained here on the synthetic self-correction world: train it, export it to GGUF");
  registerLmTrainCommand(lm);
  registerLmExportCommand(lm);
}
