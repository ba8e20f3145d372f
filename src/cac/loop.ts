/**
 * Checking-as-Context (CaC): answer, check the answer, answer again with the check in context
 * (paper §5, App. B; ../shared/design/paper.md §4).
 *
 *   self           user: x -> y0; [user: check -> r_i; user: x -> y_i] x R          (the released code)
 *   self-instruct  the same, but the re-answer turn is SELF_INSTRUCT_PROMPT              (paper Table 1)
 *   diverse        one call on [p, x], p = a cached M-round history of other queries,
 *                  answers and checks (history backup)
 */
import type {
  CaCHistory,
  CaCOptions,
  CaCTrace,
  CallPurpose,
  CallRecord,
  ChatMessage,
  ChatModel,
  GenerateOptions,
  TurnOptions,
  Usage,
} from "./types.js";
import {
  DEFAULT_CHECK_PROMPT,
  DEFAULT_TURN_MAX_TOKENS,
  SELF_DEMOS,
  SELF_INSTRUCT_PROMPT,
} from "./presets.js";

function checkPromptFor(options: CaCOptions, round: number): string {
  const p = options.checkPrompt ?? DEFAULT_CHECK_PROMPT;
  if (typeof p === "string") return p;
  // Fewer prompts than rounds: the last one repeats.
  const prompt = p[Math.min(round - 1, p.length - 1)];
  if (prompt === undefined) throw new RangeError("checkPrompt: an empty list; give one prompt or one per round");
  return prompt;
}

function turnOptions(options: CaCOptions, purpose: CallPurpose): TurnOptions {
  return {
    maxTokens: DEFAULT_TURN_MAX_TOKENS,
    ...options.generation,
    ...options.perCall?.[purpose],
  };
}

function addUsage(a: Usage, b: Usage): Usage {
  return { promptTokens: a.promptTokens + b.promptTokens, completionTokens: a.completionTokens + b.completionTokens };
}

/** Splits the input into the conversation and an optional prefilled assistant start. */
function splitPrefix(messages: ChatMessage[]): { conversation: ChatMessage[]; prefix?: string } {
  const last = messages[messages.length - 1];
  if (last && last.role === "assistant") return { conversation: messages.slice(0, -1), prefix: last.content };
  return { conversation: messages };
}

function withSystem(messages: ChatMessage[], systemPrompt: string | undefined): ChatMessage[] {
  const copy = messages.map((m) => ({ role: m.role, content: m.content }));
  if (systemPrompt === undefined) return copy;
  if (copy[0]?.role === "system") copy[0] = { role: "system", content: systemPrompt };
  else copy.unshift({ role: "system", content: systemPrompt });
  return copy;
}

/** Checks the input; the query is the last user message. */
function validate(messages: ChatMessage[], options: CaCOptions): { rounds: number; query: string } {
  const rounds = options.rounds ?? 1;
  if (!Number.isInteger(rounds) || rounds < 0) throw new RangeError(`rounds must be an integer >= 0, got ${rounds}`);
  const { conversation } = splitPrefix(messages);
  const last = conversation[conversation.length - 1];
  if (last?.role !== "user") {
    throw new RangeError("messages must end with a user message (optionally followed by an assistant prefix)");
  }
  return { rounds, query: last.content };
}

interface Caller {
  call(
    purpose: CallPurpose,
    round: number,
    messages: ChatMessage[],
    prefix: string | undefined,
    final: boolean,
  ): Promise<CallRecord>;
  record(rec: CallRecord): void;
  calls: CallRecord[];
}

function makeCaller(model: ChatModel, options: CaCOptions): Caller {
  const calls: CallRecord[] = [];
  const record = (rec: CallRecord) => {
    calls.push(rec);
    options.onCall?.(rec);
  };
  return {
    calls,
    record,
    async call(purpose, round, messages, prefix, final) {
      options.signal?.throwIfAborted();
      const sent: ChatMessage[] = prefix === undefined ? [...messages] : [...messages, { role: "assistant", content: prefix }];
      let streamed = false;
      const gen: GenerateOptions = { ...turnOptions(options, purpose), signal: options.signal };
      if (final && options.onFinalDelta) {
        const onFinalDelta = options.onFinalDelta;
        if (prefix !== undefined) onFinalDelta(prefix);
        gen.onDelta = (t) => {
          streamed = true;
          onFinalDelta(t);
        };
      }
      const t0 = performance.now();
      const result = await model.generate(sent, gen);
      // An adapter that cannot stream still lets the caller see the whole final answer.
      if (final && options.onFinalDelta && !streamed && result.text) options.onFinalDelta(result.text);
      const rec: CallRecord = {
        purpose,
        round,
        messages: sent,
        text: result.text,
        usage: { ...result.usage },
        latencyMs: result.latencyMs ?? performance.now() - t0,
      };
      if (prefix !== undefined) rec.prefix = prefix;
      if (result.finishReason !== undefined) rec.finishReason = result.finishReason;
      record(rec);
      return rec;
    },
  };
}

const joinPrefix = (prefix: string | undefined, text: string) => (prefix === undefined ? text : prefix + text);

/** Runs CaC on one conversation (the last user message is the query) and returns the full trace. */
export async function runCheckingAsContext(
  model: ChatModel,
  messages: ChatMessage[],
  options: CaCOptions = {},
): Promise<CaCTrace> {
  const variant = options.variant ?? "self-instruct";
  const { rounds, query } = validate(messages, options);
  const t0 = performance.now();
  const caller = makeCaller(model, options);
  const split = splitPrefix(messages);
  const base = withSystem(split.conversation, options.systemPrompt);

  if (variant === "diverse") {
    const history = options.history ?? historyFromSelfDemos(rounds);
    const firstUser = base.findIndex((m) => m.role !== "system");
    const conv = [...base.slice(0, firstUser), ...history.messages, ...base.slice(firstUser)];
    const rec = await caller.call("answer", history.rounds, conv, split.prefix, true);
    const answer = joinPrefix(split.prefix, rec.text);
    return finish(variant, history.rounds, [...conv, { role: "assistant", content: answer }], caller.calls, answer, [], [answer], t0);
  }

  const conv: ChatMessage[] = [...base];
  const initialRec = await caller.call("initial", 0, conv, split.prefix, rounds === 0);
  const initialAnswer = joinPrefix(split.prefix, initialRec.text);
  conv.push({ role: "assistant", content: initialAnswer });
  const checks: string[] = [];
  const answers: string[] = [];
  let lastAnswer = initialAnswer;

  for (let round = 1; round <= rounds; round++) {
    conv.push({ role: "user", content: checkPromptFor(options, round) });
    let check: string;
    if (options.critic) {
      options.signal?.throwIfAborted();
      const c0 = performance.now();
      const snapshot = conv.map((m) => ({ ...m }));
      check = await options.critic({ round, messages: snapshot, lastAnswer });
      caller.record({
        purpose: "check",
        round,
        messages: snapshot,
        text: check,
        usage: { promptTokens: 0, completionTokens: 0 },
        latencyMs: performance.now() - c0,
        injected: true,
      });
    } else {
      check = (await caller.call("check", round, conv.slice(), undefined, false)).text;
    }
    checks.push(check);
    conv.push({ role: "assistant", content: check });

    let reanswer: string;
    if (variant === "self") reanswer = query;
    else {
      const p = options.reanswerPrompt ?? SELF_INSTRUCT_PROMPT;
      reanswer = typeof p === "function" ? p(query) : p;
    }
    conv.push({ role: "user", content: reanswer });
    const prefix = options.answerPrefix;
    const rec = await caller.call("answer", round, conv.slice(), prefix, round === rounds);
    lastAnswer = joinPrefix(prefix, rec.text);
    answers.push(lastAnswer);
    conv.push({ role: "assistant", content: lastAnswer });
  }
  return finish(variant, rounds, conv, caller.calls, initialAnswer, checks, answers, t0);
}

function finish(
  variant: CaCTrace["variant"],
  rounds: number,
  messages: ChatMessage[],
  calls: CallRecord[],
  initialAnswer: string,
  checks: string[],
  answers: string[],
  t0: number,
): CaCTrace {
  const usage = calls.reduce<Usage>((u, c) => addUsage(u, c.usage), { promptTokens: 0, completionTokens: 0 });
  return {
    variant,
    rounds,
    messages,
    calls,
    initialAnswer,
    checks,
    answers,
    finalAnswer: answers.at(-1) ?? initialAnswer,
    usage,
    latencyMs: performance.now() - t0,
  };
}

/** The paper's fixed history backup: SELF_DEMOS[:2M] as (user, assistant) pairs, no model calls. */
export function historyFromSelfDemos(rounds: number): CaCHistory {
  const max = SELF_DEMOS.length / 2;
  if (!Number.isInteger(rounds) || rounds < 1 || rounds > max) {
    throw new RangeError(`CaC-diverse with SELF_DEMOS needs rounds from 1 to ${max}, got ${rounds}; or build a history from your own demo queries`);
  }
  const messages = SELF_DEMOS.slice(0, 2 * rounds).flatMap(([u, a]) => [
    { role: "user" as const, content: u },
    { role: "assistant" as const, content: a },
  ]);
  return { messages, rounds, calls: [] };
}

export interface BuildHistoryOptions extends Pick<CaCOptions, "checkPrompt" | "generation" | "perCall" | "signal" | "onCall" | "systemPrompt"> {
  /** Use the cache (default true): the same model, demos and settings give the same history object. */
  cache?: boolean;
}

const historyCache = new WeakMap<ChatModel, Map<string, Promise<CaCHistory>>>();

/**
 * Generates a CaC-diverse history once from demo queries:
 * [y_i, r_i] = LLM([x_1, y_1, r_1, ..., x_i]) then the check, for i = 1..M (M = demos.length).
 * Cached per model and settings, so the per-query cost afterwards is one call.
 */
export function buildHistory(model: ChatModel, demos: readonly string[], options: BuildHistoryOptions = {}): Promise<CaCHistory> {
  if (demos.length === 0) return Promise.reject(new RangeError("buildHistory: give at least one demo query"));
  const key = JSON.stringify([demos, options.checkPrompt ?? null, options.generation ?? null, options.perCall ?? null, options.systemPrompt ?? null]);
  if (options.cache !== false) {
    const perModel = historyCache.get(model) ?? new Map<string, Promise<CaCHistory>>();
    historyCache.set(model, perModel);
    const hit = perModel.get(key);
    if (hit) return hit;
    const p = generateHistory(model, demos, options);
    perModel.set(key, p);
    // A failed build must not poison the cache.
    p.catch(() => perModel.delete(key));
    return p;
  }
  return generateHistory(model, demos, options);
}

async function generateHistory(model: ChatModel, demos: readonly string[], options: BuildHistoryOptions): Promise<CaCHistory> {
  const caller = makeCaller(model, { ...options, onCall: options.onCall });
  const system: ChatMessage[] = options.systemPrompt === undefined ? [] : [{ role: "system", content: options.systemPrompt }];
  const conv: ChatMessage[] = [];
  for (const [i, demo] of demos.entries()) {
    conv.push({ role: "user", content: demo });
    const y = await caller.call("history", i + 1, [...system, ...conv], undefined, false);
    conv.push({ role: "assistant", content: y.text });
    conv.push({ role: "user", content: checkPromptFor(options, i + 1) });
    const r = await caller.call("history", i + 1, [...system, ...conv], undefined, false);
    conv.push({ role: "assistant", content: r.text });
  }
  return { messages: conv, rounds: demos.length, calls: caller.calls };
}
