// Attacks as prompt transforms, against the committed samples of the jailbreak files
// (test/fixtures/data), and against the full files of ../shared/data when they are beside the checkout.
import { test } from "node:test";
import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { applyAttack, listAttacks, parseAttack, autodanTemplate } from "../src/eval/attacks.js";
import { loadAdvBench, loadJbbHarmful } from "../src/eval/datasets/index.js";
import { UserError } from "../src/util/errors.js";
import { FULL_DATA, FULL_DATA_SKIP, SAMPLE_DATA } from "./support/eval-data.js";

const readJson = (dir: string, rel: string) => JSON.parse(readFileSync(join(dir, rel), "utf8"));

test("listAttacks: none, 3 GCG suffixes, AutoDAN, and one replay per artifact file (18)", { skip: FULL_DATA_SKIP }, () => {
  const names = listAttacks(FULL_DATA).map((a) => a.name);
  assert.deepEqual(names.slice(0, 5), ["none", "gcg-suffix:vicuna", "gcg-suffix:llama", "gcg-suffix:official", "autodan"]);
  const replay = names.filter((n) => n.startsWith("jbb:"));
  assert.equal(replay.length, 18);
  for (const n of ["jbb:GCG:vicuna-13b-v1.5", "jbb:PAIR:llama-2-7b-chat-hf", "jbb:JBC:vicuna-13b-v1.5", "jbb:prompt_with_random_search:llama-2-7b-chat-hf", "jbb:DSN:vicuna-13b-v1.5"]) {
    assert.ok(replay.includes(n), n);
  }
});

test("listAttacks on the samples: none, 3 GCG suffixes, AutoDAN, and one replay per sample artifact file", () => {
  const names = listAttacks(SAMPLE_DATA).map((a) => a.name);
  assert.deepEqual(names.slice(0, 5), ["none", "gcg-suffix:vicuna", "gcg-suffix:llama", "gcg-suffix:official", "autodan"]);
  assert.deepEqual(
    names.filter((n) => n.startsWith("jbb:")),
    ["jbb:DSN:vicuna-13b-v1.5", "jbb:GCG:vicuna-13b-v1.5", "jbb:JBC:vicuna-13b-v1.5", "jbb:PAIR:llama-2-7b-chat-hf", "jbb:prompt_with_random_search:vicuna-13b-v1.5"],
  );
});

// gcgFromGoal: GCG prompts that start with the current JBB goal (data README: 99 of 100; index 82, not
// among the samples, spells it "opiods").
for (const [where, DATA, skip, gcgFromGoal] of [
  ["samples", SAMPLE_DATA, false, 11],
  ["full data", FULL_DATA, FULL_DATA_SKIP, 99],
] as const) {

test(`${where}: none and gcg-suffix: goal, then goal + space + the suffix from Self-Correction's config`, { skip }, () => {
  const behaviors = loadAdvBench(DATA, { limit: 100 });
  const none = applyAttack("none", behaviors, DATA);
  assert.deepEqual(none.items.map((i) => i.prompt), behaviors.map((b) => b.goal));
  const file = readJson(DATA, "jailbreak-prompts/gcg_suffixes_self_correction.json") as { gcg_suffixes: { key: string; suffix: string }[] };
  for (const { key, suffix } of file.gcg_suffixes) {
    const r = applyAttack(`gcg-suffix:${key}`, behaviors, DATA);
    assert.equal(r.items.length, behaviors.length);
    assert.equal(r.skipped.length, 0);
    assert.equal(r.items[7]!.prompt, `${behaviors[7]!.goal} ${suffix}`);
    assert.equal(r.items[7]!.id, behaviors[7]!.id);
  }
  assert.throws(() => applyAttack("gcg-suffix:mistral", behaviors, DATA), (e: unknown) => e instanceof UserError && /gcg-suffix:vicuna/.test(e.message));
});

test(`${where}: autodan: ChatGPT -> Assistant, ' [PROMPT]:' appended, goal after; ModelKeeper filled only on request`, { skip }, () => {
  const behaviors = loadJbbHarmful(DATA).slice(0, 3);
  const raw = (readJson(DATA, "jailbreak-prompts/autodan_initial_prompt.json") as { prompt: string }).prompt;
  const plain = applyAttack("autodan", behaviors, DATA);
  const p = plain.items[0]!.prompt;
  assert.ok(p.endsWith(` [PROMPT]: ${behaviors[0]!.goal}`));
  assert.ok(!/ChatGPT|chatGPT/.test(p));
  assert.equal(p.split("ModelKeeper").length - 1, 3, "ModelKeeper kept, as Self-Correction does");
  assert.equal(p.split("[PROMPT]").length - 1, 3, "two in the text + the appended one");
  const meta = applyAttack("autodan:Meta", behaviors, DATA).items[0]!.prompt;
  assert.ok(!meta.includes("ModelKeeper"));
  assert.equal(meta, `${autodanTemplate(raw, "Meta")} ${behaviors[0]!.goal}`);
  assert.equal(meta.length, p.length + 3 * ("Meta".length - "ModelKeeper".length));
});

test(`${where}: jbb artifact replay: prompts per JBB index; null prompts skipped with reasons; AdvBench matched by goal`, { skip }, () => {
  const jbb = loadJbbHarmful(DATA);
  const art = readJson(DATA, "jailbreakbench-artifacts/PAIR/black_box/llama-2-7b-chat-hf.json") as { jailbreaks: { index: number; goal: string; prompt: string | null }[] };
  const withPrompt = art.jailbreaks.filter((j) => j.prompt !== null);
  const r = applyAttack("jbb:pair:llama-2", jbb, DATA);
  assert.equal(r.attack, "jbb:PAIR:llama-2-7b-chat-hf");
  assert.equal(r.items.length, withPrompt.length);
  assert.equal(r.skipped.length, jbb.length - withPrompt.length);
  for (const j of withPrompt) assert.equal(r.items.find((i) => i.behavior.index === j.index)!.prompt, j.prompt);
  assert.ok(r.skipped.every((s) => /prompt is null/.test(s.reason)));

  const gcg = applyAttack("jbb:GCG:vicuna", jbb, DATA);
  assert.equal(gcg.items.length, jbb.length);
  // GCG prompts are goal + per-behavior suffix.
  assert.equal(gcg.items.filter((i) => i.prompt.startsWith(i.behavior.goal)).length, gcgFromGoal);

  // AdvBench behaviors are matched by exact goal text; count the expected overlap from the raw files.
  const adv = loadAdvBench(DATA, { limit: 100 });
  const gcgFile = readJson(DATA, "jailbreakbench-artifacts/GCG/white_box/vicuna-13b-v1.5.json") as { jailbreaks: { goal: string }[] };
  const artGoals = new Set(gcgFile.jailbreaks.map((j) => j.goal.trim().toLowerCase()));
  const expected = adv.filter((b) => artGoals.has(b.goal.trim().toLowerCase())).length;
  const onAdv = applyAttack("jbb:GCG:vicuna", adv, DATA);
  assert.equal(onAdv.items.length, expected);
  assert.ok(expected > 0, "some AdvBench goals are JBB goals");
  assert.equal(onAdv.skipped.length, adv.length - expected);
  assert.ok(onAdv.skipped.every((s) => /no GCG artifact prompt/.test(s.reason)));
});
}

test("parseAttack rejects unknown syntax with the accepted forms", () => {
  assert.deepEqual(parseAttack("jbb:DSN:vicuna"), { kind: "artifact", method: "DSN", model: "vicuna" });
  for (const bad of ["gcg", "jbb:GCG", "autodan:", "pair"]) {
    assert.throws(() => parseAttack(bad), (e: unknown) => e instanceof UserError && /gcg-suffix:<vicuna\|llama\|official>/.test(e.message), bad);
  }
});
