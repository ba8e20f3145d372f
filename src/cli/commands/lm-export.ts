/**
 * `selfcorrect lm export`: a trained LM checkpoint as a GGUF file of llama.cpp's gpt2 architecture, which
 * both node-llama-cpp and the engine (--backend engine) run. Flags only; the work is
 * src/engine/gguf/gpt2.ts.
 */
import { statSync } from "node:fs";
import { dirname, resolve } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { exportLanguageModelGguf } from "../../engine/gguf/gpt2.js";
import { UserError } from "../../util/errors.js";
import { flag, parseFlags } from "../flags.js";

const lmExportFlags = z.object({
  checkpoint: flag.text("--checkpoint"),
  out: flag.text("--out"),
  dtype: flag.choice("--dtype", ["f32", "f16"]).default("f32"),
  name: flag.text("--name").optional(),
  json: flag.bool(),
});

function checkOut(out: string, checkpoint: string): void {
  if (resolve(out) === resolve(checkpoint)) throw new UserError("--out is the checkpoint itself; write the GGUF to another file");
  const dir = dirname(resolve(out));
  let isDir = false;
  try {
    isDir = statSync(dir).isDirectory();
  } catch {
    isDir = false;
  }
  if (!isDir) throw new UserError(`--out ${out}: the folder ${dir} does not exist; create it first`);
  try {
    if (statSync(out).isDirectory()) throw new UserError(`--out ${out} is a folder; expected a file path such as ${out}/model.gguf`);
  } catch (e) {
    if (e instanceof UserError) throw e;
  }
}

export function registerLmExportCommand(lm: Command): void {
  lm.command("export")
    .description("export a trained LM checkpoint to GGUF (llama.cpp's gpt2 architecture; runs on the engine and on node-llama-cpp)")
    .option("--checkpoint <file>", "the checkpoint (.safetensors) written by `selfcorrect lm train`")
    .option("--out <file>", "the GGUF file to write (replaced atomically)")
    .option("--dtype <type>", "f32 (exact) or f16 (half the size) for the matrices; norms and biases stay f32", "f32")
    .option("--name <name>", "general.name stored in the file (default selfcorrect-lm)")
    .option("--json", "print the result as one JSON line on stdout")
    .addHelpText(
      "after",
      `
Examples:
  selfcorrect lm export --checkpoint runs/lm/<run id>/model.safetensors --out models/selfcorrect-world.gguf
  selfcorrect chat --gguf models/selfcorrect-world.gguf --backend llama-cpp --prompt "..."

The context length of the file is the model's position table (nPositions): a chat cannot be longer.`,
    )
    .action(async (raw: object) => {
      const f = parseFlags(lmExportFlags, raw);
      checkOut(f.out, f.checkpoint);
      const r = await exportLanguageModelGguf(f.checkpoint, f.out, { dtype: f.dtype, ...(f.name ? { name: f.name } : {}) });
      if (f.json) {
        process.stdout.write(`${JSON.stringify({ checkpoint: f.checkpoint, ...r })}\n`);
        return;
      }
      const c = r.config;
      process.stdout.write(
        `wrote ${r.path}: gpt2, ${c.nLayer} layers x ${c.nEmbd} wide, ${c.nHead} heads, context ${c.nPositions}, ` +
          `${r.parameters} parameters (step ${r.step}), ${r.dtype}, ${r.bytes} bytes\n`,
      );
    });
}
