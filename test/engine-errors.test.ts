/**
 * Invalid configurations fail with a UserError naming the field and the expected value; worker
 * failures reject the pending call instead of hanging; workers never keep the process alive.
 */
import { test } from "node:test";
import assert from "node:assert/strict";
import { spawnSync } from "node:child_process";
import { resolve } from "node:path";
import { UserError } from "../src/util/errors.js";
import { createModel } from "../src/engine/model/index.js";
import type { ModelConfig } from "../src/engine/api.js";

const base: ModelConfig = { inputDim: 5, outputDim: 5, nEmbd: 96, nHead: 3, nLayer: 2, nPositions: 12 };
const isUserError = (re: RegExp) => (e: Error) => {
  assert.ok(e instanceof UserError, `expected a UserError, got ${e.name}: ${e.message}`);
  assert.match(e.message, re);
  return true;
};

test("invalid model configs name the field and the expected value", async () => {
  const opts = { seed: 0, maxBatch: 2, threads: 1 };
  await assert.rejects(createModel({ ...base, nHead: 5 }, opts), isUserError(/nHead = 5 does not divide nEmbd = 96; expected nHead to be one of 1, 2, 3, 4, 6, 8, 12, 16, 24, 32, 48, 96/));
  await assert.rejects(createModel({ ...base, nLayer: 0 }, opts), isUserError(/nLayer: nLayer must be >= 1/));
  await assert.rejects(createModel({ ...base, nEmbd: 2.5 }, opts), isUserError(/nEmbd: nEmbd must be an integer/));
  await assert.rejects(
    createModel({ ...base, blocks: [{ attention: "softmax", ffn: true }] }, opts),
    isUserError(/blocks has 1 entries; expected one block config or exactly nLayer = 2 entries/),
  );
  await assert.rejects(
    createModel({ ...base, blocks: { attention: "quadratic" as "linear", ffn: true } }, opts),
    isUserError(/blocks/),
  );
  await assert.rejects(createModel(base, { ...opts, threads: 0 }), isUserError(/threads = 0; expected an integer >= 1/));
  await assert.rejects(createModel(base, { ...opts, maxBatch: -1 }), isUserError(/maxBatch = -1; expected an integer >= 1/));
  await assert.rejects(createModel(base, { ...opts, seed: NaN }), isUserError(/seed = NaN; expected a finite integer/));
  await assert.rejects(
    createModel({ ...base, nLayer: 40, nPositions: 60 }, { ...opts, maxBatch: 4096 }),
    isUserError(/needs [\d.]+ GiB of engine memory; expected at most 4 GiB/),
  );
});

test("non-finite learning rate and bad call shapes are rejected", async () => {
  const m = await createModel({ ...base, nEmbd: 8, nHead: 2 }, { seed: 0, maxBatch: 2, threads: 1 });
  try {
    await assert.rejects(m.adamStep({ lr: NaN }), isUserError(/lr = NaN; expected a finite number >= 0/));
    await assert.rejects(m.adamStep({ lr: Infinity }), isUserError(/lr = Infinity/));
    await assert.rejects(m.adamStep({ lr: 1e-3, beta2: 1 }), isUserError(/beta2 = 1; expected a finite number in \[0, 1\)/));
    assert.equal(m.step, 0, "a rejected step does not count");
    await assert.rejects(m.forward(new Float32Array(10), 3, 12), isUserError(/batch = 3 exceeds maxBatch = 2/));
    await assert.rejects(m.forward(new Float32Array(10), 1, 13), isUserError(/seqLen = 13 exceeds nPositions = 12/));
    await assert.rejects(m.forward(new Float32Array(10), 1, 12), isUserError(/input has 10 values; expected batch\*seqLen\*inputDim = 60/));
    await assert.rejects(m.backward(new Float32Array(60)), /needs a forward\(\) first/);
    assert.throws(() => m.setParams({ nope: { shape: [1], data: new Float32Array(1) } }), isUserError(/unknown parameter nope/));
    assert.throws(() => m.setParams({ wpe: { shape: [2], data: new Float32Array(2) } }), isUserError(/wpe has shape \[2\].*expected \[12,8\]/));
  } finally {
    await m.dispose();
  }
});

test("a worker exception rejects the pending call and later calls, instead of hanging", async () => {
  const m = await createModel({ ...base, nEmbd: 8, nHead: 2 }, { seed: 0, maxBatch: 4, threads: 2 });
  try {
    assert.equal(m.threads, 2);
    await assert.rejects(m.injectWorkerFailure(), /failure requested/);
    await assert.rejects(m.forward(new Float32Array(4 * 12 * 5), 4, 12), /failed earlier and cannot continue/);
  } finally {
    await m.dispose();
  }
});

test("an undisposed multi-threaded model does not keep the process alive", () => {
  const url = new URL("../src/engine/model/index.js", import.meta.url).href;
  const script = `
    import { createModel } from ${JSON.stringify(url)};
    const m = await createModel({ inputDim: 2, outputDim: 2, nEmbd: 8, nHead: 2, nLayer: 1, nPositions: 4 }, { seed: 0, maxBatch: 4, threads: 2 });
    const out = await m.forward(new Float32Array(4 * 4 * 2), 4, 4);
    console.log("out", out.length);
  `;
  const r = spawnSync(process.execPath, ["--input-type=module", "-e", script], { encoding: "utf8", timeout: 20000, cwd: resolve(".") });
  assert.equal(r.signal, null, "the process had to be killed: a worker kept it alive");
  assert.equal(r.status, 0, r.stderr);
  assert.match(r.stdout, /out 32/);
});
