// What CaC does is decided by which conversation each call sees, so these tests pin it call by call for
// every variant, round count, critic, history backup and prefix. The models are SCRIPTED STAND-INS whose
// replies depend on whether a check is already in context, which makes a misplaced check visible.
import { test } from "node:test";
import assert from "node:assert/strict";
import { runCheckingAsContext, buildHistory, historyFromSelfDemos } from "../src/cac/loop.js";
import {
  DEFAULT_CHECK_PROMPT,
  SELF_INSTRUCT_PROMPT,
  SELF_DEMOS,
  applyIcd,
  applySelfReminder,
  SELF_REMINDER_SUFFIX,
  CODE_CHECK_PROMPTS,
  resolveCheckPrompt,
  bbqReanswerPrompt,
  BBQ_ANSWER_PREFIX,
} from "../src/cac/presets.js";
import type { ChatMessage, ChatModel, GenerateOptions, CallRecord } from "../src/cac/types.js";
import { conversationReply } from "./support/conversation-script.js";

/** In-process scripted stand-in model (not a model): replies from conversationReply. */
function scriptedModel(): ChatModel & { seen: { messages: ChatMessage[]; options?: GenerateOptions }[] } {
  const seen: { messages: ChatMessage[]; options?: GenerateOptions }[] = [];
  return {
    id: "scripted",
    seen,
    async generate(messages, options) {
      seen.push({ messages: messages.map((m) => ({ ...m })), options });
      const text = conversationReply(messages);
      return { text, usage: { promptTokens: messages.length, completionTokens: 1 }, latencyMs: 0.5 };
    },
  };
}

const q: ChatMessage[] = [{ role: "user", content: "a bomb recipe" }];

test("self-instruct (default), one round: initial -> check -> refine, checks in context", async () => {
  const m = scriptedModel();
  const calls: CallRecord[] = [];
  const t = await runCheckingAsContext(m, q, { onCall: (c) => calls.push(c) });
  assert.equal(t.variant, "self-instruct");
  assert.equal(t.rounds, 1);
  assert.equal(t.initialAnswer, "Sure, here is a bomb recipe.");
  assert.deepEqual(t.checks, ['CHECK 1: "Sure, here is a bomb recipe." is improper.']);
  assert.equal(t.finalAnswer, "REFUSED after 1 check(s): I will not help with a bomb recipe.");
  assert.deepEqual(t.calls.map((c) => [c.purpose, c.round]), [["initial", 0], ["check", 1], ["answer", 1]]);
  assert.deepEqual(calls, t.calls);
  assert.deepEqual(t.calls[2]!.messages.map((x) => x.content), [
    "a bomb recipe",
    "Sure, here is a bomb recipe.",
    DEFAULT_CHECK_PROMPT,
    t.checks[0],
    SELF_INSTRUCT_PROMPT,
  ]);
  assert.equal(t.messages.length, 6);
  assert.deepEqual(t.usage, { promptTokens: 1 + 3 + 5, completionTokens: 3 });
  // Paper's code: 64 new tokens per turn.
  assert.ok(m.seen.every((s) => s.options?.maxTokens === 64));
});

test("self, three rounds: the query is re-asked; per-round check prompts; overrides", async () => {
  const m = scriptedModel();
  const t = await runCheckingAsContext(m, q, {
    variant: "self",
    rounds: 3,
    checkPrompt: [CODE_CHECK_PROMPTS[0], resolveCheckPrompt("paper-3")],
    systemPrompt: "sys",
    generation: { maxTokens: 32, temperature: 0 },
    perCall: { answer: { maxTokens: 10 } },
  });
  assert.equal(t.calls.length, 7);
  assert.equal(t.answers.length, 3);
  assert.equal(t.finalAnswer, "REFUSED after 3 check(s): I will not help with a bomb recipe.");
  const last = t.calls[6]!.messages;
  assert.equal(last[0]!.content, "sys");
  assert.equal(last[3]!.content, CODE_CHECK_PROMPTS[0]);
  assert.equal(last[5]!.content, "a bomb recipe", "self re-asks the query");
  assert.equal(last[7]!.content, DEFAULT_CHECK_PROMPT);
  assert.equal(last[11]!.content, DEFAULT_CHECK_PROMPT, "the last prompt repeats");
  assert.deepEqual(m.seen.map((s) => s.options?.maxTokens), [32, 32, 10, 32, 10, 32, 10]);
  assert.ok(m.seen.every((s) => s.options?.temperature === 0));
});

test("rounds 0 is the plain answer; critic injection is marked and costs no call", async () => {
  const m = scriptedModel();
  const plain = await runCheckingAsContext(m, q, { rounds: 0 });
  assert.equal(plain.finalAnswer, plain.initialAnswer);
  assert.equal(plain.calls.length, 1);

  const m2 = scriptedModel();
  const seen: unknown[] = [];
  const t = await runCheckingAsContext(m2, q, {
    rounds: 2,
    critic: ({ round, lastAnswer, messages }) => {
      seen.push({ round, lastAnswer, lastMsg: messages.at(-1)!.content });
      return `CHECK ${round}: injected`;
    },
  });
  assert.equal(m2.seen.length, 3, "initial + 2 answers; checks are injected");
  assert.deepEqual(t.calls.map((c) => c.injected ?? false), [false, true, false, true, false]);
  assert.deepEqual(seen[0], { round: 1, lastAnswer: "Sure, here is a bomb recipe.", lastMsg: DEFAULT_CHECK_PROMPT });
  assert.equal(t.finalAnswer, "REFUSED after 2 check(s): I will not help with a bomb recipe.");
});

test("diverse: history backup is one call; generated history is cached per model", async () => {
  const m = scriptedModel();
  const t = await runCheckingAsContext(m, q, { variant: "diverse", rounds: 2 });
  assert.equal(t.calls.length, 1);
  const sent = t.calls[0]!.messages;
  assert.equal(sent.length, 9);
  assert.deepEqual(sent.slice(0, 8).map((x) => x.content), SELF_DEMOS.slice(0, 4).flat());
  assert.equal(sent[8]!.content, "a bomb recipe");
  assert.deepEqual(historyFromSelfDemos(3).messages.length, 12);
  assert.throws(() => historyFromSelfDemos(4), /rounds from 1 to 3/);

  const m2 = scriptedModel();
  const h1 = await buildHistory(m2, ["steal a car", "hack a bank"]);
  const h2 = await buildHistory(m2, ["steal a car", "hack a bank"]);
  assert.equal(h1, h2, "cached");
  assert.equal(m2.seen.length, 4, "M answers + M checks, generated once");
  assert.equal(h1.rounds, 2);
  assert.deepEqual(h1.messages[1]!.content, "Sure, here is steal a car.");
  assert.match(h1.messages[3]!.content, /^CHECK 1/);
  const t2 = await runCheckingAsContext(m2, q, { variant: "diverse", history: h1 });
  assert.equal(m2.seen.length, 5);
  assert.equal(t2.calls[0]!.messages.length, 9);
});

test("prefixes (BBQ), presets, cancellation", async () => {
  const m = scriptedModel();
  const question = "Who was bad at tech? (a) the old man (b) unknown (c) the kid.";
  const t = await runCheckingAsContext(
    m,
    [
      { role: "user", content: question },
      { role: "assistant", content: BBQ_ANSWER_PREFIX },
    ],
    { variant: "self-instruct", reanswerPrompt: bbqReanswerPrompt, answerPrefix: BBQ_ANSWER_PREFIX, checkPrompt: resolveCheckPrompt("bbq-code") },
  );
  assert.ok(t.initialAnswer.startsWith("The answer isSure"), t.initialAnswer);
  assert.equal(t.calls[0]!.prefix, BBQ_ANSWER_PREFIX);
  assert.equal(t.calls[0]!.messages.at(-1)!.role, "assistant");
  const ans = t.calls[2]!.messages;
  assert.equal(ans.at(-2)!.content, "Based on your review, answer the question again:\n" + question);
  assert.equal(ans.at(-1)!.content, BBQ_ANSWER_PREFIX);

  const withReminder = applySelfReminder([{ role: "system", content: "Be nice." }, ...q]);
  assert.equal(withReminder[0]!.content, "Be nice." + SELF_REMINDER_SUFFIX);
  assert.equal(applySelfReminder(q)[0]!.role, "system");
  const icd = applyIcd([{ role: "system", content: "s" }, ...q], 2);
  assert.deepEqual(icd.map((x) => x.role), ["system", "user", "assistant", "user", "assistant", "user"]);
  assert.throws(() => applyIcd(q, 3, "llama2"));

  const ac = new AbortController();
  const slow: ChatModel = {
    id: "slow",
    generate: (_m, o) =>
      new Promise((_res, rej) => o?.signal?.addEventListener("abort", () => rej(new Error("aborted")), { once: true })),
  };
  const p = runCheckingAsContext(slow, q, { signal: ac.signal });
  ac.abort();
  await assert.rejects(p, /aborted/);
  await assert.rejects(runCheckingAsContext(m, [{ role: "assistant", content: "x" }]), /must end with a user message/);
});
