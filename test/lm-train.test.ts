/**
 * Training the token LM: the loss on a tiny fixed corpus falls far below ln(V), the same seed gives
 * bit-identical weights, and a checkpoint resumes bit-exactly (parameters, Adam moments, step).
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, rmSync, writeFileSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { tmpdir } from "node:os";
import { Rng } from "../src/util/rng.js";
import { UserError } from "../src/util/errors.js";
import {
  ENDOFTEXT, VOCAB_SIZE, createLanguageModel, encode, encodeChat, loadLanguageModel, nextTokenPair, type LanguageModel, type LmConfig,
} from "../src/engine/lm/index.js";

const config: LmConfig = { vocabSize: VOCAB_SIZE, nEmbd: 32, nHead: 4, nLayer: 2, nPositions: 48 };
const corpus = [ENDOFTEXT, ...encode("the cat sat on the mat. the dog sat on the log. a bird sang in the tree. ".repeat(6))];
const B = 4, T = 32;

/** Random windows of the corpus (from the data seed); every target is a real next byte. */
function window(rng: Rng): { inputs: number[]; targets: number[] } {
  const inputs: number[] = [], targets: number[] = [];
  for (let b = 0; b < B; b++) {
    const o = rng.int(corpus.length - T - 1);
    inputs.push(...corpus.slice(o, o + T));
    targets.push(...corpus.slice(o + 1, o + T + 1));
  }
  return { inputs, targets };
}

function trainSteps(lm: LanguageModel, rng: Rng, steps: number): number[] {
  const losses: number[] = [];
  for (let s = 0; s < steps; s++) {
    const { inputs, targets } = window(rng);
    losses.push(lm.forward(inputs, B, T, targets)!);
    lm.backward();
    lm.adamStep({ lr: 3e-3 });
  }
  return losses;
}

function sameBits(a: LanguageModel, b: LanguageModel, what: string): void {
  const pa = a.getParams(), pb = b.getParams();
  const sa = a.getOptimizerState(), sb = b.getOptimizerState();
  for (const [name, t] of pa) {
    assert.deepEqual(Buffer.from(t.data.buffer), Buffer.from(pb.get(name)!.data.buffer), `${what}: ${name}`);
    assert.deepEqual(Buffer.from(sa.m.get(name)!.data.buffer), Buffer.from(sb.m.get(name)!.data.buffer), `${what}: m of ${name}`);
    assert.deepEqual(Buffer.from(sa.v.get(name)!.data.buffer), Buffer.from(sb.v.get(name)!.data.buffer), `${what}: v of ${name}`);
  }
  assert.equal(a.step, b.step, `${what}: step`);
}

test("training on a tiny corpus: loss falls far below ln(V), deterministic per seed", async () => {
  const run = async () => {
    const lm = await createLanguageModel(config, { seed: 5, maxBatch: B });
    return { lm, losses: trainSteps(lm, new Rng(17), 300) };
  };
  const t0 = performance.now();
  const a = await run();
  const ms = performance.now() - t0;
  const first = a.losses[0]!;
  const lastTen = a.losses.slice(-10).reduce((x, y) => x + y, 0) / 10;
  console.log(`LM train: loss ${first.toFixed(3)} -> ${lastTen.toFixed(3)} (mean of the last 10 of 300 steps), ln(V) = ${Math.log(VOCAB_SIZE).toFixed(3)}, ${(ms / 300).toFixed(1)} ms/step`);
  assert.ok(Math.abs(first - Math.log(VOCAB_SIZE)) < 0.3, `initial loss ${first} should be near ln(V)`);
  assert.ok(lastTen < 0.25 * Math.log(VOCAB_SIZE), `final loss ${lastTen}`);
  const b = await run();
  assert.deepEqual(b.losses, a.losses, "same seed -> same losses");
  sameBits(a.lm, b.lm, "same seed");
  const c = await createLanguageModel(config, { seed: 6, maxBatch: B });
  assert.notDeepEqual(c.getParams().get("wte")!.data, a.lm.getParams().get("wte")!.data, "another seed, other weights");
});

test("masked loss: only assistant tokens count, and an all-zero mask gives loss 0 and zero gradients", async () => {
  const lm = await createLanguageModel({ ...config, nPositions: 64 }, { seed: 3, maxBatch: 1 });
  const chat = encodeChat([{ role: "user", content: "2+2?" }, { role: "assistant", content: "4" }]);
  const { inputs, targets, mask } = nextTokenPair(chat.ids, chat.mask);
  const n = inputs.length;
  const masked = lm.forward(inputs, 1, n, targets, mask)!;
  // The same loss by hand from the logits: mean over the two assistant targets ("4", <|im_end|>).
  const logits = lm.logits();
  let sum = 0, count = 0;
  for (let i = 0; i < n; i++) {
    if (!mask[i]) continue;
    const row = logits.subarray(i * VOCAB_SIZE, (i + 1) * VOCAB_SIZE);
    const max = Math.max(...row);
    let z = 0;
    for (const x of row) z += Math.exp(x - max);
    sum += max + Math.log(z) - row[targets[i]!]!;
    count++;
  }
  assert.equal(count, 2);
  assert.ok(Math.abs(masked - sum / count) < 1e-9, `${masked} vs ${sum / count}`);
  assert.equal(lm.forward(inputs, 1, n, targets, new Uint8Array(n)), 0);
  lm.backward();
  for (const [name, g] of lm.getGrads()) assert.ok(g.data.every((x) => x === 0), `${name} has a gradient under an all-zero mask`);
});

test("save/load round-trip resumes bit-exactly; bad checkpoints are refused with a reason", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lm-ckpt-"));
  try {
    const lm = await createLanguageModel(config, { seed: 8, maxBatch: B });
    const rng = new Rng(4);
    trainSteps(lm, rng, 5);
    const path = join(dir, "lm.safetensors");
    lm.save(path, { note: "hello", rng: rng.getState() });
    const { model, extra } = await loadLanguageModel(path, { maxBatch: B });
    assert.deepEqual(model.config, lm.config);
    assert.equal(extra.note, "hello");
    sameBits(lm, model, "after load");
    // Both continue on the same data: still bit-identical.
    const state = extra.rng as ReturnType<Rng["getState"]>;
    trainSteps(lm, rng, 3);
    trainSteps(model, Rng.fromState(state), 3);
    sameBits(lm, model, "after resuming");

    const bytes = readFileSync(path);
    writeFileSync(join(dir, "cut.safetensors"), bytes.subarray(0, bytes.length - 10));
    await assert.rejects(loadLanguageModel(join(dir, "cut.safetensors"), { maxBatch: 1 }), UserError);
    await assert.rejects(loadLanguageModel(path, { maxBatch: 1, threads: 2 }), /one thread/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("bad inputs are UserErrors naming the field", async () => {
  await assert.rejects(createLanguageModel({ ...config, vocabSize: 0 }, { seed: 1, maxBatch: 1 }), /vocabSize = 0/);
  await assert.rejects(createLanguageModel({ ...config, nHead: 3 }, { seed: 1, maxBatch: 1 }), /nHead = 3 does not divide nEmbd = 32/);
  const lm = await createLanguageModel(config, { seed: 1, maxBatch: 1 });
  assert.throws(() => lm.forward([1, 2, 300], 1, 3), /tokens\[2\] = 300/);
  assert.throws(() => lm.forward([1, 2], 1, 2, [3, -1]), /targets\[1\] = -1 is unmasked/);
  assert.throws(() => lm.forward(new Array(49).fill(0), 1, 49), /seqLen = 49/);
  assert.throws(() => lm.forward([1, 2], 2, 1), /batch = 2/);
  assert.throws(() => lm.backward(), /needs a forward\(\) with targets/);
});
