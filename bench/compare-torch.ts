/**
 * Engine vs PyTorch, side by side in one run: alternates shared/bench/torch_reference.py --bench
 * and bench/engine.js (torch, engine, torch, engine, ...) so both see the same machine load, and
 * prints each run plus the ratio of engine to PyTorch step times.
 *
 *   node dist/bench/compare-torch.js --layers 5 --batch 64 --threads 2 --rounds 2 --json
 *
 * PyTorch runs with OPENBLAS_CORETYPE / OPENBLAS_L2_SIZE removed from its environment (see
 * torch_reference.py). Needs python3-torch (apt-get install -y python3-torch libopenblas0-pthread).
 */
import { spawnSync, type SpawnSyncReturns } from "node:child_process";
import { fileURLToPath } from "node:url";
import { resolve } from "node:path";
import { parseArgs } from "node:util";
import { lastLine, torchEnv, torchOptions, torchScriptPath } from "./support/torch-reference.js";

const { values: a } = parseArgs({
  options: {
    layers: { type: "string", default: "5" },
    batch: { type: "string", default: "64" },
    threads: { type: "string", default: "2" },
    rounds: { type: "string", default: "2" },
    steps: { type: "string", default: "5" },
    ...torchOptions,
    json: { type: "boolean", default: false },
  },
});

const here = fileURLToPath(new URL(".", import.meta.url));
const torchScript = torchScriptPath(a.torch);
const engineScript = resolve(here, "engine.js");
const common = ["--layers", a.layers!, "--batch", a.batch!, "--threads", a.threads!];

/** The fields of bench/engine.js's JSON that this comparison reads. */
interface EngineJson {
  matmuls: string;
  step_s_median: number;
  step_s_min: number;
  gflops: number;
  cpu_s_per_step: number;
  peak_rss_mib: number;
}

function lastJson(what: string, r: SpawnSyncReturns<string>): Record<string, number> {
  return JSON.parse(lastLine(what, r));
}

const env = torchEnv();

const runs: { impl: string; matmuls?: string; step_s_median: number; step_s_min: number; gflops?: number; cpu_s_per_step?: number; peak_rss_mib?: number }[] = [];
const rounds = Number(a.rounds);
for (let i = 0; i < rounds; i++) {
  const t = lastJson(
    "torch_reference.py",
    spawnSync(a.python!, [torchScript, "--bench", "--bench-steps", a.steps!, ...common], { env, encoding: "utf8" }),
  );
  runs.push({ impl: "pytorch", step_s_median: t.step_s_median!, step_s_min: t.step_s_min! });
  process.stderr.write(`pytorch: median ${t.step_s_median!.toFixed(3)} s, min ${t.step_s_min!.toFixed(3)} s\n`);
  const e = JSON.parse(lastLine(
    "bench/engine.js",
    spawnSync(process.execPath, [engineScript, "--json", "--steps", a.steps!, ...common], { encoding: "utf8" }),
  )) as EngineJson;
  runs.push({
    impl: "engine", matmuls: e.matmuls, step_s_median: e.step_s_median, step_s_min: e.step_s_min, gflops: e.gflops,
    cpu_s_per_step: e.cpu_s_per_step, peak_rss_mib: e.peak_rss_mib,
  });
  process.stderr.write(`engine (${e.matmuls} matmuls): median ${e.step_s_median.toFixed(3)} s, min ${e.step_s_min.toFixed(3)} s, ${e.gflops.toFixed(1)} GFLOP/s\n`);
}

const pick = (impl: string, k: "step_s_median" | "step_s_min") => runs.filter((r) => r.impl === impl).map((r) => r[k]);
const med = (xs: number[]) => {
  const s = [...xs].sort((x, y) => x - y);
  const h = Math.floor(s.length / 2);
  return s.length % 2 ? s[h]! : (s[h - 1]! + s[h]!) / 2;
};
// Pair each engine run with the PyTorch run just before it (same load), then take the median ratio.
const ratios = pick("engine", "step_s_median").map((e, i) => e / pick("pytorch", "step_s_median")[i]!);
const result = {
  layers: Number(a.layers),
  batch: Number(a.batch),
  threads: Number(a.threads),
  runs,
  ratio_median_per_round: ratios,
  ratio_median: med(ratios),
  ratio_min: Math.min(...pick("engine", "step_s_min")) / Math.min(...pick("pytorch", "step_s_min")),
};
process.stdout.write((a.json ? JSON.stringify(result) : JSON.stringify(result, null, 2)) + "\n");
