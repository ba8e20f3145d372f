/**
 * Token LM benchmark (src/engine/lm), one thread: training steps (forward + masked cross-entropy +
 * backward + Adam) on random byte tokens after warm-up, then greedy generation with and without the
 * KV cache.
 *
 *   node dist/bench/lm.js --embd 64 --heads 4 --layers 4 --ctx 128 --batch 8
 *
 * Prints one JSON object.
 */
import { parseArgs } from "node:util";
import { Rng } from "../src/util/rng.js";
import { VOCAB_SIZE, createLanguageModel, generate } from "../src/engine/lm/index.js";

const { values: a } = parseArgs({
  options: {
    embd: { type: "string", default: "64" },
    heads: { type: "string", default: "4" },
    layers: { type: "string", default: "4" },
    ctx: { type: "string", default: "128" },
    batch: { type: "string", default: "8" },
    steps: { type: "string", default: "10" },
    gen: { type: "string", default: "100" },
  },
});
const n = (x: string | undefined) => Number(x);
const config = { vocabSize: VOCAB_SIZE, nEmbd: n(a.embd), nHead: n(a.heads), nLayer: n(a.layers), nPositions: n(a.ctx) };
const B = n(a.batch), T = config.nPositions, steps = n(a.steps), gen = Math.min(n(a.gen), T - 1);
const lm = await createLanguageModel(config, { seed: 1, maxBatch: B });
const rng = new Rng(1);
const tokens = () => Array.from({ length: B * T }, () => rng.int(256));
const step = () => {
  lm.forward(tokens(), B, T, tokens());
  lm.backward();
  lm.adamStep({ lr: 1e-3 });
};
step();
let t0 = performance.now();
for (let s = 0; s < steps; s++) step();
const trainMs = (performance.now() - t0) / steps;
const timeGen = (kvCache: boolean) => {
  t0 = performance.now();
  // Stop tokens none and a tiny temperature-0 run: exactly `gen` new tokens every time.
  const r = generate(lm, [65], { maxNewTokens: gen, temperature: 0, kvCache });
  return r.tokens.length / ((performance.now() - t0) / 1000);
};
timeGen(true);
const cached = timeGen(true);
const uncached = timeGen(false);
console.log(JSON.stringify({
  config, batch: B, params: lm.paramCount,
  train_ms_per_step: +trainMs.toFixed(2), train_tokens_per_s: Math.round((B * T) / (trainMs / 1000)),
  gen_tokens: gen, gen_tokens_per_s_kv_cache: Math.round(cached), gen_tokens_per_s_full_forward: Math.round(uncached),
}));
