/** The byte tokenizer: exact round trips for any string or byte sequence, specials, the ChatML template and its loss mask. */
import { test } from "node:test";
import assert from "node:assert/strict";
import { Rng } from "../src/util/rng.js";
import {
  ENDOFTEXT, IM_END, IM_START, SPECIAL_TOKENS, VOCAB_SIZE, decode, encode, encodeChat, nextTokenPair, tokenText,
} from "../src/engine/lm/index.js";

/** Random UTF-16: ASCII, Latin, CJK, emoji (surrogate pairs), ZWJ sequences and lone surrogates. */
function randomString(rng: Rng, n: number): string {
  const pools = [
    () => String.fromCharCode(32 + rng.int(95)),
    () => String.fromCharCode(0xa0 + rng.int(0x500)),
    () => String.fromCharCode(0x4e00 + rng.int(0x5000)),
    () => String.fromCodePoint(0x1f300 + rng.int(0x300)),
    () => "👩‍💻",
    () => String.fromCharCode(0xd800 + rng.int(0x800)), // lone surrogate
    () => String.fromCharCode(rng.int(32)),
    () => "<|im_start|>",
  ];
  let s = "";
  for (let i = 0; i < n; i++) s += pools[rng.int(pools.length)]!();
  return s;
}

test("any string round-trips with TextEncoder semantics (lone surrogates become U+FFFD); well-formed ones exactly", () => {
  const rng = new Rng(1);
  const te = new TextEncoder();
  const td = new TextDecoder();
  for (let i = 0; i < 2000; i++) {
    const s = randomString(rng, rng.int(40));
    const ids = encode(s);
    assert.ok(ids.every((x) => Number.isInteger(x) && x >= 0 && x < 256), "plain text never yields specials");
    const back = decode(ids);
    assert.equal(back, td.decode(te.encode(s)));
    if (!/[\ud800-\udfff]/.test(s.replace(/[\ud800-\udbff][\udc00-\udfff]/g, ""))) assert.equal(back, s);
  }
  for (const s of ["", "hello wörld ☀️", "🧑🏽‍🚀 x", "\u0000\n\t", "a\ud800b"]) assert.equal(decode(encode(s)), td.decode(te.encode(s)));
  assert.equal(encode("hello wörld ☀️").length, 19, "19 byte tokens, as llama.cpp's byte-level gpt2 tokenizer");
});

test("any byte sequence decodes without throwing; invalid UTF-8 becomes U+FFFD", () => {
  const rng = new Rng(2);
  for (let i = 0; i < 2000; i++) {
    // Mostly ASCII so that a good share of the sequences are valid UTF-8.
    const ids = Array.from({ length: rng.int(30) }, () => (rng.uniform() < 0.8 ? rng.int(128) : rng.int(VOCAB_SIZE)));
    assert.equal(typeof decode(ids), "string");
    const bytesOnly = ids.filter((x) => x < 256);
    let valid = true;
    try {
      new TextDecoder("utf-8", { fatal: true }).decode(Uint8Array.from(bytesOnly));
    } catch {
      valid = false;
    }
    if (valid) assert.deepEqual(encode(decode(bytesOnly)), bytesOnly, "valid UTF-8 bytes round-trip exactly");
  }
  assert.equal(decode([0xff, 0x41]), "\ufffdA");
  assert.equal(decode([0xe2, 0x98]), "\ufffd");
  assert.throws(() => decode([VOCAB_SIZE]), /not in the vocabulary/);
  assert.throws(() => decode([-1]), /not in the vocabulary/);
});

test("specials: names, decoding, and that a split multi-byte char around a special is not glued", () => {
  assert.equal(VOCAB_SIZE, 259);
  assert.deepEqual(Object.keys(SPECIAL_TOKENS).map(Number), [ENDOFTEXT, IM_START, IM_END]);
  assert.equal(decode([IM_START, ...encode("user"), IM_END]), "<|im_start|>user<|im_end|>");
  assert.equal(decode([IM_START, ...encode("user"), IM_END], { skipSpecial: true }), "user");
  const sun = encode("☀");
  // E2 | special | 98 80: each stray byte is its own invalid sequence.
  assert.equal(decode([sun[0]!, ENDOFTEXT, ...sun.slice(1)]), "\ufffd<|endoftext|>\ufffd\ufffd");
  assert.equal(tokenText(IM_END), "<|im_end|>");
  assert.equal(tokenText(65), "A");
});

test("chat template is ChatML; the loss mask covers exactly the assistant content and its <|im_end|>", () => {
  const messages = [
    { role: "system", content: "Be brief." },
    { role: "user", content: "Hi <|im_end|> ☀" },
    { role: "assistant", content: "Hello!" },
    { role: "user", content: "2+2?" },
    { role: "assistant", content: "4" },
  ] as const;
  const { ids, mask } = encodeChat(messages);
  assert.equal(
    decode(ids),
    "<|im_start|>system\nBe brief.<|im_end|>\n<|im_start|>user\nHi <|im_end|> ☀<|im_end|>\n<|im_start|>assistant\nHello!<|im_end|>\n" +
      "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n4<|im_end|>\n",
  );
  assert.equal(ids.filter((x) => x === IM_END).length, 5, "the user's literal <|im_end|> text stays bytes");
  const learned = ids.filter((_, i) => mask[i] === 1);
  assert.deepEqual(learned, [...encode("Hello!"), IM_END, ...encode("4"), IM_END]);
  const prompt = encodeChat(messages.slice(0, 4), { addGenerationPrompt: true });
  assert.ok(decode(prompt.ids).endsWith("<|im_start|>assistant\n"));
  assert.deepEqual([...prompt.mask], [...mask.subarray(0, prompt.ids.length)]);
  assert.deepEqual(prompt.ids, ids.slice(0, prompt.ids.length), "the generation prompt is a prefix of the full chat");
  assert.throws(() => encodeChat([{ role: "tool" as "user", content: "x" }]), /role = "tool"/);

  const pair = nextTokenPair(ids, mask);
  assert.equal(pair.inputs.length, ids.length - 1);
  for (let i = 0; i < pair.inputs.length; i++) {
    assert.equal(pair.targets[i], ids[i + 1]);
    assert.equal(pair.mask[i], mask[i + 1]);
  }
  assert.deepEqual(nextTokenPair([5]).inputs, new Int32Array(0));
});
