/**
 * `selfcorrect lm train`: trains the token LM on the synthetic world's corpus (src/world/train.ts)
 * into a run directory, then writes its manifest. Flags only; the work lives in the library.
 */
import { join } from "node:path";
import type { Command } from "commander";
import { z } from "zod";
import { ensureWritableDir } from "../../util/fs.js";
import { interruptOnSigint } from "../../lab/train-loop.js";
import { MANIFEST_FILE, MIXTURE_FIELDS, packWorldCorpus, trainWorldModel, worldRunId, worldSpecFromOverrides, writeWorldManifest } from "../../world/train.js";
import { flag, parseFlags } from "../flags.js";

const lmTrainFlags = z.object({
  preset: flag.choice("--preset", ["default", "tiny"]).default("default"),
  out: flag.text("--out").optional(),
  layers: flag.int("--layers", 1, 64).optional(),
  embd: flag.int("--embd", 1, 4096).optional(),
  heads: flag.int("--heads", 1, 256).optional(),
  ctx: flag.int("--ctx", 2, 8192).optional(),
  documents: flag.int("--documents", 1, 10_000_000).optional(),
  corpusSeed: flag.int("--corpus-seed", 0, 2 ** 32 - 1).optional(),
  mixture: flag
    .text("--mixture")
    .transform((s, ctx) => {
      const out: Record<string, number> = {};
      for (const part of s.split(",").filter((p) => p.trim() !== "")) {
        const m = /^\s*([A-Za-z]+)\s*=\s*([0-9.eE+-]+)\s*$/.exec(part);
        if (!m || !Number.isFinite(Number(m[2]))) {
          ctx.addIssue({ code: "custom", message: `--mixture: "${part}" is not field=number (e.g. check=0.35,moreRounds=0.3)` });
          return z.NEVER;
        }
        out[m[1]!] = Number(m[2]);
      }
      return out;
    })
    .optional(),
  seed: flag.int("--seed", 0, 2 ** 32 - 1).optional(),
  steps: flag.int("--steps", 1, 10_000_000).optional(),
  batch: flag.int("--batch", 1, 1024).optional(),
  lr: flag.number("--lr", 0, 1).refine((v) => v > 0, { message: "--lr must be greater than 0" }).optional(),
  warmup: flag.int("--warmup", 0, 10_000_000).optional(),
  decay: flag.choice("--decay", ["none", "cosine"]).optional(),
  checkpointEvery: flag.int("--checkpoint-every", 1, 10_000_000).default(100),
  progress: z.boolean().default(true),
  json: flag.bool(),
});

/** The command line as typed, quoted for a POSIX shell: the manifest records how to retrain. */
function commandLine(argv: readonly string[]): string {
  const quote = (a: string) => (/^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replace(/'/g, `'\\''`)}'`);
  return ["selfcorrect", ...argv].map(quote).join(" ");
}

export function registerLmTrainCommand(lm: Command): void {
  lm.command("train")
    .description("train the language model on the synthetic world's corpus (resumes from its checkpoint; Ctrl-C saves and stops)")
    .option("--preset <name>", "default (under 20 minutes on 2 cores) or tiny (seconds, for tests)", "default")
    .option("--out <dir>", "run directory (default runs/lm/<run id>)")
    .option("--layers <n>", "transformer blocks")
    .option("--embd <n>", "model width")
    .option("--heads <n>", "attention heads")
    .option("--ctx <n>", "context length (tokens per training row)")
    .option("--documents <n>", "corpus documents")
    .option("--corpus-seed <n>", "seed of the world's corpus")
    .option("--mixture <k=v,...>", `corpus mixture fields to replace: ${MIXTURE_FIELDS.join(", ")} (e.g. check=0.35,moreRounds=0.3)`)
    .option("--seed <n>", "seed of the init and the batch order")
    .option("--steps <n>", "training steps")
    .option("--batch <n>", "rows per step")
    .option("--lr <x>", "peak Adam learning rate")
    .option("--warmup <n>", "linear learning-rate warm-up steps")
    .option("--decay <kind>", "none or cosine (to 10% of lr)")
    .option("--checkpoint-every <n>", "checkpoint interval in steps", "100")
    .option("--no-progress", "no progress bar")
    .option("--json", "print the manifest as one JSON line on stdout")
    .action(async (raw: object) => {
      const f = parseFlags(lmTrainFlags, raw);
      const spec = worldSpecFromOverrides(f.preset, f);
      const corpus = packWorldCorpus(spec);
      const outDir = f.out ?? join("runs", "lm", worldRunId(spec, corpus.sha256));
      ensureWritableDir(outDir, "--out");
      const sigint = interruptOnSigint();
      try {
        const r = await trainWorldModel(spec, { outDir, outFlag: "--out", signal: sigint.signal, progress: f.progress, checkpointEvery: f.checkpointEvery, corpus });
        const manifest = writeWorldManifest(outDir, r, commandLine(process.argv.slice(2)));
        if (f.json) {
          process.stdout.write(`${JSON.stringify(manifest)}\n`);
        } else {
          process.stdout.write(
            `trained ${manifest.runId}: ${manifest.steps} steps, ${r.model.paramCount} parameters, ${manifest.trainSeconds} s, ` +
              `${manifest.tokensPerSecond} tokens/s, loss over the last ${manifest.lossWindow} steps ${manifest.finalLoss.toFixed(4)}, ` +
              `on ${manifest.validation.documents} unseen corpus documents ${manifest.validation.loss.toFixed(4)}\n` +
              `checkpoint: ${r.checkpoint} (sha256 ${manifest.checkpoint.sha256})\nmanifest: ${join(outDir, MANIFEST_FILE)}\n`,
          );
        }
      } finally {
        sigint.dispose();
      }
    });
}
