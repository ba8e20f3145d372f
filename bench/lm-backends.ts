/**
 * Greedy answers of one exported world model through its two inference paths, the engine's own
 * (createEngineModel) and llama.cpp (createLlamaCppModel on the same GGUF), on held-out world prompts:
 * how many answers are identical, and the first few that differ; and on the same prompts (chat
 * template, generation prompt), the largest |log p_engine - log p_llama.cpp| over the next-token
 * distribution (f32 GGUFs only: an f16 export rounds the weights llama.cpp sees).
 *
 *   node dist/bench/lm-backends.js [--gguf models/selfcorrect-world.gguf] [--prompts 50] [--max-tokens 48]
 */
import { parseArgs } from "node:util";
import { createEngineModel } from "../src/cac/adapters/engine-lm.js";
import { createLlamaCppModel } from "../src/cac/adapters/llama-cpp.js";
import { resolveDefaultModel } from "../src/cac/default-model.js";
import { loadLanguageModelGguf } from "../src/engine/gguf/gpt2.js";
import { encodeChat } from "../src/engine/lm/index.js";
import { heldOutWorldPrompts } from "./support/world-prompts.js";
import { llamaNextTokenLogProbs, maxLogProbGap, openLlamaF32 } from "./support/llama-logprobs.js";

const { values } = parseArgs({
  options: { gguf: { type: "string" }, prompts: { type: "string", default: "50" }, "max-tokens": { type: "string", default: "48" } },
});
const gguf = values.gguf ?? resolveDefaultModel()?.path;
if (!gguf) throw new Error("no --gguf given and no built-in model");
const count = Number(values.prompts);
const maxTokens = Number(values["max-tokens"]);

// Held-out requests of three kinds: harmful, harmful with a held-out attack suffix, and look-alikes.
const prompts = heldOutWorldPrompts(count);

const engine = await createEngineModel({ gguf, maxTokens, temperature: 0 });
const llama = await createLlamaCppModel({ modelPath: gguf, maxTokens, temperature: 0, threads: 1 });
let same = 0;
const differ: string[] = [];
try {
  for (const p of prompts) {
    const messages = [{ role: "user" as const, content: p }];
    const a = (await engine.generate(messages, { maxTokens, temperature: 0 })).text;
    const b = (await llama.generate(messages, { maxTokens, temperature: 0 })).text;
    if (a === b) same++;
    else differ.push(`${JSON.stringify(p)}: engine ${JSON.stringify(a)} vs llama.cpp ${JSON.stringify(b)}`);
  }
} finally {
  await llama.dispose?.();
}
console.log(`greedy answers identical on ${same}/${prompts.length} held-out prompts (${gguf}, max ${maxTokens} tokens)`);
for (const d of differ.slice(0, 5)) console.log(`  differs: ${d}`);

const lm = await loadLanguageModelGguf(gguf);
const probe = await openLlamaF32(gguf, lm.config.nPositions);
const seq = probe.context.getSequence();
let worst = 0;
try {
  for (const p of prompts) {
    const ids = encodeChat([{ role: "user", content: p }], { addGenerationPrompt: true }).ids;
    worst = Math.max(worst, maxLogProbGap(await llamaNextTokenLogProbs(seq, ids), lm.prefill(ids)));
  }
} finally {
  seq.dispose();
  await probe.dispose();
}
console.log(`next-token log-probabilities: max |engine - llama.cpp| = ${worst.toExponential(2)} over ${prompts.length} prompts x ${lm.config.vocabSize} tokens (gelu ${lm.config.gelu})`);
