/**
 * Training-step time of the playground (web/playground) in headless Chromium against the same
 * training in Node: one thread, the same spec, the same WebAssembly kernels. Optionally saves a
 * screenshot of the page after the Chromium run (docs/screenshots/playground.png is made this way).
 *
 *   npm run build:playground && node dist/bench/playground.js --steps 100 --rounds 3
 *   node dist/bench/playground.js --steps 200 --rounds 1 --p 0.5 --screenshot docs/screenshots/playground.png
 *
 * Chromium's figure is the page's own average (the worker's time inside training steps, the same
 * span as Node's figure: evaluation and drawing excluded). Each figure is the median over --rounds
 * alternating runs. Prints one JSON object as the last line.
 */
import { existsSync, mkdirSync, statSync } from "node:fs";
import { cpus, loadavg } from "node:os";
import { dirname, resolve } from "node:path";
import { parseArgs } from "node:util";
import { createModel } from "../src/engine/index.js";
import { applyInit, icaTrainStep, modelConfigFor, trainingDataRng, type TrainSpec } from "../src/lab/train-core.js";
import { launchChromium, openPlayground, waitForPhase, type PlaygroundSettings } from "../test/support/playground.js";

const { values: a } = parseArgs({
  options: {
    layers: { type: "string", default: "2" },
    width: { type: "string", default: "48" },
    heads: { type: "string", default: "3" },
    batch: { type: "string", default: "64" },
    lr: { type: "string", default: "0.002" },
    steps: { type: "string", default: "100" },
    p: { type: "string", default: "0" },
    page: { type: "string", default: "dist/playground/index.html" },
    rounds: { type: "string", default: "3" },
    screenshot: { type: "string" },
  },
});

const settings: PlaygroundSettings = {
  layers: Number(a.layers), width: Number(a.width), heads: Number(a.heads), batch: Number(a.batch),
  lr: Number(a.lr), steps: Number(a.steps), p: Number(a.p), evalEvery: Math.max(1, Math.floor(Number(a.steps) / 4)),
};
const page = resolve(a.page!);
if (!existsSync(page)) {
  console.error(`${page} is missing: run \`npm run build:playground\` first`);
  process.exit(2);
}

// The spec the page trains (specOf in web/playground/src/main.tsx), rebuilt for Node.
const spec: TrainSpec = {
  model: { nLayer: settings.layers, nEmbd: settings.width, nHead: settings.heads, attention: "softmax", ffn: true },
  d: 5, n: 20, noise: "shared", score: "cosine", batch: settings.batch, lr: settings.lr, steps: settings.steps,
  warmupSteps: Math.min(100, Math.ceil(settings.steps / 10)), decay: "cosine", seed: 0, init: "torch",
};

async function nodeMsPerStep(): Promise<number> {
  const model = await createModel(modelConfigFor(spec), { seed: spec.seed, threads: 1, maxBatch: spec.batch });
  applyInit(model, spec.init, spec.seed);
  const rng = trainingDataRng(spec.seed);
  const t0 = performance.now();
  for (let s = 0; s < spec.steps; s++) await icaTrainStep(model, spec, rng, s);
  const ms = (performance.now() - t0) / spec.steps;
  await model.dispose();
  return ms;
}

const median = (xs: number[]) => [...xs].sort((x, y) => x - y)[Math.floor(xs.length / 2)]!;
const loadBefore = loadavg()[0]!;
const chromiumMs: number[] = [];
const nodeMs: number[] = [];
let engine = "";
const browser = await launchChromium();
try {
  const { page: p } = await openPlayground(browser, page, settings);
  // Rounds alternate between the two, so a change in the machine's load hits both alike.
  for (let round = 1; round <= Number(a.rounds); round++) {
    await p.click("#train");
    await waitForPhase(p, ["done"], 30 * 60_000);
    const summary = (await p.locator("#summary").textContent()) ?? "";
    chromiumMs.push(Number(/([\d.]+) ms\/step on average/.exec(summary)?.[1]));
    engine = (await p.locator("#engine").textContent()) ?? "";
    nodeMs.push(await nodeMsPerStep());
    process.stderr.write(`round ${round}: chromium ${chromiumMs.at(-1)} ms/step, node ${nodeMs.at(-1)!.toFixed(1)} ms/step\n`);
  }
  if (a.screenshot) {
    const shot = resolve(a.screenshot);
    mkdirSync(dirname(shot), { recursive: true });
    await p.screenshot({ path: shot, fullPage: false });
    process.stderr.write(`screenshot: ${shot} (${(statSync(shot).size / 1024).toFixed(0)} KiB)\n`);
  }
} finally {
  await browser.close();
}
const loadAfter = loadavg()[0]!;

console.log(`chromium: ${median(chromiumMs).toFixed(1)} ms/step, median of ${chromiumMs.length} (${engine})`);
console.log(`node ${process.version}: ${median(nodeMs).toFixed(1)} ms/step, median of ${nodeMs.length} (1 thread)`);
console.log(`load average ${loadBefore.toFixed(1)} before, ${loadAfter.toFixed(1)} after (${cpus().length} cores)`);
console.log(JSON.stringify({ settings, chromiumMsPerStep: chromiumMs, nodeMsPerStep: nodeMs, engine, node: process.version, loadBefore, loadAfter }));
