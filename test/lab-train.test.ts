import { test } from "node:test";
import assert from "node:assert/strict";
import { spawn } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { loadModel } from "../src/engine/index.js";
import { readCheckpointMeta, train, runId, type TrainSpec } from "../src/lab/train.js";
import { trainSpecFromOverrides } from "../src/lab/experiments.js";

const CLI = resolve(process.cwd(), "dist/src/cli/main.js");
const TINY_FLAGS = ["--layers", "1", "--embd", "8", "--heads", "2", "--batch", "8", "--lr", "0.001", "--warmup", "10", "--threads", "1", "--no-progress"];

function tinySpec(steps: number): TrainSpec {
  return trainSpecFromOverrides({ preset: "quick", layers: 1, embd: 8, heads: 2, batch: 8, lr: 0.001, warmup: 10, steps });
}

/** Spawns the CLI; resolves with its exit code and output. `onStderr` can kill it. */
function runCliChild(args: string[], watch?: (child: ReturnType<typeof spawn>) => void): Promise<{ code: number | null; signal: string | null; stdout: string; stderr: string }> {
  return new Promise((done, fail) => {
    const child = spawn(process.execPath, [CLI, ...args], { stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "", stderr = "";
    child.stdout.on("data", (b) => (stdout += b));
    child.stderr.on("data", (b) => (stderr += b));
    const timer = setTimeout(() => child.kill("SIGKILL"), 60_000);
    child.on("error", fail);
    child.on("close", (code, signal) => {
      clearTimeout(timer);
      done({ code, signal, stdout, stderr });
    });
    watch?.(child);
  });
}

/** Polls the checkpoint's step until `cond` holds, then runs `act`. */
function whenCheckpoint(path: string, cond: (step: number) => boolean, act: () => void): void {
  const timer = setInterval(() => {
    const meta = readCheckpointMeta(path);
    if (meta?.step !== undefined && cond(meta.step)) {
      clearInterval(timer);
      act();
    }
  }, 5);
  setTimeout(() => clearInterval(timer), 60_000).unref();
}

test("a run killed with SIGKILL and resumed ends with the same weights as an uninterrupted run", async () => {
  const steps = 1500;
  const dir = mkdtempSync(join(tmpdir(), "lab-resume-"));
  try {
    const ckpt = join(dir, "model.safetensors");
    const args = ["lab", "train", ...TINY_FLAGS, "--steps", String(steps), "--checkpoint-every", "50", "--output", dir];
    const killed = await runCliChild(args, (child) => whenCheckpoint(ckpt, (s) => s >= 100, () => child.kill("SIGKILL")));
    assert.equal(killed.signal, "SIGKILL", `the child finished before it could be killed: ${killed.stderr}`);
    const partial = readCheckpointMeta(ckpt)!.step!;
    assert.ok(partial >= 100 && partial < steps, `checkpoint at step ${partial}`);

    const resumed = await runCliChild([...args, "--json"]);
    assert.equal(resumed.code, 0, resumed.stderr);
    // --json: stdout is the JSON alone; the human summary went to stderr
    const summary = JSON.parse(resumed.stdout);
    assert.match(resumed.stderr, /^trained /m);
    assert.equal(summary.steps, steps);
    assert.equal(summary.runId, runId(tinySpec(steps)));

    const fresh = await train(tinySpec(steps), { threads: 1, progress: false, handleSigint: false });
    const { model: reloaded } = await loadModel(ckpt, { threads: 1, maxBatch: 8 });
    try {
      const a = fresh.model.getParams(), b = reloaded.getParams();
      assert.equal(a.size, b.size);
      for (const [name, t] of a) assert.deepEqual(b.get(name)!.data, t.data, `parameter ${name} differs after resume`);
      const meta = JSON.parse(readFileSync(`${ckpt}.json`, "utf8"));
      assert.deepEqual(meta.extra.lossHistory, fresh.lossHistory, "loss history continues across the kill");
    } finally {
      await fresh.model.dispose();
      await reloaded.dispose();
    }
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("SIGINT stops training cleanly with a checkpoint and exit code 130", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lab-sigint-"));
  try {
    const ckpt = join(dir, "model.safetensors");
    const args = ["lab", "train", ...TINY_FLAGS, "--steps", "100000", "--checkpoint-every", "20", "--output", dir];
    const r = await runCliChild(args, (child) => whenCheckpoint(ckpt, (s) => s >= 20, () => child.kill("SIGINT")));
    assert.equal(r.code, 130, r.stderr);
    assert.match(r.stderr, /interrupted at step \d+\/100000; checkpoint written/);
    const step = readCheckpointMeta(ckpt)!.step!;
    assert.ok(step >= 20 && step < 100000);
    assert.match(r.stderr, new RegExp(`interrupted at step ${step}/`), "the checkpoint holds the step the run stopped at");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("a checkpoint trained with another configuration is refused, not silently reused", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lab-mismatch-"));
  try {
    const ckpt = join(dir, "model.safetensors");
    const a = await train(tinySpec(5), { checkpointPath: ckpt, threads: 1, progress: false, handleSigint: false });
    await a.model.dispose();
    assert.ok(existsSync(ckpt));
    await assert.rejects(
      train({ ...tinySpec(5), lr: 0.5 }, { checkpointPath: ckpt, threads: 1, progress: false, handleSigint: false }),
      /different configuration/,
    );
    // The same spec reuses it without training.
    const again = await train(tinySpec(5), { checkpointPath: ckpt, threads: 1, progress: false, handleSigint: false });
    assert.equal(again.resumedFrom, 5);
    await again.model.dispose();
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("init 'released' is HF GPT-2 inside (residual projections scaled by 1/sqrt(2 n_layer)) and PyTorch Linear for read-in/out", async () => {
  const { createModel } = await import("../src/engine/index.js");
  const { applyInit } = await import("../src/lab/train.js");
  const L = 4, C = 64;
  const model = await createModel({ inputDim: 5, outputDim: 5, nEmbd: C, nHead: 4, nLayer: L, nPositions: 60 }, { seed: 1, maxBatch: 1, threads: 1 });
  try {
    applyInit(model, "released", 1);
    const p = model.getParams();
    const std = (name: string) => {
      const d = p.get(name)!.data;
      return Math.sqrt(d.reduce((s, x) => s + x * x, 0) / d.length);
    };
    const near = (got: number, want: number, name: string) => assert.ok(Math.abs(got / want - 1) < 0.05, `${name}: std ${got}, expected ${want}`);
    for (let l = 0; l < L; l++) {
      near(std(`h.${l}.attn.c_proj.weight`), 0.02 / Math.sqrt(2 * L), `h.${l}.attn.c_proj.weight`);
      near(std(`h.${l}.mlp.c_proj.weight`), 0.02 / Math.sqrt(2 * L), `h.${l}.mlp.c_proj.weight`);
      near(std(`h.${l}.attn.c_attn.weight`), 0.02, `h.${l}.attn.c_attn.weight`);
      near(std(`h.${l}.mlp.c_fc.weight`), 0.02, `h.${l}.mlp.c_fc.weight`);
    }
    // read-in: U(-1/sqrt(5), 1/sqrt(5)), whose std is 1/sqrt(15); every value inside the bound
    const readIn = p.get("read_in.weight")!.data;
    assert.ok(readIn.every((x) => Math.abs(x) <= 1 / Math.sqrt(5)));
    assert.ok(Math.abs(std("read_in.weight") - 1 / Math.sqrt(15)) < 0.06, `read_in std ${std("read_in.weight")}`);
  } finally {
    await model.dispose();
  }
});
