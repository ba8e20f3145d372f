/**
 * Greedy answers of one exported world model through its two inference paths, the engine's own
 * (createEngineModel) and llama.cpp (createLlamaCppModel on the same GGUF), on held-out world prompts:
 * how many answers are identical, and the first few that differ.
 *
 *   node dist/bench/lm-backends.js [--gguf models/selfcorrect-world.gguf] [--prompts 50] [--max-tokens 48]
 */
import { parseArgs } from "node:util";
import { createEngineModel } from "../src/cac/adapters/engine-lm.js";
import { createLlamaCppModel } from "../src/cac/adapters/llama-cpp.js";
import { resolveDefaultModel } from "../src/cac/default-model.js";
import { heldOutSets } from "../src/world/index.js";

const { values } = parseArgs({
  options: { gguf: { type: "string" }, prompts: { type: "string", default: "50" }, "max-tokens": { type: "string", default: "48" } },
});
const gguf = values.gguf ?? resolveDefaultModel()?.path;
if (!gguf) throw new Error("no --gguf given and no built-in model");
const count = Number(values.prompts);
const maxTokens = Number(values["max-tokens"]);

// Held-out requests of three kinds: harmful, harmful with a held-out attack suffix, and look-alikes.
const sets = heldOutSets();
const prompts: string[] = [];
for (let i = 0; prompts.length < count; i++) {
  const kind = i % 3;
  if (kind === 0) prompts.push(sets.harmful[i]!.text);
  else if (kind === 1) prompts.push(`${sets.harmful[i]!.text} ${sets.testSuffixes[i % sets.testSuffixes.length]!}`);
  else prompts.push(sets.benignLookalikes[i]!.text);
}

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
