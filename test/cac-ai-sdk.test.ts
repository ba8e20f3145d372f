// generateText and streamText through the checkingAsContext middleware, driven by the SCRIPTED
// STAND-IN upstream over loopback (@ai-sdk/openai-compatible), must give the same trace as the library
// call through the openai adapter: the middleware is only another way to run the same loop.
import { test } from "node:test";
import assert from "node:assert/strict";
import { generateText, streamText, wrapLanguageModel } from "ai";
import { createOpenAICompatible } from "@ai-sdk/openai-compatible";
import { startScriptedServer } from "./support/scripted-openai-server.js";
import { conversationReply } from "./support/conversation-script.js";
import { checkingAsContext } from "../src/cac/adapters/ai-sdk.js";
import { createOpenAIModel } from "../src/cac/adapters/openai.js";
import { runCheckingAsContext } from "../src/cac/loop.js";
import type { CaCOptions, CaCTrace } from "../src/cac/types.js";

/** A request body (an object or its JSON text) as the upstream received it: JSON drops undefined fields. */
const jsonOf = (body: unknown) => JSON.parse(typeof body === "string" ? body : JSON.stringify(body ?? null));

/** The trace the middleware puts in the provider metadata. */
const traceOf = (metadata: unknown) => (metadata as { selfcorrect: { trace: CaCTrace } }).selfcorrect.trace;

/** The trace without wall-clock fields, which differ run to run. */
function timeless(trace: CaCTrace) {
  return JSON.parse(JSON.stringify(trace, (k, v) => (k === "latencyMs" ? undefined : v)));
}

const prompt = "a lock-picking guide";
const variants: CaCOptions[] = [
  { variant: "self-instruct", rounds: 1 },
  { variant: "self", rounds: 2, systemPrompt: "You are a helpful, respectful and honest assistant." },
  { variant: "diverse", rounds: 3 },
];

test("generateText / streamText through the middleware give the library call's trace", async () => {
  const srv = await startScriptedServer((messages) => conversationReply(messages));
  try {
    const direct = createOpenAIModel({ baseURL: srv.url, model: "stand-in" });
    const provider = createOpenAICompatible({ name: "standin", baseURL: srv.url, includeUsage: true });
    for (const opts of variants) {
      const lib = await runCheckingAsContext(direct, [{ role: "user", content: prompt }], opts);
      assert.equal(lib.calls.length, opts.variant === "diverse" ? 1 : 1 + 2 * opts.rounds!);
      if (opts.variant !== "diverse") assert.match(lib.finalAnswer, /^REFUSED after \d check/);

      let fromCallback: CaCTrace | undefined;
      const model = wrapLanguageModel({
        model: provider.chatModel("stand-in"),
        middleware: checkingAsContext({ ...opts, onTrace: (t) => (fromCallback = t) }),
      });
      const g = await generateText({ model, prompt, system: opts.systemPrompt });
      const gTrace = traceOf(g.providerMetadata);
      assert.deepEqual(timeless(gTrace), timeless(lib), `generateText ${opts.variant}`);
      assert.deepEqual(timeless(fromCallback!), timeless(lib));
      assert.equal(g.text, lib.finalAnswer);
      assert.equal(g.usage.inputTokens, lib.usage.promptTokens);
      assert.equal(g.usage.outputTokens, lib.usage.completionTokens);
      // The request reported is the one the final call sent upstream.
      assert.deepEqual(jsonOf(g.request.body), srv.calls.at(-1)!.body);

      const s = streamText({ model, prompt, system: opts.systemPrompt });
      const parts: string[] = [];
      for await (const p of s.textStream) parts.push(p);
      const sTrace = traceOf(await s.providerMetadata);
      assert.deepEqual(timeless(sTrace), timeless(lib), `streamText ${opts.variant}`);
      assert.equal(parts.join(""), lib.finalAnswer);
      assert.ok(parts.length > 1, "the final answer arrives as several deltas");
      assert.equal((await s.usage).outputTokens, lib.usage.completionTokens);
      const streamedRequest = (await s.request).body;
      assert.notEqual(streamedRequest, undefined, `streamText ${opts.variant} reports the final call's request`);
      assert.equal(srv.calls.at(-1)!.body.stream, true);
      assert.deepEqual(jsonOf(streamedRequest), srv.calls.at(-1)!.body, `streamText ${opts.variant}: the final call's request`);
    }
    // The final call of streamText went upstream with stream: true; the earlier ones did not.
    const streamed = srv.calls.filter((c) => c.body.stream === true);
    assert.ok(streamed.length >= variants.length);
    // The library's re-answer call (the third upstream call) had the check in context.
    assert.ok(srv.calls[2]!.messages.some((m) => m.role === "assistant" && m.content.startsWith("CHECK 1:")));
  } finally {
    await srv.close();
  }
});

test("tools pass through untouched; upstream errors surface from generateText", async () => {
  const srv = await startScriptedServer((messages) =>
    messages.at(-1)!.content === "fail" ? { status: 400, body: JSON.stringify({ error: { message: "nope" } }) } : conversationReply(messages),
  );
  try {
    const provider = createOpenAICompatible({ name: "standin", baseURL: srv.url });
    const model = wrapLanguageModel({ model: provider.chatModel("stand-in"), middleware: checkingAsContext({ rounds: 1 }) });
    await assert.rejects(generateText({ model, prompt: "fail", maxRetries: 0 }), /nope|Bad Request/);
    const errors: unknown[] = [];
    const st = streamText({ model, prompt: "fail", maxRetries: 0, onError: ({ error }) => void errors.push(error) });
    const types: string[] = [];
    for await (const p of st.fullStream) types.push(p.type);
    assert.ok(types.includes("error"), types.join(","));
    assert.match(String(errors[0]), /nope/);
    const before = srv.calls.length;
    const { tool, jsonSchema } = await import("ai");
    const r = await generateText({
      model,
      prompt: "weather?",
      tools: { w: tool({ description: "weather", inputSchema: jsonSchema({ type: "object", properties: {} }) }) },
    });
    assert.equal(srv.calls.length - before, 1, "no CaC calls with tools");
    assert.equal(r.providerMetadata?.selfcorrect, undefined);
  } finally {
    await srv.close();
  }
});
