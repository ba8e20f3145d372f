import { test } from "node:test";
import assert from "node:assert/strict";
import { existsSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { spawn, spawnSync } from "node:child_process";
import { join, resolve } from "node:path";
import { PANELS, PANEL_IDS, PRESETS, PRESET_NAMES, parsePanels, parsePreset, variantSpec } from "../src/lab/experiments.js";
import { LAB_LOCK_FILE, planExperiments, type LabResults } from "../src/lab/runner.js";
import { checkFindings } from "../src/lab/findings.js";
import { writeLabReport } from "../src/report/lab-report.js";
import { gdBaselineCurve, gdSteps, runningMeanCurve } from "../src/lab/baselines.js";
import { sampleIcaBatch, noisyRewards } from "../src/lab/task.js";
import { Rng } from "../src/util/rng.js";
import { runId } from "../src/lab/train.js";

const CLI = resolve(process.cwd(), "dist/src/cli/main.js");

test("the registry has every Figure 1 panel with every preset, as the paper configures them", () => {
  assert.deepEqual(Object.keys(PANELS).sort(), [...PANEL_IDS]);
  for (const id of PANEL_IDS) for (const preset of PRESET_NAMES) assert.ok(PANELS[id].variants[preset].length >= 1);
  const paper = PRESETS.paper;
  assert.deepEqual(PANELS.b.ps, [0, 0.25, 0.5, 0.75, 1]);
  assert.deepEqual(PANELS.c.variants.paper.map((v) => variantSpec(paper, v).model.nLayer), [5, 10, 15, 20]);
  assert.deepEqual(PANELS.e.variants.paper.map((v) => variantSpec(paper, v).model), [1, 3, 4, 6].map((h) => ({ nLayer: 20, nEmbd: 32 * h, nHead: h, attention: "softmax", ffn: true })));
  assert.equal(variantSpec(paper, PANELS.d.variants.paper[1]!).model.attention, "linear");
  assert.equal(variantSpec(paper, PANELS.f.variants.paper[1]!).model.ffn, false);
  assert.deepEqual({ batch: paper.base.batch, lr: paper.base.lr, steps: paper.base.steps, evalTasks: paper.evalTasks }, { batch: 256, lr: 1e-4, steps: 3000, evalTasks: 256 });
});

test("medium is the released model at 10 layers, batch 64 and PyTorch's init; panels b, d and f need 3 models", () => {
  const medium = PRESETS.medium;
  assert.deepEqual(medium.base, { ...PRESETS.paper.base, model: { ...PRESETS.paper.base.model, nLayer: 10 }, batch: 64, init: "torch" });
  assert.deepEqual({ lr: medium.base.lr, steps: medium.base.steps, warmup: medium.base.warmupSteps, decay: medium.base.decay }, { lr: 1e-4, steps: 3000, warmup: 0, decay: "none" });
  assert.equal(planExperiments(parsePanels("b,d,f"), medium, "/tmp/x").length, 3);
});

test("planning shares models between panels: a and b need one model, all of paper needs 9", () => {
  const quickAB = planExperiments(["a", "b"], PRESETS.quick, "/tmp/x");
  assert.equal(quickAB.length, 1);
  assert.deepEqual(quickAB[0]!.ps, [0, 0.25, 0.5, 0.75, 1]);
  const paperAll = planExperiments(parsePanels("all"), PRESETS.paper, "/tmp/x");
  // base (20 layers, 3 heads) + depths 5/10/15 + linear + heads 1/4/6 + no FFN
  assert.equal(paperAll.length, 9);
  assert.equal(new Set(paperAll.map((r) => r.id)).size, 9);
  assert.equal(runId(PRESETS.paper.base), runId({ ...PRESETS.paper.base }), "run ids are stable");
});

/** Runs the CLI in a child process, as a user does; returns its exit code, stderr and wall time. */
function cli(args: string[]): { status: number | null; stderr: string; ms: number } {
  const t0 = Date.now();
  const r = spawnSync(process.execPath, [CLI, ...args], { encoding: "utf8", timeout: 60_000 });
  return { status: r.status, stderr: r.stderr, ms: Date.now() - t0 };
}

test("bad panel, preset, p, examples and output directory fail before any training, naming the problem", () => {
  assert.throws(() => parsePanels("g"), /unknown panel "g"/);
  assert.throws(() => parsePreset("fast"), /unknown preset "fast"/);
  const dir = mkdtempSync(join(tmpdir(), "lab-cli-"));
  const errors: string[] = [];
  const expectUsageError = (args: string[]) => {
    const r = cli(args);
    assert.equal(r.status, 2, `${args.join(" ")}: ${r.stderr}`);
    // Generous: a loaded 2-core machine can take seconds just to start Node; training would take minutes.
    assert.ok(r.ms < 20_000, `${args.join(" ")}: validation is immediate (${r.ms} ms)`);
    errors.push(r.stderr);
  };
  try {
    expectUsageError(["lab", "experiment", "z", "--output", dir]);
    expectUsageError(["lab", "experiment", "a", "--preset", "huge", "--output", dir]);
    expectUsageError(["lab", "experiment", "a", "--threads", "0", "--output", dir]);
    const blocker = join(dir, "a-file");
    writeFileSync(blocker, "x");
    expectUsageError(["lab", "experiment", "a", "--output", join(blocker, "sub")]);
    expectUsageError(["lab", "eval", "--checkpoint", join(dir, "missing.safetensors")]);
    expectUsageError(["lab", "eval", "--checkpoint", join(dir, "missing.safetensors"), "--p", "0,1.5"]);
    expectUsageError(["lab", "train", "--heads", "5", "--embd", "64", "--output", dir]);
    expectUsageError(["lab", "report", "--output", join(dir, "nothing-here")]);
    // results of another preset are not silently replaced
    const otherPreset = join(dir, "other-preset");
    mkdirSync(otherPreset);
    writeFileSync(join(otherPreset, "results.json"), JSON.stringify({ version: 1, preset: "paper", evalTasks: 256, evalSeed: 20240531, runs: {}, panels: {} }));
    expectUsageError(["lab", "experiment", "a", "--preset", "quick", "--output", otherPreset]);
    // a live process holding the directory's lock: a second runner must not train into it
    const holder = spawn(process.execPath, ["-e", "setTimeout(() => {}, 30000)"], { stdio: "ignore" });
    try {
      writeFileSync(join(dir, LAB_LOCK_FILE), String(holder.pid));
      expectUsageError(["lab", "experiment", "a", "--output", dir]);
    } finally {
      holder.kill();
    }
    assert.ok(!existsSync(join(dir, "runs")), "nothing was trained");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
  const all = errors.join("");
  for (const needle of [/holds results of the paper preset/, /another lab run \(pid \d+\) is writing there/, /unknown panel "z"/, /unknown preset "huge"/, /--threads/, /not writable/, /not a lab checkpoint/, /1\.5 is outside \[0, 1\]/, /--heads 5 does not divide --embd 64/, /no results\.json/]) {
    assert.match(all, needle);
  }
});

test("examples beyond the sequence's positions are refused", async () => {
  const { parseNoiseLevels } = await import("../src/lab/evaluate.js");
  assert.deepEqual(parseNoiseLevels("0,0.25,1"), [0, 0.25, 1]);
  assert.throws(() => parseNoiseLevels("-0.1"), /outside \[0, 1\]/);
  const preset = { ...PRESETS.quick, maxExamples: 25 };
  assert.throws(() => planExperiments(["a"], preset, "/tmp/x"), /examples = 25 exceeds the 19 in-context examples/);
});

test("the GD baseline reduces its PL loss and beats its untrained start; the notebook schedule is int(50 - 25 p)", () => {
  const batch = sampleIcaBatch(new Rng(4), 24, 9, 5);
  const g = gdBaselineCurve(batch, batch.rs, { steps: 50 });
  const untrained = gdBaselineCurve(batch, batch.rs, { steps: 0 });
  for (let k = 2; k < 9; k++) {
    assert.ok(g.finalLoss[k]! < g.initialLoss[k]!, `k=${k}: loss ${g.initialLoss[k]} -> ${g.finalLoss[k]}`);
    assert.equal(untrained.finalLoss[k], untrained.initialLoss[k]);
  }
  const avg = (c: number[]) => c.slice(2).reduce((a, v) => a + v, 0) / (c.length - 2);
  assert.ok(avg(g.curve) < avg(untrained.curve) - 0.2, `GD ${avg(g.curve)} vs untrained ${avg(untrained.curve)}`);
  assert.ok(Number.isNaN(g.curve[0]!) && Number.isNaN(g.curve[1]!));
  // neg-sq score and zero init also train.
  const sq = gdBaselineCurve(batch, batch.rs, { steps: 50, score: "neg-sq", init: "zero" });
  for (let k = 2; k < 9; k++) assert.ok(sq.finalLoss[k]! < sq.initialLoss[k]!);
  assert.deepEqual([0, 0.25, 0.5, 0.75, 1].map((p) => gdSteps({ steps: "notebook", p })), [50, 43, 37, 31, 25]);
  // With fully random rewards GD cannot find y*: its error goes to chance.
  const noisy = gdBaselineCurve(batch, noisyRewards(new Rng(1), batch.rs, 1), { steps: 50 });
  assert.ok(avg(noisy.curve) > avg(g.curve) + 0.3);
  const mean = runningMeanCurve(batch);
  assert.ok(Number.isNaN(mean[0]!) && mean.slice(1).every((v) => v > 0 && v < 1));
});

test("findings checks read the curves at the last example count and report failures with numbers", () => {
  const examples = [2, 3, 4];
  const ok = checkFindings("b", { examples, curves: { "TF p=0": [0.5, 0.3, 0.2], "TF p=1": [1, 1, 1.0], "GD p=0": [0.4, 0.3, 0.3], "GD p=1": [1, 1, 1] } });
  assert.ok(ok.every((f) => f.holds), JSON.stringify(ok));
  const bad = checkFindings("b", { examples, curves: { "TF p=0": [0.5, 0.3, 0.2], "TF p=1": [0.5, 0.3, 0.3], "GD p=0": [0.4, 0.3, 0.3], "GD p=1": [1, 1, 1] } });
  const chance = bad.find((f) => f.claim.includes("chance"))!;
  assert.equal(chance.holds, false);
  assert.match(chance.detail, /0\.300/);
  const d = checkFindings("d", { examples, curves: { "TF softmax": [0.5, 0.3, 0.1], "TF linear": [0.5, 0.4, 0.35], mean: [0.4, 0.35, 0.3] } });
  assert.deepEqual(d.map((f) => f.holds), [true, true]);
});

test("the report renders one SVG per panel, a self-contained HTML page and Markdown from results.json", async () => {
  const dir = mkdtempSync(join(tmpdir(), "lab-report-"));
  try {
    const examples = [2, 3, 4, 5];
    // Curves typed in by hand to exercise rendering only (not measured results).
    const results: LabResults = {
      version: 1,
      updatedAt: "2026-01-01T00:00:00Z",
      preset: "quick",
      presetDescription: "rendering test",
      evalTasks: 4,
      evalSeed: 1,
      runs: {},
      panels: {
        b: {
          panel: "b", title: "Reward noise", paperFinding: "noise hurts", preset: "quick", examples,
          curves: { "TF p=0": [0.5, 0.4, 0.3, 0.2], "TF p=1": [1, 1, 1, 1], "GD p=0": [0.4, 0.35, 0.3, 0.3], "GD p=1": [1, 1, 1, 1] },
          dashed: ["GD p=0", "GD p=1"], runs: {}, findings: [{ claim: "a <claim>", holds: false, detail: "x" }],
        },
      },
    };
    const files = await writeLabReport(dir, results);
    assert.deepEqual(files.svgs, [join(dir, "panel-b.svg")]);
    const svg = readFileSync(files.svgs[0]!, "utf8");
    assert.match(svg, /<svg/);
    assert.match(svg, /GD p=1/);
    const html = readFileSync(files.html, "utf8");
    assert.match(html, /<svg/);
    assert.doesNotMatch(html, /<script|src="http/);
    assert.match(html, /a &lt;claim&gt;/);
    assert.match(html, /does not hold/);
    const md = readFileSync(files.markdown, "utf8");
    assert.match(md, /\| examples \| TF p=0 \| TF p=1 \| GD p=0 \| GD p=1 \|/);
    assert.match(md, /\| 5 \| 0\.200 \| 1\.000 \| 0\.300 \| 1\.000 \|/);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});

test("the runner trains once, reuses the finished checkpoint, and writes results.json with every panel curve", async () => {
  const { runExperiments, readResults } = await import("../src/lab/runner.js");
  const dir = mkdtempSync(join(tmpdir(), "lab-runner-"));
  // A tiny preset (1 layer, 8 dims, 20 steps, 16 eval tasks): this checks the plumbing, not the findings.
  const tiny = {
    ...PRESETS.quick,
    base: { ...PRESETS.quick.base, model: { ...PRESETS.quick.base.model, nLayer: 1, nEmbd: 8, nHead: 2 }, batch: 8, steps: 20, warmupSteps: 2 },
    evalTasks: 16,
  };
  try {
    const opts = { outputDir: dir, threads: 1, progress: false, log: () => {} };
    const first = await runExperiments(["a", "b"], tiny, opts);
    const a = first.panels.a!, b = first.panels.b!;
    assert.deepEqual(a.examples, Array.from({ length: 14 }, (_, i) => i + 2));
    assert.deepEqual(Object.keys(a.curves), ["TF", "GD", "mean"]);
    assert.deepEqual(Object.keys(b.curves), ["TF p=0", "TF p=0.25", "TF p=0.5", "TF p=0.75", "TF p=1", "GD p=0", "GD p=0.25", "GD p=0.5", "GD p=0.75", "GD p=1"]);
    assert.deepEqual(a.curves.TF, b.curves["TF p=0"], "one model serves both panels");
    assert.ok(Object.values(b.curves).every((c) => c.length === 14 && c.every(Number.isFinite)));
    assert.deepEqual(b.dashed, ["GD p=0", "GD p=0.25", "GD p=0.5", "GD p=0.75", "GD p=1"]);
    const [run] = Object.values(first.runs);
    assert.equal(run!.stepsTrainedNow, 20);
    assert.equal(run!.lossHistory.length, 2);
    const again = await runExperiments(["a"], tiny, opts);
    assert.equal(Object.values(again.runs)[0]!.stepsTrainedNow, 0, "the finished checkpoint is reused");
    assert.deepEqual(again.panels.a!.curves.TF, a.curves.TF, "same model, same held-out tasks, same curve");
    const saved = readResults(dir)!;
    assert.ok(saved.panels.a && saved.panels.b, "panels accumulate across invocations");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
