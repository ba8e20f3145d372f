/**
 * Lab sweeps on the cluster. The enqueuer plans the distinct models of the requested panels exactly as
 * `lab experiment` does (planExperiments), adds one training job per model that is not finished yet, and
 * follows the jobs' progress. Once every model is trained it downloads the checkpoints into the output
 * directory and calls runExperiments, the single-process path itself, which finds every checkpoint
 * finished, trains nothing, and evaluates, checks the findings and merges results.json as it always does.
 *
 * A worker trains a model in chunks of `checkpointEvery` steps: train() up to the next multiple, upload
 * the checkpoint, go on. A worker that dies loses at most one chunk; the job's next worker (BullMQ's
 * stalled-job recovery) downloads the last checkpoint and resumes from it, and because checkpoint resume
 * is bit-exact in the engine (same thread count), the final weights equal an uninterrupted run's.
 */
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { UnrecoverableError, type Job, type Queue } from "bullmq";
import { ExitCode, UserError } from "../util/errors.js";
import { contentHash } from "../util/json.js";
import { retryWithBackoff } from "../util/retry.js";
import { sleep } from "../util/sleep.js";
import type { PanelId, PresetDef } from "../lab/experiments.js";
import { planExperiments, runExperiments, type LabResults, type PlannedRun } from "../lab/runner.js";
import { readCheckpointMeta, runId, train, type TrainSpec } from "../lab/train.js";
import { checkpointMeta, fetchCheckpoint, putCheckpoint, type ArtifactStore } from "./artifacts.js";
import { describeJob, JOB_OPTIONS, type JobProgress, type TrainJobData } from "./queue.js";

/** Progress updates a job writes to Redis at most this often. */
const PROGRESS_EVERY_MS = 250;
/**
 * Fault tests only: a pause after every training step, so that a test can kill a worker or restart Redis
 * while a small job is surely mid-training, whatever the machine's speed. It changes no number.
 */
const STEP_DELAY_MS = Number(process.env.SELFCORRECT_TEST_STEP_DELAY_MS ?? 0);
import { codeVersion } from "./version.js";

/** The batch the single-process path sizes models for (runExperiments: min(evalTasks, 256)). */
const MAX_BATCH = 256;

export const labJobId = (id: string) => `lab-${id}`;

/** A spec no worker could train: the reason, or null. */
export function specProblem(spec: TrainSpec): string | null {
  const m = spec.model;
  const posInt = (v: unknown) => Number.isInteger(v) && (v as number) > 0;
  for (const [k, v] of Object.entries({ nLayer: m.nLayer, nEmbd: m.nEmbd, nHead: m.nHead, batch: spec.batch, steps: spec.steps, d: spec.d, n: spec.n })) {
    if (!posInt(v)) return `${k} = ${String(v)} must be a whole number > 0`;
  }
  if (m.nEmbd % m.nHead !== 0) return `nHead = ${m.nHead} does not divide nEmbd = ${m.nEmbd}`;
  if (!(Number.isFinite(spec.lr) && spec.lr > 0)) return `lr = ${spec.lr} must be > 0`;
  return null;
}

// ---- the enqueuer ----

export interface ClusterLabOptions {
  queue: Queue;
  artifacts: ArtifactStore;
  outputDir: string;
  threads?: number;
  checkpointEvery: number;
  progress: boolean;
  /** Enqueue and return without waiting. */
  detach: boolean;
  log: (line: string) => void;
  /** Aborting detaches: the jobs keep running on the cluster. */
  signal?: AbortSignal;
  pollMs?: number;
}

async function finishedInStore(artifacts: ArtifactStore, run: PlannedRun): Promise<boolean> {
  const m = await checkpointMeta(artifacts, run.id);
  return !!m && m.step === m.steps && m.steps === run.spec.steps && m.codeVersion === codeVersion();
}

function finishedLocally(run: PlannedRun): boolean {
  const m = readCheckpointMeta(run.checkpoint);
  return m?.step !== undefined && m.step === run.spec.steps;
}

/** Adds the job of one run unless an equivalent one exists; returns its id. */
async function enqueueRun(run: PlannedRun, o: ClusterLabOptions): Promise<string> {
  const id = labJobId(run.id);
  const version = codeVersion();
  const existing = await o.queue.getJob(id);
  if (existing) {
    const state = await existing.getState();
    const stale = (existing.data as TrainJobData).codeVersion !== version;
    // A failed job is tried again by the next enqueue (once: a bad config fails again at once); a completed
    // one whose checkpoint is gone from the store, or a job of another code version, is replaced.
    const replace = state === "failed" || (state === "completed" && !(await finishedInStore(o.artifacts, run))) || (stale && state !== "active");
    if (!replace) return id;
    await existing.remove();
  }
  const data: TrainJobData = {
    kind: "lab-train",
    codeVersion: version,
    configHash: contentHash(run.spec),
    runId: run.id,
    spec: run.spec,
    threads: o.threads,
    checkpointEvery: o.checkpointEvery,
  };
  await o.queue.add("lab-train", data, { ...JOB_OPTIONS, jobId: id });
  return id;
}

/** Waits until every job is completed, printing their progress; throws on a failed job or an abort. */
export async function followJobs(queue: Queue, ids: string[], o: Pick<ClusterLabOptions, "log" | "signal" | "pollMs" | "progress">): Promise<void> {
  const last = new Map<string, { line: string; state: string; at: number }>();
  for (;;) {
    if (o.signal?.aborted) {
      throw new UserError(
        `detached: the ${ids.length} job(s) keep running on the cluster; run the same command again to re-attach (selfcorrect queue status shows them)`,
        ExitCode.interrupted,
      );
    }
    let done = 0;
    for (const id of ids) {
      const job = await queue.getJob(id);
      if (!job) throw new UserError(`job ${id} is no longer in the queue (removed by hand?); run the same command again to enqueue it`, ExitCode.failure);
      const state = await job.getState();
      if (state === "failed") throw new UserError(`job ${describeJob(job, state)}`, ExitCode.failure);
      if (state === "completed") done++;
      const line = describeJob(job, state);
      const prev = last.get(id);
      // A changed line at most every 2 s per job (each change of state at once), so a log stays readable.
      if (o.progress && (!prev || prev.state !== state || (prev.line !== line && Date.now() - prev.at > 2000))) {
        o.log(line);
        last.set(id, { line, state, at: Date.now() });
      }
    }
    if (done === ids.length) return;
    await sleep(o.pollMs ?? 500, o.signal).catch(() => {});
  }
}

/**
 * `lab experiment <panels> --redis`: enqueue the missing models, follow them (unless detached), then
 * evaluate and merge exactly as the single-process path. Returns null when detached.
 */
export async function runLabOnCluster(panels: PanelId[], preset: PresetDef, o: ClusterLabOptions): Promise<LabResults | null> {
  const plan = planExperiments(panels, preset, o.outputDir);
  const ids: string[] = [];
  const fromStore: PlannedRun[] = [];
  for (const run of plan) {
    if (finishedLocally(run)) continue;
    fromStore.push(run);
    if (await finishedInStore(o.artifacts, run)) continue;
    ids.push(await enqueueRun(run, o));
  }
  o.log(
    `cluster: ${plan.length} model(s); ${ids.length} job(s) queued or running (${ids.join(", ") || "none"}), ` +
      `${plan.length - ids.length} already trained; checkpoints in ${o.artifacts.where}`,
  );
  if (o.detach) return null;
  await followJobs(o.queue, ids, o);
  for (const run of fromStore) {
    if (!(await fetchCheckpoint(o.artifacts, run.id, run.checkpoint))) {
      throw new UserError(`the checkpoint of ${run.id} is missing from ${o.artifacts.where} although its job completed; run the same command again to retrain it`, ExitCode.failure);
    }
  }
  return runExperiments(panels, preset, { outputDir: o.outputDir, threads: o.threads, progress: o.progress, checkpointEvery: o.checkpointEvery });
}

// ---- the worker ----

export interface TrainJobDeps {
  artifacts: ArtifactStore;
  /** Threads for jobs that do not pin them. */
  threads?: number;
  worker: string;
  /** Local scratch directory for checkpoints in progress. */
  workDir: string;
  log: (line: string) => void;
}

export interface TrainJobResult {
  runId: string;
  steps: number;
  trainSeconds: number;
  worker: string;
  resumedFrom: number;
}

export async function runTrainJob(job: Job, deps: TrainJobDeps): Promise<TrainJobResult> {
  const d = job.data as TrainJobData;
  const problem = specProblem(d.spec);
  if (problem) throw new UnrecoverableError(`bad config: ${problem}`);
  if (runId(d.spec) !== d.runId) throw new UnrecoverableError(`bad config: the spec's run id is ${runId(d.spec)}, the job names ${d.runId}`);
  const dir = join(deps.workDir, d.runId);
  rmSync(dir, { recursive: true, force: true });
  mkdirSync(dir, { recursive: true });
  const ckpt = join(dir, "model.safetensors");
  await fetchCheckpoint(deps.artifacts, d.runId, ckpt);
  let step = readCheckpointMeta(ckpt)?.step ?? 0;
  const resumedFrom = step;
  if (resumedFrom > 0) deps.log(`${job.id}: resuming from the checkpoint at step ${resumedFrom}`);
  const started = Date.now();
  let reported = 0;
  const report = (p: JobProgress) => {
    // Progress is advisory: a failed update (Redis restarting) must not stop the training.
    job.updateProgress({ worker: deps.worker, steps: d.spec.steps, resumedFrom, ...p }).catch(() => {});
  };
  report({ step });
  let trainSeconds = 0;
  while (step < d.spec.steps) {
    const stopAt = Math.min(d.spec.steps, (Math.floor(step / d.checkpointEvery) + 1) * d.checkpointEvery);
    let r: Awaited<ReturnType<typeof train>>;
    try {
      r = await train(d.spec, {
        checkpointPath: ckpt,
        threads: d.threads ?? deps.threads,
        checkpointEvery: d.checkpointEvery,
        progress: false,
        handleSigint: false,
        stopAtStep: stopAt,
        maxBatch: MAX_BATCH,
        onStep: (info) => {
          if (STEP_DELAY_MS > 0) Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, STEP_DELAY_MS);
          if (Date.now() - reported < PROGRESS_EVERY_MS) return;
          reported = Date.now();
          const rate = (Date.now() - started) / 1000 / Math.max(1, info.step - resumedFrom);
          report({ step: info.step, loss: info.ema, etaSeconds: rate * (d.spec.steps - info.step) });
        },
      });
    } catch (e) {
      // A UserError is about the input (a checkpoint of another configuration, a bad spec): retrying cannot help.
      if (e instanceof UserError) throw new UnrecoverableError(e.message);
      throw e;
    }
    step = r.model.step;
    trainSeconds = r.trainSeconds;
    await r.model.dispose();
    // Redis may be restarting: keep trying for about half a minute before failing the attempt.
    await retryWithBackoff(() => putCheckpoint(deps.artifacts, ckpt, { runId: d.runId, step, steps: d.spec.steps, codeVersion: d.codeVersion }), {
      retries: 8,
      baseDelayMs: 500,
      maxDelayMs: 5000,
    });
  }
  report({ step, etaSeconds: 0 });
  rmSync(dir, { recursive: true, force: true });
  return { runId: d.runId, steps: step, trainSeconds, worker: deps.worker, resumedFrom };
}
