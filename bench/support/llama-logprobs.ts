/**
 * llama.cpp's next-token log-probabilities for token ids, for comparing the engine with llama.cpp on
 * one GGUF (test/lm-parity, bench/lm-backends). node-llama-cpp hands out probabilities, not raw logits,
 * so both sides are compared through log-softmax: the logits up to the per-row constant that softmax
 * ignores. The KV cache is float32 and flash attention off, so that llama.cpp's float16 cache does not
 * hide a layout error in rounding.
 */
import { getLlama, LlamaLogLevel, type LlamaContext, type LlamaContextSequence, type LlamaModel, type Token } from "node-llama-cpp";

export interface LlamaProbe {
  model: LlamaModel;
  context: LlamaContext;
  dispose(): Promise<void>;
}

export async function openLlamaF32(modelPath: string, contextSize: number): Promise<LlamaProbe> {
  const llama = await getLlama({ gpu: false, build: "never", skipDownload: true, usePrebuiltBinaries: true, progressLogs: false, logLevel: LlamaLogLevel.error });
  const model = await llama.loadModel({ modelPath, gpuLayers: 0 });
  const context = await model.createContext({ contextSize, threads: 1, sequences: 1, experimentalKvCacheKeyType: "F32", experimentalKvCacheValueType: "F32", flashAttention: false });
  return {
    model,
    context,
    async dispose() {
      await context.dispose();
      await model.dispose();
    },
  };
}

/** log p(next token | ids) from llama.cpp, by token id, over the whole vocabulary (the sequence is cleared first). */
export async function llamaNextTokenLogProbs(seq: LlamaContextSequence, ids: readonly number[]): Promise<Map<number, number>> {
  await seq.clearHistory();
  const input = ids.map((t, i) => (i === ids.length - 1
    ? [t as Token, { generateNext: { probabilities: true, options: { temperature: 1, topK: 0, topP: 1, minP: 0 } } }] as const
    : (t as Token)));
  const res = await seq.controlledEvaluate([...input] as Parameters<typeof seq.controlledEvaluate>[0]);
  const probs = res.at(-1)?.next.probabilities;
  if (!probs) throw new Error("llama.cpp returned no next-token probabilities");
  return new Map([...probs].map(([t, p]) => [Number(t), Math.log(p)] as const));
}

export function logSoftmax(x: ArrayLike<number>): Float64Array {
  let max = -Infinity;
  for (let i = 0; i < x.length; i++) max = Math.max(max, x[i]!);
  let sum = 0;
  for (let i = 0; i < x.length; i++) sum += Math.exp(x[i]! - max);
  const lse = max + Math.log(sum);
  return Float64Array.from(x, (v) => v - lse);
}

/** max over tokens of |log p_llama - log p_engine|, given the engine's raw logits. */
export function maxLogProbGap(llama: Map<number, number>, engineLogits: ArrayLike<number>): number {
  const ours = logSoftmax(engineLogits);
  let worst = 0;
  for (const [t, lp] of llama) worst = Math.max(worst, Math.abs(lp - ours[t]!));
  return worst;
}
