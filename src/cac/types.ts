/**
 * Core types of Checking-as-Context (CaC): a minimal chat model interface that every adapter
 * (OpenAI-compatible, AI SDK, node-llama-cpp, scripted stand-ins in tests) implements, and the
 * trace the CaC loop returns.
 */
export type Role = "system" | "user" | "assistant";

export interface ChatMessage {
  role: Role;
  content: string;
}

export interface GenerateOptions {
  maxTokens?: number;
  temperature?: number;
  topP?: number;
  stop?: string[];
  seed?: number;
  /** Cancels the call (client disconnect, timeout, Ctrl-C). */
  signal?: AbortSignal;
  /**
   * Optional live text deltas. An adapter that can stream calls this with each piece of text while
   * still resolving generate() with the full ChatResult; one that cannot simply ignores it (the
   * caller then gets the whole text from the result).
   */
  onDelta?: (text: string) => void;
}

export interface Usage {
  promptTokens: number;
  completionTokens: number;
}

export interface ChatResult {
  text: string;
  usage: Usage;
  /** Wall time of the call in milliseconds, retries included. */
  latencyMs: number;
  finishReason?: string;
}

/** Anything that turns messages into a reply. Adapters live in src/cac/adapters, one per file. */
export interface ChatModel {
  /** Human-readable id, e.g. "openai:gpt-4o-mini" or "gguf:/path/model.gguf". */
  readonly id: string;
  /**
   * What the weights behind `id` are, where `id` alone does not say (a local file that can be retrained
   * in place): eval run keys include it, so a resumed run never mixes the answers of two models.
   */
  readonly fingerprint?: string;
  /** Streams through options.onDelta when the adapter can; the resolved result always has the whole text. */
  generate(messages: ChatMessage[], options?: GenerateOptions): Promise<ChatResult>;
}

export type CaCVariant = "self" | "self-instruct" | "diverse";

/** Which model call a trace entry records. */
export type CallPurpose = "initial" | "check" | "answer" | "history";

export interface CallRecord {
  purpose: CallPurpose;
  /** 0 for the initial answer, 1..R for the rounds. */
  round: number;
  messages: ChatMessage[];
  text: string;
  usage: Usage;
  latencyMs: number;
  /** True when the check came from a supplied critic (e.g. a ground-truth critic), not the model. */
  injected?: boolean;
  /** Text the caller prefilled as the start of the assistant turn (e.g. BBQ's "The answer is"). */
  prefix?: string;
  /** As the model reported it ("stop", "length", ...), when it did. */
  finishReason?: string;
}

export interface CaCTrace {
  variant: CaCVariant;
  rounds: number;
  /** The full conversation as the model last saw it, plus its final answer. */
  messages: ChatMessage[];
  calls: CallRecord[];
  initialAnswer: string;
  /** checks[i] is the self-check of round i + 1. */
  checks: string[];
  /** answers[i] is the answer after round i + 1; the last is finalAnswer. */
  answers: string[];
  finalAnswer: string;
  usage: Usage;
  latencyMs: number;
}

/** Generation settings for the turns of the loop (the signal is given once, in CaCOptions). */
export type TurnOptions = Omit<GenerateOptions, "signal" | "onDelta">;

/** What a critic sees when it is asked for the check of a round instead of the model. */
export interface CriticContext {
  round: number;
  /** The conversation up to and including the check prompt of this round. */
  messages: ChatMessage[];
  lastAnswer: string;
}

/** A cached history for CaC-diverse ("history backup"): M rounds of other queries, answers and checks. */
export interface CaCHistory {
  /** (user query, assistant answer, user check prompt, assistant check) x M, no system message. */
  messages: ChatMessage[];
  rounds: number;
  /** The model calls that generated it (empty for the paper's fixed SELF_DEMOS). */
  calls: CallRecord[];
}

export interface CaCOptions {
  /** Default "self-instruct" (the paper's Table 1 setting); "self" is the released code. */
  variant?: CaCVariant;
  /** Check/re-answer rounds; 0 gives the plain answer. Default 1. For "diverse": M history rounds. */
  rounds?: number;
  /** One check prompt for every round, or one per round. Default: the paper's prompt (3). */
  checkPrompt?: string | string[];
  /** self-instruct re-answer turn; a function gets the original query. Default: the paper's. */
  reanswerPrompt?: string | ((query: string) => string);
  /** Prefilled start of each re-answer turn (BBQ: "The answer is"), sent as a trailing assistant message. */
  answerPrefix?: string;
  /** Replaces (or adds) the leading system message. */
  systemPrompt?: string;
  /** Settings for every turn; maxTokens defaults to 64 as in the paper's code. */
  generation?: TurnOptions;
  /** Per-purpose overrides, e.g. BBQ: {initial: {maxTokens: 256}, check: {maxTokens: 256}, answer: {maxTokens: 10}}. */
  perCall?: Partial<Record<CallPurpose, TurnOptions>>;
  /** Supplies the check instead of generating it; its CallRecords are marked injected. */
  critic?: (ctx: CriticContext) => string | Promise<string>;
  /** CaC-diverse: a prebuilt history (see buildHistory); default the paper's SELF_DEMOS[:2*rounds]. */
  history?: CaCHistory;
  signal?: AbortSignal;
  /** Called after every model call (and every injected check), in order. */
  onCall?: (call: CallRecord) => void;
  /** Live deltas of the final answer (the last call); the earlier calls are not streamed. */
  onFinalDelta?: (text: string) => void;
}
