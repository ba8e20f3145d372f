/**
 * Trains the engine's token language model on the synthetic world's chat corpus: documents are
 * encoded in ChatML by encodeDocument (loss on the assistant turns the world marks as learned),
 * packed into rows of ctx + 1 tokens, and drawn in seeded per-epoch shuffles. The step loop, Ctrl-C handling, loss log and lock
 * are the lab trainer's (src/lab/train-loop.ts). The checkpoint holds the weights, the Adam moments
 * and the step; the batch of a step is a pure function of (seed, step), so a run killed at any point
 * and started again ends with the same weights as an uninterrupted one.
 */
import { createHash } from "node:crypto";
import { existsSync, readFileSync, statSync } from "node:fs";
import { join } from "node:path";
import { ENDOFTEXT, VOCAB_SIZE, createLanguageModel, loadLanguageModel, nextTokenPair, resolveLmConfig, type LanguageModel, type LmConfig, type LmGelu } from "../engine/lm/index.js";
import { readSafetensors } from "../engine/safetensors.js";
import { UserError } from "../util/errors.js";
import { writeJsonAtomic } from "../util/fs.js";
import { canonicalJson, contentHash } from "../util/json.js";
import { Rng } from "../util/rng.js";
import { LOSS_WINDOW, checkLoss, learningRate, runTrainLoop, withCheckpointLock, type LossLog, type StepInfo } from "../lab/train-loop.js";
import { DEFAULT_MAX_TOKENS, DEFAULT_MIXTURE, encodeDocument, generateCorpus, type CorpusMixture, type WorldDocument, type WorldMessage } from "./corpus.js";
import { WORLD_DEFAULT_SEED } from "./rule.js";

export interface WorldModelSpec {
  nLayer: number;
  nEmbd: number;
  nHead: number;
  /** Context length: tokens per training row and the model's nPositions. */
  ctx: number;
  /** The MLP activation (LmConfig.gelu); "ggml-f16" makes the engine and llama.cpp compute the same function. */
  gelu: LmGelu;
}

export interface WorldTrainSpec {
  model: WorldModelSpec;
  /**
   * The world's corpus: corpusDocuments(spec), generateCorpus({ seed, documents, mixture }) with
   * episodes up to ctx + 1 tokens; `mixture` (absent: DEFAULT_MIXTURE) replaces some of the mixture's fields.
   */
  corpus: { seed: number; documents: number; mixture?: MixtureOverrides };
  /** Rows (of ctx tokens) per step. */
  batch: number;
  steps: number;
  lr: number;
  warmupSteps: number;
  decay: "none" | "cosine";
  /** Seeds the init and the batch order (the corpus has its own seed). */
  seed: number;
}

export type WorldPreset = "default" | "tiny";

/**
 * default: sized to stay under 20 minutes of one core (C = 96, 4 layers, batch 8 x 512 tokens, 1800
 * steps: the same 7.4 M training tokens as 2400 steps of 8 x 384). ctx 512 holds the longest world
 * document (a three-round episode, 499 tokens at seed 0), so every round the eval runs is in training
 * and no episode is cut; 40000 documents are about 1.2 epochs. gelu "ggml-f16" makes the engine compute
 * what llama.cpp computes from the exported GGUF.
 * tiny: for tests, a second or two.
 */
export const WORLD_TRAIN_PRESETS: Record<WorldPreset, WorldTrainSpec> = {
  default: {
    model: { nLayer: 4, nEmbd: 96, nHead: 4, ctx: 512, gelu: "ggml-f16" },
    corpus: { seed: WORLD_DEFAULT_SEED, documents: 40000 },
    batch: 8,
    steps: 1800,
    lr: 3e-3,
    warmupSteps: 100,
    decay: "cosine",
    seed: 1,
  },
  tiny: {
    model: { nLayer: 1, nEmbd: 16, nHead: 2, ctx: 128, gelu: "ggml-f16" },
    corpus: { seed: WORLD_DEFAULT_SEED, documents: 64 },
    batch: 4,
    steps: 80,
    lr: 1e-2,
    warmupSteps: 5,
    decay: "cosine",
    seed: 1,
  },
};

/** Mixture fields by flat name: the document kinds (answer, attack, check, episode) and the scalar shares. */
export type MixtureOverrides = Partial<Record<DocumentKindName | ScalarMixtureField, number>>;
type DocumentKindName = keyof CorpusMixture["kinds"];
type ScalarMixtureField = Exclude<keyof CorpusMixture, "kinds" | "requests">;
export const MIXTURE_FIELDS: readonly string[] = [
  ...Object.keys(DEFAULT_MIXTURE.kinds),
  ...Object.keys(DEFAULT_MIXTURE).filter((k) => k !== "kinds" && k !== "requests"),
];

/** The corpus mixture a spec's overrides give (the kinds' weights are relative). */
export function mixtureOf(o: MixtureOverrides | undefined): Partial<CorpusMixture> {
  if (!o) return {};
  const kinds = { ...DEFAULT_MIXTURE.kinds };
  const out: Partial<CorpusMixture> = {};
  for (const [k, v] of Object.entries(o)) {
    if (!MIXTURE_FIELDS.includes(k)) throw new UserError(`--mixture ${k}: unknown field; expected one of ${MIXTURE_FIELDS.join(", ")}`);
    if (!(typeof v === "number" && v >= 0 && v <= 1)) throw new UserError(`--mixture ${k}=${String(v)}: expected a number in [0, 1]`);
    if (k in kinds) kinds[k as DocumentKindName] = v;
    else (out as Record<string, number>)[k] = v;
  }
  if (Object.values(kinds).every((w) => w === 0)) throw new UserError("--mixture: the document kinds' weights are all 0; give at least one a weight");
  return { ...out, kinds };
}

export interface WorldTrainOverrides {
  mixture?: MixtureOverrides;
  layers?: number;
  embd?: number;
  heads?: number;
  ctx?: number;
  documents?: number;
  corpusSeed?: number;
  batch?: number;
  steps?: number;
  lr?: number;
  warmup?: number;
  decay?: "none" | "cosine";
  seed?: number;
}

/** A preset with the given fields replaced; the engine's config check runs on the result, so a bad combination fails before any work. */
export function worldSpecFromOverrides(preset: WorldPreset, o: WorldTrainOverrides = {}): WorldTrainSpec {
  const p = WORLD_TRAIN_PRESETS[preset];
  const spec: WorldTrainSpec = {
    model: { nLayer: o.layers ?? p.model.nLayer, nEmbd: o.embd ?? p.model.nEmbd, nHead: o.heads ?? p.model.nHead, ctx: o.ctx ?? p.model.ctx, gelu: p.model.gelu },
    corpus: {
      seed: o.corpusSeed ?? p.corpus.seed,
      documents: o.documents ?? p.corpus.documents,
      ...(o.mixture ?? p.corpus.mixture ? { mixture: { ...p.corpus.mixture, ...o.mixture } } : {}),
    },
    batch: o.batch ?? p.batch,
    steps: o.steps ?? p.steps,
    lr: o.lr ?? p.lr,
    warmupSteps: o.warmup ?? p.warmupSteps,
    decay: o.decay ?? p.decay,
    seed: o.seed ?? p.seed,
  };
  resolveLmConfig(lmConfigFor(spec));
  mixtureOf(spec.corpus.mixture);
  return spec;
}

export function lmConfigFor(spec: WorldTrainSpec): LmConfig {
  const m = spec.model;
  return { vocabSize: VOCAB_SIZE, nEmbd: m.nEmbd, nHead: m.nHead, nLayer: m.nLayer, nPositions: m.ctx, gelu: m.gelu };
}

/**
 * A short id naming a run by everything that determines its weights: the spec and the packed corpus's
 * hash. The spec alone is not enough: the world's generator or its held-out splits can change between
 * versions while the spec stays the same, and the id must then change with the data.
 */
export function worldRunId(spec: WorldTrainSpec, corpusSha256: string): string {
  const m = spec.model;
  return `lm-L${m.nLayer}-C${m.nEmbd}-H${m.nHead}-T${m.ctx}-${contentHash({ spec, corpusSha256 })}`;
}

/** The spec's training corpus, packed into rows of its context length (or `documents` instead, for tests). */
export function packWorldCorpus(spec: WorldTrainSpec, documents?: readonly ChatDocument[]): PackedCorpus {
  return packDocuments(documents ?? corpusDocuments(spec), spec.model.ctx);
}

/** A world document (src/world/corpus.ts); assistant turns with `learn: false` are context only. */
export interface ChatDocument {
  messages: WorldMessage[];
}

export interface PackedCorpus {
  rows: number;
  ctx: number;
  /** [rows, ctx] each: next-token inputs, targets, and the assistant-only loss mask. */
  inputs: Int32Array;
  targets: Int32Array;
  mask: Uint8Array;
  documents: number;
  /** Documents longer than ctx + 1 tokens, cut into consecutive windows. */
  splitDocuments: number;
  /** Tokens of the encoded documents, and how many of them are loss targets. */
  tokens: number;
  trainedTokens: number;
  /** sha256 of inputs, targets and mask: a resume refuses a corpus that changed under it. */
  sha256: string;
}

/**
 * Packs documents in order into rows of ctx + 1 tokens (a row's next-token pair is ctx long): a
 * document that fits in the current row's free space goes there, else it starts a new row; one
 * longer than a row is cut into windows that overlap by one token, so every target is trained
 * once. Rows are padded with <|endoftext|> under a zero mask; rows without a single assistant
 * target are dropped, as they would add nothing but time.
 */
export function packDocuments(docs: readonly ChatDocument[], ctx: number): PackedCorpus {
  const width = ctx + 1;
  const rows: { ids: number[]; mask: number[] }[] = [];
  let cur: { ids: number[]; mask: number[] } = { ids: [], mask: [] };
  const flush = () => {
    if (cur.ids.length > 0) rows.push(cur);
    cur = { ids: [], mask: [] };
  };
  let tokens = 0;
  let splitDocuments = 0;
  for (const [i, doc] of docs.entries()) {
    if (!doc || !Array.isArray(doc.messages)) throw new UserError(`corpus document ${i}: expected { messages: [{ role, content }] }`);
    // encodeDocument, not encodeChat: turns the world wrote wrong on purpose are context, not targets.
    const enc = encodeDocument(doc.messages);
    // Each document opens with <|endoftext|> (not a target) because both inference paths put it first:
    // llama.cpp's ChatML wrapper always adds it, and the engine's adapter does the same to match.
    const ids = [ENDOFTEXT, ...enc.ids];
    const mask = [0, ...Array.from(enc.mask)];
    tokens += ids.length;
    if (ids.length > width) {
      splitDocuments++;
      flush();
      for (let start = 0; start < ids.length - 1; start += ctx) {
        cur = { ids: ids.slice(start, start + width), mask: mask.slice(start, start + width) };
        flush();
      }
      continue;
    }
    if (cur.ids.length + ids.length > width) flush();
    cur.ids.push(...ids);
    cur.mask.push(...mask);
  }
  flush();
  const kept = rows
    .map((r) => {
      while (r.ids.length < width) {
        r.ids.push(ENDOFTEXT);
        r.mask.push(0);
      }
      return nextTokenPair(r.ids, r.mask);
    })
    .filter((p) => p.mask.some((m) => m !== 0));
  if (kept.length === 0) throw new UserError(`the corpus of ${docs.length} documents has no assistant tokens to train on; expected chat documents with assistant turns`);
  const inputs = new Int32Array(kept.length * ctx);
  const targets = new Int32Array(kept.length * ctx);
  const maskAll = new Uint8Array(kept.length * ctx);
  kept.forEach((p, r) => {
    inputs.set(p.inputs, r * ctx);
    targets.set(p.targets, r * ctx);
    maskAll.set(p.mask, r * ctx);
  });
  const hash = createHash("sha256");
  for (const a of [inputs, targets, maskAll]) hash.update(new Uint8Array(a.buffer, a.byteOffset, a.byteLength));
  return {
    rows: kept.length, ctx, inputs, targets, mask: maskAll, documents: docs.length, splitDocuments, tokens,
    trainedTokens: maskAll.reduce((s, m) => s + m, 0), sha256: hash.digest("hex"),
  };
}

/**
 * Row indices of step `step`'s batch: sample g = step * batch + b is row perm_e[g mod rows] of
 * epoch e = floor(g / rows), perm_e a seeded shuffle. Depends on nothing but its arguments, so a
 * resumed run needs no data state.
 */
export function batchRows(seed: number, step: number, batch: number, rows: number, cache = new Map<number, Uint32Array>()): number[] {
  const out: number[] = [];
  for (let b = 0; b < batch; b++) {
    const g = step * batch + b;
    const epoch = Math.floor(g / rows);
    let perm = cache.get(epoch);
    if (!perm) {
      perm = shuffledRows(seed, epoch, rows);
      cache.clear();
      cache.set(epoch, perm);
    }
    out.push(perm[g % rows]!);
  }
  return out;
}

function shuffledRows(seed: number, epoch: number, rows: number): Uint32Array {
  // Mixed apart from the init seed (createLanguageModel uses `seed` itself) so the two never share draws.
  const rng = new Rng((Math.imul(seed, 2654435761) ^ Math.imul(epoch + 1, 0x5bd1e995) ^ 0x27d4eb2f) >>> 0);
  const perm = new Uint32Array(rows);
  for (let i = 0; i < rows; i++) perm[i] = i;
  for (let i = rows - 1; i > 0; i--) {
    const j = rng.int(i + 1);
    const t = perm[i]!;
    perm[i] = perm[j]!;
    perm[j] = t;
  }
  return perm;
}

export const CHECKPOINT_FILE = "model.safetensors";
export const MANIFEST_FILE = "manifest.json";
const CHECKPOINT_KIND = "selfcorrect-world-lm-train";

interface CheckpointExtra {
  kind: typeof CHECKPOINT_KIND;
  spec: WorldTrainSpec;
  corpusSha256: string;
  lossHistory: number[];
  window: [number, number];
  trainSeconds: number;
}

/** The step and training state of a checkpoint without loading it into a model; null when absent or unreadable. */
export function readWorldCheckpoint(path: string): { step: number; extra: CheckpointExtra } | null {
  if (!existsSync(path)) return null;
  try {
    const meta = readSafetensors(path).metadata;
    const extra = JSON.parse(meta.extra ?? "{}") as CheckpointExtra;
    if (extra.kind !== CHECKPOINT_KIND) return null;
    return { step: Number(meta.step), extra };
  } catch {
    return null;
  }
}

export interface WorldTrainProgress extends StepInfo {
  lr: number;
  /** Training tokens (rows x ctx) per second in this invocation. */
  tokensPerSecond: number;
}

export interface WorldTrainOptions {
  /** Run directory: model.safetensors (resumed from when present) and its lock. */
  outDir: string;
  onProgress?: (p: WorldTrainProgress) => void;
  /** Abort to stop: the current step finishes, a checkpoint is written, and a UserError with exit code 130 is thrown. */
  signal?: AbortSignal;
  /** Progress bar on stderr (default false: library callers use onProgress). */
  progress?: boolean;
  /** Write a checkpoint every this many steps (and at the end). Default 100. */
  checkpointEvery?: number;
  /** Stops after this step even if spec.steps is larger (tests). */
  stopAtStep?: number;
  /**
   * The packed corpus (packWorldCorpus) when the caller has it already: the CLI packs first to name the run
   * directory, and a test may pack other documents. Default: the spec's world corpus. Part of the run's
   * identity through its hash.
   */
  corpus?: PackedCorpus;
  /** Names the lock's directory in a refusal message (the CLI passes its flag). */
  outFlag?: string;
}

export interface WorldTrainResult {
  model: LanguageModel;
  spec: WorldTrainSpec;
  runId: string;
  checkpoint: string;
  corpus: Omit<PackedCorpus, "inputs" | "targets" | "mask">;
  lossHistory: number[];
  /** Mean loss of the last complete 10-step window (of the unfinished one when none is complete). */
  finalLoss: number;
  resumedFrom: number;
  /** Training time summed over every invocation that contributed to the checkpoint. */
  trainSeconds: number;
}

/**
 * The first `documents` documents of the spec's corpus (or of the ones after `skip`), with episodes as
 * long as the model's context allows: a row holds ctx + 1 tokens, so an episode of that length is whole.
 */
export function corpusDocuments(spec: WorldTrainSpec, skip = 0, documents = spec.corpus.documents): WorldDocument[] {
  const maxTokens = Math.max(DEFAULT_MAX_TOKENS, spec.model.ctx + 1);
  return generateCorpus({ seed: spec.corpus.seed, documents: skip + documents, maxTokens, mixture: mixtureOf(spec.corpus.mixture) }).slice(skip);
}

export async function trainWorldModel(spec: WorldTrainSpec, opts: WorldTrainOptions): Promise<WorldTrainResult> {
  const checkpoint = join(opts.outDir, CHECKPOINT_FILE);
  return withCheckpointLock(checkpoint, () => trainLocked(spec, opts, checkpoint), opts.outFlag);
}

async function trainLocked(spec: WorldTrainSpec, opts: WorldTrainOptions, checkpoint: string): Promise<WorldTrainResult> {
  const packed = opts.corpus ?? packWorldCorpus(spec);
  const runId = worldRunId(spec, packed.sha256);
  const { inputs, targets, mask, ...corpus } = packed;
  const log: LossLog = { lossHistory: [], window: [0, 0] };
  let priorSeconds = 0;
  let model: LanguageModel;
  const existing = readWorldCheckpoint(checkpoint);
  if (existing) {
    if (canonicalJson(existing.extra.spec) !== canonicalJson(spec) || existing.extra.corpusSha256 !== packed.sha256) {
      throw new UserError(`checkpoint ${checkpoint} was trained with a different configuration or corpus; use another output directory or delete it to retrain`);
    }
    model = (await loadLanguageModel(checkpoint, { maxBatch: spec.batch })).model;
    log.lossHistory = existing.extra.lossHistory.slice();
    log.window = [existing.extra.window[0], existing.extra.window[1]];
    priorSeconds = existing.extra.trainSeconds;
  } else if (existsSync(checkpoint)) {
    throw new UserError(`${checkpoint} exists but is not a world LM training checkpoint; use another output directory or delete it`);
  } else {
    model = await createLanguageModel(lmConfigFor(spec), { seed: spec.seed, threads: 1, maxBatch: spec.batch });
  }
  const resumedFrom = model.step;
  const stopAt = Math.min(spec.steps, opts.stopAtStep ?? spec.steps);
  const started = Date.now();
  const seconds = () => priorSeconds + (Date.now() - started) / 1000;
  const save = () => {
    const extra: CheckpointExtra = {
      kind: CHECKPOINT_KIND, spec, corpusSha256: packed.sha256, lossHistory: log.lossHistory, window: log.window, trainSeconds: seconds(),
    };
    model.save(checkpoint, extra as unknown as Record<string, unknown>);
  };

  const { batch: B, model: { ctx: T } } = spec;
  const x = new Int32Array(B * T);
  const y = new Int32Array(B * T);
  const m = new Uint8Array(B * T);
  const perms = new Map<number, Uint32Array>();
  await runTrainLoop({
    startStep: resumedFrom,
    stopAt,
    totalSteps: spec.steps,
    log,
    checkpointEvery: opts.checkpointEvery ?? 100,
    checkpointPath: checkpoint,
    label: `lm train ${runId}`,
    progress: opts.progress ?? false,
    signal: opts.signal,
    save,
    step: (step) => {
      batchRows(spec.seed, step, B, packed.rows, perms).forEach((row, b) => {
        x.set(inputs.subarray(row * T, (row + 1) * T), b * T);
        y.set(targets.subarray(row * T, (row + 1) * T), b * T);
        m.set(mask.subarray(row * T, (row + 1) * T), b * T);
      });
      const loss = checkLoss(model.forward(x, B, T, y, m)!, step);
      model.backward();
      model.adamStep({ lr: learningRate(spec, step) });
      return loss;
    },
    onStep: (info) => {
      const elapsed = (Date.now() - started) / 1000;
      opts.onProgress?.({ ...info, lr: learningRate(spec, info.step - 1), tokensPerSecond: elapsed > 0 ? ((info.step - resumedFrom) * B * T) / elapsed : 0 });
    },
  });
  const last = log.lossHistory[log.lossHistory.length - 1];
  const finalLoss = last ?? (log.window[1] > 0 ? log.window[0] / log.window[1] : NaN);
  const trainSeconds = stopAt > resumedFrom ? seconds() : priorSeconds;
  return { model, spec, runId, checkpoint, corpus, lossHistory: log.lossHistory, finalLoss, resumedFrom, trainSeconds };
}

/**
 * Mean loss per assistant target on the `documents` corpus documents that follow the training ones:
 * the same world and mixture, never trained on (a prefix of a longer corpus is the shorter corpus).
 * Not one of the world's held-out evaluation sets; those stay untouched by training.
 */
export function validationLoss(model: LanguageModel, spec: WorldTrainSpec, documents = 256): { documents: number; targets: number; loss: number } {
  const n = spec.corpus.documents;
  const packed = packDocuments(corpusDocuments(spec, n, documents), spec.model.ctx);
  const T = spec.model.ctx;
  let sum = 0;
  let count = 0;
  for (let r = 0; r < packed.rows; r += spec.batch) {
    const B = Math.min(spec.batch, packed.rows - r);
    const slice = <A extends Int32Array | Uint8Array>(a: A) => a.subarray(r * T, (r + B) * T) as A;
    const targets = slice(packed.mask).reduce((s, m) => s + m, 0);
    if (targets === 0) continue;
    sum += model.forward(slice(packed.inputs), B, T, slice(packed.targets), slice(packed.mask))! * targets;
    count += targets;
  }
  return { documents, targets: count, loss: sum / count };
}

export const MANIFEST_FORMAT = "selfcorrect-lm-manifest-v1";

/** See models/README.md for the fields. */
export interface WorldModelManifest {
  format: typeof MANIFEST_FORMAT;
  runId: string;
  checkpoint: { file: string; sha256: string; bytes: number };
  command: string;
  config: LmConfig;
  spec: WorldTrainSpec;
  corpus: WorldTrainResult["corpus"];
  steps: number;
  finalLoss: number;
  /** validationLoss() of the final weights. */
  validation: { documents: number; targets: number; loss: number };
  lossWindow: number;
  lossHistory: number[];
  trainSeconds: number;
  tokensPerSecond: number;
  threads: 1;
  node: string;
  createdAt: string;
}

/** Writes outDir/manifest.json for a finished run; `command` is the exact command line that trained it. */
export function writeWorldManifest(outDir: string, r: WorldTrainResult, command: string): WorldModelManifest {
  const validation = validationLoss(r.model, r.spec);
  const bytes = readFileSync(r.checkpoint);
  const manifest: WorldModelManifest = {
    format: MANIFEST_FORMAT,
    runId: r.runId,
    checkpoint: { file: CHECKPOINT_FILE, sha256: createHash("sha256").update(bytes).digest("hex"), bytes: statSync(r.checkpoint).size },
    command,
    config: lmConfigFor(r.spec),
    spec: r.spec,
    corpus: r.corpus,
    steps: r.model.step,
    finalLoss: r.finalLoss,
    validation,
    lossWindow: LOSS_WINDOW,
    lossHistory: r.lossHistory,
    trainSeconds: Math.round(r.trainSeconds * 10) / 10,
    tokensPerSecond: r.trainSeconds > 0 ? Math.round((r.model.step * r.spec.batch * r.spec.model.ctx) / r.trainSeconds) : 0,
    threads: 1,
    node: process.version,
    createdAt: new Date().toISOString(),
  };
  writeJsonAtomic(join(outDir, MANIFEST_FILE), manifest);
  return manifest;
}
