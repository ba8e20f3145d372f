/**
 * The playground page: settings, start / stop / resume, the live loss curve, the error-vs-examples
 * curve on held-out tasks with the running-mean baseline, and the checkpoint download. All the work
 * happens in the worker (worker.ts); this thread only draws.
 */
import { render } from "preact";
import { useEffect, useMemo, useRef, useState } from "preact/hooks";
import type { TrainSpec } from "../../../src/lab/train-core.js";
import { LineChart } from "./chart.js";
import type { EvalResult, FromWorker, RunSettings, ToWorker } from "./protocol.js";
import TrainingWorker from "./worker.ts?worker&inline";
import "./style.css";

interface Form {
  layers: number;
  heads: number;
  width: number;
  p: number;
  steps: number;
  lr: number;
  batch: number;
  seed: number;
  evalEvery: number;
}

// The lab's quick preset (QUICK_BASE in src/lab/experiments.ts): 2 layers, 48 dims, 3 heads, batch 64, lr 2e-3.
const DEFAULTS: Form = { layers: 2, heads: 3, width: 48, p: 0, steps: 3000, lr: 2e-3, batch: 64, seed: 0, evalEvery: 100 };

/** Reads the form from the URL query (?layers=2&steps=100...), so a link (or a test) can preset it. */
function formFromQuery(): Form {
  const q = new URLSearchParams(location.search);
  const f = { ...DEFAULTS };
  for (const key of Object.keys(f) as (keyof Form)[]) {
    const v = q.get(key);
    if (v !== null && Number.isFinite(Number(v))) f[key] = Number(v);
  }
  return f;
}

function problems(f: Form): string[] {
  const out: string[] = [];
  const int = (v: number, lo: number, hi: number, name: string) => {
    if (!Number.isInteger(v) || v < lo || v > hi) out.push(`${name}: expected an integer in [${lo}, ${hi}], got ${v}`);
  };
  int(f.layers, 1, 24, "layers");
  int(f.heads, 1, 16, "heads");
  int(f.width, 4, 512, "width");
  int(f.steps, 1, 1_000_000, "steps");
  int(f.batch, 1, 1024, "batch");
  int(f.seed, 0, 2 ** 31 - 1, "seed");
  int(f.evalEvery, 1, 1_000_000, "eval every");
  if (f.width % f.heads !== 0) out.push(`width: ${f.width} is not a multiple of heads (${f.heads}); try ${f.heads * Math.max(1, Math.round(f.width / f.heads))}`);
  if (!(f.p >= 0 && f.p <= 1)) out.push(`reward noise p: expected a probability in [0, 1], got ${f.p}`);
  if (!(f.lr > 0 && f.lr < 1)) out.push(`lr: expected a number in (0, 1), got ${f.lr}`);
  return out;
}

function specOf(f: Form): TrainSpec {
  return {
    model: { nLayer: f.layers, nEmbd: f.width, nHead: f.heads, attention: "softmax", ffn: true },
    d: 5,
    n: 20,
    noise: "shared",
    score: "cosine",
    batch: f.batch,
    lr: f.lr,
    steps: f.steps,
    // The quick preset warms up over 100 of its 3000 steps; a short run warms up over its first tenth.
    warmupSteps: Math.min(100, Math.ceil(f.steps / 10)),
    decay: "cosine",
    seed: f.seed,
    init: "torch",
  };
}

const LOSS_SERIES = [
  { label: "loss per step", color: "#9ecae1" },
  { label: "moving average", color: "#08519c" },
];

type Phase = "idle" | "starting" | "running" | "stopping" | "stopped" | "done" | "error";

interface Download {
  name: string;
  url: string;
  bytes: number;
}

function App() {
  const [form, setForm] = useState<Form>(formFromQuery);
  const [phase, setPhase] = useState<Phase>("idle");
  const [losses, setLosses] = useState<number[]>([]);
  const [msPerStep, setMsPerStep] = useState<number | null>(null);
  const [evalResult, setEvalResult] = useState<EvalResult | null>(null);
  const [engine, setEngine] = useState<string>("");
  const [summary, setSummary] = useState<string>("");
  const [error, setError] = useState<string>("");
  const [downloads, setDownloads] = useState<Download[]>([]);
  const [running, setRunning] = useState<RunSettings | null>(null);
  const worker = useRef<Worker | null>(null);
  const lossBuf = useRef<number[]>([]);

  const send = (m: ToWorker) => worker.current?.postMessage(m);

  useEffect(() => {
    const w = new TrainingWorker({ name: "selfcorrect-playground" });
    worker.current = w;
    w.onmessage = (e: MessageEvent<FromWorker>) => {
      const m = e.data;
      switch (m.type) {
        case "ready":
          setEngine(`${m.params.toLocaleString("en-US")} parameters, WebAssembly kernels (${m.kernels}), ${m.memory} memory, 1 thread`);
          setPhase("running");
          break;
        case "steps":
          lossBuf.current = lossBuf.current.concat(m.losses);
          setLosses(lossBuf.current);
          setMsPerStep(m.msPerStep);
          break;
        case "eval":
          setEvalResult(m.result);
          break;
        case "paused":
          setPhase(m.reason);
          setSummary(`${m.steps} steps trained in ${m.trainSeconds.toFixed(1)} s, ${((1000 * m.trainSeconds) / Math.max(1, m.steps)).toFixed(1)} ms/step on average`);
          send({ type: "checkpoint" });
          break;
        case "checkpoint": {
          const base = `ica-step${m.step}.safetensors`;
          setDownloads((old) => {
            for (const d of old) URL.revokeObjectURL(d.url);
            return [
              { name: base, url: URL.createObjectURL(new Blob([m.safetensors as Uint8Array<ArrayBuffer>])), bytes: m.safetensors.byteLength },
              { name: `${base}.json`, url: URL.createObjectURL(new Blob([m.json], { type: "application/json" })), bytes: m.json.length },
            ];
          });
          break;
        }
        case "error":
          setError(m.message);
          setPhase("error");
          break;
      }
    };
    w.onerror = (e) => {
      setError(e.message || "the training worker failed to start");
      setPhase("error");
    };
    return () => w.terminate();
  }, []);

  const issues = problems(form);
  const busy = phase === "starting" || phase === "running" || phase === "stopping";

  const start = () => {
    const settings: RunSettings = { spec: specOf(form), p: form.p, evalEvery: form.evalEvery, evalTasks: 256 };
    lossBuf.current = [];
    setLosses([]);
    setEvalResult(null);
    setDownloads([]);
    setError("");
    setSummary("");
    setRunning(settings);
    setPhase("starting");
    send({ type: "start", settings });
  };
  const stop = () => {
    setPhase("stopping");
    send({ type: "stop" });
  };
  const resume = () => {
    setDownloads([]);
    setPhase("running");
    send({ type: "resume" });
  };

  const lossData = useMemo(() => {
    // The exponential moving average (0.95) that the CLI's progress bar shows: the trend under the batch noise.
    let ema = Number.NaN;
    const smooth = losses.map((l) => (ema = Number.isNaN(ema) ? l : 0.95 * ema + 0.05 * l));
    return [losses.map((_, i) => i + 1), losses, smooth];
  }, [losses]);
  const evalSeries = useMemo(() => {
    const p = running?.p ?? 0;
    const s = [{ label: p > 0 ? `transformer, reward noise p = ${p}` : "transformer", color: "#08519c" }];
    if (p > 0) s.push({ label: "transformer, clean rewards", color: "#9ecae1" });
    s.push({ label: "running mean", color: "#d62728", dash: [6, 4] } as (typeof s)[number]);
    return s;
  }, [running]);
  const evalData = useMemo(() => {
    if (!evalResult) return [[], ...evalSeries.map(() => [])];
    const cols = [evalResult.examples, evalResult.tf];
    if (evalResult.tfClean) cols.push(evalResult.tfClean);
    cols.push(evalResult.mean);
    return cols;
  }, [evalResult, evalSeries]);

  const step = losses.length;
  const total = running?.spec.steps ?? form.steps;
  const set = (key: keyof Form) => (e: Event) => setForm({ ...form, [key]: Number((e.target as HTMLInputElement).value) });
  const field = (key: keyof Form, label: string, attrs: Record<string, string | number> = {}) => (
    <label>
      {label}
      <input name={key} type="number" value={form[key]} onInput={set(key)} disabled={busy} {...attrs} />
    </label>
  );

  return (
    <main>
      <header>
        <h1>In-context alignment playground</h1>
        <p>
          A GPT-2 transformer learns, from scored responses in its context, to answer better than the responses: the synthetic task of
          "A Theoretical Understanding of Self-Correction through In-context Alignment" (NeurIPS 2024), trained here by selfcorrect's
          WebAssembly engine in a Web Worker. Nothing leaves this page.
        </p>
      </header>
      <section class="controls">
        <fieldset>
          <legend>Model</legend>
          {field("layers", "layers", { min: 1, max: 24 })}
          {field("heads", "heads", { min: 1, max: 16 })}
          {field("width", "width", { min: 4, max: 512, step: 1 })}
        </fieldset>
        <fieldset>
          <legend>Training</legend>
          {field("steps", "steps", { min: 1 })}
          {field("lr", "lr", { min: 0, step: 0.0001 })}
          {field("batch", "batch", { min: 1, max: 1024 })}
          {field("seed", "seed", { min: 0 })}
        </fieldset>
        <fieldset>
          <legend>Evaluation</legend>
          {field("p", "reward noise p", { min: 0, max: 1, step: 0.05 })}
          {field("evalEvery", "every (steps)", { min: 1 })}
        </fieldset>
        <div class="buttons">
          <button type="button" id="train" onClick={start} disabled={busy || issues.length > 0}>
            Train
          </button>
          <button type="button" id="stop" onClick={stop} disabled={phase !== "running"}>
            Stop
          </button>
          <button type="button" id="resume" onClick={resume} disabled={phase !== "stopped"}>
            Resume
          </button>
        </div>
        {issues.length > 0 && (
          <ul class="issues">
            {issues.map((i) => (
              <li key={i}>{i}</li>
            ))}
          </ul>
        )}
      </section>
      <section class="status" id="status">
        <span id="phase" data-phase={phase}>
          {phase}
        </span>
        <span id="step">
          step {step} / {total}
        </span>
        {losses.length > 0 && <span id="loss">loss {losses[losses.length - 1]!.toFixed(4)}</span>}
        {msPerStep !== null && <span id="ms-per-step">{msPerStep.toFixed(1)} ms/step</span>}
        {engine && <span id="engine">{engine}</span>}
        {summary && <span id="summary">{summary}</span>}
        {error && <span class="error" id="error">{error}</span>}
      </section>
      <section class="charts">
        <LineChart id="loss-chart" title="Training loss (Plackett-Luce, cosine score)" xLabel="step" yLabel="loss" series={LOSS_SERIES} data={lossData} />
        <LineChart
          id="eval-chart"
          title={evalResult ? `Error on 256 held-out tasks at step ${evalResult.step}` : "Error on 256 held-out tasks"}
          xLabel="in-context examples"
          yLabel="1 - cos(prediction, y*)"
          series={evalSeries}
          data={evalData}
        />
      </section>
      <section class="downloads" id="downloads">
        <h2>Checkpoint</h2>
        {downloads.length === 0 ? (
          <p>Stop training (or let it finish) to download the checkpoint.</p>
        ) : (
          <>
            <p>
              Save both files in one folder: they are the engine's checkpoint format (weights and Adam state in safetensors, config and
              the lab's state in the .json), so <code>loadModel</code> in Node reads them, and <code>selfcorrect lab train</code> with the
              same settings resumes them.
            </p>
            <ul>
              {downloads.map((d) => (
                <li key={d.name}>
                  <a href={d.url} download={d.name}>
                    {d.name}
                  </a>{" "}
                  ({(d.bytes / 1024).toFixed(1)} KiB)
                </li>
              ))}
            </ul>
          </>
        )}
      </section>
      <details id="loss-log">
        <summary>Loss per step</summary>
        <pre>{losses.map((l, i) => `${i + 1} ${l.toFixed(6)}`).join("\n")}</pre>
      </details>
    </main>
  );
}

render(<App />, document.getElementById("app")!);
