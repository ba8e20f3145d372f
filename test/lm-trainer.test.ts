import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { createHash } from "node:crypto";
import { readSafetensors } from "../src/engine/safetensors.js";
import { ENDOFTEXT, IM_START } from "../src/engine/lm/index.js";
import {
  CHECKPOINT_FILE, batchRows, corpusDocuments, packDocuments, packWorldCorpus, worldRunId, readWorldCheckpoint, trainWorldModel, worldSpecFromOverrides, type WorldTrainProgress, type WorldTrainSpec,
} from "../src/world/train.js";
import { runCliChild, startCli } from "./support/eval-cli.js";
import { waitFor } from "./support/wait.js";

function tempDir(t: { after: (fn: () => void) => void }, name: string): string {
  const dir = mkdtempSync(join(tmpdir(), `${name}-`));
  t.after(() => rmSync(dir, { recursive: true, force: true }));
  return dir;
}

async function trainTo(spec: WorldTrainSpec, outDir: string, onProgress?: (p: WorldTrainProgress) => void) {
  const r = await trainWorldModel(spec, { outDir, checkpointEvery: 10, onProgress });
  await r.model.dispose();
  return r;
}

/** Every tensor (weights and Adam moments) of a checkpoint, keyed by name, as raw bytes. */
function tensorBytes(path: string): Map<string, Buffer> {
  const file = readSafetensors(path);
  return new Map([...file.tensors].map(([name, t]) => [name, Buffer.from(t.data.buffer, t.data.byteOffset, t.data.byteLength)]));
}

function assertSameTensors(a: string, b: string, what: string): void {
  const x = tensorBytes(a), y = tensorBytes(b);
  assert.deepEqual([...x.keys()].sort(), [...y.keys()].sort());
  for (const [name, bytes] of x) assert.ok(bytes.equals(y.get(name)!), `${what}: tensor ${name} differs`);
  assert.equal(readSafetensors(a).metadata.step, readSafetensors(b).metadata.step);
}

test("packing keeps documents whole in rows of ctx + 1, pads with <|endoftext|>, and masks only assistant targets", () => {
  const doc = (a: string) => ({ messages: [{ role: "user" as const, content: "q?" }, { role: "assistant" as const, content: a }] });
  const p = packDocuments([doc("yes"), doc("no"), doc("x".repeat(100))], 64);
  assert.equal(p.ctx, 64);
  assert.equal(p.splitDocuments, 1);
  assert.equal(p.rows, 3);
  // The two short chats (27 and 26 tokens, each opened by <|endoftext|> as at inference) share row 0; the
  // long one starts row 1.
  assert.equal(p.inputs[0], ENDOFTEXT);
  assert.equal(p.inputs[1], IM_START);
  assert.equal(p.inputs[27], ENDOFTEXT);
  assert.equal(p.inputs[28], IM_START);
  assert.equal(p.inputs[64], ENDOFTEXT);
  assert.equal(p.inputs[65], IM_START);
  assert.equal(p.mask[0], 0, "<|endoftext|> -> <|im_start|> is context, not a target");
  assert.equal(p.targets[63], ENDOFTEXT);
  assert.equal(p.mask[63], 0);
  // Unmasked targets are exactly the assistant bytes and each <|im_end|>: "yes" + 1, "no" + 1, 100 x's + 1.
  assert.equal(p.trainedTokens, 4 + 3 + 101);
  const rows = batchRows(7, 3, 5, p.rows);
  assert.deepEqual(rows, batchRows(7, 3, 5, p.rows), "a step's batch is a function of (seed, step)");
  assert.ok(rows.every((r) => r >= 0 && r < p.rows));
});

test("loss falls on the tiny preset, and the same seed gives a bit-identical checkpoint", async (t) => {
  const spec = worldSpecFromOverrides("tiny");
  const seen: WorldTrainProgress[] = [];
  const a = await trainTo(spec, tempDir(t, "lm-a"), (p) => seen.push(p));
  assert.deepEqual(seen.map((p) => p.step), Array.from({ length: spec.steps }, (_, i) => i + 1));
  assert.ok(seen.every((p) => Number.isFinite(p.loss) && p.lr > 0 && p.tokensPerSecond > 0));
  const first = a.lossHistory[0]!, last = a.lossHistory[a.lossHistory.length - 1]!;
  assert.ok(last < 0.6 * first, `loss went from ${first} to ${last}`);
  const b = await trainTo(spec, tempDir(t, "lm-b"));
  assertSameTensors(a.checkpoint, b.checkpoint, "same seed");
  assert.deepEqual(b.lossHistory, a.lossHistory);
  const c = await trainTo({ ...spec, seed: spec.seed + 1 }, tempDir(t, "lm-c"));
  assert.notDeepEqual(c.lossHistory, a.lossHistory, "another seed is another run");
});

test("a run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run", async (t) => {
  const steps = 1500;
  const dir = tempDir(t, "lm-kill");
  const ckpt = join(dir, CHECKPOINT_FILE);
  const args = ["lm", "train", "--preset", "tiny", "--steps", String(steps), "--checkpoint-every", "10", "--no-progress", "--out", dir];
  const killed = startCli(args);
  await waitFor(() => (readWorldCheckpoint(ckpt)?.step ?? 0) >= 50, 30_000).finally(() => killed.child.kill("SIGKILL"));
  const k = await killed.done;
  assert.equal(k.signal, "SIGKILL", `the child finished before it could be killed: ${k.stderr}`);
  const partial = readWorldCheckpoint(ckpt)!.step;
  assert.ok(partial >= 50 && partial < steps, `checkpoint at step ${partial}`);

  const resumed = await runCliChild([...args, "--json"]);
  assert.equal(resumed.code, 0, resumed.stderr);
  assert.equal(resumed.json.steps, steps);
  const sha = createHash("sha256").update(readFileSync(ckpt)).digest("hex");
  assert.equal(resumed.json.checkpoint.sha256, sha, "the manifest hashes the final checkpoint");
  assert.equal(resumed.json.command, `selfcorrect ${[...args, "--json"].join(" ")}`);

  const fresh = await trainTo(worldSpecFromOverrides("tiny", { steps }), tempDir(t, "lm-fresh"));
  assertSameTensors(ckpt, fresh.checkpoint, "after resume");
  assert.deepEqual(resumed.json.lossHistory, fresh.lossHistory, "the loss log continues across the kill");
});

test("a checkpoint of another spec is refused, and a finished one is reused without training", async (t) => {
  const dir = tempDir(t, "lm-other");
  const spec = worldSpecFromOverrides("tiny", { steps: 20 });
  await trainTo(spec, dir);
  await assert.rejects(trainWorldModel({ ...spec, lr: spec.lr / 2 }, { outDir: dir }), /different configuration or corpus/);
  const again = await trainTo(spec, dir);
  assert.equal(again.resumedFrom, 20);
  assert.equal(again.model.step, 20);
});

test("bad flags exit 2 naming each flag", async () => {
  const r = await runCliChild(["lm", "train", "--preset", "huge", "--steps", "0", "--lr", "abc", "--no-progress"]);
  assert.equal(r.code, 2, r.stderr);
  for (const name of ["--preset", "--steps", "--lr"]) assert.match(r.stderr, new RegExp(name), `${name} is named`);
  const heads = await runCliChild(["lm", "train", "--preset", "tiny", "--embd", "15", "--heads", "2", "--no-progress"]);
  assert.equal(heads.code, 2, heads.stderr);
  assert.match(heads.stderr, /nHead|nEmbd/);
});

test("--mixture replaces fields of the corpus mixture, names the run by it, and refuses unknown fields and bad values", async () => {
  const base = worldSpecFromOverrides("tiny", {});
  const checksOnly = worldSpecFromOverrides("tiny", { mixture: { answer: 0, attack: 0, episode: 0, check: 1 } });
  assert.equal(base.corpus.mixture, undefined, "the presets use the default mixture");
  assert.ok(corpusDocuments(checksOnly).every((d) => d.kind === "check"));
  assert.ok(new Set(corpusDocuments(base).map((d) => d.kind)).size > 1);
  const runId = (spec: WorldTrainSpec) => worldRunId(spec, packWorldCorpus(spec).sha256);
  assert.notEqual(runId(checksOnly), runId(base));
  assert.throws(() => worldSpecFromOverrides("tiny", { mixture: { answer: 0, attack: 0, episode: 0, check: 0 } }), /all 0/);
  for (const [value, message] of [["chek=0.5", /unknown field; expected one of answer/], ["check=x", /not field=number/], ["moreRounds=2", /in \[0, 1\]/]] as const) {
    const r = await runCliChild(["lm", "train", "--preset", "tiny", "--mixture", value, "--no-progress"]);
    assert.equal(r.code, 2, r.stderr);
    assert.match(r.stderr, message);
  }
});

test("a second process on the same --out is refused with exit 2; Ctrl-C saves and exits 130", async (t) => {
  const dir = tempDir(t, "lm-lock");
  const ckpt = join(dir, CHECKPOINT_FILE);
  const args = ["lm", "train", "--preset", "tiny", "--steps", "1000000", "--checkpoint-every", "10", "--no-progress", "--out", dir];
  const first = startCli(args);
  try {
    await waitFor(() => existsSync(ckpt), 30_000);
    const second = await runCliChild(args);
    assert.equal(second.code, 2, second.stderr);
    assert.match(second.stderr, new RegExp(`--out ${dir}: another training run \\(pid ${first.child.pid}\\)`));
  } finally {
    first.child.kill("SIGINT");
  }
  const r = await first.done;
  assert.equal(r.code, 130, r.stderr);
  const step = readWorldCheckpoint(ckpt)!.step;
  assert.match(r.stderr, new RegExp(`interrupted at step ${step}/1000000; checkpoint written`));
  assert.ok(!existsSync(join(dir, "model.safetensors.lock")), "the lock is released on exit");
});

test("the run id names the corpus as well as the spec: the same spec on other data gets another id", async (t) => {
  const spec = worldSpecFromOverrides("tiny", {});
  const world = packWorldCorpus(spec);
  const other = packWorldCorpus(spec, corpusDocuments(spec, 1)); // the same count of documents, shifted by one
  assert.notEqual(other.sha256, world.sha256);
  assert.equal(worldRunId(spec, world.sha256), worldRunId(spec, packWorldCorpus(spec).sha256), "a pure function of spec and data");
  assert.notEqual(worldRunId(spec, other.sha256), worldRunId(spec, world.sha256));
  assert.match(worldRunId(spec, world.sha256), /^lm-L1-C16-H2-T128-[0-9a-f]{10}$/);
  // The CLI names the run directory by that id, and the manifest and trainer report the same one.
  const cwd = tempDir(t, "lm-runid");
  const r = await runCliChild(["lm", "train", "--preset", "tiny", "--no-progress", "--json"], 60_000, {}, cwd);
  assert.equal(r.code, 0, r.stderr);
  const manifest = r.json as { runId: string; corpus: { sha256: string } };
  assert.equal(manifest.runId, worldRunId(spec, world.sha256));
  assert.equal(manifest.corpus.sha256, world.sha256);
  assert.ok(existsSync(join(cwd, "runs", "lm", manifest.runId, CHECKPOINT_FILE)), "trained into runs/lm/<run id>");
});

test("the shipped model's manifest names its training run by the spec and the corpus it records", () => {
  const shipped = JSON.parse(readFileSync(new URL("../../models/selfcorrect-world.manifest.json", import.meta.url), "utf8")) as {
    export: string; training: { runId: string; spec: WorldTrainSpec; corpus: { sha256: string }; checkpoint: { file: string } };
  };
  const t = shipped.training;
  assert.equal(t.runId, worldRunId(t.spec, t.corpus.sha256));
  assert.equal(t.checkpoint.file, `runs/lm/${t.runId}/${CHECKPOINT_FILE}`);
  assert.ok(shipped.export.includes(`runs/lm/${t.runId}/`), "the export command reads that run's checkpoint");
});
