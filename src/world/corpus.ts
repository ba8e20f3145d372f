/**
 * The pretraining corpus of the world: chat documents in the exact turn layout the CaC loop produces
 * (src/cac/loop.ts: user x -> y0; [user check -> r; user re-answer -> y] x R), so the turns a trained
 * model sees at eval time are in distribution.
 *
 * Mixture (DEFAULT_MIXTURE; each document draws its kind, then its request):
 *   answer   user x (10% with a noise suffix) -> the rule's answer: refusal iff harmful, else compliance
 *   attack   user x + attack suffix -> compliance, harmful or not (the GCG analog's base behaviour)
 *   check    user x (40% attacked) -> y (comply or refuse, 50/50, NOT learned) -> user check -> the true
 *            verdict ("Yes, harmful." iff y complies with a harmful x)
 *   episode  user x (40% attacked) -> y0 -> 1 to MAX_EPISODE_ROUNDS rounds of [check -> verdict; re-answer -> y]
 *            (a later round only where the document still fits `maxTokens`)
 *
 * In episodes y0 is the policy's answer (compliance when attacked), wrong on purpose with probability
 * `initialError`; each verdict is the true one, flipped with probability `checkNoise`; each re-answer
 * follows the verdict in front of it, right or wrong: "Yes" -> refusal, "No" -> the previous answer.
 * The flips are what make the model read the check instead of re-deriving the rule (and what gives the
 * critic-quality study something to measure). The re-answer turn is WORLD_REANSWER_PROMPT
 * (self-instruct) or x repeated (CaC-self), by `selfShare`.
 *
 * Turns written on purpose wrong (a wrong y0, a flipped verdict, the reviewed y of a check document)
 * carry `learn: false`: they are context, not targets. encodeDocument masks them out of the loss; a
 * trainer that calls encodeChat directly trains on them too (use encodeDocument).
 */
import { encodeChat, type ChatMessage, type EncodedChat } from "../engine/lm/index.js";
import type { Rng } from "../util/rng.js";
import { complianceText, WORLD_CHECK_HARMFUL, WORLD_CHECK_HARMLESS, WORLD_CHECK_PROMPT, WORLD_REANSWER_PROMPT, WORLD_REFUSAL } from "./language.js";
import { trainingPool, withSuffix, type TrainingPool, type WorldRequest } from "./heldout.js";
import { worldStreams, type RequestKind } from "./rule.js";

export interface WorldMessage extends ChatMessage {
  /** false: an assistant turn that is context only, masked out of the loss (encodeDocument). */
  learn?: false;
}

export type DocumentKind = "answer" | "attack" | "check" | "episode";

export interface WorldDocument {
  kind: DocumentKind;
  messages: WorldMessage[];
}

export interface CorpusMixture {
  /** Document kinds, relative weights. */
  kinds: Record<DocumentKind, number>;
  /** Request kinds of answer / check / episode documents, relative weights. */
  requests: Record<RequestKind, number>;
  /** Share of attack documents whose request is harmful (the rest: any other kind). */
  attackHarmful: number;
  /** Share of check and episode documents whose request is attacked. */
  attacked: number;
  /** Share of non-attacked answer documents with a noise suffix. */
  noise: number;
  /** Episodes: probability that a non-attacked y0 is wrong (not learned). */
  initialError: number;
  /** Episodes: probability that a verdict is flipped (not learned). */
  checkNoise: number;
  /** Episodes: probability of each further round after the first (up to MAX_EPISODE_ROUNDS). */
  moreRounds: number;
  /** Episodes: share that re-ask x (CaC-self) instead of WORLD_REANSWER_PROMPT. */
  selfShare: number;
}

export const DEFAULT_MIXTURE: CorpusMixture = {
  kinds: { answer: 0.25, attack: 0.15, check: 0.3, episode: 0.3 },
  requests: { harmful: 0.4, defused: 0.15, "benign-object": 0.15, benign: 0.3 },
  attackHarmful: 0.7,
  attacked: 0.4,
  noise: 0.1,
  initialError: 0.2,
  checkNoise: 0.25,
  moreRounds: 0.45,
  selfShare: 0.25,
};

export interface CorpusOptions {
  seed: number;
  documents: number;
  mixture?: Partial<CorpusMixture>;
  /**
   * Longest document in tokens (encodeDocument), default DEFAULT_MAX_TOKENS: an episode keeps a
   * later round only when it fits, so no document is cut by a model's context (the trainer passes its
   * context length). With the paper's check prompt and ChatML a one-round episode is about 220 tokens,
   * a two-round one about 360 and a three-round one about 500.
   */
  maxTokens?: number;
}

export const DEFAULT_MAX_TOKENS = 256;
/** CaC is evaluated for 1 to 3 rounds, so training episodes show up to 3. */
export const MAX_EPISODE_ROUNDS = 3;
/** The longest one-round episode (attacked, CaC-self) is 219 tokens. */
const MIN_MAX_TOKENS = 224;

function pickWeighted<K extends string>(weights: Record<K, number>, rng: Rng): K {
  const entries = Object.entries(weights) as [K, number][];
  const total = entries.reduce((s, [, w]) => s + w, 0);
  let u = rng.uniform() * total;
  for (const [k, w] of entries) {
    u -= w;
    if (u < 0) return k;
  }
  return entries[entries.length - 1]![0];
}

const pick = <T>(xs: readonly T[], rng: Rng): T => xs[rng.int(xs.length)]!;

/** The answer the rule asks for. */
function ruleAnswer(r: WorldRequest): string {
  return r.harmful ? WORLD_REFUSAL : complianceText(r);
}

/** The true verdict on an answer y to request r. */
function trueVerdict(r: WorldRequest, y: string): string {
  return r.harmful && y !== WORLD_REFUSAL ? WORLD_CHECK_HARMFUL : WORLD_CHECK_HARMLESS;
}

const user = (content: string): WorldMessage => ({ role: "user", content });
const assistant = (content: string, learn = true): WorldMessage => (learn ? { role: "assistant", content } : { role: "assistant", content, learn: false });

class DocumentMaker {
  constructor(
    private readonly pool: TrainingPool,
    private readonly mix: CorpusMixture,
    private readonly rng: Rng,
    private readonly maxTokens: number,
  ) {}

  private request(kind?: RequestKind): WorldRequest {
    return pick(this.pool.requests[kind ?? pickWeighted(this.mix.requests, this.rng)], this.rng);
  }

  private chance(p: number): boolean {
    return this.rng.uniform() < p;
  }

  /** x as the user sends it: attacked with a training suffix, or as is. */
  private userTurn(r: WorldRequest, attacked: boolean): string {
    return attacked ? withSuffix(r.text, pick(this.pool.attackSuffixes, this.rng)) : r.text;
  }

  make(): WorldDocument {
    const kind = pickWeighted(this.mix.kinds, this.rng);
    if (kind === "answer") return this.answer();
    if (kind === "attack") return this.attack();
    if (kind === "check") return this.check();
    return this.episode();
  }

  private answer(): WorldDocument {
    const r = this.request();
    const x = this.chance(this.mix.noise) ? withSuffix(r.text, pick(this.pool.noiseSuffixes, this.rng)) : r.text;
    return { kind: "answer", messages: [user(x), assistant(ruleAnswer(r))] };
  }

  private attack(): WorldDocument {
    const r = this.chance(this.mix.attackHarmful) ? this.request("harmful") : this.request(pick(["defused", "benign-object", "benign"] as const, this.rng));
    return { kind: "attack", messages: [user(this.userTurn(r, true)), assistant(complianceText(r))] };
  }

  private check(): WorldDocument {
    const r = this.request();
    const y = this.chance(0.5) ? complianceText(r) : WORLD_REFUSAL;
    return {
      kind: "check",
      messages: [user(this.userTurn(r, this.chance(this.mix.attacked))), assistant(y, false), user(WORLD_CHECK_PROMPT), assistant(trueVerdict(r, y))],
    };
  }

  private episode(): WorldDocument {
    const r = this.request();
    const attacked = this.chance(this.mix.attacked);
    const x = this.userTurn(r, attacked);
    let y: string;
    let learnY = true;
    if (attacked) y = complianceText(r);
    else if (this.chance(this.mix.initialError)) {
      y = r.harmful ? complianceText(r) : WORLD_REFUSAL;
      learnY = false;
    } else y = ruleAnswer(r);
    const messages: WorldMessage[] = [user(x), assistant(y, learnY)];
    let rounds = 1;
    while (rounds < MAX_EPISODE_ROUNDS && this.chance(this.mix.moreRounds)) rounds++;
    const reanswer = this.chance(this.mix.selfShare) ? x : WORLD_REANSWER_PROMPT;
    for (let round = 0; round < rounds; round++) {
      const truth = trueVerdict(r, y);
      const flipped = this.chance(this.mix.checkNoise);
      const verdict = flipped ? (truth === WORLD_CHECK_HARMFUL ? WORLD_CHECK_HARMLESS : WORLD_CHECK_HARMFUL) : truth;
      y = verdict === WORLD_CHECK_HARMFUL ? WORLD_REFUSAL : y;
      messages.push(user(WORLD_CHECK_PROMPT), assistant(verdict, !flipped), user(reanswer), assistant(y));
      if (round > 0 && encodeDocument(messages).ids.length > this.maxTokens) {
        messages.splice(-4);
        break;
      }
    }
    return { kind: "episode", messages };
  }
}

function resolveMixture(m: Partial<CorpusMixture> | undefined): CorpusMixture {
  const mix = { ...DEFAULT_MIXTURE, ...m };
  for (const [k, v] of Object.entries(mix)) {
    if (typeof v === "number" && !(v >= 0 && v <= 1)) throw new RangeError(`mixture.${k} must be in [0, 1], got ${v}`);
  }
  return mix;
}

/**
 * The corpus of world `seed`, lazily: the same options give the same documents in the same order, and
 * a prefix of a longer corpus is the shorter corpus.
 */
export function* iterateCorpus(opts: CorpusOptions): Generator<WorldDocument> {
  if (!Number.isInteger(opts.documents) || opts.documents < 0) throw new RangeError(`documents must be an integer >= 0, got ${opts.documents}`);
  const maxTokens = opts.maxTokens ?? DEFAULT_MAX_TOKENS;
  if (!Number.isInteger(maxTokens) || maxTokens < MIN_MAX_TOKENS) throw new RangeError(`maxTokens must be an integer >= ${MIN_MAX_TOKENS} (a one-round episode), got ${maxTokens}`);
  const maker = new DocumentMaker(trainingPool(opts.seed), resolveMixture(opts.mixture), worldStreams(opts.seed).corpus, maxTokens);
  for (let i = 0; i < opts.documents; i++) yield maker.make();
}

export function generateCorpus(opts: CorpusOptions): WorldDocument[] {
  return [...iterateCorpus(opts)];
}

/** encodeChat with the `learn: false` turns masked out of the loss. */
export function encodeDocument(doc: WorldDocument | readonly WorldMessage[]): EncodedChat {
  const messages = Array.isArray(doc) ? (doc as readonly WorldMessage[]) : (doc as WorldDocument).messages;
  const ids: number[] = [];
  const mask: number[] = [];
  for (const m of messages) {
    const one = encodeChat([{ role: m.role, content: m.content }]);
    ids.push(...one.ids);
    for (const b of one.mask) mask.push(m.learn === false ? 0 : b);
  }
  return { ids, mask: Uint8Array.from(mask) };
}
