/**
 * The engine as the lab sees it: build a GPT-2-style model from a config, run it on a batch of
 * token features, take dLoss/dOutput from the caller (the loss lives in src/lab), backpropagate,
 * take an Adam step, save and load. Implemented by src/engine/model (see createModel there).
 *
 * Layout (the official Self-Correction code): read-in Linear(inputDim -> nEmbd), learned position
 * embeddings wpe[nPositions, nEmbd], nLayer pre-LN blocks (LN -> causal MHA -> residual,
 * LN -> GELU(tanh) MLP 4x -> residual), final LN, read-out Linear(nEmbd -> outputDim).
 * Parameter names follow HF GPT-2 as in test/engine-fixtures/ica_gpt_tiny.json:
 *   read_in.weight [nEmbd, inputDim], read_in.bias, wpe, h.{l}.ln_1.{weight,bias},
 *   h.{l}.attn.c_attn.{weight [3C, C], bias}, h.{l}.attn.c_proj.{weight, bias}, h.{l}.ln_2.*,
 *   h.{l}.mlp.c_fc.{weight [4C, C], bias}, h.{l}.mlp.c_proj.{weight [C, 4C], bias}, ln_f.*, read_out.*.
 * A block with ffn = false has no ln_2 / mlp parameters.
 */
export type AttentionKind = "softmax" | "linear";

export interface BlockConfig {
  attention: AttentionKind;
  ffn: boolean;
}

export interface ModelConfig {
  /** Width of each input token (d in the paper: x, y and r are each padded to d). */
  inputDim: number;
  /** Width of the read-out (d). */
  outputDim: number;
  nEmbd: number;
  nHead: number;
  nLayer: number;
  /** Maximum sequence length (3 * points for the ICA task). */
  nPositions: number;
  /** One entry applied to all blocks, or one per block (length nLayer). Default softmax + ffn. */
  blocks?: BlockConfig | BlockConfig[];
}

export interface AdamConfig {
  lr: number;
  beta1?: number; // 0.9
  beta2?: number; // 0.999
  eps?: number; // 1e-8
}

export interface NamedTensor {
  shape: number[];
  data: Float32Array;
}

export interface CreateModelOptions {
  /** Seed for GPT-2 init (normal(0, 0.02) weights, zero biases, unit LN weights). */
  seed: number;
  /** Worker threads; default os.availableParallelism(). Results are deterministic per thread count. */
  threads?: number;
  /** Largest batch the model will be called with (sizes the activation memory). */
  maxBatch: number;
}

export interface TrainableModel {
  readonly config: Required<Omit<ModelConfig, "blocks">> & { blocks: BlockConfig[] };
  readonly paramCount: number;
  readonly threads: number;
  /** Number of Adam steps taken so far (restored by load). */
  readonly step: number;

  /**
   * Runs the model on input[B, T, inputDim] (T <= nPositions, B <= maxBatch) and returns
   * output[B, T, outputDim]. Keeps the activations for a following backward().
   */
  forward(input: Float32Array, batch: number, seqLen: number): Promise<Float32Array>;
  /** Backpropagates dLoss/dOutput[B, T, outputDim] of the last forward; gradients are overwritten, not accumulated. */
  backward(dOutput: Float32Array): Promise<void>;
  /** One Adam step with the current gradients. */
  adamStep(opt: AdamConfig): Promise<void>;

  /** Copies of the parameters by HF name, weights [out, in]. */
  getParams(): Map<string, NamedTensor>;
  /** Copies of the gradients of the last backward, by parameter name. */
  getGrads(): Map<string, NamedTensor>;
  /** Overwrites parameters (every name must exist, shapes must match). */
  setParams(params: Map<string, NamedTensor> | Record<string, NamedTensor>): void;

  /**
   * Writes a checkpoint: `<path>` (safetensors: parameters + Adam moments + step) and
   * `<path>.json` (model config + `extra`), atomically. `extra` is the caller's own state
   * (e.g. the lab's data RNG), returned by loadModel.
   */
  save(path: string, extra?: Record<string, unknown>): Promise<void>;
  dispose(): Promise<void>;
}
