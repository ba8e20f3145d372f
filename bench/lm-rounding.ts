/**
 * How far float32 rounding alone moves a world model's next-token log-probabilities: the size of gap to
 * expect between two correct inference paths (the engine and llama.cpp) that sum in different orders.
 * Each matrix product's outputs get a last-bit change (one float32 ulp, with probability 1/2 per value,
 * a fixed xorshift stream per trial), and the next-token log-probabilities on held-out world prompts are
 * compared with the unperturbed ones. Run twice: with the model's own GELU (llama.cpp's float16 table for
 * the world's models) and with the reference kernels' smooth tanh GELU in its place, to see what the table adds.
 *
 *   node dist/bench/lm-rounding.js [--gguf models/selfcorrect-world.gguf] [--prompts 50] [--trials 3] [--json]
 */
import { parseArgs } from "node:util";
import { resolveDefaultModel } from "../src/cac/default-model.js";
import { loadLanguageModelGguf } from "../src/engine/gguf/gpt2.js";
import { createReferenceKernels } from "../src/engine/kernels/reference.js";
import type { Kernels } from "../src/engine/kernels/types.js";
import { encodeChat } from "../src/engine/lm/index.js";
import { heldOutWorldPrompts } from "./support/world-prompts.js";
import { logSoftmax } from "./support/llama-logprobs.js";

const { values } = parseArgs({
  options: {
    gguf: { type: "string" },
    prompts: { type: "string", default: "50" },
    trials: { type: "string", default: "3" },
    json: { type: "boolean", default: false },
  },
});
const gguf = values.gguf ?? resolveDefaultModel()?.path;
if (!gguf) throw new Error("no --gguf given and no built-in model");

// The prompts of bench/lm-backends.ts: harmful, harmful with a held-out attack suffix, look-alikes.
const prompts = heldOutWorldPrompts(Number(values.prompts));
const ids = prompts.map((p) => encodeChat([{ role: "user", content: p }], { addGenerationPrompt: true }).ids);

/** Mutable state of the perturbation: off, or the xorshift32 state of the current trial. */
const noise = { on: false, state: 1 };

function flipLastBits(heap: Float32Array | Float64Array, at: number, n: number): void {
  if (!noise.on || !(heap instanceof Float32Array)) return;
  const bits = new Uint32Array(heap.buffer, heap.byteOffset, heap.length);
  let s = noise.state;
  for (let i = 0; i < n; i++) {
    s ^= s << 13;
    s ^= s >>> 17;
    s ^= s << 5;
    if (s & 1) bits[at + i]! ^= 1;
  }
  noise.state = s;
}

async function measure(gelu: "model" | "tanh"): Promise<{ gelu: string; worst: number; median: number; p90: number; n: number }> {
  const lm = await loadLanguageModelGguf(gguf!);
  lm.instrumentKernels((k: Kernels): Kernels => ({
    ...k,
    matmulForward: (out, inp, w, b, BT, C, OC) => {
      k.matmulForward(out, inp, w, b, BT, C, OC);
      flipLastBits(k.heap(), out, BT * OC);
    },
    // the control: the reference kernels' tanh GELU (double arithmetic, rounded to float32 when stored)
    ...(gelu === "tanh" ? { geluForward: (out: number, inp: number, n: number) => createReferenceKernels(k.heap()).geluForward(out, inp, n) } : {}),
  }));
  const gaps: number[] = [];
  for (let trial = 1; trial <= Number(values.trials); trial++) {
    for (const prompt of ids) {
      noise.on = false;
      const clean = logSoftmax(lm.prefill(prompt));
      noise.on = true;
      noise.state = (trial * 2654435761) >>> 0;
      const noisy = logSoftmax(lm.prefill(prompt));
      let g = 0;
      for (let t = 0; t < clean.length; t++) g = Math.max(g, Math.abs(clean[t]! - noisy[t]!));
      gaps.push(g);
    }
  }
  gaps.sort((a, b) => a - b);
  return { gelu: gelu === "model" ? lm.config.gelu : "tanh (reference kernel)", worst: gaps.at(-1)!, median: gaps[gaps.length >> 1]!, p90: gaps[Math.floor(gaps.length * 0.9)]!, n: gaps.length };
}

const rows = [await measure("model"), await measure("tanh")];
for (const r of rows) {
  console.log(
    `gelu ${r.gelu}: one-ulp noise on every matmul output moves next-token log-probabilities by at most ${r.worst.toExponential(2)} ` +
      `(median ${r.median.toExponential(2)}, 90th percentile ${r.p90.toExponential(2)}; ${r.n} prompt x trial pairs, ${gguf})`,
  );
}
if (values.json) console.log(JSON.stringify({ gguf, prompts: prompts.length, trials: Number(values.trials), rows }));
