/**
 * A tiny token LM trained in a test: the engine's LM fitted to a small fixed corpus for a few hundred
 * Adam steps, so that its greedy continuations are text of that corpus rather than noise.
 */
import { Rng } from "../../src/util/rng.js";
import { ENDOFTEXT, VOCAB_SIZE, createLanguageModel, encode, encodeChat, type LanguageModel, type LmConfig, type LmGelu } from "../../src/engine/lm/index.js";

/** Sentences and short chats: the distribution the parity prompts are drawn from. */
export const TINY_SENTENCES = [
  "the cat sat on the mat.", "the dog sat on the log.", "a bird sang in the tree.", "the sun is warm today.",
  "we check the answer twice.", "the model can correct itself.", "two plus two is four.", "three plus four is seven.",
  "a safe answer is a good answer.", "read the question, then answer it.",
];

export const TINY_CHATS: [string, string][] = [
  ["what is two plus two?", "four."], ["what is three plus four?", "seven."], ["where did the cat sit?", "on the mat."],
  ["is the sun warm?", "yes, it is warm today."], ["check your answer.", "the answer is right."],
];

/** The corpus as token ids: sentences as text, chats in ChatML, documents separated by <|endoftext|>. */
export function tinyCorpus(): number[] {
  const ids: number[] = [ENDOFTEXT];
  for (let r = 0; r < 4; r++) {
    for (const s of TINY_SENTENCES) ids.push(...encode(`${s} `));
    ids.push(ENDOFTEXT);
    for (const [q, a] of TINY_CHATS) {
      ids.push(...encodeChat([{ role: "user", content: q }, { role: "assistant", content: a }]).ids, ENDOFTEXT);
    }
  }
  return ids;
}

export interface TinyLmOptions {
  steps: number;
  seed?: number;
  nEmbd?: number;
  nLayer?: number;
  nPositions?: number;
  batch?: number;
  seqLen?: number;
  gelu?: LmGelu;
}

/** Trains the engine's LM on tinyCorpus() with Adam on random windows; deterministic per seed. */
export async function trainTinyLm(opts: TinyLmOptions): Promise<{ lm: LanguageModel; losses: number[] }> {
  const config: LmConfig = { vocabSize: VOCAB_SIZE, nEmbd: opts.nEmbd ?? 32, nHead: 4, nLayer: opts.nLayer ?? 2, nPositions: opts.nPositions ?? 256, ...(opts.gelu ? { gelu: opts.gelu } : {}) };
  const B = opts.batch ?? 8;
  const T = opts.seqLen ?? 64;
  const corpus = Int32Array.from(tinyCorpus());
  const lm = await createLanguageModel(config, { seed: opts.seed ?? 1, maxBatch: B });
  const rng = new Rng((opts.seed ?? 1) + 100);
  const losses: number[] = [];
  const inputs = new Int32Array(B * T);
  const targets = new Int32Array(B * T);
  for (let s = 0; s < opts.steps; s++) {
    // Row b is a random window of the corpus; its targets are the same window one token on.
    for (let b = 0; b < B; b++) {
      const at = rng.int(corpus.length - T - 1);
      inputs.set(corpus.subarray(at, at + T), b * T);
      targets.set(corpus.subarray(at + 1, at + 1 + T), b * T);
    }
    losses.push(lm.forward(inputs, B, T, targets)!);
    lm.backward();
    lm.adamStep({ lr: 3e-3 });
  }
  return { lm, losses };
}
