// `selfcorrect eval --gguf` on a real llama.cpp model: a tiny llama with random weights written by
// src/engine/gguf (its text is gibberish by construction). Checks the local-model path end to end: every
// item finished, the CaC calls made and counted, tokens from llama.cpp's own tokenizer, and resume (only
// when the file's weights are the same).
import { test } from "node:test";
import assert from "node:assert/strict";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { writeTinyLlamaGguf } from "../src/engine/gguf/fixtures/tiny-llama.js";
import { runCliChild } from "./support/eval-cli.js";
import * as fx from "./support/eval-fixtures.js";

test("eval jailbreak --gguf: CaC on a tiny llama.cpp model, complete and resumable", async () => {
  const dir = mkdtempSync(join(tmpdir(), "eval-gguf-"));
  try {
    const gguf = join(dir, "tiny.gguf");
    writeTinyLlamaGguf(gguf, { seed: 5 });
    fx.writeAdvBench(dir, 4);
    const out = join(dir, "out");
    const args = ["eval", "jailbreak", "--gguf", gguf, "--max-tokens", "6", "--defense", "cac", "--rounds", "1", "--data-dir", dir, "--output", out, "--json", "--no-progress", "--concurrency", "1"];
    const r = await runCliChild(args, 120_000);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.json.items, 4);
    assert.equal(r.json.done, 4);
    assert.equal(r.json.calls, 12, "initial, check and answer per item");
    assert.ok(r.json.tokens > 0);
    const results = JSON.parse(readFileSync(join(out, "results.json"), "utf8"));
    assert.ok(results.records.every((x: any) => x.answers.length === 2 && x.checks.length === 1));
    assert.match(results.config.model, /^gguf:/);
    const again = await runCliChild(args, 120_000);
    assert.equal(again.code, 0, again.stderr);
    assert.deepEqual(again.json.asr, r.json.asr);
    assert.equal(again.json.calls, 12);
    assert.equal(again.json.run_key, r.json.run_key, "the same model resumes its run");
    // Other weights at the same path are another model: a new run, not a resume that mixes the two.
    writeTinyLlamaGguf(gguf, { seed: 6 });
    const other = await runCliChild(args, 120_000);
    assert.equal(other.code, 0, other.stderr);
    assert.notEqual(other.json.run_key, r.json.run_key);
    assert.equal(other.json.done, 4);
    assert.notEqual(JSON.parse(readFileSync(join(out, "results.json"), "utf8")).config.modelFingerprint, results.config.modelFingerprint);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
