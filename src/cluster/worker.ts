/**
 * `selfcorrect worker`: one BullMQ worker that takes the cluster's jobs (lab training, eval shards).
 *
 * Locks: a job's lock lasts `lockMs` and is renewed every lockMs / 2 while the job runs; a worker killed
 * with -9 stops renewing, and after lockMs the stalled-job check (every lockMs / 2) puts the job back for
 * another worker, up to MAX_STALLED times. Version: a job planned by other code is refused, never run:
 * the refusal is written on the job (its log and progress say why), the job goes back to the queue for a
 * worker of the right version, and this worker stops with the reason (onRefused).
 */
import { hostname, tmpdir } from "node:os";
import { join } from "node:path";
import { DelayedError, UnrecoverableError, Worker, type Job } from "bullmq";
import type { Redis } from "ioredis";
import type { ArtifactStore } from "./artifacts.js";
import { EvalContexts, runEvalShard, type ModelBuilder } from "./eval.js";
import { runTrainJob } from "./lab.js";
import { QUEUE_NAME, QUEUE_PREFIX, type ClusterJobData } from "./queue.js";
import { codeVersion } from "./version.js";

export const MAX_STALLED = 5;

export interface WorkerOptions {
  /**
   * The process's ioredis client (maxRetriesPerRequest: null). BullMQ shares it for the worker's plain
   * commands and duplicates it for the blocking wait for jobs; it does not close a shared client.
   */
  client: Redis;
  artifacts: ArtifactStore;
  /** Jobs run at once by this worker. */
  concurrency: number;
  /** Engine threads for training jobs that do not pin them. */
  threads?: number;
  lockMs: number;
  /** Builds eval models from the flags a shard carries (the CLI's model builder). */
  buildModel: ModelBuilder;
  log: (line: string) => void;
  /** Called once when this worker refuses a job of another code version. */
  onRefused: (reason: string) => void;
}

export interface RunningWorker {
  name: string;
  /** force: do not wait for running jobs (their locks expire and other workers resume them). */
  close: (force?: boolean) => Promise<void>;
}

export function startWorker(o: WorkerOptions): RunningWorker {
  const name = `${hostname()}:${process.pid}`;
  const version = codeVersion();
  const contexts = new EvalContexts(o.buildModel);
  const workDir = join(tmpdir(), `selfcorrect-worker-${process.pid}`);
  let refused = false;

  const processor = async (job: Job, token?: string): Promise<unknown> => {
    const d = job.data as ClusterJobData;
    if (d.codeVersion !== version) {
      const reason = `worker ${name} runs selfcorrect ${version} but the job was planned by ${d.codeVersion}; start workers built from the same code`;
      await job.log(reason).catch(() => {});
      await job.updateProgress({ refused: reason, worker: name }).catch(() => {});
      await job.moveToDelayed(Date.now() + 1000, token);
      if (!refused) {
        refused = true;
        o.onRefused(reason);
      }
      throw new DelayedError();
    }
    if (d.kind === "lab-train") {
      o.log(`${job.id}: training ${d.runId} (${d.spec.steps} steps)`);
      return runTrainJob(job, { artifacts: o.artifacts, threads: o.threads, worker: name, workDir, log: o.log });
    }
    if (d.kind === "eval-shard") return runEvalShard(job, contexts, name);
    throw new UnrecoverableError(`unknown job kind ${(d as { kind?: unknown }).kind}`);
  };

  const worker = new Worker(QUEUE_NAME, processor, {
    connection: o.client,
    prefix: QUEUE_PREFIX,
    concurrency: o.concurrency,
    lockDuration: o.lockMs,
    stalledInterval: Math.max(500, Math.floor(o.lockMs / 2)),
    maxStalledCount: MAX_STALLED,
  });
  worker.on("error", (e) => o.log(`worker: ${e.message}`));
  // Logged when BullMQ has recorded the completion (a job whose lock was lost is not completed by this worker).
  worker.on("completed", (job) => o.log(`${job.id}: completed by ${name}`));
  worker.on("failed", (job, e) => {
    if (job && !(e instanceof DelayedError)) o.log(`${job.id}: failed (attempt ${job.attemptsMade}): ${e.message}`);
  });
  o.log(`worker ${name}: code ${version}, concurrency ${o.concurrency}, lock ${o.lockMs} ms, checkpoints in ${o.artifacts.where}`);
  return {
    name,
    close: async (force = false) => {
      await worker.close(force);
      await contexts.dispose();
    },
  };
}
