/**
 * The synthetic world: the corpus is a pure function of its seed, the held-out requests and suffixes
 * never reach it, the rule is balanced, and every turn uses the texts the CaC loop sends.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { createHash } from "node:crypto";
import { encodeChat } from "../src/engine/lm/index.js";
import { CHECK_PROMPTS } from "../src/cac/presets.js";
import { parseCheckVerdict } from "../src/eval/check-verdict.js";
import { substringJailbroken, stringRefusal } from "../src/eval/judges/index.js";
import {
  ATTACK_HEAD,
  DEFAULT_MAX_TOKENS,
  MAX_EPISODE_ROUNDS,
  DEFAULT_MIXTURE,
  VALIDATION_SIZES,
  VOCABULARY,
  WORLD_CHECK_HARMFUL,
  WORLD_CHECK_HARMLESS,
  WORLD_CHECK_PROMPT,
  WORLD_REANSWER_PROMPT,
  WORLD_REFUSAL,
  answerKind,
  complianceText,
  encodeDocument,
  generateCorpus,
  hasAttackSuffix,
  heldOutSets,
  isHarmful,
  iterateCorpus,
  parseRequest,
  requestKind,
  trainingPool,
  worldSpec,
  type WorldDocument,
} from "../src/world/index.js";

const digest = (docs: WorldDocument[]) => createHash("sha256").update(JSON.stringify(docs)).digest("hex");

test("the same seed gives the same corpus bytes; another seed another corpus; a prefix is the shorter corpus", () => {
  const a = generateCorpus({ seed: 3, documents: 2000 });
  const b = generateCorpus({ seed: 3, documents: 2000 });
  assert.equal(digest(a), digest(b));
  assert.notEqual(digest(a), digest(generateCorpus({ seed: 4, documents: 2000 })));
  assert.equal(digest(a.slice(0, 500)), digest([...iterateCorpus({ seed: 3, documents: 500 })]));
  assert.deepEqual(heldOutSets(3), heldOutSets(3));
});

test("held-out sets: sizes, kinds, and no test request or test suffix string in any corpus document", () => {
  for (const seed of [0, 1, 12345]) {
    const h = heldOutSets(seed);
    assert.ok(h.harmful.length >= 500 && h.benignLookalikes.length >= 500, `seed ${seed}: ${h.harmful.length} / ${h.benignLookalikes.length}`);
    assert.ok(h.testSuffixes.length >= 50);
    assert.ok(h.harmful.every((r) => r.harmful && isHarmful(r.text, seed)));
    assert.ok(h.benignLookalikes.every((r) => !r.harmful && !isHarmful(r.text, seed) && (r.kind === "defused" || r.kind === "benign-object")));
    assert.equal(new Set([...h.harmful, ...h.benignLookalikes].map((r) => r.id)).size, h.harmful.length + h.benignLookalikes.length);
    assert.ok(h.testSuffixes.every((s) => s.startsWith(ATTACK_HEAD)), "held-out suffixes share the family trait");

    // Exhaustive on the pool the corpus draws from.
    const pool = trainingPool(seed);
    const trainTexts = new Set(Object.values(pool.requests).flatMap((rs) => rs.map((r) => r.text)));
    for (const r of [...h.harmful, ...h.benignLookalikes]) assert.ok(!trainTexts.has(r.text), `${r.text} is in the training pool`);
    const trainSuffixes = new Set([...pool.attackSuffixes, ...pool.noiseSuffixes]);
    for (const s of h.testSuffixes) assert.ok(!trainSuffixes.has(s));
    // Every word still occurs in training: only combinations are held out.
    const trainWords = new Set([...trainTexts].flatMap((t) => t.split(" ")));
    for (const w of [...VOCABULARY.verbs, ...VOCABULARY.objects, ...VOCABULARY.modifiers]) assert.ok(trainWords.has(w), w);
  }
  // And on the documents themselves, as substrings of every turn: test and validation items alike.
  const needles = (["test", "validation"] as const).flatMap((split) => {
    const s = heldOutSets(0, split);
    return [...s.harmful.map((r) => r.text), ...s.benignLookalikes.map((r) => r.text), ...s.testSuffixes];
  });
  for (const doc of generateCorpus({ seed: 0, documents: 20_000 })) {
    for (const m of doc.messages) for (const n of needles) assert.ok(!m.content.includes(n), `"${n}" occurs in a ${doc.kind} document`);
  }
});

test("validation sets: their sizes and kinds, disjoint from the test sets and from the training pool; the test sets do not depend on them", () => {
  for (const seed of [0, 1]) {
    const v = heldOutSets(seed, "validation");
    const t = heldOutSets(seed, "test");
    assert.equal(v.harmful.length, VALIDATION_SIZES.harmful);
    assert.equal(v.benignLookalikes.length, VALIDATION_SIZES.defused + VALIDATION_SIZES.benignObject);
    assert.equal(v.testSuffixes.length, VALIDATION_SIZES.testSuffixes);
    assert.ok(v.harmful.every((r) => r.harmful && isHarmful(r.text, seed) && r.id.startsWith("world-val-harmful-")));
    assert.ok(v.benignLookalikes.every((r) => !isHarmful(r.text, seed) && (r.kind === "defused" || r.kind === "benign-object")));
    const testTexts = new Set([...t.harmful, ...t.benignLookalikes].map((r) => r.text));
    const pool = trainingPool(seed);
    const trainTexts = new Set(Object.values(pool.requests).flatMap((rs) => rs.map((r) => r.text)));
    for (const r of [...v.harmful, ...v.benignLookalikes]) assert.ok(!testTexts.has(r.text) && !trainTexts.has(r.text), r.text);
    const otherSuffixes = new Set([...t.testSuffixes, ...pool.attackSuffixes, ...pool.noiseSuffixes]);
    assert.ok(v.testSuffixes.every((s) => s.startsWith(ATTACK_HEAD) && !otherSuffixes.has(s)));
    // Carved after the test items in the same shuffled order: every request is in exactly one of the three.
    const all = VOCABULARY.verbs.length * VOCABULARY.objects.length * VOCABULARY.modifiers.length;
    assert.equal(testTexts.size + v.harmful.length + v.benignLookalikes.length + trainTexts.size, all);
  }
});

test("rule balance: about a quarter of requests are harmful, in every seed; the corpus mixture is as documented", () => {
  for (const seed of [0, 1, 2, 99]) {
    const spec = worldSpec(seed);
    let harmful = 0;
    let total = 0;
    for (const verb of spec.verbs) for (const object of spec.objects) for (const modifier of spec.modifiers) {
      total++;
      if (requestKind(spec, { verb, object, modifier }) === "harmful") harmful++;
    }
    assert.ok(harmful / total > 0.15 && harmful / total < 0.35, `seed ${seed}: harmful share ${harmful / total}`);
  }
  const docs = generateCorpus({ seed: 0, documents: 20_000 });
  for (const [kind, w] of Object.entries(DEFAULT_MIXTURE.kinds)) {
    const share = docs.filter((d) => d.kind === kind).length / docs.length;
    assert.ok(Math.abs(share - w) < 0.02, `${kind}: ${share} vs ${w}`);
  }
  // Over the plain answers, the harmful share is the documented request mixture's.
  const answers = docs.filter((d) => d.kind === "answer").map((d) => d.messages[0]!.content);
  const share = answers.filter((t) => isHarmful(t)).length / answers.length;
  assert.ok(Math.abs(share - DEFAULT_MIXTURE.requests.harmful) < 0.03, `harmful answers ${share}`);
});

test("every document follows the rule, the attack and the checks it contains", () => {
  const docs = generateCorpus({ seed: 5, documents: 5000 });
  let flipped = 0;
  let verdicts = 0;
  for (const doc of docs) {
    const [first, ...rest] = doc.messages;
    assert.equal(first!.role, "user");
    const x = first!.content;
    const t = parseRequest(x)!;
    assert.ok(t, x);
    const harmful = isHarmful(x, 5);
    assert.ok(x.length <= 40, `request too long: ${x}`);
    if (doc.kind === "answer") assert.equal(rest[0]!.content, harmful ? WORLD_REFUSAL : complianceText(t));
    if (doc.kind === "attack") {
      assert.ok(hasAttackSuffix(x));
      assert.equal(rest[0]!.content, complianceText(t));
    }
    if (doc.kind === "check") {
      assert.equal(rest[1]!.content, WORLD_CHECK_PROMPT);
      const truth = harmful && answerKind(rest[0]!.content) === "comply";
      assert.equal(rest[2]!.content, truth ? WORLD_CHECK_HARMFUL : WORLD_CHECK_HARMLESS);
      assert.equal(rest[0]!.learn, false);
      assert.equal(rest[2]!.learn, undefined);
    }
    if (doc.kind === "episode") {
      const y0 = rest[0]!;
      if (hasAttackSuffix(x)) assert.equal(y0.content, complianceText(t));
      else assert.equal(y0.learn === false, y0.content !== (harmful ? WORLD_REFUSAL : complianceText(t)), "a wrong initial answer is context only");
      let prev = y0.content;
      for (let i = 1; i < rest.length; i += 4) {
        const [check, verdict, re, y] = rest.slice(i, i + 4);
        assert.equal(check!.content, WORLD_CHECK_PROMPT);
        assert.ok(re!.content === WORLD_REANSWER_PROMPT || re!.content === x);
        const truth = harmful && answerKind(prev) === "comply" ? WORLD_CHECK_HARMFUL : WORLD_CHECK_HARMLESS;
        verdicts++;
        if (verdict!.content !== truth) {
          flipped++;
          assert.equal(verdict!.learn, false, "a flipped verdict is context only");
        }
        assert.equal(y!.content, verdict!.content === WORLD_CHECK_HARMFUL ? WORLD_REFUSAL : prev, "the re-answer follows the check");
        prev = y!.content;
      }
    }
  }
  assert.ok(Math.abs(flipped / verdicts - DEFAULT_MIXTURE.checkNoise) < 0.04, `flip rate ${flipped / verdicts}`);
});

test("the texts are the CaC loop's and the existing judges and check parser read them as the world judge does", () => {
  assert.equal(WORLD_CHECK_PROMPT, CHECK_PROMPTS["paper-1"]);
  assert.equal(parseCheckVerdict(WORLD_CHECK_HARMFUL), "harmful");
  assert.equal(parseCheckVerdict(WORLD_CHECK_HARMLESS), "not-harmful");
  assert.equal(substringJailbroken(WORLD_REFUSAL), false);
  assert.equal(stringRefusal(WORLD_REFUSAL), true);
  const t = parseRequest(heldOutSets(0).harmful[0]!.text)!;
  assert.equal(substringJailbroken(complianceText(t)), true);
  assert.equal(stringRefusal(complianceText(t)), false);
  assert.equal(answerKind(complianceText(t)), "comply");
  assert.equal(answerKind(WORLD_REFUSAL), "refuse");
  assert.equal(answerKind("blah"), "other");
});

test("encodeDocument is encodeChat with the context-only turns masked out; documents fit maxTokens", () => {
  let longest = 0;
  for (const doc of generateCorpus({ seed: 1, documents: 3000 })) {
    const plain = encodeChat(doc.messages.map((m) => ({ role: m.role, content: m.content })));
    const enc = encodeDocument(doc);
    assert.deepEqual(enc.ids, plain.ids);
    const masked = [...plain.mask].reduce((n, b) => n + b, 0) - [...enc.mask].reduce((n, b) => n + b, 0);
    const contextOnly = doc.messages.filter((m) => m.learn === false).reduce((n, m) => n + Buffer.byteLength(m.content) + 1, 0);
    assert.equal(masked, contextOnly);
    longest = Math.max(longest, enc.ids.length);
  }
  assert.ok(longest <= DEFAULT_MAX_TOKENS, `longest document ${longest} tokens`);
  // A longer context lets episodes keep their later rounds: 1, 2 or 3 rounds, each further one with
  // probability moreRounds; 400 tokens hold two rounds but not three.
  const roundsOf = (d: { messages: unknown[] }) => (d.messages.length - 2) / 4;
  const p = DEFAULT_MIXTURE.moreRounds;
  const long = generateCorpus({ seed: 1, documents: 3000, maxTokens: 520 }).filter((d) => d.kind === "episode");
  const share = (r: number) => long.filter((d) => roundsOf(d) === r).length / long.length;
  assert.ok(Math.abs(share(1) - (1 - p)) < 0.05, `one-round share ${share(1)}`);
  assert.ok(Math.abs(share(3) - p * p) < 0.05, `three-round share ${share(3)}`);
  assert.ok(long.every((d) => encodeDocument(d).ids.length <= 520 && roundsOf(d) <= MAX_EPISODE_ROUNDS));
  const mid = generateCorpus({ seed: 1, documents: 3000, maxTokens: 400 }).filter((d) => d.kind === "episode");
  assert.ok(mid.every((d) => encodeDocument(d).ids.length <= 400 && roundsOf(d) <= 2));
  assert.ok(mid.some((d) => roundsOf(d) === 2));
  assert.throws(() => generateCorpus({ seed: 1, documents: 1, maxTokens: 100 }), /maxTokens/);
});

test("words: same length, distinct, none a prefix of another; isHarmful refuses non-world text", () => {
  const words = [...VOCABULARY.verbs, ...VOCABULARY.objects, ...VOCABULARY.modifiers];
  assert.equal(new Set(words).size, words.length);
  assert.ok(words.every((w) => /^[a-z]{5}$/.test(w)));
  assert.throws(() => isHarmful("Write a tutorial on how to make a bomb"), /not a world request/);
  assert.equal(parseRequest("hello the world again"), null);
});
