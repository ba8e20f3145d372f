/**
 * The one BullMQ queue of a cluster, its job kinds and their settings.
 *
 * Job ids are derived from what a job computes (a lab run id; an eval run key and its items), so adding
 * the same work twice adds nothing (BullMQ ignores an add whose id exists). Finished jobs are kept: the
 * next `lab experiment --redis` finds them done and `queue status` can show them.
 */
import { Queue, type Job, type JobsOptions } from "bullmq";
import type { TrainSpec } from "../lab/train.js";
import type { Redis } from "ioredis";

export const QUEUE_NAME = "selfcorrect";
/** Key prefix of every BullMQ key (Redis keys `selfcorrect:bull:<queue>:...`). */
export const QUEUE_PREFIX = "selfcorrect:bull";

export interface JobBase {
  /** codeVersion() of the process that enqueued the job; a worker with another refuses it. */
  codeVersion: string;
  /** Hash of the job's configuration (lab: the train spec; eval: the run key). */
  configHash: string;
}

export interface TrainJobData extends JobBase {
  kind: "lab-train";
  runId: string;
  spec: TrainSpec;
  /** Engine threads; training is bit-reproducible per thread count, so the enqueuer pins it. */
  threads?: number;
  checkpointEvery: number;
}

export interface EvalShardData extends JobBase {
  kind: "eval-shard";
  runKey: string;
  /** What `makeEvalSpec` needs (the flags as the enqueuer resolved them). */
  specInput: unknown;
  /** The model flags, for the worker's model builder. */
  model: Record<string, unknown>;
  judge?: Record<string, unknown>;
  ids: string[];
}

export type ClusterJobData = TrainJobData | EvalShardData;

/** What a job's progress says; `queue status` and the attached CLI print it. */
export interface JobProgress {
  worker?: string;
  step?: number;
  steps?: number;
  loss?: number;
  etaSeconds?: number;
  resumedFrom?: number;
  done?: number;
  total?: number;
  /** Set by a worker of another code version that refused the job. */
  refused?: string;
}

/** Transient failures retry with exponential backoff (2 s, 4 s, ...); real ones fail once (UnrecoverableError). */
export const JOB_OPTIONS: JobsOptions = {
  attempts: 4,
  backoff: { type: "exponential", delay: 2000 },
  removeOnComplete: false,
  removeOnFail: false,
};

/** The queue on an existing ioredis client, shared as BullMQ documents (a Queue needs no blocking connection). */
export function openQueue(client: Redis): Queue {
  return new Queue(QUEUE_NAME, { connection: client, prefix: QUEUE_PREFIX });
}

export function progressOf(job: Job): JobProgress {
  const p = job.progress;
  return typeof p === "object" && p !== null ? (p as JobProgress) : {};
}

function fmtSeconds(s: number): string {
  if (s < 90) return `${Math.round(s)} s`;
  if (s < 5400) return `${Math.round(s / 60)} min`;
  return `${(s / 3600).toFixed(1)} h`;
}

/** One line about a job: id, state, progress, ETA, worker, and why it failed or was refused. */
export function describeJob(job: Job, state: string): string {
  const p = progressOf(job);
  const parts = [`${job.id}: ${state}`];
  if (p.steps) parts.push(`step ${p.step ?? 0}/${p.steps}`);
  if (p.total) parts.push(`${p.done ?? 0}/${p.total} items`);
  if (p.loss !== undefined) parts.push(`loss ${p.loss.toFixed(4)}`);
  if (state === "active" && p.etaSeconds !== undefined) parts.push(`ETA ${fmtSeconds(p.etaSeconds)}`);
  if (p.resumedFrom) parts.push(`(resumed at step ${p.resumedFrom})`);
  if (p.worker) parts.push(`worker ${p.worker}`);
  if (state === "failed" && job.failedReason) parts.push(`reason: ${job.failedReason}`);
  if (p.refused) parts.push(`refused: ${p.refused}`);
  return parts.join("  ");
}
